"""`plusls export`: a local Hugging Face checkpoint (or GGUF file) -> an ONNX model directory with a manifest.

A Hugging Face checkpoint needs the `train` extra (torch, transformers, optimum) and is checked against PyTorch.
A Llama/Qwen2 GGUF file needs only `gguf` and `onnx`: it is read and written one weight at a time
(gguf_checkpoint.py, fused.py), checked against PyTorch with `parity=True`. The directory is built beside OUT and
renamed into place only when complete and checked, so a failed export never leaves a half-written model behind."""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np

from plusls.common.chat import chat_frame
from plusls.common.dirs import replace_dir

from ..causal_lm import CausalLM
from ..embedder import Embedder
from ..errors import ExportError
from ..generation import DECODING_KEYS, NEUTRAL
from ..manifest import KINDS, ONNX_FILES, Manifest, checksum_files, write_stamps
from ..matching import Matcher
from ..model_files import load_tokenizer
from ..seq2seq_lm import Seq2SeqLM
from ..sessions import RuntimeOptions
from ..special_tokens import find_fim, find_repo, stop_tokens
from .fused import TorchWeights, can_fuse, write_fused
from .gguf_checkpoint import GGUFCheckpoint
from .logits import keep_last_logits
from .quantize import quantize_dir
from .sources import check_source, find_gguf, materialize_gguf

PARITY_LIMIT = 1e-3  # max |logit diff| (or |embedding diff|) fp32 ONNX vs PyTorch
# The fused graph's kernels sum in another order; Qwen2.5's first-position activations reach ~1e4, where fp32
# rounding shows as a few 1e-3 in the logits (a wrong graph is off by whole units). Top-1 must still agree.
FUSED_PARITY_LIMIT = 1e-2
INT8_MIN_AGREEMENT = 0.9  # top-1 agreement of int8 logits with PyTorch's, below which --int8 is refused
INT8_MIN_COSINE = 0.98  # the same for embeddings
# A streamed GGUF export's check: the largest relative error int8 makes in any weight (8-bit blocks of 32 keep it
# near 1%; a weight with outliers the blocks cannot hold shows far above).
INT8_MAX_REL_ERROR = 0.05
Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"plusls export: {msg}", file=sys.stderr, flush=True)


def export_model(
    src: str | Path, kind: str, out: str | Path, int8: bool = False, force: bool = False, parity: bool = False,
    log: Log = _stderr,
) -> Manifest:
    """parity: also check a GGUF export against PyTorch (transformers dequantizes the whole file: the fp32 model's
    size in memory, and more); a Hugging Face checkpoint is always checked."""
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if kind not in KINDS:
        raise ExportError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if out.exists() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} exists and is not empty; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.partial-", dir=out.parent) as tmp:
        work, scratch = Path(tmp) / "model", Path(tmp) / "scratch"
        work.mkdir()
        scratch.mkdir()
        gguf = find_gguf(src)
        if gguf is not None and kind != "causal-lm":
            raise ExportError(f"{gguf} is a GGUF file: only --kind causal-lm reads GGUF")
        checkpoint = _streamable(gguf) if gguf is not None else None
        if checkpoint is not None:
            manifest = _export_gguf(checkpoint, work, int8, log)
            manifest.source = f"{gguf} (GGUF, read one weight at a time)"
            if parity:
                _write(work, manifest)  # the runtime the check loads reads it
                _check_gguf_parity(checkpoint, scratch, work, manifest, int8, log)
        else:
            if gguf is not None:
                log(f"dequantizing {gguf.name} to fp32 with transformers")
                src = scratch / "hf"
                materialize_gguf(gguf, src)
            config = check_source(src)
            manifest = EXPORTERS[kind](src, config, work, scratch, log)
            if kind == "seq2seq" and (decoding := _decoding_settings(src)):
                manifest.config["generation"] = decoding
            manifest.source = str(src) if gguf is None else f"{gguf} (GGUF, dequantized to fp32)"
            _save_tokenizer(src, work, manifest)
            _write(work, manifest)
            log("checking parity against PyTorch")
            _check_parity(src, config, work, manifest, int8, log)
        _write(work, manifest)
        write_stamps(work, manifest)  # just hashed: the first load need not hash again
        replace_dir(work, out)
    log(f"wrote {out} in {time.perf_counter() - t0:.1f}s (parity {manifest.parity})")
    return manifest


def _write(work: Path, manifest: Manifest) -> None:
    manifest.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest.plusls_version = version("plusls")
    manifest.files = checksum_files(work)
    manifest.write(work)


