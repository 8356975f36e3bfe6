"""Where the cursor's line goes in the FIM prompt, measured on mid-line suggestions; prints JSON.

`line-after-middle` (what the server does): prefix above the line, suffix, then the line's start after the middle
marker, so a keystroke changes only the prompt's last tokens and the suffix's key/values are reused.
`psm`: prefix-suffix-middle as the model was trained, the line's start in the prefix (what llama-server's /infill
builds); a keystroke then re-reads the suffix.

Positions: `--lines` lines of real code from this repository's packages (written after the model was trained),
every k-th line with at least 12 characters of code, the cursor `--at` of the way into its code; the document holds
everything above and every line below, the rest of the cursor's line not yet typed. Each position is asked of a
Completer as the server asks it (token healing, filters, prefix reuse, no retrieval), one layout after the other
on the same model. Exact: the suggestion's first line is the rest of the real line (trailing space ignored).

    .venv/bin/python bench/fim_layout.py [MODEL_DIR] [--lines 150] [--at 0.4]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from plusls.common.metrics import edit_similarity
from plusls.common.paths import default_models_dir
from plusls.completion.completer import Completer
from plusls.completion.prompt import Cursor
from plusls.completion.settings import CompletionSettings
from plusls.exported import CausalLM
from plusls.exported.defaults import COMPLETER, ensure_default
from plusls.exported.generation import CancelToken

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("indexer", "completion", "server", "docstrings", "common", "exported", "evaluation", "training")


def positions(lines: int, at: float) -> list[tuple[str, str, int, str]]:
    """(path, document text, cursor offset, the rest of the line) for `lines` lines spread over the packages."""
    candidates = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            text = path.read_text()
            offset = 0
            for line in text.split("\n"):
                code = line.strip()
                if len(code) >= 12 and not code.startswith(("#", '"""', "'")):
                    indent = len(line) - len(line.lstrip())
                    cut = indent + max(1, int(len(code) * at))
                    candidates.append((str(path.relative_to(ROOT)), text, offset + cut, line[cut:]))
                offset += len(line) + 1
    step = max(1, len(candidates) // lines)
    out = []
    for path, text, cursor, rest in candidates[::step][:lines]:
        end = text.find("\n", cursor)
        out.append((path, text[:cursor] + text[end:], cursor, rest))
    return out


def run(lm: CausalLM, line_after_middle: bool, cases) -> dict:
    completer = Completer(lambda: lm, CompletionSettings(retrieval=False, context_tokens=1024),
                          line_after_middle=line_after_middle)
    exact, similarity, times = [], [], []
    for path, text, cursor, rest in cases:
        t0 = time.perf_counter()
        shown = completer.suggest(path, Cursor(text, cursor, "python", path), CancelToken())
        times.append(time.perf_counter() - t0)
        guess = (shown.text if shown else "").split("\n")[0].rstrip()
        exact.append(guess == rest.rstrip())
        similarity.append(edit_similarity(rest.rstrip(), guess))
    a = np.array(times) * 1000
    return {"exact": round(float(np.mean(exact)), 4), "edit_similarity": round(float(np.mean(similarity)), 4),
            "p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "prompt_tokens": completer.stats.prompt_tokens, "reused_tokens": completer.stats.reused_tokens}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model", nargs="?", help="exported causal-lm directory (default: the embedded 0.5B)")
    p.add_argument("--lines", type=int, default=150)
    p.add_argument("--at", type=float, default=0.4)
    args = p.parse_args()
    model = Path(args.model) if args.model else ensure_default(COMPLETER, default_models_dir(), log=lambda m: None)
    lm = CausalLM(model)
    cases = positions(args.lines, args.at)
    results = {name: run(lm, after, cases) for name, after in (("line-after-middle", True), ("psm", False))}
    cpu = "avx512_vnni" if "avx512_vnni" in Path("/proc/cpuinfo").read_text() else "avx2"
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, {cpu}, "
                      f"{platform.processor() or platform.machine()}", "model": model.name, "positions": len(cases),
                      "cursor_at": args.at, "layouts": results}, indent=2))


if __name__ == "__main__":
    main()
