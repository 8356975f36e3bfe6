"""`plusls eval` as a function: resolve the model and task, sample, score, and record everything."""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from plusls.common.progress import clock

from .errors import EvalError
from .generators import resolve
from .prompts import CHATML_TOKENS
from .record import machine, utc_now
from .report import FRACTION_METRICS, write_report
from .sampling import Context, Settings
from .sandbox import MODES, Limits, Sandbox
from .tasks import get_task


@dataclass
class EvalOptions:
    task: str
    model: str | None = None  # a model directory, a baseline name, or None for the default model
    data: str | None = None
    limit: int | None = None
    settings: Settings = field(default_factory=Settings)
    sandbox: str = "auto"
    memory_mb: int = 2048
    infill_mode: str = "auto"
    subset: str = "single"
    rerank: str | None = None  # search: "completer" or a model directory that reranks hybrid's top results
    json_path: str | None = None
    report_path: str | None = None
    command: str = ""
    models_dir: str | None = None


def check(options: EvalOptions) -> None:
    """Reject bad combinations before loading anything."""
    s = options.settings
    task = get_task(options.task)
    if options.limit is not None and options.limit < 1:
        raise EvalError("--limit must be at least 1")
    if s.samples < 1:
        raise EvalError("--samples must be at least 1")
    if s.samples > 1 and s.temperature <= 0:
        raise EvalError("--samples > 1 needs --temperature > 0 (greedy decoding gives the same sample each time)")
    if not 0 < s.top_p <= 1:
        raise EvalError("--top-p must be in (0, 1]")
    if s.prompt_format not in task.formats:
        raise EvalError(f"{task.name} supports --prompt-format {', '.join(task.formats)}, not {s.prompt_format}")
    if options.sandbox not in MODES:
        raise EvalError(f"--sandbox must be one of {', '.join(MODES)}")


def run_eval(options: EvalOptions, progress: TextIO | None = None) -> dict[str, Any]:
    check(options)
    task = get_task(options.task)
    generator = resolve(options.model, task.needs, task.name, Path(options.models_dir) if options.models_dir else None)
    has_token = getattr(generator, "has_token", lambda _token: True)  # baselines take any format
    if options.settings.prompt_format == "chatml" and not all(map(has_token, CHATML_TOKENS)):
        raise EvalError(f"--prompt-format chatml needs a tokenizer with {' and '.join(CHATML_TOKENS)}")
    sandbox = None
    if task.needs == "causal-lm":
        sandbox = Sandbox(Limits(memory_bytes=options.memory_mb << 20), mode=options.sandbox)
    ctx = Context(generator, options.settings, sandbox, progress,
                  {"infill_mode": options.infill_mode, "subset": options.subset, "rerank": options.rerank})
    started, t0 = utc_now(), time.perf_counter()
    outcome = task.run(ctx, options.data, options.limit)
    samples = outcome.pop("samples")
    result = {
        "task": task.name,
        "metrics": outcome.pop("metrics"),
        **outcome,
        "model": generator.describe(),
        "settings": {**asdict(options.settings), "limit": options.limit},
        "latency": latency_summary(samples),
        "sandbox": sandbox.describe() if sandbox else None,
        "machine": machine(),
        "command": options.command,
        "started": started,
        "duration_s": round(time.perf_counter() - t0, 2),
        "samples": samples,
    }
    if result.get("statuses", {}).get("error"):
        result["warning"] = "some programs could not be run by the sandbox (status 'error'); see their 'error'"
    if options.json_path:
        Path(options.json_path).write_text(json.dumps(result, indent=1) + "\n")
    if options.report_path:

        result["report_files"] = [str(p) for p in write_report(result, Path(options.report_path))]
    return result


def latency_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-sample generation latency and tokens: medians and p90, over samples that ran a model."""
    lat = [s["latency_s"] for s in samples if s.get("new_tokens")]
    if not lat:
        return {}
    toks = [s["new_tokens"] for s in samples if s.get("new_tokens")]
    ordered = sorted(lat)
    return {
        "samples": len(lat),
        "median_s": round(statistics.median(lat), 4),
        "p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 4),
        "median_new_tokens": statistics.median(toks),
        "tokens_per_s": round(sum(toks) / sum(lat), 2) if sum(lat) > 0 else None,
        "median_first_token_s": round(statistics.median(s["first_token_s"] for s in samples if s.get("new_tokens")), 4),
    }


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    def fmt(metrics: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:.2%}" if k.startswith(FRACTION_METRICS) else f"{k} {v:.2f}"
                         for k, v in metrics.items())

    m = result["metrics"]
    scores = "; ".join(f"{mode}: {fmt(v)}" for mode, v in m.items()) if m and isinstance(next(iter(m.values())),
                                                                                         dict) else fmt(m)
    s = result["settings"]
    lines = [f"{result['task']}: {scores}",
             f"  {result['problems']} problems x {s['samples']} sample(s), model {result['model']['name']}, "
             f"prompt {s['prompt_format']}, temperature {s['temperature']}, {clock(result['duration_s'])}"]
    if result.get("statuses"):
        lines.append("  programs: " + ", ".join(f"{k} {v}" for k, v in sorted(result["statuses"].items())))
    if result.get("latency"):
        lat = result["latency"]
        lines.append(f"  generation: median {lat['median_s']:.2f} s per sample, {lat['tokens_per_s']} tokens/s")
    if result.get("warning"):
        lines.append(f"  warning: {result['warning']}")
    for path in result.get("report_files", []):
        lines.append(f"  report: {path}")
    return "\n".join(lines)
