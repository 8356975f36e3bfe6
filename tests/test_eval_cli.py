"""`plusls eval` as a user runs it: clear errors, results files, reports, and real (tiny) models end to end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eval_helpers import data_dir

PLUSLS = str(Path(sys.executable).with_name("plusls"))


def plusls_eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PLUSLS, "eval", *args], capture_output=True, text=True, timeout=600)


def assert_clean_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    for word in words:
        assert word in r.stderr, r.stderr


@pytest.mark.slow  # many CLI subprocesses
def test_bad_input_is_reported_without_a_traceback(tmp_path, exported):
    assert_clean_error(plusls_eval("humaneval", "--data", str(tmp_path / "missing")), "does not exist")
    assert_clean_error(plusls_eval("humaneval", "--data", str(tmp_path)), "has no humaneval/HumanEval.jsonl.gz")
    assert_clean_error(plusls_eval("nosuchtask"), "unknown task", "humaneval")
    assert_clean_error(plusls_eval("search", "--model", str(exported["llama"])), "causal-lm", "embedding")
    assert_clean_error(plusls_eval("search", "--model", "baseline:reference"), "baselines do not apply")
    assert_clean_error(plusls_eval("humaneval", "--model", str(exported["t5"])), "seq2seq", "causal-lm")
    assert_clean_error(plusls_eval("summarize", "--model", str(exported["llama"])), "causal-lm", "seq2seq")
    assert_clean_error(plusls_eval("humaneval", "--model", str(tmp_path)), "manifest.json")
    assert_clean_error(plusls_eval("mbpp", "--prompt-format", "indent"), "raw, fence, chatml")
    assert_clean_error(plusls_eval("humaneval", "--samples", "3", "--temperature", "0"), "--temperature")
    assert_clean_error(plusls_eval("infilling", "--model", str(exported["llama"]), "--infill-mode", "fim",
                                   "--data", data_dir()), "fill-in-the-middle")
    assert_clean_error(plusls_eval("humaneval", "--model", str(exported["llama"]), "--prompt-format", "chatml",
                                   "--data", data_dir()), "<|im_start|>")


@pytest.mark.slow  # many CLI subprocesses
def test_json_and_report_record_the_run(tmp_path):
    out, report = tmp_path / "he.json", tmp_path / "report" / "he.md"
    r = plusls_eval("humaneval", "--model", "baseline:reference", "--data", data_dir(), "--limit", "3",
                    "--json", str(out), "--report", str(report))
    assert r.returncode == 0, r.stderr
    assert "pass@1 100.00%" in r.stdout
    assert "3/3 samples" in r.stderr  # progress on stderr
    result = json.loads(out.read_text())
    assert result["metrics"] == {"pass@1": 1.0} and len(result["samples"]) == 3
    assert result["command"].startswith("plusls eval humaneval --model baseline:reference")
    assert result["machine"]["cores"] >= 1 and result["machine"]["python"]
    assert result["sandbox"]["limits"]["timeout_s"] == 5.0
    assert {"status", "passed", "error", "exec_s", "latency_s", "new_tokens"} <= set(result["samples"][0])
    text = report.read_text()
    assert "codegen-350M-mono" in text and "12.76%" in text and "published" in text
    assert "![he-scores](he-scores.png)" in text
    png = report.with_name("he-scores.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_a_real_model_end_to_end_records_latency_tokens_and_manifest(tmp_path, exported):
    out, report = tmp_path / "he.json", tmp_path / "he.md"
    r = plusls_eval("humaneval", "--model", str(exported["llama"]), "--data", data_dir(), "--limit", "2",
                    "--samples", "2", "--batch-size", "2", "--max-new-tokens", "6", "--prompt-format", "fence-indent",
                    "--json", str(out), "--report", str(report))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["settings"]["temperature"] == 0.8  # the default once there is more than one sample
    assert set(result["metrics"]) == {"pass@1"} and len(result["samples"]) == 4
    assert result["model"]["manifest"]["architecture"] == "LlamaForCausalLM"
    assert result["settings"]["prompt_format"] == "fence-indent"
    for s in result["samples"]:
        assert 0 < s["new_tokens"] <= 6 and s["latency_s"] > 0 and s["prompt_tokens"] > 0
        assert s["status"] in ("passed", "failed", "timeout")
    assert result["latency"]["samples"] == 4
    assert [s["batch"] for s in result["samples"]] == [2, 2, 2, 2]  # both samples of a prompt in one call
    assert report.with_name("he-latency.png").exists()


def test_infilling_with_a_fim_model_runs_both_modes_side_by_side(tmp_path, exported):
    out = tmp_path / "fim.json"
    r = plusls_eval("infilling", "--model", str(exported["gpt2"]), "--data", data_dir(), "--limit", "2",
                    "--infill-mode", "both", "--max-new-tokens", "4", "--json", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["modes"] == ["fim", "prefix"]
    assert set(result["metrics"]) == {"fim", "prefix"}
    assert {"exact_match", "pass@1"} <= set(result["metrics"]["fim"])
    assert result["model"]["manifest"]["special_tokens"]["fim"] is not None
    # HumanEval prompts are longer than this model's 128-token context: they keep their end and still run.
    assert all(s["prompt_truncated"] for s in result["samples"] if s["mode"] == "prefix")


@pytest.mark.slow  # many CLI subprocesses
def test_mtpb_and_summarize_run_on_tiny_models(tmp_path, exported):
    out = tmp_path / "mtpb.json"
    r = plusls_eval("mtpb", "--model", str(exported["qwen2"]), "--data", data_dir(), "--limit", "1",
                    "--max-new-tokens", "4", "--json", str(out))
    assert r.returncode == 0, r.stderr
    samples = json.loads(out.read_text())["samples"]
    assert len(samples) == 5 and samples[0]["completion"].startswith("# Import libraries.")
    out = tmp_path / "sum.json"
    r = plusls_eval("summarize", "--model", str(exported["t5"]), "--data", data_dir(), "--limit", "3",
                    "--max-new-tokens", "5", "--json", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert set(result["metrics"]) == {"bleu4", "rouge_l"} and len(result["samples"]) == 3
    assert result["model"]["kind"] == "seq2seq"
    # Without --model: the bundled docstring model the server uses, not an error.
    r = plusls_eval("summarize", "--data", data_dir(), "--limit", "2", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["model"]["dir"].endswith("bundled/docstring")


def test_search_task_ranks_through_the_real_index(tmp_path, exported):
    """A tiny CoSQA-shaped benchmark: three functions, queries naming them (BM25 finds those exactly)."""
    cosqa = tmp_path / "cosqa"
    cosqa.mkdir()
    codes = {"def is_prime(n):\n    return n > 1": 0, "def read_text(path):\n    return open(path).read()": 1,
             "def sort_by_age(users):\n    return sorted(users)": 2}
    (cosqa / "code_idx_map.txt").write_text(json.dumps(codes))
    (cosqa / "cosqa-retrieval-dev-500.json").write_text(json.dumps(
        [{"doc": "is_prime", "retrieval_idx": 0}, {"doc": "read_text", "retrieval_idx": 1},
         {"doc": "sort_by_age", "retrieval_idx": 2}]))
    out = tmp_path / "search.json"
    r = plusls_eval("search", "--model", str(exported["bert"]), "--data", str(tmp_path), "--json", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["metrics"]["bm25"]["mrr@10"] == 1.0 and result["metrics"]["hybrid"]["recall@1"] == 1.0
    assert result["index"]["chunks"] == 3 and result["problems"] == 3
    assert {s["mode"] for s in result["samples"]} == {"vector", "bm25", "hybrid"}
