"""Checking a local checkpoint before export, and turning a GGUF file into a Hugging Face directory."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ExportError

WEIGHTS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt")


def find_gguf(src: Path) -> Path | None:
    """The GGUF file to load: SRC itself, or the single .gguf in a directory without config.json."""
    if src.is_file() and src.suffix == ".gguf":
        return src
    if src.is_dir() and not (src / "config.json").exists():
        ggufs = sorted(src.glob("*.gguf"))
        if len(ggufs) > 1:
            raise ExportError(f"{src} holds several .gguf files; pass the one to export: {[g.name for g in ggufs]}")
        return ggufs[0] if ggufs else None
    return None


def check_source(src: Path) -> dict:
    """Raise a clear ExportError unless src is a local checkpoint directory with config, weights and tokenizer."""
    if not src.exists():
        raise ExportError(
            f"{src} does not exist. plusls never downloads: pass a local checkpoint directory "
            "(config.json, weights, tokenizer files) or a .gguf file"
        )
    if not src.is_dir():
        raise ExportError(f"{src} is a file; pass a checkpoint directory or a .gguf file")
    missing = []
    if not (src / "config.json").is_file():
        missing.append("config.json")
    if not any(any(src.glob(p)) for p in WEIGHTS):
        missing.append("weights (*.safetensors or pytorch_model.bin)")
    if not any((src / t).is_file() for t in TOKENIZER_FILES):
        missing.append("tokenizer files (tokenizer.json, tokenizer.model, vocab.json + merges.txt or vocab.txt)")
    if missing:
        raise ExportError(f"{src} is not a complete checkpoint: missing {', '.join(missing)}")
    try:
        return json.loads((src / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ExportError(f"{src / 'config.json'} is not valid JSON: {e}") from e


def materialize_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF checkpoint to an fp32 Hugging Face directory (transformers reads GGUF with `gguf`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as e:
        raise ExportError(f"cannot load {gguf} as a causal LM ({e}); is the `gguf` package installed?") from e
    _apply_gguf_special_tokens(gguf, model, tokenizer)
    _mark_gguf_control_tokens(gguf, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _gguf_fields(gguf: Path) -> dict:
    from gguf import GGUFReader

    fields = {}
    for key, f in GGUFReader(gguf).fields.items():
        if key.startswith("tokenizer.ggml.") and key.endswith(("_token_id", "add_bos_token", "add_eos_token")):
            fields[key.removeprefix("tokenizer.ggml.")] = f.parts[f.data[0]].tolist()[0]
    return fields


GGUF_CONTROL, GGUF_UNUSED = 3, 5  # tokenizer.ggml.token_type values (llama.cpp's llama_token_type)


def _mark_gguf_control_tokens(gguf: Path, tokenizer) -> None:
    """Every control (and unused) token of the GGUF becomes a special token of the Hugging Face tokenizer, as it
    is in the original checkpoint: transformers (4.57) keeps only BOS/EOS/PAD special, which would leave Qwen's
    <|fim_pad|>, <|file_sep|> and FIM markers out of the stop set. Their ids stay the same. The chat template
    comes along when transformers did not carry it over."""
    from gguf import GGUFReader

    reader = GGUFReader(gguf)
    types, tokens = reader.fields.get("tokenizer.ggml.token_type"), reader.fields.get("tokenizer.ggml.tokens")
    if types is not None and tokens is not None:
        vocab = tokenizer.get_vocab()
        control = [bytes(tokens.parts[t]).decode("utf-8", "replace") for t, k in zip(tokens.data, types.data)
                   if int(types.parts[k][0]) in (GGUF_CONTROL, GGUF_UNUSED)]
        new = [t for t in control if t in vocab and t not in tokenizer.all_special_tokens]
        if new:
            size = len(tokenizer)
            tokenizer.add_special_tokens({"additional_special_tokens": new}, replace_additional_special_tokens=False)
            if len(tokenizer) != size:
                raise ExportError(f"{gguf}: marking its control tokens special changed the vocabulary size")
    template = reader.fields.get("tokenizer.chat_template")
    if template is not None and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = bytes(template.parts[template.data[0]]).decode("utf-8")


def _apply_gguf_special_tokens(gguf: Path, model, tokenizer) -> None:
    """Take BOS/EOS/PAD and add-BOS from the GGUF metadata itself: transformers' conversion (4.57) gets them
    wrong for SmolLM2 (EOS <|im_start|> instead of <|im_end|>, and a BOS added to every prompt)."""
    fields = _gguf_fields(gguf)
    for name in ("bos", "eos", "unknown", "padding"):
        token_id = fields.get(f"{name}_token_id")
        if token_id is None:
            continue
        attr = {"unknown": "unk", "padding": "pad"}.get(name, name)
        setattr(tokenizer, f"{attr}_token", tokenizer.convert_ids_to_tokens(int(token_id)))
        setattr(model.config, f"{attr}_token_id", int(token_id))
        if model.generation_config is not None and attr != "unk":
            setattr(model.generation_config, f"{attr}_token_id", int(token_id))
    for flag in ("add_bos_token", "add_eos_token"):
        if flag in fields and hasattr(tokenizer, flag):
            setattr(tokenizer, flag, bool(fields[flag]))  # also rebuilds the fast tokenizer's post-processor
