"""One-paragraph summaries of definitions from the encoder-decoder, cached by the definition's content hash."""
from __future__ import annotations

import threading
from typing import Callable

from plusls.common.lru import LRU
from plusls.common.text import identifier_words
from plusls.exported.generation import CancelToken, GenerationConfig
from plusls.exported.seq2seq_lm import Seq2SeqLM

from .definition_at import Definition


def degenerate(summary: str, name: str = "") -> bool:
    """Too short, a word pair said twice (the small docstring model's way of failing), or only `name` in words
    ("Get user name." for get_user_name says nothing the name did not)."""
    words = summary.lower().strip(" .").split()
    pairs = list(zip(words, words[1:]))
    restated = bool(name) and words == identifier_words(name).lower().strip(" .").split()
    return len(words) < 2 or len(set(pairs)) < len(pairs) or restated


class Summarizer:
    def __init__(self, load_model: Callable[[], Seq2SeqLM], max_new_tokens: int = 48, cache_size: int = 2048):
        self._load_model = load_model
        self._model: Seq2SeqLM | None = None
        self.max_new_tokens = max_new_tokens
        self._cache: LRU[str, str] = LRU(cache_size)
        self._lock = threading.Lock()
        self.model_runs = 0

    def cached(self, definition: Definition) -> str | None:
        return self._cache.get(definition.hash)

    def summarize(self, definition: Definition, cancel: CancelToken | None = None,
                  deadline_s: float | None = 10.0) -> str:
        if (text := self.cached(definition)) is not None:
            return text
        with self._lock:
            if self._model is None:
                self._model = self._load_model()
            self.model_runs += 1
            config = GenerationConfig(max_new_tokens=self.max_new_tokens, deadline_s=deadline_s)
            result = self._model.generate(definition.code, config, cancel)[0]
        text = " ".join(result.text.split())
        if degenerate(text, definition.name):
            text = ""  # say nothing rather than "read the file to the file."
        if result.finish_reason != "cancelled":
            self._cache.put(definition.hash, text)
        return text

    def reload(self) -> None:
        with self._lock:
            self._model = None
            self._cache.clear()
