"""Prefill cost with logits at every position (what exports before logits_to_keep computed) vs at the last one
(what plain completion reads), same model, same run; prints JSON.

    .venv/bin/python bench/prefill_logits.py [MODEL_DIR] [--lengths 128,512] [--repeats 3]

MODEL_DIR: an exported causal-lm directory with the logits_to_keep input (default: the embedded completer).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from plusls.common.paths import default_models_dir
from plusls.exported import CausalLM
from plusls.exported.defaults import COMPLETER, ensure_default


def prefill_s(lm: CausalLM, ids: np.ndarray, keep: int | None, repeats: int) -> float:
    mask, pos = np.ones_like(ids), np.arange(ids.shape[1])[None]
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        lm.forward(ids, mask, pos, lm.empty_past(1), keep)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--lengths", default="128,512")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    directory = Path(args.model) if args.model else ensure_default(COMPLETER, default_models_dir())
    lm = CausalLM(directory)
    if not lm.keeps_logits:
        raise SystemExit(f"{directory} has no logits_to_keep input: export it again with this plusls")
    rng = np.random.default_rng(0)
    rows = []
    for n in map(int, args.lengths.split(",")):
        ids = rng.integers(100, 30000, size=(1, n)).astype(np.int64)
        every, last = prefill_s(lm, ids, None, args.repeats), prefill_s(lm, ids, 1, args.repeats)
        rows.append({"prompt_tokens": n, "all_positions_s": round(every, 3), "last_position_s": round(last, 3),
                     "tokens_per_s": {"all": round(n / every, 1), "last": round(n / last, 1)},
                     "speedup": round(every / last, 2)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"bench": "prefill_logits", "model": str(directory), "providers": lm.providers,
                      "threads": os.cpu_count(), "machine": f"{platform.machine()}, {platform.platform()}",
                      "date": time.strftime("%Y-%m-%d"), "results": rows}))


if __name__ == "__main__":
    main()
