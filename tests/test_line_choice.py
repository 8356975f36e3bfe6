"""At a line start with code below, the FIM first line gives way to a prefix-only one the model is surer of
(completion/line_choice.py), in the server's completer and in `plusls eval infilling`, with a model that recites a
file left to right after the FIM prefix marker (the rival's prompt) but never learned the suffix and middle parts."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from fixture_repo import FILES

from plusls.completion import line_choice
from plusls.completion import completer as completer_module
from plusls.completion.completer import Completer
from plusls.completion.prompt import Cursor
from plusls.completion.settings import CompletionSettings
from plusls.exported.causal_lm import CausalLM
from plusls.exported.generation import CancelToken

MATH = FILES["src/mathutil.py"]
FIRST = "def fibonacci(n):"  # the recited file's first line


@pytest.fixture(scope="module")
def reciter(tmp_path_factory):
    from tiny_models import FIM, memorized_causal_lm

    from plusls.exported.export import export_model

    root = tmp_path_factory.mktemp("reciter")
    src = memorized_causal_lm(root / "checkpoint", [FIM[0] + MATH], fim=True)
    return export_model(src, "causal-lm", root / "model", log=lambda _: None) and root / "model"


def gap_at(text: str, line: int) -> Cursor:
    """The cursor at the start of `line`, emptied: a whole line to write between code above and below."""
    lines = text.split("\n")
    above = "".join(f"{row}\n" for row in lines[:line])
    return Cursor(above + "\n" + "\n".join(lines[line + 1:]), len(above), "python")


def completer(model, line_choice: bool | None = True, **settings) -> Completer:
    return Completer(lambda: CausalLM(model), CompletionSettings(debounce_ms=0, retrieval=False,
                                                                 line_choice=line_choice, **settings))


def test_an_unsure_fim_line_gives_way_to_a_surer_left_to_right_one(reciter):
    plain, choosing = completer(reciter, line_choice=False), completer(reciter)
    cursor = gap_at(MATH, 0)
    assert plain.suggest("doc", cursor, CancelToken()).text != FIRST
    assert choosing.suggest("doc", cursor, CancelToken()).text == FIRST
    assert choosing.stats.rival_runs == choosing.stats.rival_chosen == 1
    assert plain.stats.rival_runs == 0


def test_no_rival_mid_line_or_without_code_below(reciter):
    """Mid-line (typing `def fibo`) or at a line start with nothing below, the FIM line stands alone."""
    choosing = completer(reciter)
    typed = "def fibo"
    choosing.suggest("doc", Cursor(typed + MATH[len(FIRST):], len(typed), "python"), CancelToken())
    choosing.suggest("doc", Cursor(MATH + "\n", len(MATH) + 1, "python"), CancelToken())
    assert choosing.stats.model_runs == 2 and choosing.stats.rival_runs == 0


def test_the_rival_copies_the_fim_prompts_start_instead_of_reading_it(reciter):
    """Far down a file, the rival's prompt is as long as the FIM one: it copies the key/values of their common start
    instead of reading them again."""
    notes = "".join(f"# note {i}\n" for i in range(40))
    cursor = gap_at(notes + MATH, 40)
    plain, choosing = completer(reciter, line_choice=False), completer(reciter)
    plain.suggest("doc", cursor, CancelToken())
    choosing.suggest("doc", cursor, CancelToken())
    assert choosing.stats.rival_runs == 1
    assert choosing.stats.copied_tokens > completer_module.RIVAL_COLD_TOKENS
    read = choosing.stats.prompt_tokens - choosing.stats.reused_tokens
    assert read <= plain.stats.prompt_tokens - plain.stats.reused_tokens + 1


def test_line_score_is_the_first_lines_mean_log_probability(reciter):
    tokenizer = CausalLM(reciter).tokenizer
    a, newline, b = (tokenizer.encode(t).ids[0] for t in ("a", "\n", "b"))
    assert line_choice.line_score([a, newline, b], [-1.0, -3.0, -8.0], tokenizer) == -2.0
    assert line_choice.line_score([a, b], [-1.0, -2.0, -6.0], tokenizer) == -3.0  # an ending stop token counts
    assert line_choice.line_score([a, b], [-0.1, -0.1], tokenizer) == float("-inf")  # never ended: the token limit
    assert line_choice.line_score([a], [], tokenizer) is None


def test_line_choice_is_on_by_default_only_where_it_measured_better(reciter):
    from plusls.exported.defaults import COMPLETER, COMPLETER_LARGE, chooses_lines

    assert chooses_lines(Path("/models") / COMPLETER.name) and not chooses_lines(Path("/m") / COMPLETER_LARGE.name)
    default = completer(reciter, line_choice=None)  # null: by the model; this one is no default completer
    default.suggest("doc", gap_at(MATH, 0), CancelToken())
    assert default.stats.model_runs == 1 and default.stats.rival_runs == 0


def test_doctor_says_when_the_chosen_completer_chooses_lines():
    from plusls.exported.defaults import COMPLETER, COMPLETER_LARGE
    from plusls.server.doctor import format_completer

    def report(name: str) -> list[str]:
        return format_completer({"completer": name, "reason": "measured", "candidates": []})

    assert any("line choice: on" in line for line in report(COMPLETER.name))
    assert not any("line choice" in line for line in report(COMPLETER_LARGE.name))


def test_the_rival_is_shown_only_where_it_differs_and_is_surer():
    wins = line_choice.rival_wins
    assert wins("    x = 1\n    y = 2", -0.5, "    x = 2", -0.1)
    assert not wins("    x = 1\n    y = 2", -0.5, "    x = 1", -0.1)  # the same line: FIM's, with the lines after it
    assert not wins("    x = 1", -0.1, "    x = 2", -0.5)
    assert not wins("    x = 1", None, "    x = 2", -0.5)


def test_eval_infilling_scores_what_the_server_would_show(reciter, tmp_path):
    """`plusls eval infilling --infill-mode choice` against FIM alone, on a gap in the recited file: the choice
    fills it as the completer does and says how often the rival ran and was shown; the default mode follows the
    server's default for the model."""
    from plusls.evaluation.run import EvalOptions, run_eval

    lines = MATH.split("\n")
    problems = [{"task_id": "mathutil/fibonacci", "prompt": "", "suffix": "\n".join(lines[1:]),
                 "canonical_solution": lines[0] + "\n", "entry_point": "fibonacci",
                 "test": "def check(candidate):\n    assert candidate(10) == 55\n"}]
    folder = tmp_path / "humaneval_infilling"
    folder.mkdir()
    with gzip.open(folder / "HumanEval-SingleLineInfilling.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(p) + "\n" for p in problems)

    def run(mode: str) -> dict:
        return run_eval(EvalOptions(task="infilling", model=str(reciter), data=str(tmp_path), infill_mode=mode))

    choice, fim, auto = run("choice"), run("fim"), run("auto")
    assert auto["modes"] == ["fim"]  # what the server shows with a model that is not the default 0.5B
    assert choice["metrics"]["exact_match"] == choice["metrics"]["pass@1"] == 1.0
    assert fim["metrics"]["exact_match"] == fim["metrics"]["pass@1"] == 0.0
    assert choice["metrics"]["rival_runs"] == choice["metrics"]["rival_chosen"] == 1
    assert [s["line_choice"] for s in choice["samples"]] == ["rival"]


def test_the_rivals_token_healing_stays_on_the_cursors_line(reciter):
    """On an empty, indented line of a prompt without FIM, healing may take the line break off too; the rival's
    output ends at a line break, so its healing keeps to the line (else every rival line would end where it
    starts)."""
    from plusls.completion.healing import TokenHealing

    lm = CausalLM(reciter)
    text = "x = 1\n\n"
    cursor = Cursor(text, len(text), "python")
    ids = lm.encode(text)
    healing = TokenHealing(lm.tokenizer)
    assert "\n" in healing.cut(ids, cursor, None)[1]
    assert healing.cut(ids, cursor, None, one_line=True) == (0, "")
