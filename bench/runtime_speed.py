"""ORT vs PyTorch eager generation speed, same model, same run: prints JSON.

Model: the embedded default completer (Qwen2.5-Coder-0.5B-Instruct GGUF, real weights) exported fp32 and int8.
Each case: a 128-token prompt (fixed random ids), 64 new tokens greedy with EOS ignored, batch 1 and 8;
median of --repeats runs after one warm-up. first_token_s = prefill + first token; decode_tokens_per_s counts
the tokens after the first per row; tokens_per_s = all new tokens / wall time.

    .venv/bin/python bench/runtime_speed.py [--models-dir DIR] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def ort_case(lm, prompts, new_tokens: int) -> dict:
    from plusls.exported import GenerationConfig

    cfg = GenerationConfig(max_new_tokens=new_tokens, stop_on_eos=False)
    out = lm.generate_ids(prompts, cfg)
    total = out[0].total_s
    first = out[0].first_token_s
    return {"first_token_s": first, "total_s": total}


def torch_case(model, prompts, new_tokens: int) -> dict:
    import torch

    ids = torch.tensor(prompts)
    mask = torch.ones_like(ids)
    kw = dict(attention_mask=mask, do_sample=False, pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        t = time.perf_counter()
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)
        first = time.perf_counter() - t
        t = time.perf_counter()
        model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kw)
        total = time.perf_counter() - t
    return {"first_token_s": first, "total_s": total}


def measure(fn, repeats: int, batch: int, new_tokens: int) -> dict:
    fn()  # warm-up
    runs = [fn() for _ in range(repeats)]
    first = statistics.median(r["first_token_s"] for r in runs)
    total = statistics.median(r["total_s"] for r in runs)
    return {
        "batch": batch,
        "first_token_s": round(first, 4),
        "total_s": round(total, 3),
        "tokens_per_s": round(batch * new_tokens / total, 1),
        "decode_tokens_per_s": round(batch * (new_tokens - 1) / max(total - first, 1e-9), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from plusls.common.paths import default_models_dir
    from plusls.exported import CausalLM
    from plusls.exported.defaults import COMPLETER, ensure_default
    from plusls.exported.export import export_model
    from plusls.exported.export.sources import materialize_gguf

    models = Path(args.models_dir) if args.models_dir else default_models_dir()
    int8_dir = ensure_default(COMPLETER, models, print)  # what the server runs
    fp32_dir = models / (COMPLETER.name + "-fp32")
    if not (fp32_dir / "manifest.json").exists():
        export_model(COMPLETER.source(), "causal-lm", fp32_dir, force=True)
    with tempfile.TemporaryDirectory() as tmp:
        materialize_gguf(COMPLETER.source(), Path(tmp))
        model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32).eval()
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    results = []
    for batch in (1, 8):
        prompts = rng.integers(100, 49000, size=(batch, args.prompt_tokens)).tolist()
        row = {"batch": batch}
        row["pytorch_eager_fp32"] = measure(lambda: torch_case(model, prompts, args.new_tokens), args.repeats,
                                            batch, args.new_tokens)
        for name, d in (("ort_fp32", fp32_dir), ("ort_int8", int8_dir)):
            lm = CausalLM(d)
            row[name] = measure(lambda: ort_case(lm, prompts, args.new_tokens), args.repeats, batch, args.new_tokens)
        base = row["pytorch_eager_fp32"]["tokens_per_s"]
        row["speedup_tokens_per_s"] = {k: round(row[k]["tokens_per_s"] / base, 2) for k in ("ort_fp32", "ort_int8")}
        results.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({
        "bench": "runtime_speed",
        "model": f"{COMPLETER.name} and its fp32 export (ONNX) vs transformers eager",
        "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens, "repeats": args.repeats,
        "threads": threads, "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d"), "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
