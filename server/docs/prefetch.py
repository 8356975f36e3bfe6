"""Hover summaries computed before anyone hovers: once a document has been quiet for a moment and no suggestion is
being made, each of its definitions that is new or changed (by content hash) is summarized in the background, one
per job on the docs worker, so a hover or docstring request waits for at most one summary, and typing never waits."""
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
                    if self.summarizer.cached(d) is None]
            for definition in todo:
                while self.busy():  # a suggestion is being made: it has the CPU
                    await asyncio.sleep(PREFETCH_AFTER_S)
                if self.summarizer.cached(definition) is None:
                    await loop.run_in_executor(self.executor, self.summarizer.summarize, definition)
                    self.prefetched += 1
        except asyncio.CancelledError:
            pass
        except Exception as e:  # no docstring model, a parse failure: hover says so when asked; here only log
            log.warning("plusls: summarizing %s in the background failed: %s", uri, e)
        finally:
            if self._tasks.get(uri) is asyncio.current_task():
                del self._tasks[uri]
