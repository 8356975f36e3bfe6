"""--report: numbers shown as people read them, published figures labelled, plots written."""
from __future__ import annotations

from pathlib import Path

from plusls.evaluation.report import write_report


def result(task: str, metrics: dict, samples: list[dict]) -> dict:
    return {
        "task": task, "metrics": metrics, "problems": len(samples), "samples": samples, "data": "d",
        "settings": {"samples": 1, "temperature": 0.0, "top_p": 0.95, "seed": 0, "batch_size": 1,
                     "prompt_format": "raw", "limit": 2},
        "model": {"name": "m", "kind": "causal-lm", "providers": ["CPUExecutionProvider"],
                  "manifest": {"architecture": "LlamaForCausalLM", "quantization": None}},
        "latency": {"median_s": 0.5, "p90_s": 0.9, "median_first_token_s": 0.1, "tokens_per_s": 20.0},
        "statuses": {"passed": 1, "failed": 1}, "sandbox": None, "started": "2026-01-01T00:00:00Z",
        "command": "plusls eval x", "duration_s": 3.0,
        "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 8, "os": "Linux", "python": "3.11",
                    "onnxruntime": "1.32", "plusls": "0.1.0", "git_commit": None},
    }


SAMPLES = [{"latency_s": 0.4, "new_tokens": 8, "status": "passed", "error": ""},
           {"latency_s": 0.9, "new_tokens": 12, "status": "failed", "error": "AssertionError"}]


def test_humaneval_report_sets_the_run_beside_published_figures(tmp_path: Path):
    files = write_report(result("humaneval", {"pass@1": 0.5}, SAMPLES), tmp_path / "r.md")
    assert [f.name for f in files] == ["r.md", "r-scores.png", "r-latency.png"]
    text = (tmp_path / "r.md").read_text()
    assert "| pass@1 | 50.00% |" in text
    assert "codegen-350M-mono (CodeGen, arXiv 2203.13474) | pass@1 12.76%" in text
    assert "pass@1 35.00%, pass@10 54.50%" in text and "not run here" in text
    assert "Most common failures: AssertionError (1)" in text


def test_per_mode_metrics_are_shown_as_percentages(tmp_path: Path):
    metrics = {"fim": {"exact_match": 0.25, "pass@1": 1.0}, "prefix": {"exact_match": 0.0, "pass@1": 0.5}}
    write_report(result("infilling", metrics, SAMPLES), tmp_path / "i.md")
    text = (tmp_path / "i.md").read_text()
    assert "| fim exact_match | 25.00% |" in text and "| prefix pass@1 | 50.00% |" in text
    assert "published" not in text  # no paper figure for this task


def test_bleu_is_shown_on_its_own_scale_and_no_latency_plot_without_a_model(tmp_path: Path):
    res = result("summarize", {"bleu4": 12.68, "rouge_l": 31.06}, [{"latency_s": 0.0, "new_tokens": 0}])
    files = write_report(res, tmp_path / "s.md")
    assert [f.name for f in files] == ["s.md", "s-scores.png"]
    assert "| bleu4 | 12.68 |" in (tmp_path / "s.md").read_text()
