"""HumanEval infilling (Bavarian et al. 2022): fill a missing line (or lines) of a HumanEval solution.

Modes: "fim" puts prefix and suffix around the model's own FIM tokens (prefix-suffix-middle order), "prefix"
shows only the code before the gap (what a left-to-right model can use), "choice" is the FIM answer, or a
prefix-only rival's first line where the model is surer of it (completion/line_choice.py); "auto" is what the server
shows with the model: "choice" for a default completer whose line choice is on, else "fim" where the model has FIM
tokens, else "prefix". Scored by exact match with the missing span (indentation kept; `exact_match_stripped`
ignores it, as the Qwen2.5-Coder report's harness does) and by running the problem's tests on the filled-in
function (pass@k).
"""
from __future__ import annotations

from typing import Any

from plusls.common.jsonl import read_jsonl
from plusls.common.metrics import exact_match, exact_match_stripped
from plusls.completion.filters import postprocess
from plusls.completion.line_choice import applies
from plusls.completion.prompt import Cursor, PromptBuilder, WindowState
from plusls.exported.defaults import chooses_lines

from .datasets import find_file, require_keys
from .errors import EvalError
from .generators import ModelGenerator, Request
from .humaneval import program as humaneval_program
from .passk import mean_pass_at_k
from .prompts import FUNCTION_STOPS, frame
from .sampling import Context, Item, pass_counts, run_items, status_counts

FOLDER = "humaneval_infilling"
FILES = {"single": "HumanEval-SingleLineInfilling.jsonl.gz", "multi": "HumanEval-MultiLineInfilling.jsonl.gz"}
KEYS = ("task_id", "prompt", "suffix", "canonical_solution", "test", "entry_point")
MODES = ("auto", "choice", "fim", "prefix", "both")


def load(data: str | None, subset: str, limit: int | None) -> tuple[str, list[dict[str, Any]]]:
    if subset not in FILES:
        raise EvalError(f"unknown infilling subset {subset!r} (choose from {', '.join(FILES)})")
    path = find_file(data, FOLDER, FILES[subset])
    return str(path), require_keys(read_jsonl(path), KEYS, path)[:limit]


def fill(text: str, subset: str, lines: int, mode: str, problem: dict[str, Any]) -> str:
    """The span to insert: whole lines, newline-terminated. Single-line: the first line. Multi-line FIM: what the
    server would show at the start of the gap's first line (its filters: the current scope, cut where the text
    repeats the code below; an instruct model rarely ends the middle itself); a prefix-only completion cannot know
    where the gap ends, so it keeps as many lines as the missing span has."""
    if subset == "single" or mode == "prefix":
        text = "\n".join(text.split("\n")[: 1 if subset == "single" else lines])
    else:
        empty_line = Cursor(problem["prompt"] + "\n" + problem["suffix"], len(problem["prompt"]), "python")
        text = postprocess(text, empty_line.filter_context())
    return text.rstrip("\n") + "\n" if text.strip() else ""


def multi_line_stops(suffix: str) -> tuple[str, ...]:
    """Stop a multi-line middle once it writes the suffix's first line whole or leaves the function (a line at
    column 0; no gap has one): what follows is cut anyway."""
    first = next((line for line in suffix.split("\n") if line.strip()), "")
    return ((f"\n{first}\n",) if first else ()) + FUNCTION_STOPS


