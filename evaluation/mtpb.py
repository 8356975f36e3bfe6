"""MTPB, CodeGen's Multi-Turn Programming Benchmark (Nijkamp et al. 2022): 115 problems of 3-8 turns.

As in the paper: the prompts are filled with one test case's inputs; each turn's prompt is appended, as a
comment, to the conversation so far (earlier prompts and generated code); the completion is truncated and
appended; at the end the program runs and its last printed value must equal the expected output.
Each (problem, test case) is one unit; pass@1 over units is the paper's "pass rate".
"""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from plusls.common.jsonl import read_jsonl
from plusls.common.progress import Progress

from .datasets import find_file, require_keys
from .generators import Request
from .passk import mean_pass_at_k
from .sampling import Context, collect_outcomes, pass_counts, status_counts

FOLDER, FILE = "mtpb", "mtpb.jsonl"
KEYS = ("id", "prompts", "inputs", "outputs")
PREFIX = "# Import libraries.\n\nimport numpy as np\n\n"  # the conversation's start in CodeGen's sampler
DEFAULT_MAX_NEW_TOKENS = 256  # CodeGen's default when a problem gives no max_gen_length
# CodeGen's terminals, plus a closing code fence (chat-trained models close their block, then explain it).
STOPS = ("\n#", '\n"""', "\n'''", "\n\n\n", "\n```")
_TERMINALS = [re.compile(p, re.MULTILINE) for p in (r"^#", r"^'''", r'^"""', r"\n\n\n", r"^```")]


def truncate(completion: str) -> str:
    """CodeGen's cut of one turn: before a second top-level print or def, a top-level comment or docstring
    start, or two blank lines (and, added here, a closing code fence)."""
    for keyword in ("print", "def"):
        starts = [m.start() for m in re.finditer(rf"^{keyword}", completion, re.MULTILINE)]
        if len(starts) > 1:
            completion = completion[: starts[1]]
    cuts = [m.start() for m in (t.search(completion) for t in _TERMINALS) if m]
    return completion[: min(cuts)] if cuts else completion


def turn(prompt: str) -> str:
    return f"# {prompt}\n"


# Runs inside the sandbox. CodeGen's scoring: make the last statement print (if it does not already),
# capture print calls, take the first argument of the last one, compare with the expected output after its
# conversions. Unlike CodeGen's check, dict and None outputs compare with == instead of always failing.
CHECKER = r'''
import ast, json

CODE = json.loads({code!r})
EXPECTED = json.loads({expected!r})
try:
    import numpy as np
except ImportError:
    np = None


def printing_last(code):
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body else None
    value = getattr(last, "value", None)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id.startswith("print"):
        return code
    if isinstance(last, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign)) and value is not None:
        last.value = ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[value], keywords=[])
        ast.fix_missing_locations(tree)
        return ast.unparse(tree)
    return code


def equivalent(o1, o2):
    if type(o1).__name__ == "Series":
        o1, o2 = o1.to_numpy(), (np.array(o2) if np else o2)
    elif isinstance(o1, list) and o1 and isinstance(o1[0], tuple):
        o1 = [list(t) for t in o1]
    elif np is not None and isinstance(o1, np.bool_):
        o1 = bool(o1)
    elif np is not None and isinstance(o1, np.integer):
        o1 = int(o1)
    elif np is not None and isinstance(o1, np.floating):
        o1 = float(o1)
    elif np is not None and isinstance(o1, np.ndarray):
        o1 = o1.tolist()
    if type(o1) != type(o2):
        if type(o2) == bool:
            o1, o2 = str(o1), str(o2)
        else:
            o1 = type(o2)(o1)
    if isinstance(o1, float):
        return abs(o1 - o2) < 1e-6
    if np is not None and isinstance(o1, np.ndarray):
        return bool(np.allclose(o1, o2))
    if isinstance(o1, (str, int, set, list, bool, tuple, dict, type(None))):
        return o1 == o2
    raise ValueError(f"unsupported output type {{type(o1)}}")


printed = []
_print = print


def capture(*args, **kwargs):
    printed.append(args)
    _print(*args, **kwargs)


try:
    code = printing_last(CODE)
except SyntaxError:
    code = CODE
try:
    exec(compile(code, "conversation.py", "exec"), {{"__name__": "__main__", "print": capture}})
except Exception as e:  # as in CodeGen: what counts is the last value printed before any error
    _print(f"error: {{e!r}}")
assert printed and printed[-1], "nothing was printed"
out = printed[-1][0]
assert equivalent(out, EXPECTED), f"printed {{out!r}}, expected {{EXPECTED!r}}"
'''


