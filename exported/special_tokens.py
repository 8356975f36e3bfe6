"""The one special-token policy: which tokens are a model's FIM tokens, and which end a generation.

Both are read from the tokenizer at export and recorded in the manifest; nothing is guessed from a model's name.
Generation stops at every control token (EOS, <|endoftext|>, FIM and chat markers, <|file_sep|>, ...): none may
reach an editor, and since the loop stops before them, decoding never has to hide one."""
from __future__ import annotations

from typing import Any, Iterable

from tokenizers import Tokenizer

FIM_NAMES = [  # (prefix, suffix, middle) spellings in use; the first the tokenizer has wins
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, SmolLM2
    ("<PRE>", "<SUF>", "<MID>"),  # CodeLlama
    ("▁<PRE>", "▁<SUF>", "▁<MID>"),
]
DOCUMENT_END = "<|endoftext|>"  # ends a document even where EOS is another token (instruct models: <|im_end|>)


def find_fim(vocab: dict[str, int]) -> dict[str, Any] | None:
    """The manifest's "fim" entry (part -> {"token", "id"}) for the first spelling the vocabulary holds."""
    for names in FIM_NAMES:
        if all(t in vocab for t in names):
            return {part: {"token": t, "id": vocab[t]} for part, t in zip(("prefix", "suffix", "middle"), names)}
    return None


def find_repo(vocab: dict[str, int]) -> dict[str, Any] | None:
    """The manifest's "repo" entry: Qwen2.5-Coder's repository-level tokens (<|repo_name|>, <|file_sep|>), or None."""
    names = {"name": "<|repo_name|>", "file_sep": "<|file_sep|>"}
    if not all(t in vocab for t in names.values()):
        return None
    return {part: {"token": t, "id": vocab[t]} for part, t in names.items()}


def stop_tokens(tokenizer: Tokenizer, eos: Iterable[int | None] = ()) -> list[dict[str, Any]]:
    """The manifest's "stop" entry: EOS, <|endoftext|> and every added token the tokenizer marks special."""
    ids = {i for i in eos if i is not None}
    end = tokenizer.token_to_id(DOCUMENT_END)
    if end is not None:
        ids.add(end)
    ids |= {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    return [{"token": tokenizer.id_to_token(i), "id": i} for i in sorted(ids)]


def stop_ids(special_tokens: dict[str, Any], tokenizer: Tokenizer) -> set[int]:
    """Ids that end a generation: the manifest's stop set, or (a manifest written before it recorded one) the same
    set computed from the tokenizer now."""
    recorded = special_tokens.get("stop")
    if recorded is None:
        recorded = stop_tokens(tokenizer, [(special_tokens.get("eos") or {}).get("id")])
    return {int(t["id"]) for t in recorded}