def _streamable(gguf: Path) -> GGUFCheckpoint | None:
    """The GGUF read without torch when plusls can (a Llama/Qwen2 decoder for the fused graph, a byte-level BPE
    tokenizer); None sends it through transformers."""
    try:
        checkpoint = GGUFCheckpoint(gguf)
    except ExportError:
        return None
    return checkpoint if can_fuse(checkpoint.config) and checkpoint.tokenizer_supported() else None


def _export_gguf(checkpoint: GGUFCheckpoint, work: Path, int8: bool, log: Log) -> Manifest:
    config = checkpoint.config
    log(f"writing the fused decoder graph from {checkpoint.path.name} one weight at a time"
        + (", quantizing each to int8" if int8 else ""))
    note = write_fused(checkpoint, config, work / "model.onnx", int8=int8)
    manifest = _base_manifest("causal-lm", config, 17, int(config["max_position_embeddings"]), {"attention": "fused"})
    tokenizer = checkpoint.tokenizer()
    tokenizer.save(str(work / "tokenizer.json"))
    named = {name: (tokenizer.id_to_token(i), i) for name, i in checkpoint.special_tokens().items()}
    _special_tokens(work, manifest, named, tokenizer.get_vocab(), checkpoint.chat_template())
    if note:
        manifest.quantization = note["quantization"]
        manifest.parity = {"int8_max_rel_error": note["int8_max_rel_error"],
                           "measured_on": "every weight against the GGUF's own (dequantized)"}
        if note["int8_max_rel_error"] > INT8_MAX_REL_ERROR:
            raise ExportError(f"int8 loses too much: a weight's relative error {note['int8_max_rel_error']:.3f} > "
                              f"{INT8_MAX_REL_ERROR}; export without --int8")
    return manifest


def _check_gguf_parity(checkpoint: GGUFCheckpoint, scratch: Path, work: Path, manifest: Manifest, int8: bool,
                       log: Log) -> None:
    log("checking parity against PyTorch (transformers reads the GGUF)")
    hf = scratch / "hf"
    materialize_gguf(checkpoint.path, hf)
    model = _load_torch_model(hf, checkpoint.config, "causal-lm")
    ref, got = _compare("causal-lm", model, _runtime("causal-lm", work), checkpoint.config)
    if int8:  # the int8 graph against fp32 PyTorch, as an int8 export from a checkpoint is judged
        _check_int8("causal-lm", ref, got, manifest)
    else:
        _check_fp32(ref, got, manifest)


def _decoding_settings(src: Path) -> dict:
    """The repetition settings of the checkpoint's generation_config.json that the runtime applies (seq2seq only:
    completions stay plain greedy). They go into the manifest, so every user of the directory decodes the same way."""
    import json

    path = src / "generation_config.json"
    settings = json.loads(path.read_text()) if path.is_file() else {}
    return {k: settings[k] for k in DECODING_KEYS if settings.get(k) not in (None, NEUTRAL[k])}


def _optimum_export(src: Path, task: str, scratch: Path, log: Log) -> Path:
    from optimum.exporters.onnx import main_export

    log(f"exporting with optimum ({task})")
    dest = scratch / "optimum"
    try:
        main_export(str(src), output=dest, task=task, device="cpu", do_validation=False, local_files_only=True)
    except Exception as e:
        raise ExportError(f"optimum could not export {src} as {task}: {e}") from e
    return dest


def _move_onnx(files: list[str], source: Path, work: Path) -> None:
    for name in files:
        shutil.move(source / name, work / name)
        data = source / f"{name}_data"  # external weights, used above 2 GB
        if data.exists():
            shutil.move(data, work / data.name)


def _base_manifest(kind: str, config: dict, opset: int, max_length: int, extra: dict | None = None) -> Manifest:
    return Manifest(
        kind=kind,
        architecture=(config.get("architectures") or [config.get("model_type", "?")])[0],
        model_type=config.get("model_type", "?"),
        files={},
        special_tokens={},
        max_length=max_length,
        opset=opset,
        config=extra or {},
    )


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _export_causal(src: Path, config: dict, work: Path, scratch: Path, log: Log) -> Manifest:
    length = config.get("max_position_embeddings") or config.get("n_positions") or config.get("n_ctx") or 2048
    if can_fuse(config):  # Llama/Qwen2: our own graph, a fraction of optimum's ops per decode step
        log("writing the fused decoder graph")
        model = _load_torch_model(src, config, "causal-lm")
        write_fused(TorchWeights(model), {**config, "tie_word_embeddings": model.config.tie_word_embeddings},
                    work / "model.onnx")
        return _base_manifest("causal-lm", config, _opset(work / "model.onnx"), int(length), {"attention": "fused"})
    dest = _optimum_export(src, "text-generation-with-past", scratch, log)
    _move_onnx(["model.onnx"], dest, work)
    keep_last_logits(work / "model.onnx")
    return _base_manifest("causal-lm", config, _opset(work / "model.onnx"), int(length))


