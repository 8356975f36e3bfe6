from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

CAUSAL = ["gpt2", "codegen", "llama", "qwen2"]
KIND = {"gpt2": "causal-lm", "codegen": "causal-lm", "llama": "causal-lm", "qwen2": "causal-lm",
        "t5": "seq2seq", "bert": "embedding", "codet5p-embedding": "embedding"}


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Tiny random Hugging Face checkpoints, one per architecture."""
    from tiny_models import build

    root = tmp_path_factory.mktemp("checkpoints")
    return {arch: build(arch, root / arch) for arch in KIND}


@pytest.fixture(scope="session")
def exported(checkpoints, tmp_path_factory) -> dict[str, Path]:
    """Each tiny checkpoint exported to an ONNX model directory with plusls export (fp32)."""
    from plusls.exported.export import export_model

    root = tmp_path_factory.mktemp("exported")
    return {arch: export_model(src, KIND[arch], root / arch, log=_quiet) and root / arch
            for arch, src in checkpoints.items()}


@pytest.fixture(scope="session")
def memorized(tmp_path_factory) -> Path:
    """An exported tiny causal LM that recites the fixture repository's src/mathutil.py (predictable completions:
    after `    a, b =` comes ` 0, 1`)."""
    from fixture_repo import FILES
    from tiny_models import memorized_causal_lm

    from plusls.exported.export import export_model

    root = tmp_path_factory.mktemp("memorized")
    src = memorized_causal_lm(root / "checkpoint", [FILES["src/mathutil.py"]])
    return export_model(src, "causal-lm", root / "model", log=_quiet) and root / "model"


@pytest.fixture
def quiet():
    return _quiet
