"""Completion requests from many keystrokes: debounce, drop superseded requests, cache, run the model off-thread.

Neovim cancels only on InsertLeave, so a request that a newer one for the same document has replaced is dropped
here before the model runs; a newer request also stops a running generation between tokens.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

from plusls.common.lru import LRU
from plusls.exported.causal_lm import CausalLM
from plusls.exported.generation import CancelToken, Generation, GenerationConfig
from plusls.exported.manifest import Manifest

from ..settings import CompletionSettings
from .budget import context_budget, prompt_speed
from .filters import postprocess
from .prefix_reuse import PrefixReuseLM
from .prompt import Cursor, PromptBuilder, Snippet, WindowState

log = logging.getLogger("plusls")
Retriever = Callable[[Cursor], list[Snippet]]
BURST_S = 0.3  # requests for one document closer than this are a burst of typing
WARM_AFTER_S = 0.4  # quiet time after an open or an edit before the prompt is read ahead
ASIDE_KEY = "\0aside"  # the prefix cache of work that is not a document's (chat-form summaries); never a URI


@dataclass
class Suggestion:
    text: str
    id: str  # names this suggestion in plusls.acceptCompletion
    from_cache: bool = False


@dataclass
class CompletionStats:
    requests: int = 0
    dropped: int = 0  # superseded during the debounce: the model never ran
    cancelled: int = 0
    cache_hits: int = 0
    model_runs: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    draft_tokens_accepted: int = 0
    forward_passes: int = 0
    warmed_tokens: int = 0  # prompt tokens read ahead while the user was not typing
    deadline_cuts: int = 0  # suggestions a deadline cut short
    deadline_empty: int = 0  # of those, the ones left with nothing to show
    context_tokens: int = 0  # the prompt budget in use (contextTokens, or measured at load)
    prompt_tokens_per_s: float = 0.0  # measured at load when contextTokens is 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Last:
    offset: int
    before: str  # the end of the text before the cursor when the suggestion was made
    after: str  # the start of the text after it
    text: str
    id: str


@dataclass
class _DocState:
    seq: int = 0
    last_request: float = float("-inf")
    running: CancelToken | None = None
    window: WindowState = field(default_factory=WindowState)
    last: _Last | None = None
    warm_timer: asyncio.TimerHandle | None = None


class CompletionEngine:
    def __init__(self, load_model: Callable[[], CausalLM], settings: CompletionSettings,
                 retriever: Retriever | None = None, executor: ThreadPoolExecutor | None = None,
                 cache_size: int = 256, load_drafter: Callable[[], CausalLM | None] | None = None):
        self._load_model = load_model
        self._load_drafter = load_drafter
        self.settings = settings
        self.retriever = retriever
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="plusls-complete")
        self.stats = CompletionStats()
        self._docs: dict[str, _DocState] = {}
        self._cache: LRU[str, str] = LRU(cache_size)
        self._model: PrefixReuseLM | None = None
        self._builder: PromptBuilder | None = None
        self._warming: CancelToken | None = None
        self._aside: CancelToken | None = None

    def busy(self) -> bool:
        """A suggestion is being made or a prompt warmed: background work waits."""
        return self._warming is not None or any(s.running for s in self._docs.values())

    def manifest(self) -> Manifest:
        """The completion model's manifest (loading the model if it is not yet)."""
        return self.executor.submit(lambda: self._ensure_model()[0].lm.manifest).result()

    def aside(self, text: str, config: GenerationConfig, cancel: CancelToken | None = None) -> Generation:
        """Run the completion model on `text` for something other than a suggestion (a chat-form summary), on the
        completion thread, from the calling thread; a suggestion request stops it between steps."""
        token = self._aside = cancel or CancelToken()  # set before queueing: a request arriving now stops it

        def run() -> Generation:
            model, _ = self._ensure_model()
            return model.generate(ASIDE_KEY, model.lm.encode(text), config, token)[0]

        try:
            return self.executor.submit(run).result()
        finally:
            if self._aside is token:
                self._aside = None

    def close_document(self, uri: str) -> None:
        state = self._docs.pop(uri, None)
        if state and state.running:
            state.running.cancel()
        if state and state.warm_timer:
            state.warm_timer.cancel()
        if self._model:
            self._model.forget(uri)

    def reload(self, settings: CompletionSettings | None = None) -> None:
        """New settings or a new model directory: the next request loads the model again."""
        self.settings = settings or self.settings
        self._model = self._builder = None
        self._cache.clear()

    def schedule_warm(self, uri: str, cursor: Callable[[], Cursor]) -> None:
        """After an open or an edit, once the document has been quiet for WARM_AFTER_S and no suggestion is being
        made, read the prompt at `cursor()` (the document as it is then) into the key/value cache: the next
        request runs only its new tokens (llama.vim warms the same way). Only with prefix reuse on."""
        if not self.settings.prefix_reuse:
            return
        state = self._docs.setdefault(uri, _DocState())
        if state.warm_timer:
            state.warm_timer.cancel()
        seq = state.seq
        state.warm_timer = asyncio.get_running_loop().call_later(
            WARM_AFTER_S, lambda: asyncio.ensure_future(self._warm_if_idle(uri, cursor, state, seq)))

    async def _warm_if_idle(self, uri: str, cursor: Callable[[], Cursor], state: _DocState, seq: int) -> None:
        state.warm_timer = None
        if any(s.running for s in self._docs.values()) or state.seq != seq or self._docs.get(uri) is not state:
            return  # a request came meanwhile: it reads the prompt itself
        try:
            await self.warm(uri, cursor())
        except Exception as e:  # a model that cannot load says so on the next request; warming only logs it
            log.warning("plusls: warming %s failed: %s", uri, e)

    async def warm(self, uri: str, cursor: Cursor) -> None:
        """Read the prompt at `cursor` into the document's cache now. One warm-up at a time, the newest: a request,
        or a warm-up for another document, stops it between chunks."""
        state = self._docs.setdefault(uri, _DocState())
        if self._warming:
            self._warming.cancel()
        token = self._warming = CancelToken()
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, self._warm, uri, cursor, state, token)
        finally:
            if self._warming is token:
                self._warming = None

    def _warm(self, uri: str, cursor: Cursor, state: _DocState, token: CancelToken) -> None:
        if token.cancelled:
            return
        model, builder = self._ensure_model()
        model.healing_index()  # built here, while nobody waits, not in the first request that heals a token
        stats = model.warm(uri, self._prompt(cursor, state, builder), token)
        self.stats.warmed_tokens += stats.prompt_tokens - stats.reused_tokens
        self.stats.forward_passes += stats.forward_passes

    async def complete(self, uri: str, cursor: Cursor) -> Suggestion | None:
        self.stats.requests += 1
        state = self._docs.setdefault(uri, _DocState())
        state.seq += 1
        seq = state.seq
        if self._warming:
            self._warming.cancel()  # a request reads the prompt itself, from where warming got to
        if self._aside:
            self._aside.cancel()  # background work on the model (a chat-form summary) waits for the user
        if state.running:
            state.running.cancel()  # a newer keystroke: the running generation is stale
        if (hit := self._typed_ahead(state, cursor)) is not None:
            self.stats.cache_hits += 1
            return hit
        # Debounce only a burst: the first keystroke after a pause runs at once, later ones in quick succession
        # wait to see whether another follows (a newer request also stops a running generation anyway).
        now = time.monotonic()
        burst = now - state.last_request < BURST_S
        state.last_request = now
        if burst:
            await asyncio.sleep(self.settings.debounce_ms / 1000)
        if state.seq != seq:
            self.stats.dropped += 1
            return None
        token = CancelToken()
        state.running = token
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, self._run, uri, cursor, state, token)
        except asyncio.CancelledError:  # $/cancelRequest: stop between tokens
            token.cancel()
            self.stats.cancelled += 1
            raise
        finally:
            if state.running is token:
                state.running = None

    def _typed_ahead(self, state: _DocState, cursor: Cursor) -> Suggestion | None:
        """The user typed the start of the last suggestion: the rest of it, without running the model."""
        last = state.last
        if last is None:
            return None
        typed = cursor.offset - last.offset
        if not 0 < typed < len(last.text) or cursor.text[last.offset : cursor.offset] != last.text[:typed]:
            return None
        text = cursor.text
        if not (text.endswith(last.before, 0, last.offset) and text.startswith(last.after, cursor.offset)):
            return None  # an edit elsewhere near the cursor: the suggestion may no longer fit
        rest = last.text[typed:]
        return Suggestion(rest, last.id, from_cache=True) if rest.strip() else None

    def _run(self, uri: str, cursor: Cursor, state: _DocState, token: CancelToken) -> Suggestion | None:
        if token.cancelled:
            self.stats.cancelled += 1
            return None
        model, builder = self._ensure_model()
        ids = self._prompt(cursor, state, builder)
        multiline = cursor.multiline and self.settings.multiline
        key = hashlib.sha1(f"{multiline}:{ids}".encode()).hexdigest()
        if (text := self._cache.get(key)) is not None:
            self.stats.cache_hits += 1
            return self._remember(state, cursor, text, key, from_cache=True)
        config = GenerationConfig(
            max_new_tokens=self.settings.max_new_tokens,
            deadline_s=self.settings.deadline_ms / 1000,
            prefill_deadline_s=self.settings.prompt_deadline_ms / 1000,
            stop=() if multiline else ("\n",),
        )
        cut, heal = self._heal(model, builder, ids, cursor)
        ids = ids[: len(ids) - cut]
        self.stats.model_runs += 1
        generation, reuse = model.generate(uri, ids, config, token, starts_with=heal)
        if heal:
            generation.text = generation.text[len(heal):] if generation.text.startswith(heal) else ""
        for name in ("prompt_tokens", "reused_tokens", "draft_tokens_accepted", "forward_passes"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(reuse, name))
        if generation.finish_reason == "cancelled":
            self.stats.cancelled += 1
            return None
        text = postprocess(generation.text, cursor.filter_context(self.settings.multiline))
        if generation.finish_reason != "deadline":  # a cut-short suggestion is shown, never cached as the answer
            self._cache.put(key, text)
        else:
            self.stats.deadline_cuts += 1
            self.stats.deadline_empty += not text
        return self._remember(state, cursor, text, key)

    def _prompt(self, cursor: Cursor, state: _DocState, builder: PromptBuilder) -> list[int]:
        if self.retriever is not None and self.settings.retrieval:
            scope = _scope_key(cursor)
            if scope != state.window.snippets_for:
                state.window.snippets = self.retriever(cursor)
                state.window.snippets_for = scope
        elif state.window.snippets:
            state.window.snippets = []
        return builder.build(cursor, state.window)

    @staticmethod
    def _heal(model: PrefixReuseLM, builder: PromptBuilder, ids: list[int], cursor: Cursor) -> tuple[int, str]:
        """Token healing: the prompt's last tokens may split what the user is typing differently from how the
        model saw such text (`\n  `+`  ` for `\n   `+` a`, `pri` before `nt`). Take off the tokens inside the
        trailing blanks-and-word (and the line break, on an empty line) and make the output start with them. In a
        FIM prompt only the cursor line's text after the middle marker can be taken off."""
        if len(ids) < 2:
            return 0, ""
        segment = re.search(r"[ \t]*\w*$", cursor.line_prefix).group()
        if builder.fim:
            middle = builder.fim["middle"]["id"]
            limit = ids[::-1].index(middle) if middle in ids else 0  # the tokens after the marker
        else:
            limit = len(ids) - 1
            if cursor.multiline and cursor.line_start > 0:
                segment = "\n" + segment
        strings, n, text = model.token_strings(), 0, ""
        while n < min(3, limit) and segment.endswith(strings[ids[-1 - n]] + text) and strings[ids[-1 - n]]:
            text = strings[ids[-1 - n]] + text
            n += 1
        return n, text

    def _remember(self, state: _DocState, cursor: Cursor, text: str, key: str, from_cache: bool = False):
        if not text:
            state.last = None
            return None
        sid = key[:16]
        state.last = _Last(cursor.offset, cursor.text[max(0, cursor.offset - 2048) : cursor.offset],
                           cursor.text[cursor.offset : cursor.offset + 256], text, sid)
        return Suggestion(text, sid, from_cache=from_cache)

    def _ensure_model(self) -> tuple[PrefixReuseLM, PromptBuilder]:
        if self._model is None or self._builder is None:
            lm = self._load_model()
            budget = self.settings.context_tokens
            if not budget:
                self.stats.prompt_tokens_per_s = round(prompt_speed(lm), 1)
                budget = context_budget(self.stats.prompt_tokens_per_s, lm.manifest.max_length)
            self.stats.context_tokens = budget
            self._builder = PromptBuilder(lm.tokenizer, lm.manifest.fim, budget, self.settings.suffix_tokens,
                                          lm.manifest.special_tokens.get("repo") if self.settings.repo_layout
                                          else None)
            draft = self._load_drafter() if self._load_drafter else None
            drafter = PrefixReuseLM(draft, speculative=False, reuse=self.settings.prefix_reuse) if draft else None
            self._model = PrefixReuseLM(lm, speculative=self.settings.prompt_lookup,
                                        reuse=self.settings.prefix_reuse, drafter=drafter)
        return self._model, self._builder


def _scope_key(cursor: Cursor) -> str:
    """The nearest line above the cursor that starts at column 0 (the enclosing top-level definition)."""
    pos = cursor.line_start
    while pos > 0:
        start = cursor.text.rfind("\n", 0, pos - 1) + 1
        line = cursor.text[start : pos - 1]
        if line and not line[0].isspace():
            return f"{start}:{line}"
        pos = start
        if cursor.line_start - pos > 20000:
            break
    return "top"