def fim_ids(gen: ModelGenerator, prefix: str, suffix: str, budget: int, prefix_only: bool = False) -> list[int]:
    """The server's FIM prompt for a cursor between `prefix` and `suffix`, with up to half the budget for the
    suffix (the server's own budgets are for typing speed, not for a benchmark); `prefix_only`: its rival's."""
    builder = PromptBuilder(gen.model.tokenizer, gen.manifest.fim, budget, budget // 2)
    return builder.build(cursor_between(prefix, suffix), WindowState(), prefix_only)


def cursor_between(prefix: str, suffix: str) -> Cursor:
    return Cursor(prefix + suffix, len(prefix), "python")


def modes_for(ctx: Context, requested: str) -> list[str]:
    gen = ctx.generator
    has_fim = isinstance(gen, ModelGenerator) and gen.manifest.fim is not None
    if requested == "auto":  # what the server shows with this model (completion.lineChoice's default)
        return ["choice" if has_fim and chooses_lines(gen.directory) else "fim" if has_fim else "prefix"]
    if requested not in MODES:
        raise EvalError(f"unknown infilling mode {requested!r} (choose from {', '.join(MODES)})")
    wanted = ["fim", "prefix"] if requested == "both" else [requested]
    if {"fim", "choice"} & set(wanted) and isinstance(gen, ModelGenerator) and not has_fim:
        raise EvalError(f"{gen.name} declares no fill-in-the-middle tokens in its manifest; use --infill-mode prefix")
    return wanted


class Infilling:
    name = "infilling"
    needs = "causal-lm"
    formats = ("raw", "fence")  # the fence applies to prefix-only prompts
    timeout_s = 5.0

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]:
        subset = ctx.options.get("subset") or "single"
        path, problems = load(data, subset, limit)
        modes = modes_for(ctx, ctx.options.get("infill_mode") or "auto")
        max_new = 48 if subset == "single" else 256
        line_stop = ("\n",) if subset == "single" else ()
        items = []
        for mode in modes:
            for p in problems:
                span_lines = p["canonical_solution"].count("\n") or 1
                if mode in ("fim", "choice"):
                    ids = rival = None
                    chooses = mode == "choice" and applies(cursor_between(p["prompt"], p["suffix"]))
                    if isinstance(ctx.generator, ModelGenerator):
                        budget = ctx.generator.prompt_budget(ctx.settings.max_new_tokens or max_new)
                        ids = fim_ids(ctx.generator, p["prompt"], p["suffix"], budget)
                        if chooses:
                            rival = fim_ids(ctx.generator, p["prompt"], p["suffix"], budget, prefix_only=True)
                    request = Request(ids=ids, text=p["prompt"], stops=line_stop or multi_line_stops(p["suffix"]))
                    if chooses:
                        request.rival = Request(ids=rival, text=p["prompt"], stops=("\n",))
                else:
                    framed = frame(p["prompt"], ctx.settings.prompt_format)
                    request = Request(text=framed.text, stops=line_stop or FUNCTION_STOPS + framed.stops)
                request.reference = p["canonical_solution"]
                items.append(Item(
                    task_id=p["task_id"], request=request, max_new_tokens=max_new, extra={"mode": mode},
                    program=lambda text, p=p, n=span_lines, m=mode: humaneval_program(
                        p, p["prompt"] + fill(text, subset, n, m, p) + p["suffix"]),
                ))
        records = run_items(ctx, items, f"{self.name}-{subset}", ctx.settings.timeout_s or self.timeout_s)
        by_task = {p["task_id"]: p for p in problems}
        for r in records:
            p = by_task[r["task_id"]]
            span = fill(r["completion"], subset, p["canonical_solution"].count("\n") or 1, r["mode"], p)
            r["exact_match"] = exact_match(p["canonical_solution"], span)
            r["exact_match_stripped"] = exact_match_stripped(p["canonical_solution"], span)
        metrics: dict[str, Any] = {}
        for mode in modes:
            rows = [r for r in records if r["mode"] == mode]
            metrics[mode] = {"exact_match": sum(r["exact_match"] for r in rows) / len(rows),
                             "exact_match_stripped": sum(r["exact_match_stripped"] for r in rows) / len(rows),
                             **mean_pass_at_k(pass_counts(rows))}
            if mode == "choice":  # how often the rival ran, and was shown
                metrics[mode]["rival_runs"] = sum(r.get("line_choice") in ("rival", "fim-over-rival") for r in rows)
                metrics[mode]["rival_chosen"] = sum(r.get("line_choice") == "rival" for r in rows)
        return {
            "data": path,
            "subset": subset,
            "modes": modes,
            "problems": len(problems),
            "metrics": metrics if len(modes) > 1 else metrics[modes[0]],
            "statuses": status_counts(records),
            "samples": records,
        }
