"""onnxruntime sessions: provider choice (CUDA, then CPU), thread counts, and what actually runs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from .errors import ModelDirError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run a model: providers in order of preference ("auto" = CUDA when present, then CPU)."""

    providers: tuple[str, ...] | str = "auto"
    intra_op_threads: int = 0  # 0: onnxruntime's default (one per physical core)
    inter_op_threads: int = 0
    io_binding: bool | None = None  # None: on when the session runs on CUDA
    # Embedder only: this many single-threaded sessions take batches in parallel (0: one per core on CPU).
    # Small batches leave onnxruntime's intra-op threads idle; sessions side by side keep every core busy
    # (docs/measurements.md, indexing throughput).
    parallel_sessions: int = 0

    @staticmethod
    def from_env() -> "RuntimeOptions":
        """PLUSLS_PROVIDERS=cuda,cpu and PLUSLS_THREADS=N override the defaults."""
        names = os.environ.get("PLUSLS_PROVIDERS")
        providers: tuple[str, ...] | str = "auto"
        if names:
            providers = tuple(_provider_name(n) for n in names.split(",") if n.strip())
        return RuntimeOptions(providers=providers, intra_op_threads=int(os.environ.get("PLUSLS_THREADS", "0")))


def _provider_name(name: str) -> str:
    short = {"cuda": CUDA, "cpu": CPU}
    return short.get(name.strip().lower(), name.strip())


def runtime_version() -> str:
    """onnxruntime's version (the CPU or the GPU build)."""
    return ort.__version__


def available_providers() -> list[str]:
    return ort.get_available_providers()


def resolve_providers(requested: tuple[str, ...] | str) -> list[str]:
    """The providers to ask for, in order; unknown ones are an error, missing-but-known ones are skipped."""
    available = available_providers()
    if requested == "auto":
        return [p for p in (CUDA, CPU) if p in available]
    chosen = [p for p in requested if p in available]
    unknown = [p for p in requested if p not in available]
    if not chosen:
        raise ModelDirError(
            f"none of the requested providers {list(requested)} is available (this onnxruntime has {available})"
        )
    if unknown and CUDA in unknown:
        # Asked for CUDA but onnxruntime-gpu is not installed: say so once, run on what we have.
        import sys

        print(f"plusls: {CUDA} is not available here; install plusls[gpu] to use the GPU", file=sys.stderr)
    return chosen


def make_session(path: str | Path, options: RuntimeOptions) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if options.intra_op_threads:
        so.intra_op_num_threads = options.intra_op_threads
    if options.inter_op_threads:
        so.inter_op_num_threads = options.inter_op_threads
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=resolve_providers(options.providers))
    except Exception as e:  # onnxruntime raises its own exception types for a bad file
        if isinstance(e, ModelDirError):
            raise
        raise ModelDirError(f"cannot load {path}: {e}; re-export the model with `plusls export`") from e


def uses_cuda(session: ort.InferenceSession) -> bool:
    return session.get_providers()[0] == CUDA
