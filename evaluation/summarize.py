"""Code summarization (CodeXGLUE code-to-text, Python): code -> docstring; smoothed BLEU-4 and ROUGE-L.

As in CodeXGLUE, the model reads the function's code tokens (docstring and comments removed) joined by spaces,
and the reference is the docstring's tokens joined by spaces.
"""
from __future__ import annotations

from typing import Any

from plusls.common.jsonl import read_jsonl
from plusls.common.metrics import corpus_rouge_l, corpus_smoothed_bleu4, rouge_l, smoothed_bleu4

from .datasets import find_file, require_keys
from .generators import Request
from .sampling import Context, Item, run_items

FOLDER, FILE = "code2text_python", "valid.jsonl"
KEYS = ("code_tokens", "docstring_tokens")


def load(data: str | None, limit: int | None, more_keys: tuple[str, ...] = ()) -> tuple[str, list[dict[str, Any]]]:
    path = find_file(data, FOLDER, FILE)
    return str(path), require_keys(read_jsonl(path), KEYS + more_keys, path)[:limit]


class Summarize:
    name = "summarize"
    needs = "seq2seq"
    formats = ("raw",)
    max_new_tokens = 128  # CodeXGLUE's max target length

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]:
        path, rows = load(data, limit)
        items = []
        for i, row in enumerate(rows):
            reference = " ".join(row["docstring_tokens"])
            items.append(Item(task_id=row.get("url") or row.get("func_name") or str(i),
                              request=Request(text=" ".join(row["code_tokens"]), reference=reference),
                              max_new_tokens=self.max_new_tokens, extra={"reference": reference}))
        records = run_items(ctx, items, self.name, 0.0)
        for r in records:
            r["completion"] = " ".join(r["completion"].split())  # one line, as CodeXGLUE's prediction file
            r["bleu"] = round(100 * smoothed_bleu4(r["reference"], r["completion"]), 4)
            r["rouge_l"] = round(100 * rouge_l(r["reference"], r["completion"]), 4)
        refs, hyps = [r["reference"] for r in records], [r["completion"] for r in records]
        return {
            "data": path,
            "problems": len(rows),
            "metrics": {"bleu4": corpus_smoothed_bleu4(refs, hyps), "rouge_l": corpus_rouge_l(refs, hyps)},
            "samples": records,
        }
