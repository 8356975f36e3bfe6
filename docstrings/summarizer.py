"""One-line summaries of definitions and the hover text that explains them, cached by the definition's content
hash. Who writes them is a `Writer`: the encoder-decoder docstring model here (summary lines only: its hover shows
the line), or the completion model in chat form (chat_summary.ChatWriter)."""
from __future__ import annotations

import threading
from typing import Callable, Protocol

from plusls.common.lru import LRU
from plusls.common.text import identifier_words
from plusls.exported.generation import CancelToken, GenerationConfig
from plusls.exported.seq2seq_lm import Seq2SeqLM

from .definition_at import Definition


def degenerate(summary: str, name: str = "", loop: int = 2) -> bool:
    """Too short, a run of `loop` words said twice (a pair: the small docstring model's way of failing), or only
    `name` in words ("Get user name." for get_user_name says nothing the name did not)."""
    return len(summary.strip(" .").split()) < 2 or repeats(summary, loop) or restates(summary, name)


def restates(text: str, name: str) -> bool:
    """`text` is only `name` in words."""
    return bool(name) and text.lower().strip(" .").split() == identifier_words(name).lower().strip(" .").split()


def repeats_a_pair(text: str) -> bool:
    return repeats(text, 2)


def repeats(text: str, n: int) -> bool:
    """Some run of n words said twice."""
    words = text.lower().strip(" .").split()
    grams = list(zip(*(words[i:] for i in range(n))))
    return len(set(grams)) < len(grams)


class Writer(Protocol):
    def __call__(self, definition: Definition, cancel: CancelToken | None,
                 deadline_s: float | None) -> tuple[str, bool]:
        """(the raw summary, finished); not finished: cancelled, so nothing is cached."""

    def explain(self, definition: Definition, summary: str, cancel: CancelToken | None,
                deadline_s: float | None) -> tuple[str, bool] | None:
        """(1-3 sentences for the hover, finished) given the summary line; None: this writer does not explain."""

    def reset(self) -> None:
        """The model changed on disk: load it again on the next call."""


class EncoderDecoderWriter:
    def __init__(self, load_model: Callable[[], Seq2SeqLM], max_new_tokens: int = 48):
        self._load_model = load_model
        self._model: Seq2SeqLM | None = None
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()

    def __call__(self, definition: Definition, cancel: CancelToken | None,
                 deadline_s: float | None) -> tuple[str, bool]:
        with self._lock:
            if self._model is None:
                self._model = self._load_model()
            config = GenerationConfig(max_new_tokens=self.max_new_tokens, deadline_s=deadline_s)
            result = self._model.generate(definition.code, config, cancel)[0]
        return result.text, result.finish_reason != "cancelled"

    def explain(self, definition: Definition, summary: str, cancel: CancelToken | None,
                deadline_s: float | None) -> None:
        return None

    def reset(self) -> None:
        with self._lock:
            self._model = None


class Summarizer:
    def __init__(self, write: Writer, cache_size: int = 2048):
        self.write = write
        self._cache: LRU[str, str] = LRU(cache_size)
        self._hovers: LRU[str, str] = LRU(cache_size)
        self.model_runs = self.explanations = 0

    def cached(self, definition: Definition) -> str | None:
        return self._cache.get(definition.hash)

    def summarize(self, definition: Definition, cancel: CancelToken | None = None,
                  deadline_s: float | None = 10.0) -> str:
        if (text := self.cached(definition)) is not None:
            return text
        text, finished = self.write(definition, cancel, deadline_s)
        self.model_runs += 1  # counted once the model is done: N runs counted means none is still running
        text = " ".join(text.split())
        if degenerate(text, definition.name):
            text = ""  # say nothing rather than "read the file to the file."
        if finished:
            self._cache.put(definition.hash, text)
        return text

    def hover_cached(self, definition: Definition) -> str | None:
        return self._hovers.get(definition.hash)

    def hover(self, definition: Definition, cancel: CancelToken | None = None,
              deadline_s: float | None = 10.0) -> str:
        """What hover shows: the writer's explanation, else the summary line ("" when there is neither)."""
        if (text := self.hover_cached(definition)) is not None:
            return text
        summary = self.summarize(definition, cancel, deadline_s)
        if self.cached(definition) is None:  # cancelled
            return summary
        explained = self.write.explain(definition, summary, cancel, deadline_s) if summary else None
        if explained is None:
            text, finished = summary, True
        else:
            self.explanations += 1
            text, finished = explained[0] or summary, explained[1]
        if finished:
            self._hovers.put(definition.hash, text)
        return text

    def reload(self) -> None:
        self.write.reset()
        self._cache.clear()
        self._hovers.clear()
