"""HumanEval (Chen et al. 2021): 164 function-completion problems scored by running their tests; pass@k."""
from __future__ import annotations

from typing import Any

from plusls.common.jsonl import read_jsonl

from .datasets import find_file, require_keys
from .generators import Request
from .passk import mean_pass_at_k
from .prompts import FUNCTION_STOPS, frame
from .sampling import Context, Item, pass_counts, run_items, status_counts

FOLDER, FILE = "humaneval", "HumanEval.jsonl.gz"
KEYS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def load(data: str | None, limit: int | None) -> tuple[str, list[dict[str, Any]]]:
    path = find_file(data, FOLDER, FILE)
    return str(path), require_keys(read_jsonl(path), KEYS, path)[:limit]


def program(problem: dict[str, Any], solution: str) -> str:
    """The file human-eval runs: the completed function, its tests, and the call that checks it."""
    return f"{solution}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


class HumanEval:
    name = "humaneval"
    needs = "causal-lm"
    formats = ("raw", "fence", "indent", "fence-indent", "chatml")
    timeout_s = 5.0
    max_new_tokens = 256

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]:
        path, problems = load(data, limit)
        fmt = ctx.settings.prompt_format
        items = []
        for p in problems:
            framed = frame(p["prompt"], fmt, ctx.chat_template)
            head = p["prompt"] + framed.prefill
            items.append(Item(
                task_id=p["task_id"],
                request=Request(text=framed.text, stops=framed.stops if framed.whole else FUNCTION_STOPS + framed.stops,
                                reference=p["canonical_solution"].removeprefix(framed.prefill)),
                program=lambda completion, p=p, head=head: program(p, head + completion),
                max_new_tokens=framed.new_tokens(self.max_new_tokens),
            ))
        records = run_items(ctx, items, self.name, ctx.settings.timeout_s or self.timeout_s)
        return {
            "data": path,
            "problems": len(problems),
            "metrics": mean_pass_at_k(pass_counts(records)),
            "statuses": status_counts(records),
            "samples": records,
        }