def _export_seq2seq(src: Path, config: dict, work: Path, scratch: Path, log: Log) -> Manifest:
    from .bert2bert import is_bert2bert  # torch

    if is_bert2bert(config):
        return _export_bert2bert(src, config, work, log)
    dest = _optimum_export(src, "text2text-generation-with-past", scratch, log)
    files = list(ONNX_FILES["seq2seq"].values())
    if not all((dest / f).exists() for f in files):
        raise ExportError(f"optimum did not produce {files} for {src}; is it an encoder-decoder (T5) checkpoint?")
    _move_onnx(files, dest, work)
    start = config.get("decoder_start_token_id")
    start = config.get("pad_token_id", 0) if start is None else start
    return _base_manifest("seq2seq", config, _opset(work / files[0]), 512, {"decoder_start_token_id": int(start)})


def _export_bert2bert(src: Path, config: dict, work: Path, log: Log) -> Manifest:
    """A BERT encoder + BERT decoder EncoderDecoderModel (optimum does not export those with past)."""

    from .bert2bert import export_bert2bert  # torch

    log("exporting the BERT encoder-decoder (traced here)")
    try:
        positions = export_bert2bert(src, work)
    except Exception as e:
        raise ExportError(f"could not export the BERT encoder-decoder {src}: {e}") from e
    start = config.get("decoder_start_token_id")
    if start is None:
        raise ExportError(f"{src}/config.json has no decoder_start_token_id")
    return _base_manifest("seq2seq", config, _opset(work / "encoder_model.onnx"), positions,
                          {"decoder_start_token_id": int(start)})


def _embedding_module(src: Path, config: dict):
    from .embedding_modules import is_codet5p_embedding, load_codet5p_embedding, load_sentence_embedder  # torch

    if is_codet5p_embedding(config):
        return load_codet5p_embedding(src, config), "first-token+proj", ["input_ids", "attention_mask"]
    model = load_sentence_embedder(src)
    return model, model.pooling, ["input_ids", "attention_mask", "token_type_ids"]


def _export_embedding(src: Path, config: dict, work: Path, scratch: Path, log: Log) -> Manifest:
    import torch

    model, pooling, names = _embedding_module(src, config)
    log(f"exporting embedding model ({pooling} pooling)")
    example = _trace_encoder(model, names, "embedding", src, work)
    with torch.no_grad():
        dim = int(model(*example).shape[-1])
    length = _sentence_max_length(src) or config.get("max_position_embeddings") or 512
    if config.get("model_type") in ("codet5p_embedding", "t5"):
        length = 512  # relative position buckets: no hard limit; the model was trained at 512
    return _base_manifest("embedding", config, 17, int(length), {"dim": dim, "pooling": pooling})


