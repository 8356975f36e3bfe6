"""The one queue of background work (warming, summaries) and its rule: a keystroke stops the running job, nothing
starts while a request is in flight, and the stopped job runs again first. Ordered by events, not sleeps."""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from fixture_repo import FILES

from plusls.common.errors import PluslsError
from plusls.completion.completer import Completer
from plusls.completion.prompt import Cursor
from plusls.completion.settings import CompletionSettings
from plusls.exported.causal_lm import CausalLM
from plusls.exported.generation import CancelToken, GenerationConfig
from plusls.server.background import BackgroundQueue, Job
from plusls.server.model_thread import ModelThread
from plusls.server.scheduler import WARM_KEY, RequestScheduler

MATH = FILES["src/mathutil.py"]
TYPED = MATH[: MATH.index("    a, b =") + len("    a, b =")]
WAIT_S = 30  # only a safety net: every wait below ends on an event


async def on_thread(event: threading.Event) -> None:
    assert await asyncio.get_running_loop().run_in_executor(None, event.wait, WAIT_S)


def test_a_keystroke_stops_the_running_job_which_runs_again_once_no_request_is_left():
    pool = ThreadPoolExecutor(1)
    started, stopped, finished = threading.Event(), threading.Event(), threading.Event()
    runs: list[str] = []

    def run(token: CancelToken) -> None:
        first = not runs
        runs.append("start")
        started.set()
        if first:
            assert token.wait(WAIT_S)  # working until a keystroke stops it between model steps
            runs.append("stopped")
            stopped.set()
        else:
            runs.append("done")
            finished.set()

    async def session() -> None:
        queue = BackgroundQueue()
        queue.schedule(Job("job", ("warm",), "doc", run, pool), 0)
        await on_thread(started)
        with queue.foreground():
            await on_thread(stopped)
            assert queue.pending("warm") == 1 and not finished.is_set()  # queued again, not started
        await on_thread(finished)
        await queue.settled()
        assert runs == ["start", "stopped", "start", "done"] and queue.done == 1

    asyncio.run(session())


def test_a_newer_job_for_the_same_key_replaces_the_older_and_a_closed_document_drops_its_jobs():
    pool = ThreadPoolExecutor(1)
    ran: list[str] = []

    def job(name: str, key, document: str) -> Job:
        return Job(name, key, document, lambda token: ran.append(name), pool)

    async def session() -> None:
        queue = BackgroundQueue()
        queue.schedule(job("warm a", WARM_KEY, "a"), 0)
        queue.schedule(job("warm b", WARM_KEY, "b"), 0)  # one warm-up at a time: the newest
        queue.schedule(job("summaries a", ("summaries", "a"), "a"), 0)
        queue.schedule(job("summaries c", ("summaries", "c"), "c"), 0)
        assert queue.pending("summaries") == 2
        queue.drop(document="c")
        assert queue.pending("summaries") == 1
        await queue.settled()
        assert ran == ["warm b", "summaries a"]

    asyncio.run(session())


def test_a_job_may_plan_the_jobs_that_follow_it_and_they_run_before_later_ones():
    pool = ThreadPoolExecutor(1)
    ran: list[str] = []

    def step(name: str) -> Job:
        return Job(name, ("summaries", "a"), "a", lambda token: ran.append(name), pool)

    def plan(token: CancelToken) -> list[Job]:
        ran.append("plan")
        return [step("line"), step("hover")]

    async def session() -> None:
        queue = BackgroundQueue()
        queue.schedule(Job("plan", ("summaries", "a"), "a", plan, pool), 0)
        queue.schedule(Job("warm", WARM_KEY, "b", lambda token: ran.append("warm"), pool), 0)
        await queue.settled()
        assert ran == ["plan", "line", "hover", "warm"]

    asyncio.run(session())


def test_a_request_drops_a_pending_warm_up_of_its_document(memorized):
    completer = Completer(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))
    pool = ThreadPoolExecutor(1)
    asked: list[str] = []

    def warm(token: CancelToken) -> None:
        asked.append("warm")
        completer.warm("doc", Cursor(TYPED, len(TYPED), "python"), token)

    async def session() -> None:
        queue = BackgroundQueue()
        scheduler = RequestScheduler(completer, pool, queue)
        queue.schedule(Job("warming doc", WARM_KEY, "doc", warm, pool), 0)
        await scheduler.complete("doc", Cursor(TYPED, len(TYPED), "python"))  # before the warm-up started
        await queue.settled()
        assert asked == [] and completer.stats.warmed_tokens == 0
        queue.schedule(Job("warming doc", WARM_KEY, "doc", warm, pool), 0)
        await queue.settled()
        assert asked == ["warm"]

    asyncio.run(session())


def test_a_failing_job_is_logged_and_the_queue_goes_on(caplog):
    pool = ThreadPoolExecutor(1)
    ran: list[str] = []

    def broken(token: CancelToken) -> None:
        raise PluslsError("model directory /nowhere does not exist")

    async def session() -> None:
        queue = BackgroundQueue()
        queue.schedule(Job("warming doc", WARM_KEY, "doc", broken, pool), 0)
        queue.schedule(Job("summarizing doc", ("summaries", "doc"), "doc", lambda t: ran.append("next"), pool), 0)
        await queue.settled()

    with caplog.at_level(logging.WARNING, "plusls"):
        asyncio.run(session())
    assert "warming doc failed: model directory /nowhere does not exist" in caplog.text and ran == ["next"]


def test_a_request_stops_a_summary_that_another_thread_is_writing_with_the_model(memorized):
    """Hover summaries run the completion model from the docs thread: a request that starts meanwhile stops them
    between steps (they give way before a token when the request came first); with nobody typing they run."""
    completer = Completer(lambda: CausalLM(memorized), CompletionSettings(debounce_ms=0, retrieval=False))
    pool = ThreadPoolExecutor(1)
    queue = BackgroundQueue()
    model = ModelThread(completer, pool, queue)
    with queue.yielding() as token:
        with queue.foreground():
            pass
        assert token.cancelled
        stopped = model.generate("def f():\n", GenerationConfig(), token)
    assert stopped.finish_reason == "cancelled" and not stopped.token_ids
    again = model.generate("def f():\n", GenerationConfig(max_new_tokens=3, stop_on_eos=False))
    assert again.finish_reason == "length" and len(again.token_ids) == 3
