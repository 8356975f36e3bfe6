"""What every generation loop shares: settings, cancellation, token choice and stopping rules."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence

import numpy as np


@dataclass
class GenerationConfig:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()  # generation ends at the first of these; it is cut from the text
    deadline_s: float | None = None  # wall-clock budget for the whole call, checked between steps
    # The prompt's own budget (PrefixReuseLM, which reads a prompt in chunks): with it, deadline_s counts from the
    # end of the prompt, so a deadline cuts what is generated, never the key/values the next keystroke reuses.
    prefill_deadline_s: float | None = None
    stop_on_eos: bool = True  # end at the model's stop tokens (exported.special_tokens); False: run to the limit
    seed: int | None = None
    logprobs: bool = False  # record each new token's log-probability under the model (Generation.logprobs)
    # Logit adjustments. Repetition control looks at each row's own new tokens (not the prompt). None: the model
    # directory's setting (a seq2seq manifest's config["generation"], written by `plusls export` from the checkpoint's
    # generation_config.json), else off; the runtime applies them, so everything that loads a model decodes alike.
    # CausalLM never reads manifest settings (completions stay the plain greedy the server's prefix reuse repeats).
    no_repeat_ngram_size: int | None = None  # n > 0: never emit a token that would repeat an n-gram of the row
    repetition_penalty: float | None = None  # > 1: emitted tokens' positive logits divided by it, negative multiplied
    copy_bias: float | None = None  # seq2seq only: added to the logits of every non-special token the input holds


DECODING_KEYS = ("no_repeat_ngram_size", "repetition_penalty", "copy_bias")  # what a manifest may set
NEUTRAL = {"no_repeat_ngram_size": 0, "repetition_penalty": 1.0, "copy_bias": 0.0}


def resolve_config(config: GenerationConfig, model_defaults: dict[str, Any] | None) -> GenerationConfig:
    """Fill the settings left as None from the model's defaults, else with their neutral (off) values."""
    model_defaults = model_defaults or {}
    unset = {f.name for f in fields(config) if f.name in DECODING_KEYS and getattr(config, f.name) is None}
    if not unset:
        return config
    return replace(config, **{k: model_defaults.get(k, NEUTRAL[k]) for k in unset})


def banned_ngram_tokens(history: Sequence[int], n: int) -> set[int]:
    """Tokens that would complete an n-gram already in `history` (the row's emitted tokens)."""
    if n <= 0 or len(history) < n - 1:
        return set()
    prefix = tuple(history[len(history) - n + 1 :])
    return {history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i : i + n - 1]) == prefix}


def adjust_logits(logits: np.ndarray, histories: Sequence[Sequence[int]], config: GenerationConfig,
                  copy_ids: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Apply the settings of a resolved config to last-position logits [batch, vocab], given each row's emitted
    tokens (and, for copy_bias, each row's input token ids); returns `logits` itself when nothing changes (the
    settings are off, or no row repeats)."""
    n = config.no_repeat_ngram_size or 0
    penalty = config.repetition_penalty if config.repetition_penalty is not None else 1.0
    bias = config.copy_bias or 0.0
    out = None
    if bias and copy_ids is not None:
        out = logits.copy()
        for row, ids in enumerate(copy_ids):
            out[row, ids] += bias
    if n <= 0 and penalty == 1.0:
        return logits if out is None else out
    for row, history in enumerate(histories):
        if not history:
            continue
        if penalty != 1.0:
            out = logits.copy() if out is None else out
            seen = np.fromiter(set(history), dtype=np.int64)
            values = out[row, seen]
            out[row, seen] = np.where(values > 0, values / penalty, values * penalty)  # as CTRL / transformers
        banned = banned_ngram_tokens(history, n)
        if banned:
            out = logits.copy() if out is None else out
            out[row, list(banned)] = -np.inf
    return logits if out is None else out


class CancelToken:
    """Set from any thread; generation checks it between steps and returns what it has."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` when cancelled (at once if it already is): what waits on I/O rather than between
        steps, such as a request to an inference server, stops at once."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled (True) or `timeout` seconds have passed (False)."""
        return self._event.wait(timeout)


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    finish_reason: str  # "eos", "stop", "length", "deadline", "cancelled"
    prompt_tokens: int = 0
    first_token_s: float = 0.0  # prefill + first token
    total_s: float = 0.0
    # With GenerationConfig.logprobs: each pushed token's log-probability under the model's own logits (before
    # healing or repetition adjustments), an ending stop token's last.
    logprobs: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return len(self.token_ids) / self.total_s if self.total_s > 0 else 0.0


def token_logprobs(logits: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
    """log p(tokens[i]) under logits[i] ([rows, vocab])."""
    rows = np.asarray(logits, np.float32)
    top = rows.max(axis=-1)
    norm = top + np.log(np.exp(rows - top[:, None]).sum(axis=-1))
    return rows[np.arange(len(rows)), np.asarray(tokens)] - norm


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
    deadline_from: float | None = None  # where deadline_s counts from (start, or the end of a budgeted prefill)

    def interrupted(self) -> str | None:
        return self._check(self.config.deadline_s, self.start if self.deadline_from is None else self.deadline_from)

    def prefill_interrupted(self) -> str | None:
        if self.config.prefill_deadline_s is None:
            return self.interrupted()
        return self._check(self.config.prefill_deadline_s, self.start)

    def prefill_done(self) -> None:
        if self.config.prefill_deadline_s is not None:
            self.deadline_from = time.perf_counter()

    def _check(self, budget: float | None, since: float) -> str | None:
        if self.cancel is not None and self.cancel.cancelled:
            return "cancelled"
        if budget is not None and time.perf_counter() - since >= budget:
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

    def __init__(self, tokenizer, prompt_tokens: int, config: GenerationConfig, stop_ids: set[int]) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.stop_ids = stop_ids
        self.prompt_tokens = prompt_tokens
        self.ids: list[int] = []
        self.text = ""
        self.finish_reason: str | None = None
        self.first_token_s = 0.0
        self.logprobs: list[float] = []

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def push(self, token: int, elapsed: float, logprob: float | None = None) -> None:
        if self.done:
            return
        if not self.ids:
            self.first_token_s = elapsed
        if logprob is not None:
            self.logprobs.append(float(logprob))
        if self.config.stop_on_eos and token in self.stop_ids:
            self.finish_reason = "eos"
            return
        self.ids.append(int(token))
        if self.config.stop:
            # Decoding the whole row each step is cheap at completion lengths and never splits a character.
            self.text, hit = cut_at_stop(self.tokenizer.decode(self.ids, skip_special_tokens=False), self.config.stop)
            if hit:
                self.finish_reason = "stop"
                return
        if len(self.ids) >= self.config.max_new_tokens:
            self.finish_reason = "length"

    def result(self, total_s: float, reason: str | None = None) -> Generation:
        if not self.config.stop:
            self.text = self.tokenizer.decode(self.ids, skip_special_tokens=False)
        return Generation(
            text=self.text,
            token_ids=self.ids,
            finish_reason=self.finish_reason or reason or "length",
            prompt_tokens=self.prompt_tokens,
            first_token_s=self.first_token_s,
            total_s=total_s,
            logprobs=self.logprobs,
        )
