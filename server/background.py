"""Work nobody is waiting for: reading a prompt ahead while the user reads, summarizing definitions before anyone
hovers. One job runs at a time, each once its document has been quiet for a moment, and one rule says what gives
way: a completion request (a keystroke) stops the running job between model steps, and nothing starts until no
request is left; the stopped job then runs again first. Scheduling a job again for the same key replaces the older
one (pending, waiting or running); closing a document drops its jobs."""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterator

from plusls.exported.generation import CancelToken

log = logging.getLogger("plusls")


@dataclass
class Job:
    name: str  # for the log: "warming file:///a.py"
    key: Hashable  # ("warm",), ("summaries", uri): a newer job with the same key replaces this one
    document: str  # closing it drops the job
    run: Callable[[CancelToken], "list[Job] | None"]  # on `executor`; returns the jobs that follow it, if any
    executor: Executor
    token: CancelToken = field(default_factory=CancelToken)
    dropped: bool = False


class BackgroundQueue:
    def __init__(self) -> None:
        self._queue: list[Job] = []
        self._timers: dict[Hashable, tuple[asyncio.TimerHandle, Job]] = {}
        self._running: Job | None = None
        self._worker: asyncio.Task | None = None  # kept: the event loop holds tasks only weakly
        self._requests = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._yielding: set[CancelToken] = set()  # model calls of other threads that also give way
        self._lock = threading.Lock()
        self._settled = asyncio.Event()  # nothing waiting, queued or running
        self._settled.set()
        self.done = 0  # jobs run to the end (or failed)

    def schedule(self, job: Job, after_s: float) -> None:
        """Run `job` once nothing has been scheduled under its key for `after_s` seconds (the document is quiet)."""
        self.drop(key=job.key)
        timer = asyncio.get_running_loop().call_later(after_s, self._enqueue, job)
        self._timers[job.key] = (timer, job)
        self._settled.clear()

    def drop(self, key: Hashable | None = None, document: str | None = None) -> None:
        """Forget the jobs with this key and/or for this document; a running one stops between model steps."""
        def match(job: Job) -> bool:
            return (key is None or job.key == key) and (document is None or job.document == document)

        for k, (timer, job) in list(self._timers.items()):
            if match(job):
                timer.cancel()
                del self._timers[k]
        self._queue = [j for j in self._queue if not match(j)]
        if self._running and match(self._running):
            self._running.dropped = True
            self._running.token.cancel()
        self._check_settled()

    @contextmanager
    def foreground(self) -> Iterator[None]:
        """Around a completion request: background work stops and waits until no request is left."""
        self._requests += 1
        self._idle.clear()
        if self._running:
            self._running.token.cancel()
        with self._lock:
            for token in self._yielding:
                token.cancel()
        try:
            yield
        finally:
            self._requests -= 1
            if not self._requests:
                self._idle.set()

    @contextmanager
    def yielding(self, token: CancelToken | None = None) -> Iterator[CancelToken]:
        """A model call made from another thread for something other than a suggestion (a hover's summary): a
        request that starts while it runs stops it, as it stops background jobs."""
        token = token or CancelToken()
        with self._lock:
            self._yielding.add(token)
        try:
            yield token
        finally:
            with self._lock:
                self._yielding.discard(token)

    def pending(self, kind: str) -> int:
        """Keys of this kind (("summaries", uri) -> "summaries") waiting, queued or running."""
        jobs = [job for _, job in self._timers.values()] + self._queue + ([self._running] if self._running else [])
        return len({job.key for job in jobs if isinstance(job.key, tuple) and job.key[0] == kind})

    async def settled(self) -> None:
        """Return once nothing is waiting, queued or running (what a test or a benchmark waits for)."""
        await self._settled.wait()

    def _check_settled(self) -> None:
        if not (self._timers or self._queue or self._running or self._worker):
            self._settled.set()

    def _enqueue(self, job: Job) -> None:
        self._timers.pop(job.key, None)
        self._queue.append(job)
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._work())

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                await self._idle.wait()
                if not self._queue:
                    break
                job = self._running = self._queue.pop(0)
                try:
                    more = await loop.run_in_executor(job.executor, job.run, job.token)
                except Exception as e:  # a model that cannot load says so on the next request; here only log
                    log.warning("plusls: %s failed: %s", job.name, e)
                    more = None
                finally:
                    self._running = None
                if job.token.cancelled and not job.dropped:  # gave way to a keystroke: first again once idle
                    job.token = CancelToken()
                    self._queue.insert(0, job)
                elif not job.dropped:
                    self.done += 1
                    self._queue[0:0] = more or []
        finally:
            self._worker = None
            self._check_settled()
