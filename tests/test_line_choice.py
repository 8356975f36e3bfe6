"""An unsure FIM first line gives way to a surer prefix-only one (completion/line_choice.py), in the server's
completer and in `plusls eval infilling`, with a model that recites a file left to right but never learned to read a
FIM prompt."""
from __future__ import annotations

import gzip
import json

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
MARK = "    a, b ="  # the recited file goes on with " 0, 1"


@pytest.fixture(scope="module")
def reciter(tmp_path_factory):
    from tiny_models import memorized_causal_lm

    from plusls.exported.export import export_model

    root = tmp_path_factory.mktemp("reciter")
    src = memorized_causal_lm(root / "checkpoint", [MATH], fim=True)
    return export_model(src, "causal-lm", root / "model", log=lambda _: None) and root / "model"


def typing_at(text: str, mark: str) -> Cursor:
    """The cursor right after `mark`, the rest of its line not typed yet."""
    end = text.index(mark) + len(mark)
    return Cursor(text[:end] + text[text.index("\n", end):], end, "python")


def completer(model, **settings) -> Completer:
    return Completer(lambda: CausalLM(model), CompletionSettings(debounce_ms=0, retrieval=False, **settings))


def test_an_unsure_fim_line_gives_way_to_a_surer_left_to_right_one(reciter):
    plain, choosing = completer(reciter, line_choice=False), completer(reciter)
    cursor = typing_at(MATH, MARK)
    assert plain.suggest("doc", cursor, CancelToken()).text != " 0, 1"
    assert choosing.suggest("doc", cursor, CancelToken()).text == " 0, 1"
    assert choosing.stats.rival_runs == choosing.stats.rival_chosen == 1
    assert plain.stats.rival_runs == 0


def test_a_sure_fim_line_runs_no_rival(reciter, monkeypatch):
    monkeypatch.setattr(line_choice, "GATE", -1e9)
    plain, choosing = completer(reciter, line_choice=False), completer(reciter)
    cursor = typing_at(MATH, MARK)
    assert choosing.suggest("doc", cursor, CancelToken()).text == plain.suggest("doc", cursor, CancelToken()).text
    assert choosing.stats.rival_runs == 0 and choosing.stats.model_runs == 1


def test_a_rival_waits_for_warming_instead_of_reading_a_cold_prompt(reciter, monkeypatch):
    """A rival prompt with more unread tokens than the completer reads for one (here: any) is not read while the
    user waits: the FIM line is shown, not cached; once warming has read the rival's prompt, the same cursor runs
    it and shows the surer line."""
    monkeypatch.setattr(completer_module, "RIVAL_COLD_TOKENS", 4)
    cursor = typing_at(MATH, MARK)
    choosing = completer(reciter)
    first = choosing.suggest("doc", cursor, CancelToken())
    assert choosing.stats.rival_runs == 0 and first.text != " 0, 1"
    choosing.warm("doc", cursor, CancelToken())
    assert choosing.stats.warmed_tokens > 4  # the prefix-only prompt, read while nobody waited
    again = choosing.suggest("doc", cursor, CancelToken())
    assert again.text == " 0, 1" and not again.from_cache
    assert choosing.stats.rival_runs == choosing.stats.rival_chosen == 1


def test_line_score_is_the_first_lines_mean_log_probability(reciter):
    tokenizer = CausalLM(reciter).tokenizer
    a, newline, b = (tokenizer.encode(t).ids[0] for t in ("a", "\n", "b"))
    assert line_choice.line_score([a, newline, b], [-1.0, -3.0, -8.0], tokenizer) == -2.0
    assert line_choice.line_score([a, b], [-1.0, -2.0, -6.0], tokenizer) == -3.0  # an ending stop token counts
    assert line_choice.line_score([a], [], tokenizer) is None


def test_eval_infilling_scores_what_the_server_would_show(reciter, tmp_path):
    """`plusls eval infilling` (its default mode, the server's choice) against FIM alone, on gaps in the recited
    file: the choice fills them as the completer does and says how often the rival ran and was shown."""
    from plusls.evaluation.run import EvalOptions, run_eval

    lines = MATH.split("\n")
    gap = lines.index("def is_prime(n):")
    problems = [{"task_id": "mathutil/is_prime", "prompt": "\n".join(lines[:gap]) + "\n",
                 "suffix": "\n".join(lines[gap + 1:]), "canonical_solution": lines[gap] + "\n",
                 "test": "def check(candidate):\n    assert candidate(7) and not candidate(9)\n",
                 "entry_point": "is_prime"}]
    folder = tmp_path / "humaneval_infilling"
    folder.mkdir()
    with gzip.open(folder / "HumanEval-SingleLineInfilling.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(p) + "\n" for p in problems)

    def run(mode: str) -> dict:
        return run_eval(EvalOptions(task="infilling", model=str(reciter), data=str(tmp_path), infill_mode=mode))

    choice, fim = run("auto"), run("fim")
    assert choice["modes"] == ["choice"]
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
