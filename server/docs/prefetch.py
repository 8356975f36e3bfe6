"""Hover summaries computed before anyone hovers: once a document has been quiet for a moment and no suggestion is
being made, each of its definitions that is new or changed (by content hash) is summarized in the background, one
model call per job on the docs worker, so a hover or docstring request waits for at most one, and typing never
waits. Summary lines come first (the docstring action needs only them), then the hover explanations."""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Callable

from .definition_at import Definition
from .summarizer import Summarizer

log = logging.getLogger(__name__)
PREFETCH_AFTER_S = 1.0  # longer than a pause between keystrokes: summaries of half-typed code are wasted


class SummaryPrefetch:
    def __init__(self, summarizer: Summarizer, executor: Executor, busy: Callable[[], bool]):
        self.summarizer, self.executor, self.busy = summarizer, executor, busy
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self.prefetched = 0

    def schedule(self, uri: str, definitions: Callable[[], list[Definition]]) -> None:
        """After an open or edit of `uri`: summarize `definitions()` (the document as it is then) once it is quiet."""
        self.cancel(uri)
        loop = asyncio.get_running_loop()
        self._timers[uri] = loop.call_later(PREFETCH_AFTER_S, self._start, uri, definitions)

    def pending(self) -> int:
        """Documents waiting to be summarized or being summarized."""
        return len(self._timers.keys() | self._tasks.keys())

    def cancel(self, uri: str) -> None:
        if timer := self._timers.pop(uri, None):
            timer.cancel()
        if task := self._tasks.pop(uri, None):
            task.cancel()  # stops after the summary in progress

    def _start(self, uri: str, definitions: Callable[[], list[Definition]]) -> None:
        self._timers.pop(uri, None)
        self._tasks[uri] = asyncio.ensure_future(self._run(uri, definitions))

    async def _run(self, uri: str, definitions: Callable[[], list[Definition]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            todo = [d for d in await loop.run_in_executor(self.executor, definitions)
                    if self.summarizer.hover_cached(d) is None]
            for definition in todo:
                self.prefetched += await self._when_idle(definition, self.summarizer.cached,
                                                         self.summarizer.summarize)
            for definition in todo:
                await self._when_idle(definition, self.summarizer.hover_cached, self.summarizer.hover)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # no docstring model, a parse failure: hover says so when asked; here only log
            log.warning("plusls: summarizing %s in the background failed: %s", uri, e)
        finally:
            if self._tasks.get(uri) is asyncio.current_task():
                del self._tasks[uri]

    async def _when_idle(self, definition: Definition, cached: Callable[[Definition], str | None],
                         make: Callable[[Definition], str]) -> bool:
        """Run `make` once no suggestion is being made, unless it is cached by then; whether it ran."""
        while self.busy():  # a suggestion is being made: it has the CPU
            await asyncio.sleep(PREFETCH_AFTER_S)
        if cached(definition) is not None:
            return False
        await asyncio.get_running_loop().run_in_executor(self.executor, make, definition)
        return True
