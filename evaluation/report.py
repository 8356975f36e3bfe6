"""`--report F`: a Markdown page plus PNG plots (scores beside published figures, latency histogram)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .errors import EvalError

# Figures from the seeds' papers (not measured here), drawn hatched and labelled "published".
PUBLISHED: dict[str, list[tuple[str, dict[str, float], str]]] = {
    "humaneval": [
        ("codegen-350M-mono", {"pass@1": 0.1276}, "CodeGen, arXiv 2203.13474"),
        ("InstructCodeT5+ 16B", {"pass@1": 0.350, "pass@10": 0.545}, "CodeT5+, arXiv 2305.07922"),
    ],
}
FRACTION_METRICS = ("pass@", "exact_match")  # stored as 0..1, shown as %


def _is_fraction(metric: str) -> bool:
    return metric.split()[-1].startswith(FRACTION_METRICS)  # "pass@1", or per mode: "fim exact_match"


def _shown(metric: str, value: float) -> str:
    return f"{100 * value:.2f}%" if _is_fraction(metric) else f"{value:.2f}"


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """{'pass@1': x} or, for per-mode results, {'fim pass@1': x, 'prefix pass@1': y}."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update({f"{key} {k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _plots(result: dict[str, Any], stem: Path) -> list[Path]:
    try:
        import matplotlib
    except ImportError as e:
        raise EvalError("--report needs matplotlib: pip install 'plusls[eval]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    metrics = _flat_metrics(result["metrics"])
    published = PUBLISHED.get(result["task"], [])
    names = list(metrics)
    series = [(f"this run: {result['model']['name']}", metrics, None)]
    series += [(f"{name} (published)", figs, "//") for name, figs, _ in published]
    scale = lambda m, v: 100 * v if _is_fraction(m) else v  # noqa: E731
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names) * len(series) ** 0.5 + 2), 4.2))
    for i, (label, figs, hatch) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        values = [scale(m, figs[m]) if m in figs else 0.0 for m in names]
        bars = ax.bar(xs, values, width, label=label, hatch=hatch, edgecolor="black", linewidth=0.6,
                      alpha=0.55 if hatch else 0.9)
        for bar, m in zip(bars, names):
            if m in figs:
                ax.annotate(_shown(m, figs[m]), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("% (pass@k, exact match)" if any(map(_is_fraction, names)) else "score (0-100)")
    top = max([scale(m, v) for m, v in metrics.items()] + [scale(m, v) for _, f, _ in published for m, v in f.items()])
    ax.set_ylim(0, max(10.0, top * 1.25))
    s = result["settings"]
    ax.set_title(f"{result['task']}: {result['problems']} problems, {s['samples']} sample(s), "
                 f"prompt {s['prompt_format']}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    if published:
        fig.subplots_adjust(bottom=0.16)
        fig.text(0.5, 0.01, "hatched = published: the papers' figures on the full benchmark, not run here",
                 ha="center", va="bottom", fontsize=8, style="italic")
    path = stem.with_name(stem.name + "-scores.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(path)

    latencies = [r["latency_s"] for r in result["samples"] if r.get("new_tokens")]
    if latencies:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.hist(latencies, bins=min(30, max(5, len(latencies) // 3)), color="#4878a8", edgecolor="black",
                linewidth=0.5)
        median = result["latency"]["median_s"]
        ax.axvline(median, color="#c44e52", linestyle="--", label=f"median {median:.2f} s")
        ax.set_xlabel("generation latency per sample (s)")
        ax.set_ylabel("samples")
        ax.set_title(f"{result['task']}, {result['model']['name']}: {len(latencies)} samples, "
                     f"{result['latency']['tokens_per_s']} tokens/s", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = stem.with_name(stem.name + "-latency.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def _table(rows: list[tuple[str, str]], head: tuple[str, str] = ("", "")) -> list[str]:
    return [f"| {head[0]} | {head[1]} |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]


def markdown(result: dict[str, Any], images: list[Path]) -> str:
    s, model, m = result["settings"], result["model"], result["machine"]
    manifest = model.get("manifest") or {}
    out = [f"# plusls eval {result['task']}", "",
           f"{result['started']} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), "
           f"`{result['command']}`", ""]
    out += ["## Scores", ""]
    out += _table([(k, _shown(k, v)) for k, v in _flat_metrics(result["metrics"]).items()], ("metric", "this run"))
    published = PUBLISHED.get(result["task"])
    if published:
        out += ["", "Published figures (from the papers, full benchmark, not run here):", ""]
        out += _table([(f"{name} ({src})", ", ".join(f"{k} {_shown(k, v)}" for k, v in figs.items()))
                       for name, figs, src in published], ("model", "published"))
    out += ["", *(f"![{p.stem}]({p.name})" for p in images), ""]
    if result.get("statuses"):
        errors = Counter(r.get("error", "").split(":")[0] for r in result["samples"] if r.get("status") != "passed")
        out += ["## Programs", "", ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items())), ""]
        if errors:
            out += ["Most common failures: " + ", ".join(f"{k or 'no output'} ({v})" for k, v in errors.most_common(6)),
                    ""]
    out += ["## Setup", ""]
    rows = [("model", f"{model['name']} ({model['kind']})"),
            ("architecture", f"{manifest.get('architecture', '-')}, quantization {manifest.get('quantization')}"),
            ("providers", ", ".join(model.get("providers", [])) or "-"),
            ("problems", f"{result['problems']}" + (f" (--limit {s['limit']})" if s.get("limit") else "")),
            ("sampling", f"{s['samples']} sample(s), temperature {s['temperature']}, top-p {s['top_p']}, "
                         f"seed {s['seed']}, batch {s['batch_size']}"),
            ("prompt format", s["prompt_format"]),
            ("data", f"`{result.get('data')}`")]
    if result.get("latency"):
        lat = result["latency"]
        rows.append(("latency", f"median {lat['median_s']} s, p90 {lat['p90_s']} s, first token "
                                f"{lat['median_first_token_s']} s, {lat['tokens_per_s']} tokens/s"))
    if result.get("sandbox"):
        sb = result["sandbox"]
        rows.append(("sandbox", f"{sb['mode']}: {sb['network']}; {sb['filesystem']}; {sb['user']}; "
                                f"timeout {sb['limits']['timeout_s']} s"))
    rows += [("machine", f"{m['os']}, Python {m['python']}, onnxruntime {m['onnxruntime']}, plusls {m['plusls']}"
                         + (f" ({m['git_commit']})" if m.get("git_commit") else "")),
             ("duration", f"{result['duration_s']} s")]
    out += _table(rows)
    return "\n".join(out) + "\n"


def write_report(result: dict[str, Any], path: Path) -> list[Path]:
    """Write the Markdown report to `path` and its plots beside it; returns every file written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = _plots(result, path.with_suffix(""))
    path.write_text(markdown(result, images))
    return [path, *images]
