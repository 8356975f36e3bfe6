"""The install: one `plusls` namespace, and a serving runtime that never imports torch or transformers."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_runtime_imports_neither_torch_nor_transformers(exported, tmp_path):
    code = f"""
import sys, json
from plusls.exported import CausalLM, Embedder, Seq2SeqLM, GenerationConfig
import plusls.server.lsp_server, plusls.indexer.search  # the language server and what it serves with
CausalLM({str(exported['llama'])!r}).generate("def f():", GenerationConfig(max_new_tokens=4))
Seq2SeqLM({str(exported['t5'])!r}).generate("def f():", GenerationConfig(max_new_tokens=4))
Embedder({str(exported['bert'])!r}).embed(["def f():"])
print(json.dumps([m for m in ("torch", "transformers", "optimum") if m in sys.modules]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.slow  # builds a wheel
def test_wheel_installs_only_under_plusls(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("plusls-*.whl"))
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"plusls"}
    names = zipfile.ZipFile(wheel).namelist()
    for sub in ("common", "exported", "indexer", "server", "training", "evaluation", "cli"):
        for init in (ROOT / sub).rglob("__init__.py"):  # every package, subpackages included
            assert f"plusls/{init.relative_to(ROOT).as_posix()}" in names
    assert not any(n.startswith("plusls/tests") for n in names)
    assert "plusls/exported/bundled/docstring/manifest.json" in names
    assert any(n.startswith("plusls/training/labels/query.train.") for n in names)  # the committed teacher labels
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "plusls = plusls.cli:main" in entry


def test_generic_names_are_not_importable(tmp_path):
    names = ("common", "exported", "indexer", "server", "training", "evaluation", "cli")
    code = f"import importlib.util as u; print([n for n in {names!r} if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip() == "[]"
