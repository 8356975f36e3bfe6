"""Hover text on CodeXGLUE code-to-text Python: what the server's hover shows for each function (the chat model's
1-3 sentence explanation; a one-line writer's summary line), against the human docstring's description (its text
before the first Args/Returns/:param section: ROUGE-L F1, and its recall, how much of the description the hover
says), and whether it says what a function that returns a value returns.

The model reads the function's source with its docstring removed (the server reads real code, not CodeXGLUE's
space-joined tokens)."""
from __future__ import annotations

import ast
import re
from typing import Any

from plusls.common.metrics import corpus_rouge_l, corpus_rouge_l_recall, corpus_smoothed_bleu4, rouge_l, rouge_l_recall
from plusls.docstrings.explanation import LOOP, RETURNS, sentences
from plusls.docstrings.summarizer import degenerate

from .generators import Request
from .sampling import Context, Item, run_items
from .summarize import load

SECTION = re.compile(r"^\s*(?:(?:args|arguments|parameters|params|returns?|yields?|raises|examples?|notes?|"
                     r"attributes|see also|keyword arguments|other parameters)\s*:?\s*$|[:@](?:param|type|returns?|"
                     r"rtype|raises?)\b|>>>|-{3,}\s*$)", re.I)


def without_docstring(code: str) -> tuple[str, bool]:
    """(the function's source without its docstring, whether it returns or yields a value); the code unchanged when
    it does not parse."""
    try:
        function = ast.parse(code).body[0]
    except (SyntaxError, IndexError):
        return code, False
    gives = any(isinstance(n, (ast.Yield, ast.YieldFrom)) or isinstance(n, ast.Return) and n.value is not None
                for n in ast.walk(function))
    body = getattr(function, "body", [])
    first = body[0] if body else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return code, gives
    lines = code.splitlines(keepends=True)
    return "".join(lines[: first.lineno - 1] + lines[first.end_lineno:]), gives


def description(docstring: str) -> str:
    """The docstring's prose before its first section, on one line."""
    kept = []
    for line in docstring.splitlines():
        if SECTION.match(line):
            break
        kept.append(line)
    return " ".join(" ".join(kept).split())


class Hover:
    name = "hover"
    needs = "seq2seq"  # a one-line writer, or an instruct causal LM in chat form (resolve)
    formats = ("raw",)
    max_new_tokens = 128

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]:
        path, rows = load(data, limit, ("code", "docstring"))
        items = []
        for i, row in enumerate(rows):
            code, gives = without_docstring(row["code"])
            reference = description(row["docstring"]) or " ".join(row["docstring_tokens"])
            items.append(Item(task_id=row.get("url") or row.get("func_name") or str(i),
                              request=Request(text=code, reference=reference, explain=True),
                              max_new_tokens=self.max_new_tokens,
                              extra={"reference": reference, "returns_a_value": gives}))
        records = run_items(ctx, items, self.name, 0.0)
        refs, hyps = [], []
        for r in records:
            r["completion"] = " ".join(r["completion"].split())
            ref, hyp = plain(r["reference"]), plain(r["completion"])
            refs.append(ref)
            hyps.append(hyp)
            said = sentences(hyp, complete=True)
            r["sentences"] = len(said)
            r["says_what_it_returns"] = bool(RETURNS.search(r["completion"]))
            r["degenerate"] = not said or any(degenerate(s, loop=LOOP) for s in said)
            r["rouge_l"] = round(100 * rouge_l(ref, hyp), 4)
            r["rouge_l_recall"] = round(100 * rouge_l_recall(ref, hyp), 4)
        giving = [r["says_what_it_returns"] for r in records if r["returns_a_value"]]
        return {
            "data": path,
            "problems": len(rows),
            "metrics": {"bleu4": corpus_smoothed_bleu4(refs, hyps), "rouge_l": corpus_rouge_l(refs, hyps),
                        "rouge_l_recall": corpus_rouge_l_recall(refs, hyps),
                        "one_to_three_sentences_pct": percent([1 <= r["sentences"] <= 3 for r in records]),
                        "says_what_it_returns_pct": percent(giving),
                        "degenerate": sum(r["degenerate"] for r in records),
                        "mean_words": round(sum(len(h.split()) for h in hyps) / max(1, len(hyps)), 1)},
            "samples": records,
        }


def plain(text: str) -> str:
    """Scored without Markdown's code marks: the hover renders them, docstrings rarely have them."""
    return text.replace("`", "")


def percent(flags: list[bool]) -> float:
    return round(100 * sum(flags) / len(flags), 2) if flags else 0.0
