"""The benchmarks `plusls eval` runs, by name."""
from __future__ import annotations

from typing import Any, Protocol

from .errors import EvalError
from .hover import Hover
from .humaneval import HumanEval
from .infilling import Infilling
from .mbpp import MBPP
from .mtpb import MTPB
from .sampling import Context
from .search_task import Search
from .summarize import Summarize


class Task(Protocol):
    name: str
    needs: str  # the model kind: "causal-lm", "seq2seq" or "embedding"
    formats: tuple[str, ...]  # the prompt formats it supports

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]: ...


TASKS: dict[str, Task] = {t.name: t for t in (HumanEval(), MBPP(), MTPB(), Infilling(), Summarize(), Hover(), Search())}
NAMES = tuple(TASKS)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise EvalError(f"unknown task {name!r}; tasks: {', '.join(NAMES)}")
    return TASKS[name]
