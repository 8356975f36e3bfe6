"""MBPP (Austin et al. 2021), test split task_id 11-510: description + its three tests -> code; pass@k."""
from __future__ import annotations

from typing import Any

from plusls.common.jsonl import read_jsonl

from .datasets import find_file, require_keys
from .generators import Request
from .passk import mean_pass_at_k
from .prompts import frame
from .sampling import Context, Item, pass_counts, run_items, status_counts

FOLDER, FILE = "mbpp", "mbpp.jsonl"
KEYS = ("task_id", "text", "code", "test_list", "test_setup_code")
TEST_SPLIT = range(11, 511)
# As in Austin et al.: the task description and its test asserts ("Your code should pass these tests"),
# here inside a docstring so that the model's continuation is plain code.
TEMPLATE = '"""\n{text}\nYour code should pass these tests:\n{tests}\n"""\n'
STOPS = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n```")


def load(data: str | None, limit: int | None) -> tuple[str, list[dict[str, Any]]]:
    path = find_file(data, FOLDER, FILE)
    rows = require_keys(read_jsonl(path), KEYS, path)
    return str(path), [r for r in rows if r["task_id"] in TEST_SPLIT][:limit]


def prompt(problem: dict[str, Any]) -> str:
    return TEMPLATE.format(text=problem["text"].strip(), tests="\n".join(problem["test_list"]))


def program(problem: dict[str, Any], code: str) -> str:
    # The setup code builds test fixtures with the solution's own classes, so it comes after the code.
    return f"{code}\n\n{problem['test_setup_code']}\n\n" + "\n".join(problem["test_list"]) + "\n"


class MBPP:
    name = "mbpp"
    needs = "causal-lm"
    formats = ("raw", "fence", "chatml")
    timeout_s = 10.0  # the reference solution of task 123 alone needs ~5 s on a busy 2-core machine
    max_new_tokens = 256

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]:
        path, problems = load(data, limit)
        items = []
        for p in problems:
            framed = frame(prompt(p), ctx.settings.prompt_format, ctx.chat_template)
            items.append(Item(
                task_id=str(p["task_id"]),
                request=Request(text=framed.text, stops=framed.stops if framed.whole else STOPS + framed.stops,
                                reference=p["code"].replace("\r\n", "\n")),
                program=lambda code, p=p: program(p, code),
                max_new_tokens=framed.new_tokens(self.max_new_tokens),
            ))
        records = run_items(ctx, items, self.name, ctx.settings.timeout_s or self.timeout_s)
        return {
            "data": path,
            "problems": len(problems),
            "prompt_template": TEMPLATE,
            "metrics": mean_pass_at_k(pass_counts(records)),
            "statuses": status_counts(records),
            "samples": records,
        }
