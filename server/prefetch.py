"""Hover summaries made before anyone hovers: once a document has been quiet for a moment, each of its definitions
that is new or changed (by content hash) is summarized as background work, one model call per job, so a hover or
docstring request waits for at most one and typing never waits. Summary lines come first (the docstring action
needs only them), then the hover explanations."""
from __future__ import annotations

from concurrent.futures import Executor
from functools import partial
from typing import Callable

from plusls.docstrings.definition_at import Definition
from plusls.docstrings.summarizer import Summarizer
from plusls.exported.generation import CancelToken

from .background import BackgroundQueue, Job

PREFETCH_AFTER_S = 1.0  # longer than a pause between keystrokes: summaries of half-typed code are wasted
KIND = "summaries"


class SummaryPrefetch:
    def __init__(self, summarizer: Summarizer, executor: Executor, background: BackgroundQueue):
        self.summarizer, self.executor, self.background = summarizer, executor, background
        self.prefetched = 0  # summary lines made in the background

    def schedule(self, uri: str, definitions: Callable[[], list[Definition]]) -> None:
        """After an open or edit of `uri`: summarize `definitions()` (the document as it is then) once it is quiet."""
        def plan(cancel: CancelToken) -> list[Job]:
            todo = [d for d in definitions() if self.summarizer.hover_cached(d) is None]
            return ([self._job(uri, partial(self._summary_line, d)) for d in todo]
                    + [self._job(uri, partial(self._hover, d)) for d in todo])

        self.background.schedule(self._job(uri, plan), PREFETCH_AFTER_S)

    def pending(self) -> int:
        """Documents waiting to be summarized or being summarized."""
        return self.background.pending(KIND)

    def _job(self, uri: str, run: Callable[[CancelToken], list[Job] | None]) -> Job:
        # One key per document: an edit replaces everything still to do for it.
        return Job(f"summarizing {uri}", (KIND, uri), uri, run, self.executor)

    def _summary_line(self, definition: Definition, cancel: CancelToken) -> None:
        if self.summarizer.cached(definition) is None:
            self.summarizer.summarize(definition, cancel)
            self.prefetched += self.summarizer.cached(definition) is not None

    def _hover(self, definition: Definition, cancel: CancelToken) -> None:
        self.summarizer.hover(definition, cancel)  # cached for the hover; nothing follows it
