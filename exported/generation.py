"""What every generation loop shares: settings, cancellation, token choice and stopping rules."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class GenerationConfig:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()  # generation ends at the first of these; it is cut from the text
    deadline_s: float | None = None  # wall-clock budget for the whole call, checked between steps
    stop_on_eos: bool = True
    seed: int | None = None


class CancelToken:
    """Set from any thread; generation checks it between steps and returns what it has."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    finish_reason: str  # "eos", "stop", "length", "deadline", "cancelled"
    prompt_tokens: int = 0
    first_token_s: float = 0.0  # prefill + first token
    total_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return len(self.token_ids) / self.total_s if self.total_s > 0 else 0.0


def choose_tokens(logits: np.ndarray, config: GenerationConfig, rng: np.random.Generator) -> np.ndarray:
    """Next token per row from last-position logits [batch, vocab]: greedy, or temperature/top-k/top-p sampling."""
    if config.temperature <= 0:
        return logits.argmax(axis=-1)
    scores = logits.astype(np.float64) / config.temperature
    if config.top_k and config.top_k < scores.shape[-1]:
        kth = np.partition(scores, -config.top_k, axis=-1)[:, -config.top_k][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    out = np.empty(len(probs), dtype=np.int64)
    for i, p in enumerate(probs):
        order = np.argsort(-p)
        if config.top_p < 1.0:
            cum = np.cumsum(p[order])
            keep = order[: int(np.searchsorted(cum, config.top_p)) + 1]  # smallest set reaching top_p
        else:
            keep = order[p[order] > 0]
        q = p[keep] / p[keep].sum()
        out[i] = keep[rng.choice(len(keep), p=q)]
    return out


@dataclass
class StopWatch:
    """Decides when a row or the whole call must end; tracks timings."""

    config: GenerationConfig
    cancel: CancelToken | None = None
    start: float = field(default_factory=time.perf_counter)

    def interrupted(self) -> str | None:
        if self.cancel is not None and self.cancel.cancelled:
            return "cancelled"
        if self.config.deadline_s is not None and time.perf_counter() - self.start >= self.config.deadline_s:
            return "deadline"
        return None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Text up to the earliest stop sequence, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class RowDecoder:
    """Per-row state of a generation: its new tokens, decoded text and why it ended."""

    def __init__(self, tokenizer, prompt_tokens: int, config: GenerationConfig, eos_ids: set[int]) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.eos_ids = eos_ids
        self.prompt_tokens = prompt_tokens
        self.ids: list[int] = []
        self.text = ""
        self.finish_reason: str | None = None
        self.first_token_s = 0.0

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def push(self, token: int, elapsed: float) -> None:
        if self.done:
            return
        if not self.ids:
            self.first_token_s = elapsed
        if self.config.stop_on_eos and token in self.eos_ids:
            self.finish_reason = "eos"
            return
        self.ids.append(int(token))
        if self.config.stop:
            # Decoding the whole row each step is cheap at completion lengths and never splits a character.
            self.text, hit = cut_at_stop(self.tokenizer.decode(self.ids, skip_special_tokens=True), self.config.stop)
            if hit:
                self.finish_reason = "stop"
                return
        if len(self.ids) >= self.config.max_new_tokens:
            self.finish_reason = "length"

    def result(self, total_s: float, reason: str | None = None) -> Generation:
        if not self.config.stop:
            self.text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        return Generation(
            text=self.text,
            token_ids=self.ids,
            finish_reason=self.finish_reason or reason or "length",
            prompt_tokens=self.prompt_tokens,
            first_token_s=self.first_token_s,
            total_s=total_s,
        )