def program(conversation: str, expected: Any) -> str:
    return CHECKER.format(code=json.dumps(conversation), expected=json.dumps(expected))


def load(data: str | None, limit: int | None) -> tuple[str, list[dict[str, Any]]]:
    path = find_file(data, FOLDER, FILE)
    rows = require_keys(read_jsonl(path), KEYS, path)
    return str(path), sorted(rows, key=lambda r: int(r["id"]))[:limit]


class MTPB:
    name = "mtpb"
    needs = "causal-lm"
    formats = ("raw", "fence")
    timeout_s = 10.0

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]:
        path, problems = load(data, limit)
        n = ctx.settings.samples
        start = "```python\n" + PREFIX if ctx.settings.prompt_format == "fence" else PREFIX
        stops = STOPS + (("```",) if ctx.settings.prompt_format == "fence" else ())
        units = sum(len(p["inputs"]) for p in problems) * n
        progress = Progress(self.name, units, ctx.progress_stream)
        records: list[dict[str, Any]] = []
        futures = []
        with ThreadPoolExecutor(max_workers=max(1, ctx.settings.workers)) as pool:
            for p in problems:
                max_new = p.get("max_gen_length") or DEFAULT_MAX_NEW_TOKENS
                for case, (inputs, expected) in enumerate(zip(p["inputs"], p["outputs"])):
                    turns = [turn(t.format(**inputs)) for t in p["prompts"]]
                    for record, conversation in self._sample(ctx, f"{p['id']}/{case}", turns, max_new, start, stops):
                        records.append(record)
                        future = pool.submit(ctx.sandbox.run, program(conversation, expected),
                                             ctx.settings.timeout_s or self.timeout_s)
                        future.add_done_callback(lambda _f: progress.advance())
                        futures.append((record, future))
            collect_outcomes(futures)
        progress.close()
        return {
            "data": path,
            "problems": len(problems),
            "units": "one (problem, test case) pair; pass@1 is CodeGen's pass rate",
            "metrics": mean_pass_at_k(pass_counts(records)),
            "statuses": status_counts(records),
            "samples": records,
        }

    def _sample(self, ctx: Context, unit: str, turns: list[str], max_new: int, start: str,
                stops: tuple[str, ...]) -> list[tuple[dict[str, Any], str]]:
        """n conversations for one unit, advanced turn by turn (in batches of --batch-size)."""
        n, size = ctx.settings.samples, max(1, ctx.settings.batch_size)
        histories = [start] * n
        code = [PREFIX] * n  # what runs: the conversation without the fence
        stats = [{"prompt_tokens": 0, "new_tokens": 0, "latency_s": 0.0, "first_token_s": 0.0, "turns": []}
                 for _ in range(n)]
        for t, prompt in enumerate(turns):
            for lo in range(0, n, size):
                rows = range(lo, min(n, lo + size))
                requests = [Request(text=histories[i] + prompt, stops=stops) for i in rows]
                outs = ctx.generator.generate(requests, ctx.config(max_new, f"{unit}/{lo}/{t}", stops))
                for i, g in zip(rows, outs):
                    piece = f"{truncate(g.text)}\n\n"
                    histories[i] += prompt + piece
                    code[i] += prompt + piece
                    s = stats[i]
                    s["prompt_tokens"] += g.prompt_tokens
                    s["new_tokens"] += g.new_tokens
                    s["latency_s"] += g.latency_s
                    s["first_token_s"] += g.first_token_s
                    s["turns"].append(g.finish_reason)
        return [({"task_id": unit, "sample": i, "completion": code[i], "prompt_tokens": s["prompt_tokens"],
                  "new_tokens": s["new_tokens"], "latency_s": round(s["latency_s"], 4),
                  "first_token_s": round(s["first_token_s"], 4), "finish_reason": ",".join(s["turns"]),
                  "batch": min(size, n)}, code[i]) for i, s in enumerate(stats)]
