"""The plusls command as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PLUSLS = str(Path(sys.executable).with_name("plusls"))


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PLUSLS, *args], capture_output=True, text=True, env=env)


def test_export_from_a_hub_id_fails_clearly(tmp_path):
    r = run("export", "Salesforce/codet5p-220m", "--kind", "seq2seq", "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "does not exist" in r.stderr and "never downloads" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # exports through the CLI
def test_export_and_doctor(checkpoints, tmp_path):
    models = tmp_path / "models"
    r = run("export", str(checkpoints["bert"]), "--kind", "embedding", "--out", str(models / "emb"))
    assert r.returncode == 0, r.stderr
    assert "checking parity" in r.stderr
    (models / "broken").mkdir()
    r = run("doctor", "--json", "--models-dir", str(models))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert "CPUExecutionProvider" in report["providers_available"]
    assert report["providers_used"][-1] == "CPUExecutionProvider"
    assert report["gpu"]["cuda_provider"] is False or "CUDAExecutionProvider" in report["providers_available"]
    by_name = {Path(m["dir"]).name: m for m in report["models"]}
    assert by_name["emb"]["ok"] and by_name["emb"]["parity"]["fp32_max_abs_diff"] <= 1e-4
    assert not by_name["broken"]["ok"] and "manifest.json" in by_name["broken"]["error"]
    text = run("doctor", "--models-dir", str(models)).stdout
    assert "providers used: CPUExecutionProvider" in text and "broken: BROKEN" in text


@pytest.mark.slow  # exports through the CLI
def test_export_refuses_to_overwrite(checkpoints, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "x").write_text("keep")
    r = run("export", str(checkpoints["gpt2"]), "--kind", "causal-lm", "--out", str(out))
    assert r.returncode == 2 and "--force" in r.stderr and (out / "x").exists()
