"""plusls's runtime against llama.cpp's llama-bench on the same GGUF, in one run; prints JSON.

plusls: the default completer's export (or MODEL_DIR), prefill of --prompts random tokens (logits at the last
position only, as completion reads them) and --decode greedy steps after a 128-token prompt, median of --repeats
after a warm-up. llama.cpp: `llama-bench -p PROMPTS -n DECODE -t THREADS -r REPEATS -o json` on the GGUF the
export came from. Both on --threads threads. llama-bench is found in ../shared/tools/build-llama-bench.sh's cache
(~/.cache/plusls-anchors) or given with --llama-bench; build it once with that script (minutes; never in CI).

    .venv/bin/python bench/vs_llamacpp.py [MODEL_DIR] [--gguf F] [--llama-bench BIN] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from plusls.common.paths import default_models_dir
from plusls.exported import CausalLM
from plusls.exported.defaults import COMPLETER, ensure_default
from plusls.exported.sessions import RuntimeOptions

ANCHOR = Path.home() / ".cache" / "plusls-anchors" / "llama.cpp" / "build" / "bin" / "llama-bench"


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def plusls_speed(lm: CausalLM, prompts: list[int], decode: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for n in prompts:
        ids = rng.integers(100, 30000, size=(1, n)).astype(np.int64)
        s = timed(lambda: lm.forward(ids, np.ones_like(ids), np.arange(n)[None], lm.empty_past(1), 1), repeats)
        out[f"prefill_{n}_tokens_per_s"] = round(n / s, 1)
    ids = rng.integers(100, 30000, size=(1, 128)).astype(np.int64)
    # The cache the server decodes with (a fused graph's buffers, written in place: each repeat rewinds to 128).
    _, past = lm.forward(ids, np.ones_like(ids), np.arange(128)[None], lm.new_cache(), 1)

    def steps() -> None:
        p, token = past, np.array([[1000]], np.int64)
        for i in range(decode):
            logits, p = lm.forward(token, np.ones((1, 129 + i), np.int64), np.array([[128 + i]]), p, 1)
            token = logits[:, -1].argmax(-1)[:, None].astype(np.int64)

    out["decode_tokens_per_s"] = round(decode / timed(steps, repeats), 1)
    return out


def llamacpp_speed(binary: Path, gguf: Path, prompts: list[int], decode: int, threads: int, repeats: int) -> dict:
    cmd = [str(binary), "-m", str(gguf), "-p", ",".join(map(str, prompts)), "-n", str(decode), "-t", str(threads),
           "-r", str(repeats), "-o", "json"]
    rows = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    out = {}
    for r in rows:
        key = f"prefill_{r['n_prompt']}_tokens_per_s" if r["n_prompt"] else "decode_tokens_per_s"
        out[key] = round(float(r["avg_ts"]), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", help="an exported causal-lm directory (default: the embedded completer)")
    ap.add_argument("--gguf", help="the GGUF it came from (default: the embedded completer's)")
    ap.add_argument("--llama-bench", default=str(ANCHOR))
    ap.add_argument("--prompts", default="128,512")
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    directory = Path(args.model) if args.model else ensure_default(COMPLETER, default_models_dir())
    gguf = Path(args.gguf) if args.gguf else COMPLETER.source(log=lambda m: None)  # joined and checked once
    binary = Path(args.llama_bench)
    if not binary.is_file():
        raise SystemExit(f"no llama-bench at {binary}: build it with ../shared/tools/build-llama-bench.sh "
                         "(minutes, once) or pass --llama-bench BIN")
    prompts = [int(n) for n in args.prompts.split(",")]
    lm = CausalLM(directory, RuntimeOptions(intra_op_threads=args.threads))
    ours = plusls_speed(lm, prompts, args.decode, args.repeats)
    del lm
    theirs = llamacpp_speed(binary, gguf, prompts, args.decode, args.threads, args.repeats)
    ratio = {k: round(ours[k] / theirs[k], 2) for k in ours if theirs.get(k)}
    print(json.dumps({"bench": "vs_llamacpp", "model": str(directory), "gguf": str(gguf), "threads": args.threads,
                      "machine": f"{platform.machine()}, {platform.platform()}, {os.cpu_count()} cpus",
                      "date": time.strftime("%Y-%m-%d"), "plusls": ours, "llama_cpp": theirs,
                      "plusls_over_llama_cpp": ratio,
                      "targets": {"decode": ">= 1.0", "prefill": ">= 1.5"}}, indent=2))


if __name__ == "__main__":
    main()
