"""The README's quality table from `plusls eval --json` result files: one Markdown row per run.

Each row carries the figures, the problems it covered, the prompt format, the date, the machine and the exact
command, so anyone can rerun it.

    .venv/bin/plusls eval humaneval --prompt-format chatml --json bench/results/he.json
    .venv/bin/python bench/eval_table.py bench/results/*.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def shown(name: str, value: float) -> str:
    last = name.split()[-1]
    return f"{name} {100 * value:.2f}%" if last.startswith(("pass@", "exact_match")) else f"{name} {value:.2f}"


def scores(metrics: dict) -> str:
    flat = {}
    for key, value in metrics.items():
        flat.update({f"{key} {k}": v for k, v in value.items()} if isinstance(value, dict) else {key: value})
    return ", ".join(shown(k, v) for k, v in flat.items())


def row(result: dict) -> str:
    s, m = result["settings"], result["machine"]
    subset = f" ({result['subset']})" if result.get("subset") else ""
    sampling = f"{s['samples']} x T={s['temperature']}" if s["samples"] > 1 else "greedy"
    return (f"| {result['task']}{subset} | {result['model']['name']} | {scores(result['metrics'])} | "
            f"{result['problems']} | {s['prompt_format']}, {sampling} | {result['started'][:10]} | "
            f"{m['cpu']}, {m['cores']} cores | `{result['command']}` |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="files written by plusls eval --json")
    args = parser.parse_args()
    print("| task | model | scores | problems | prompt, sampling | date | machine | command |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.results:
        print(row(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
