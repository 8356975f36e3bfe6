"""The benchmarks `plusls eval` runs, by name."""
from __future__ import annotations

from typing import Any, Protocol

from .errors import EvalError
from .humaneval import HumanEval
from .infilling import Infilling
from .mbpp import MBPP
from .mtpb import MTPB
from .sampling import Context
from .summarize import Summarize


class Task(Protocol):
    name: str
    needs: str  # the model kind: "causal-lm" or "seq2seq"
    formats: tuple[str, ...]  # the prompt formats it supports

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]: ...


TASKS: dict[str, Task] = {t.name: t for t in (HumanEval(), MBPP(), MTPB(), Infilling(), Summarize())}
# Listed so that `plusls eval search` explains itself; it ranks with the indexer, which wires it in.
PENDING = {"search": "CoSQA retrieval (MRR@10, recall@1/5/10) needs the indexer and is not wired in yet"}
NAMES = (*TASKS, *PENDING)


def get_task(name: str) -> Task:
    if name in PENDING:
        raise EvalError(f"task {name}: {PENDING[name]}")
    if name not in TASKS:
        raise EvalError(f"unknown task {name!r}; tasks: {', '.join(NAMES)}")
    return TASKS[name]
