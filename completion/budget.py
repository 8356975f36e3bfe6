"""The prompt budget from the speed measured on this machine (speed.py), not a constant per device.

A document's first request (or its warm-up) reads the whole prompt; later keystrokes read only what changed. The
budget is what a cold prompt reads in about COLD_PROMPT_S, so opening a file and pausing to read it leaves the
cache warm: a few hundred tokens on a 2-core CPU, thousands on a GPU. It is whole prefill chunks, so a cold prompt
ends on a chunk boundary.
"""
from __future__ import annotations

from .prefix_reuse import PREFILL_CHUNK

COLD_PROMPT_S = 4.0  # about the pause of a reader who has just opened a file
MIN_TOKENS, MAX_TOKENS = 256, 4096


def context_budget(prompt_tokens_per_s: float, max_length: int) -> int:
    """Whole prefill chunks read in COLD_PROMPT_S, within [MIN_TOKENS, MAX_TOKENS] and half the context."""
    tokens = int(prompt_tokens_per_s * COLD_PROMPT_S) // PREFILL_CHUNK * PREFILL_CHUNK
    return max(MIN_TOKENS, min(tokens, MAX_TOKENS, max_length // 2))

