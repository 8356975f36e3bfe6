"""Suggestions and chat turns from a shared inference server, with what a local suggestion has: the scheduler's
debounce and dropping, the suggestion cache, the filters, the stats. While the server cannot answer (down, slow,
refusing the key, overloaded), the local model answers instead where there is one, and the user hears once per
outage, not once per keystroke."""
from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import Executor
from typing import Callable

from plusls.common.errors import PluslsError
from plusls.exported.generation import CancelToken, Generation, GenerationConfig

from .completer import Completer, CompletionStats, Retriever
from .filters import postprocess
from .prompt import Cursor, WindowState, snippet_comments, text_window
from .remote import InfillRequest, RemoteBackend, RemoteError
from .settings import CompletionSettings
from .suggestion_cache import Suggestion, SuggestionCache

CHARS_PER_TOKEN = 3  # code's usual characters per token: the text budget for a server that tokenizes itself
Notify = Callable[[str, bool], None]  # (message, is_error)


class RemoteCompleter:
    def __init__(self, backend: RemoteBackend, settings: CompletionSettings, retriever: Retriever | None = None,
                 fallback: Completer | None = None, notify: Notify = lambda message, error: None):
        self.backend, self.settings, self.fallback, self.notify = backend, settings, fallback, notify
        # One set of counters and one cache of shown suggestions, whichever model wrote them.
        self.stats = fallback.stats if fallback else CompletionStats()
        self.cache = fallback.cache if fallback else SuggestionCache()
        self._retriever = retriever
        self._windows: dict[str, WindowState] = {}

    @property
    def retriever(self) -> Retriever | None:
        return self._retriever

    @retriever.setter
    def retriever(self, retriever: Retriever | None) -> None:
        self._retriever = retriever
        if self.fallback is not None:
            self.fallback.retriever = retriever

    async def complete(self, uri: str, cursor: Cursor, cancel: CancelToken, executor: Executor) -> Suggestion | None:
        if cancel.cancelled:
            self.stats.cancelled += 1
            return None
        if not self.backend.health.ready():
            return await self._local(uri, cursor, cancel, executor)
        multiline = cursor.multiline and self.settings.multiline
        # Retrieval embeds a query: on the model thread, not the event loop.
        request = await asyncio.get_running_loop().run_in_executor(executor, self.request, uri, cursor, multiline)
        key = hashlib.sha1(f"remote:{request.key()}".encode()).hexdigest()
        if (text := self.cache.answer(key)) is not None:
            self.stats.cache_hits += 1
            return self.cache.show(uri, cursor, text, key, from_cache=True)
        self.stats.remote_requests += 1
        start = time.perf_counter()
        try:
            text, finish = await self._stream(request, cancel)
        except RemoteError as e:
            self._failed(e)
            return await self._local(uri, cursor, cancel, executor)
        finally:
            self.stats.remote_seconds += time.perf_counter() - start
        self._answered()
        if finish == "cancelled":
            self.stats.cancelled += 1
            return None
        text = postprocess(text, cursor.filter_context(self.settings.multiline))
        if finish == "deadline":  # shown, never cached as the answer
            self.stats.deadline_cuts += 1
            self.stats.deadline_empty += not text
        else:
            self.cache.store(key, text)
        return self.cache.show(uri, cursor, text, key)

    def request(self, uri: str, cursor: Cursor, multiline: bool) -> InfillRequest:
        window = self._windows.setdefault(uri, WindowState())
        snippets = self._retriever(cursor) if self._retriever is not None and self.settings.retrieval else []
        chars = (self.settings.context_tokens or self.backend.settings.context_tokens) * CHARS_PER_TOKEN
        suffix_chars = self.settings.suffix_tokens * CHARS_PER_TOKEN
        above, line, suffix = text_window(cursor, window, chars - suffix_chars, suffix_chars)
        return InfillRequest(above, line, suffix, snippets, snippet_comments(cursor, snippets),
                             self.settings.max_new_tokens, () if multiline else ("\n",), self.settings.deadline_ms)

    async def _stream(self, request: InfillRequest, cancel: CancelToken) -> tuple[str, str]:
        """(text, finish): "stop", "deadline" (generating took longer than deadline_ms) or "cancelled" (a newer
        keystroke: its stream is closed at once, which stops the server too)."""
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(self._read(request))
        cancel.on_cancel(lambda: loop.call_soon_threadsafe(task.cancel))
        try:
            return await task
        except asyncio.CancelledError:
            if cancel.cancelled:
                return "", "cancelled"
            raise  # the request itself was cancelled ($/cancelRequest)

    async def _read(self, request: InfillRequest) -> tuple[str, str]:
        pieces: list[str] = []
        deadline = None
        stream = self.backend.stream(request)
        try:
            async for piece in stream:
                pieces.append(piece)
                deadline = deadline or time.monotonic() + self.settings.deadline_ms / 1000
                if time.monotonic() > deadline:
                    return "".join(pieces), "deadline"
        finally:
            await stream.aclose()
        return "".join(pieces), "stop"

    async def _local(self, uri: str, cursor: Cursor, cancel: CancelToken, executor: Executor) -> Suggestion | None:
        if self.fallback is None:
            return None
        self.stats.fallbacks += 1
        try:
            return await self.fallback.complete(uri, cursor, cancel, executor)
        except PluslsError:  # the local model is being exported or chosen: nothing to show yet
            return None

    def _failed(self, error: RemoteError) -> None:
        self.stats.remote_errors += 1
        if self.backend.health.failed(error):
            then = "completing with the local model meanwhile" if self.fallback else "no suggestions meanwhile"
            self.notify(f"plusls: the completion server did not answer: {error}. Retrying in the background; "
                        f"{then}", True)

    def _answered(self) -> None:
        if self.backend.health.succeeded():
            self.notify(f"plusls: the completion server {self.backend.url} answers again", False)

    def warm(self, uri: str, cursor: Cursor, cancel: CancelToken) -> None:
        """Have the server read the prompt at `cursor` into its cache while the user reads; on the model thread."""
        if cancel.cancelled:
            return
        if not self.backend.health.ready():
            if self.fallback is not None:
                self.fallback.warm(uri, cursor, cancel)
            return
        try:
            self.backend.warm(self.request(uri, cursor, cursor.multiline and self.settings.multiline))
        except RemoteError as e:
            self._failed(e)
            return
        self._answered()

    def can_chat(self) -> bool:
        return True

    def chat(self, messages: list[dict[str, str]], config: GenerationConfig,
             cancel: CancelToken | None = None) -> Generation:
        """A chat turn through /v1/chat/completions (hover and docstring summaries); the local model's while the
        server cannot answer."""
        if self.backend.health.ready():
            start = time.monotonic()
            try:
                text = self.backend.chat(messages, config.max_new_tokens, config.stop)
            except RemoteError as e:
                self._failed(e)
            else:
                self._answered()
                return Generation(text, [], "stop", total_s=time.monotonic() - start)
        if self.fallback is not None and self.fallback.can_chat():
            return self.fallback.chat(messages, config, cancel)
        return Generation("", [], "cancelled")  # nothing to show, nothing cached

    def manifest(self):
        if self.fallback is None:
            raise PluslsError("completions come from a server: there is no local model")
        return self.fallback.manifest()

    def forget(self, uri: str) -> None:
        self._windows.pop(uri, None)
        self.cache.forget(uri)
        if self.fallback is not None:
            self.fallback.forget(uri)

    def reload(self, settings: CompletionSettings | None = None) -> None:
        self.settings = settings or self.settings
        self.cache.clear_answers()
        if self.fallback is not None:
            self.fallback.reload(settings)

    def close(self) -> None:
        self.backend.close()
