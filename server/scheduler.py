"""Completion requests from many keystrokes: debounce a burst, drop superseded requests, stop stale generations.

Neovim cancels only on InsertLeave, so a request that a newer one for the same document has replaced is dropped
here before the model runs, and a newer request stops a running generation between tokens. The scheduler is the
one owner of a request's cancellation; every request also makes background work give way.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from dataclasses import dataclass

from plusls.completion.completer import Completer
from plusls.completion.remote_completer import RemoteCompleter
from plusls.completion.prompt import Cursor
from plusls.completion.suggestion_cache import Suggestion
from plusls.exported.generation import CancelToken

from .background import BackgroundQueue

BURST_S = 0.3  # requests for one document closer than this are a burst of typing
WARM_KEY = ("warm",)  # one warm-up at a time, the newest: the document the user is on now


@dataclass
class _Document:
    seq: int = 0
    last_request: float = float("-inf")
    running: CancelToken | None = None


class RequestScheduler:
    def __init__(self, completer: Completer | RemoteCompleter, executor: Executor, background: BackgroundQueue):
        self.completer, self.executor, self.background = completer, executor, background
        self._documents: dict[str, _Document] = {}

    async def complete(self, uri: str, cursor: Cursor) -> Suggestion | None:
        stats = self.completer.stats
        stats.requests += 1
        doc = self._documents.setdefault(uri, _Document())
        doc.seq += 1
        self.background.drop(key=WARM_KEY, document=uri)  # the request reads the prompt itself
        with self.background.foreground():
            if doc.running:
                doc.running.cancel()  # a newer keystroke: the running generation is stale
            if (hit := self.completer.cache.typed_ahead(uri, cursor)) is not None:
                stats.cache_hits += 1
                return hit
            try:
                return await self._debounced(uri, cursor, doc, doc.seq)
            except asyncio.CancelledError:  # $/cancelRequest, while waiting or generating
                stats.cancelled += 1
                raise

    async def _debounced(self, uri: str, cursor: Cursor, doc: _Document, seq: int) -> Suggestion | None:
        # Debounce only a burst: the first keystroke after a pause runs at once, later ones in quick succession
        # wait to see whether another follows (a newer request also stops a running generation anyway).
        now = time.monotonic()
        burst = now - doc.last_request < BURST_S
        doc.last_request = now
        if burst:
            await asyncio.sleep(self.completer.settings.debounce_ms / 1000)
        if doc.seq != seq:
            self.completer.stats.dropped += 1
            return None
        token = doc.running = CancelToken()
        try:
            return await self.completer.complete(uri, cursor, token, self.executor)
        except asyncio.CancelledError:
            token.cancel()  # stop between tokens
            raise
        finally:
            if doc.running is token:
                doc.running = None

    def close(self, uri: str) -> None:
        doc = self._documents.pop(uri, None)
        if doc and doc.running:
            doc.running.cancel()
        self.executor.submit(self.completer.forget, uri)  # on the model thread, after what runs there now