def _trace_encoder(model, names: list[str], output: str, src: Path, work: Path) -> tuple:
    """Trace an encoder taking `names` [batch, sequence] to one output [batch, ...] into work/model.onnx; returns
    the example inputs it traced with."""
    import torch

    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {output: {0: "batch"}}
    try:
        torch.onnx.export(model, example, str(work / "model.onnx"), input_names=names, output_names=[output],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed for {src}: {e}") from e
    return example


def _sentence_max_length(src: Path) -> int | None:
    import json

    f = src / "sentence_bert_config.json"
    return json.loads(f.read_text()).get("max_seq_length") if f.is_file() else None


def _export_matching(src: Path, config: dict, work: Path, scratch: Path, log: Log) -> Manifest:
    """A text-code matching cross-encoder (training/matching.py): the pair's ids -> one match logit."""

    from .embedding_modules import MatchingLogits  # torch

    model = MatchingLogits.load(src)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    log(f"exporting matching model ({model.model.pooling} pooling)")
    _trace_encoder(model, names, "logits", src, work)
    return _base_manifest("matching", config, 17, int(config.get("max_position_embeddings") or 512),
                          {"pooling": model.model.pooling, **model.lengths})


EXPORTERS = {"causal-lm": _export_causal, "seq2seq": _export_seq2seq, "embedding": _export_embedding,
             "matching": _export_matching}


def _save_tokenizer(src: Path, work: Path, manifest: Manifest) -> None:
    """tokenizer.json (converted from slow tokenizer files when needed) and the special tokens it defines."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(src, use_fast=True, local_files_only=True)
    except Exception as e:
        raise ExportError(f"cannot load the tokenizer in {src}: {e}") from e
    if not tok.is_fast:
        raise ExportError(f"{src}: the tokenizer has no fast (tokenizer.json) form plusls can run without Python")
    tok.backend_tokenizer.save(str(work / "tokenizer.json"))
    named = {}
    for name in ("bos", "eos", "pad", "unk", "sep", "cls", "mask"):
        token = getattr(tok, f"{name}_token", None)
        if token is not None:
            named[name] = (str(token), int(tok.convert_tokens_to_ids(str(token))))
    template = tok.chat_template if isinstance(getattr(tok, "chat_template", None), str) else None
    _special_tokens(work, manifest, named, tok.get_vocab(), template)
    if manifest.kind == "embedding" and manifest.max_length > tok.model_max_length:
        manifest.max_length = int(tok.model_max_length)


def _special_tokens(work: Path, manifest: Manifest, named: dict[str, tuple[str, int]], vocab: dict[str, int],
                    chat_template: str | None) -> None:
    """The manifest's special tokens (named ones, FIM and repository markers, the stop set) and chat template (the
    tokenizer's own, never written here)."""
    special: dict = {name: {"token": token, "id": i} for name, (token, i) in named.items()}
    special["fim"] = find_fim(vocab)
    special["repo"] = find_repo(vocab)
    if chat_template:
        manifest.config["chat_template"] = chat_template
        if frame := chat_frame(chat_template):  # so serving frames chat turns without jinja2
            manifest.config["chat_frame"] = frame
    special["stop"] = stop_tokens(load_tokenizer(work / "tokenizer.json"), [special.get("eos", {}).get("id")])
    manifest.special_tokens = special


def _load_torch_model(src: Path, config: dict, kind: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    if kind == "causal-lm":
        return AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="eager").eval()
    if kind == "seq2seq":
        return AutoModelForSeq2SeqLM.from_pretrained(src, dtype=torch.float32).eval()
    if kind == "matching":
        from .embedding_modules import MatchingLogits  # torch

        return MatchingLogits.load(src)
    return _embedding_module(src, config)[0]


def _runtime(kind: str, work: Path):
    cls = {"causal-lm": CausalLM, "seq2seq": Seq2SeqLM, "embedding": Embedder, "matching": Matcher}[kind]
    return cls(work, RuntimeOptions(providers=("CPUExecutionProvider",)), verify=False)


def _compare(kind: str, model, runtime, config: dict) -> tuple[np.ndarray, np.ndarray]:
    from .parity import causal_logits, embedding_vectors, matching_logits, seq2seq_logits  # torch

    vocab = int(config.get("vocab_size") or runtime.tokenizer.get_vocab_size())
    if kind == "causal-lm":
        return causal_logits(model, runtime, vocab)
    if kind == "seq2seq":
        return seq2seq_logits(model, runtime, vocab)
    if kind == "matching":
        return matching_logits(model, runtime)
    return embedding_vectors(model, runtime)


def _check_parity(src: Path, config: dict, work: Path, manifest: Manifest, int8: bool, log: Log) -> None:
    kind = manifest.kind
    model = _load_torch_model(src, config, kind)
    ref, got = _compare(kind, model, _runtime(kind, work), config)
    _check_fp32(ref, got, manifest)
    if not int8:
        return
    log("quantizing weights to int8")
    quantize_dir(work, manifest)
    manifest.files = checksum_files(work)
    manifest.write(work)
    _check_int8(kind, ref, _compare(kind, model, _runtime(kind, work), config)[1], manifest)


def _check_fp32(ref: np.ndarray, got: np.ndarray, manifest: Manifest) -> None:
    diff = float(np.abs(ref - got).max())
    manifest.parity = {"fp32_max_abs_diff": diff, "measured_on": f"{len(ref)} sample positions, CPU"}
    fused = manifest.config.get("attention") == "fused"
    limit = FUSED_PARITY_LIMIT if fused else PARITY_LIMIT
    if not diff <= limit or (fused and (ref.argmax(-1) != got.argmax(-1)).any()):
        raise ExportError(
            f"parity check failed: ONNX output differs from PyTorch by up to {diff:.3g} (limit {limit}); "
            "the export is wrong and was not written. Try another transformers/torch version, and report it."
        )


def _check_int8(kind: str, ref: np.ndarray, q: np.ndarray, manifest: Manifest) -> None:
    from .parity import cosine, pair_order_agreement, top1_agreement  # torch

    manifest.parity["int8_max_abs_diff"] = float(np.abs(ref - q).max())
    if kind == "embedding":
        score, limit, what = float(cosine(ref, q).min()), INT8_MIN_COSINE, "int8_min_cosine"
    elif kind == "matching":
        score, limit, what = pair_order_agreement(ref, q), INT8_MIN_AGREEMENT, "int8_pair_order_agreement"
    else:
        score, limit, what = top1_agreement(ref, q), INT8_MIN_AGREEMENT, "int8_top1_agreement"
    manifest.parity[what] = score
    if score < limit:
        raise ExportError(f"int8 loses too much quality: {what} {score:.3f} < {limit}; export without --int8")
