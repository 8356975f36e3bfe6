"""The loop every execution task shares: generate n samples per prompt, run each in the sandbox, keep records.

Generation (the model, on this thread) and execution (sandboxed processes, on a small thread pool) overlap.
"""
from __future__ import annotations

import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from plusls.common.progress import Progress
from plusls.exported import GenerationConfig

from .generators import Generated, Generator, Request
from .sandbox import Sandbox


@dataclass
class Settings:
    samples: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    max_new_tokens: int | None = None  # None: the task's default
    prompt_format: str = "raw"
    batch_size: int = 1
    seed: int = 0
    timeout_s: float | None = None  # None: the task's default
    workers: int = 2


@dataclass
class Item:
    """One prompt to sample n times, and how to turn a completion into a program to run (None: no execution)."""

    task_id: str
    request: Request
    program: Callable[[str], str] | None = None
    max_new_tokens: int = 256
    extra: dict[str, Any] = field(default_factory=dict)  # copied into each sample's record


@dataclass
class Context:
    generator: Generator
    settings: Settings
    sandbox: Sandbox | None = None
    progress_stream: Any = None
    options: dict[str, Any] = field(default_factory=dict)  # task-specific CLI options

    @property
    def chat_template(self) -> str | None:
        """The model's chat template from its manifest (None for baselines and models without one)."""
        manifest = getattr(self.generator, "manifest", None)
        return manifest.config.get("chat_template") if manifest is not None else None

    def config(self, max_new_tokens: int, key: str, stops: tuple[str, ...] = ()) -> GenerationConfig:
        s = self.settings
        # A seed per prompt and sample index: results do not depend on batching or on --limit.
        seed = zlib.crc32(f"{s.seed}:{key}".encode())
        return GenerationConfig(max_new_tokens=s.max_new_tokens or max_new_tokens, temperature=s.temperature,
                                top_p=s.top_p if s.temperature > 0 else 1.0, stop=stops, seed=seed)


def sample_record(task_id: str, index: int, g: Generated, batch: int) -> dict[str, Any]:
    return {"task_id": task_id, "sample": index, "completion": g.text, "prompt_tokens": g.prompt_tokens,
            "new_tokens": g.new_tokens, "latency_s": round(g.latency_s, 4),
            "first_token_s": round(g.first_token_s, 4), "finish_reason": g.finish_reason, "batch": batch,
            "prompt_truncated": g.prompt_truncated, **g.line_choice}


def _batches(items: Sequence[Item], n: int, size: int) -> list[list[tuple[Item, int]]]:
    """(item, sample index) pairs in batches; a batch never mixes prompts that need different settings."""
    out: list[list[tuple[Item, int]]] = []
    for item in items:
        for i in range(n):
            last = out[-1] if out else None
            if last and len(last) < size and _compatible(last[0][0], item):
                last.append((item, i))
            else:
                out.append([(item, i)])
    return out


def _compatible(a: Item, b: Item) -> bool:
    return (a.request.stops, a.max_new_tokens, a.request.ids is None) == (b.request.stops, b.max_new_tokens,
                                                                          b.request.ids is None)


def run_items(ctx: Context, items: Sequence[Item], label: str, timeout_s: float) -> list[dict[str, Any]]:
    """Sample every item n times, execute what has a program, and return one record per sample, in order."""
    n = ctx.settings.samples
    progress = Progress(label, len(items) * n, ctx.progress_stream)
    records: list[dict[str, Any]] = []
    futures: list[tuple[dict[str, Any], Future]] = []
    with ThreadPoolExecutor(max_workers=max(1, ctx.settings.workers)) as pool:
        for batch in _batches(items, n, max(1, ctx.settings.batch_size)):
            first = batch[0][0]
            config = ctx.config(first.max_new_tokens, f"{first.task_id}/{batch[0][1]}", first.request.stops)
            outs = ctx.generator.generate([item.request for item, _ in batch], config)
            for (item, index), g in zip(batch, outs):
                record = {**sample_record(item.task_id, index, g, len(batch)), **item.extra}
                records.append(record)
                if item.program is None or ctx.sandbox is None:
                    progress.advance()
                    continue
                future = pool.submit(ctx.sandbox.run, item.program(g.text), timeout_s)
                future.add_done_callback(lambda _f: progress.advance())
                futures.append((record, future))
        collect_outcomes(futures)
    progress.close()
    return records


def collect_outcomes(futures: list) -> None:
    """Wait for the sandboxed programs and store each outcome in its sample record."""
    for record, future in futures:
        outcome = future.result()
        record.update(status=outcome.status, passed=outcome.passed, error=outcome.error,
                      exec_s=round(outcome.elapsed_s, 4))


def pass_counts(records: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """(n, c) per task_id, in first-seen order."""
    counts: dict[str, list[int]] = {}
    for r in records:
        n_c = counts.setdefault(r["task_id"], [0, 0])
        n_c[0] += 1
        n_c[1] += bool(r.get("passed"))
    return [(n, c) for n, c in counts.values()]


def status_counts(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        if "status" in r:
            out[r["status"]] = out.get(r["status"], 0) + 1
    return out
