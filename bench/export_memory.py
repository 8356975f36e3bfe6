"""Time and peak memory of exporting the default completers from their GGUF files, as a fresh machine does; prints
JSON.

Each installed default completer (or --gguf F) is exported with `plusls export F --kind causal-lm --int8` into a
temporary folder by a child process of its own, whose peak resident memory (ru_maxrss) is read when it ends: the
figure a laptop must have free. `machine` names the CPU and its int8 features (`completion/speed.py`).

    .venv/bin/python bench/export_memory.py [--gguf F ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plusls.completion.speed import machine
from plusls.exported.defaults import installed_completers


def export(gguf: Path, out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "plusls.cli", "export", str(gguf), "--kind", "causal-lm", "--int8",
                    "--out", str(out)], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far: run smallest first
    size = sum(f.stat().st_size for f in out.iterdir())
    return {"gguf": gguf.name, "seconds": round(seconds, 1), "peak_rss_gb": round(peak_kb / 1e6, 2),
            "peak_is_this_export": peak_kb > before, "export_gb": round(size / 1e9, 2)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--gguf", action="append", help="a GGUF file (default: each installed default completer's)")
    args = p.parse_args()
    ggufs = [Path(g) for g in args.gguf] if args.gguf else [m.source(log=lambda s: None)
                                                             for m in reversed(installed_completers())]
    ggufs.sort(key=lambda g: g.stat().st_size)
    with tempfile.TemporaryDirectory(prefix="plusls-export-bench-") as tmp:
        runs = [export(g, Path(tmp) / g.stem) for g in ggufs]
    print(json.dumps({"bench": "export_memory", "date": time.strftime("%Y-%m-%d"),
                      "machine": machine(["CPUExecutionProvider"]), "cpus": os.cpu_count(),
                      "target": "peak_rss_gb < 6 for the 1.5B", "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
