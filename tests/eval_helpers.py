"""Shared bits of the `plusls eval` tests: the benchmark data, scripted generators, a sandbox per mode."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pytest

from plusls.evaluation.datasets import default_data_dir
from plusls.evaluation.generators import Generated, Request

CAN_ISOLATE = os.geteuid() == 0 and sys.platform.startswith("linux")


def data_dir() -> str:
    """The real benchmark files (../shared/eval beside the repo, or $PLUSLS_EVAL_DATA)."""
    path = default_data_dir()
    if path is None or not path.is_dir():
        pytest.skip("benchmark data not found: set PLUSLS_EVAL_DATA or put shared/eval beside the repo")
    return str(path)


@dataclass
class Scripted:
    """A stand-in model: answers each request with answer(request), and counts its calls."""

    answer: Callable[[Request], str]
    name: str = "scripted"
    kind: str = "baseline"
    requests: list = field(default_factory=list)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind}

    def generate(self, requests: Sequence[Request], config) -> list[Generated]:
        self.requests.extend(requests)
        return [Generated(self.answer(r), new_tokens=3, prompt_tokens=10, latency_s=0.01, first_token_s=0.005,
                          finish_reason="scripted") for r in requests]
