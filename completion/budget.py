"""The prompt budget from the speed measured when the model loads, not a constant per device.

A document's first request (or its warm-up) reads the whole prompt; later keystrokes read only what changed. The
budget is what a cold prompt reads in about COLD_PROMPT_S, so opening a file and pausing to read it leaves the
cache warm: a few hundred tokens on a 2-core CPU, thousands on a GPU. It is whole prefill chunks, so a cold prompt
ends on a chunk boundary.
"""
from __future__ import annotations

import time

import numpy as np

from plusls.exported.causal_lm import CausalLM

from .prefix_reuse import PREFILL_CHUNK

COLD_PROMPT_S = 4.0  # about the pause of a reader who has just opened a file
MIN_TOKENS, MAX_TOKENS = 256, 4096
PROBE_TOKENS = 32


def context_budget(prompt_tokens_per_s: float, max_length: int) -> int:
    """Whole prefill chunks read in COLD_PROMPT_S, within [MIN_TOKENS, MAX_TOKENS] and half the context."""
    tokens = int(prompt_tokens_per_s * COLD_PROMPT_S) // PREFILL_CHUNK * PREFILL_CHUNK
    return max(MIN_TOKENS, min(tokens, MAX_TOKENS, max_length // 2))


def prompt_speed(lm: CausalLM) -> float:
    """Prompt tokens per second: the second of two PROBE_TOKENS reads (the first sets up onnxruntime's kernels)."""
    ids = np.arange(100, 100 + PROBE_TOKENS, dtype=np.int64)[None]
    mask, positions = np.ones_like(ids), np.arange(PROBE_TOKENS, dtype=np.int64)[None]
    lm.forward(ids, mask, positions, lm.empty_past(1), keep=1)
    start = time.perf_counter()
    lm.forward(ids, mask, positions, lm.empty_past(1), keep=1)
    return PROBE_TOKENS / max(time.perf_counter() - start, 1e-6)
