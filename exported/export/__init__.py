"""`plusls export`: a local Hugging Face checkpoint (or GGUF file) -> an ONNX model directory with a manifest.

Needs the `train` extra (torch, transformers, optimum). The directory is built beside OUT and renamed into
place only after its parity check passed, so a failed export never leaves a half-written model behind."""
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
from . import parity
from .bert2bert import export_bert2bert, is_bert2bert
from .embedding_modules import MatchingLogits, is_codet5p_embedding, load_codet5p_embedding, load_sentence_embedder
from .fused import can_fuse, write_fused
from .logits import keep_last_logits
from .quantize import quantize_dir
from .sources import check_source, find_gguf, materialize_gguf

PARITY_LIMIT = 1e-3  # max |logit diff| (or |embedding diff|) fp32 ONNX vs PyTorch
# The fused graph's kernels sum in another order; Qwen2.5's first-position activations reach ~1e4, where fp32
# rounding shows as a few 1e-3 in the logits (a wrong graph is off by whole units). Top-1 must still agree.
FUSED_PARITY_LIMIT = 1e-2
INT8_MIN_AGREEMENT = 0.9  # top-1 agreement of int8 logits with PyTorch's, below which --int8 is refused
INT8_MIN_COSINE = 0.98  # the same for embeddings
Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"plusls export: {msg}", file=sys.stderr, flush=True)


def export_model(
    src: str | Path, kind: str, out: str | Path, int8: bool = False, force: bool = False, log: Log = _stderr
) -> Manifest:
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
        source_note = str(src)
        gguf = find_gguf(src)
        if gguf is not None:
            if kind != "causal-lm":
                raise ExportError(f"{gguf} is a GGUF file: only --kind causal-lm reads GGUF")
            log(f"dequantizing {gguf.name} to fp32")
            src = scratch / "hf"
            materialize_gguf(gguf, src)
            source_note = f"{gguf} (GGUF, dequantized to fp32)"
        config = check_source(src)
        manifest = EXPORTERS[kind](src, config, work, scratch, log)
        if kind == "seq2seq" and (decoding := _decoding_settings(src)):
            manifest.config["generation"] = decoding
        manifest.source = source_note
        _save_tokenizer(src, work, manifest)
        manifest.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest.plusls_version = version("plusls")
        manifest.files = checksum_files(work)
        manifest.write(work)
        log("checking parity against PyTorch")
        _check_parity(src, config, work, manifest, int8, log)
        manifest.files = checksum_files(work)
        manifest.write(work)
        write_stamps(work, manifest)  # just hashed: the first load need not hash again
        replace_dir(work, out)
    log(f"wrote {out} in {time.perf_counter() - t0:.1f}s (parity {manifest.parity})")
    return manifest


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
        write_fused(_load_torch_model(src, config, "causal-lm"), config, work / "model.onnx")
        return _base_manifest("causal-lm", config, _opset(work / "model.onnx"), int(length), {"attention": "fused"})
    dest = _optimum_export(src, "text-generation-with-past", scratch, log)
    _move_onnx(["model.onnx"], dest, work)
    keep_last_logits(work / "model.onnx")
    return _base_manifest("causal-lm", config, _opset(work / "model.onnx"), int(length))


def _export_seq2seq(src: Path, config: dict, work: Path, scratch: Path, log: Log) -> Manifest:
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
    special: dict = {}
    for name in ("bos", "eos", "pad", "unk", "sep", "cls", "mask"):
        token = getattr(tok, f"{name}_token", None)
        if token is not None:
            special[name] = {"token": str(token), "id": int(tok.convert_tokens_to_ids(str(token)))}
    special["fim"] = find_fim(tok.get_vocab())
    special["repo"] = find_repo(tok.get_vocab())
    if isinstance(getattr(tok, "chat_template", None), str):
        manifest.config["chat_template"] = tok.chat_template  # the tokenizer's own, never written here
        if frame := chat_frame(tok.chat_template):  # so serving frames chat turns without jinja2
            manifest.config["chat_frame"] = frame
    special["stop"] = stop_tokens(load_tokenizer(work / "tokenizer.json"), [special.get("eos", {}).get("id")])
    manifest.special_tokens = special
    if manifest.kind == "embedding" and manifest.max_length > tok.model_max_length:
        manifest.max_length = int(tok.model_max_length)


def _load_torch_model(src: Path, config: dict, kind: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    if kind == "causal-lm":
        return AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="eager").eval()
    if kind == "seq2seq":
        return AutoModelForSeq2SeqLM.from_pretrained(src, dtype=torch.float32).eval()
    if kind == "matching":

        return MatchingLogits.load(src)
    return _embedding_module(src, config)[0]


def _runtime(kind: str, work: Path):
    cls = {"causal-lm": CausalLM, "seq2seq": Seq2SeqLM, "embedding": Embedder, "matching": Matcher}[kind]
    return cls(work, RuntimeOptions(providers=("CPUExecutionProvider",)), verify=False)


def _compare(kind: str, model, runtime, config: dict) -> tuple[np.ndarray, np.ndarray]:
    vocab = int(config.get("vocab_size") or runtime.tokenizer.get_vocab_size())
    if kind == "causal-lm":
        return parity.causal_logits(model, runtime, vocab)
    if kind == "seq2seq":
        return parity.seq2seq_logits(model, runtime, vocab)
    if kind == "matching":
        return parity.matching_logits(model, runtime)
    return parity.embedding_vectors(model, runtime)


def _check_parity(src: Path, config: dict, work: Path, manifest: Manifest, int8: bool, log: Log) -> None:
    kind = manifest.kind
    model = _load_torch_model(src, config, kind)
    ref, got = _compare(kind, model, _runtime(kind, work), config)
    diff = float(np.abs(ref - got).max())
    manifest.parity = {"fp32_max_abs_diff": diff, "measured_on": f"{len(ref)} sample positions, CPU"}
    fused = manifest.config.get("attention") == "fused"
    limit = FUSED_PARITY_LIMIT if fused else PARITY_LIMIT
    if not diff <= limit or (fused and (ref.argmax(-1) != got.argmax(-1)).any()):
        raise ExportError(
            f"parity check failed: ONNX output differs from PyTorch by up to {diff:.3g} (limit {limit}); "
            "the export is wrong and was not written. Try another transformers/torch version, and report it."
        )
    if not int8:
        return

    log("quantizing weights to int8")
    quantize_dir(work, manifest)
    manifest.files = checksum_files(work)
    manifest.write(work)
    _, q = _compare(kind, model, _runtime(kind, work), config)
    manifest.parity["int8_max_abs_diff"] = float(np.abs(ref - q).max())
    if kind == "embedding":
        score, limit, what = float(parity.cosine(ref, q).min()), INT8_MIN_COSINE, "int8_min_cosine"
    elif kind == "matching":
        score, limit, what = parity.pair_order_agreement(ref, q), INT8_MIN_AGREEMENT, "int8_pair_order_agreement"
    else:
        score, limit, what = parity.top1_agreement(ref, q), INT8_MIN_AGREEMENT, "int8_top1_agreement"
    manifest.parity[what] = score
    if score < limit:
        raise ExportError(f"int8 loses too much quality: {what} {score:.3f} < {limit}; export without --int8")
