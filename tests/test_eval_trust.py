"""The harness scores what it should: reference solutions 100%, wrong ones 0%, MTPB conversations as CodeGen."""
from __future__ import annotations

import re

import pytest
from eval_helpers import Scripted, data_dir

from plusls.evaluation.errors import EvalError
from plusls.evaluation.generators import identifier_summary
from plusls.evaluation.humaneval import HumanEval
from plusls.evaluation.infilling import Infilling, load
from plusls.evaluation.mbpp import MBPP
from plusls.evaluation.mtpb import MTPB, truncate
from plusls.evaluation.run import EvalOptions, run_eval
from plusls.evaluation.sampling import Context, Settings
from plusls.evaluation.sandbox import Limits, Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(timeout_s=10.0))


def reference_run(task: str, limit: int | None = None, **options) -> dict:
    return run_eval(EvalOptions(task=task, model="baseline:reference", data=data_dir(), limit=limit, **options))


@pytest.mark.slow  # runs every benchmark solution in the sandbox
def test_every_canonical_humaneval_solution_passes():
    result = reference_run("humaneval")
    assert result["problems"] == 164
    assert result["metrics"] == {"pass@1": 1.0}, [s["task_id"] for s in result["samples"] if not s["passed"]]
    assert result["sandbox"]["mode"] in ("namespace", "guard")


@pytest.mark.slow  # runs every benchmark solution in the sandbox
def test_every_canonical_mbpp_test_split_solution_passes():
    result = reference_run("mbpp")
    ids = [int(s["task_id"]) for s in result["samples"]]
    assert ids == list(range(11, 511))  # the test split, in order
    assert result["metrics"] == {"pass@1": 1.0}, [s["task_id"] for s in result["samples"] if not s["passed"]]


def test_wrong_solutions_score_zero(sandbox):
    ctx = Context(Scripted(lambda r: "    pass\n"), Settings(), sandbox)
    result = HumanEval().run(ctx, data_dir(), 20)
    assert result["metrics"] == {"pass@1": 0.0} and result["statuses"] == {"failed": 20}
    off_by_one = Scripted(lambda r: re.sub(r"return (\S+)", r"return \1 + 1", r.reference, count=1))
    result = MBPP().run(Context(off_by_one, Settings(), sandbox), data_dir(), 10)
    assert result["metrics"]["pass@1"] < 0.5  # most returns are now wrong; none is scored on anything else


def test_pass_at_k_over_samples_follows_the_estimator(sandbox):
    # Sample i of each problem is correct when i < 2: n = 5, c = 2 for every problem.
    def answer(request, counter={}):  # noqa: B006  (per-prompt call count)
        i = counter[request.text] = counter.get(request.text, -1) + 1
        return request.reference if i < 2 else "    return None\n"

    ctx = Context(Scripted(answer), Settings(samples=5, temperature=0.8), sandbox)
    result = HumanEval().run(ctx, data_dir(), 3)
    assert result["metrics"] == {"pass@1": pytest.approx(0.4)}
    assert [s["sample"] for s in result["samples"][:5]] == [0, 1, 2, 3, 4]


def test_infilling_reference_spans_match_and_pass_in_both_modes():
    for subset in ("single", "multi"):
        result = reference_run("infilling", 12, infill_mode="both", subset=subset)
        assert result["metrics"] == {"fim": {"exact_match": 1.0, "exact_match_stripped": 1.0, "pass@1": 1.0},
                                     "prefix": {"exact_match": 1.0, "exact_match_stripped": 1.0, "pass@1": 1.0}}


def test_multi_line_fim_is_scored_as_the_server_would_show_it(sandbox):
    # An instruct model rarely ends the middle: it writes the gap, the code below again, then a test. The score
    # is that of what the editor shows, cut where the text repeats the code below; the run stops at that point.
    _, problems = load(data_dir(), "multi", 12)
    by_gap = {(p["prompt"], p["canonical_solution"]): p for p in problems}

    def answer(request):
        p = by_gap[request.text, request.reference]
        assert not p["suffix"].strip() or request.stops[0].strip() in p["suffix"]
        return p["canonical_solution"] + p["suffix"] + "\n\nprint(candidate(1))\n"

    ctx = Context(Scripted(answer), Settings(), sandbox, options={"subset": "multi", "infill_mode": "fim"})
    result = Infilling().run(ctx, data_dir(), 12)
    assert result["metrics"] == {"exact_match": 1.0, "exact_match_stripped": 1.0, "pass@1": 1.0}


def test_summarize_identifier_baseline_and_reference():
    result = run_eval(EvalOptions(task="summarize", model="baseline:identifier-words", data=data_dir(), limit=3))
    assert [s["completion"] for s in result["samples"]] == ["Save act.", "Nature cnn.", "Conv only."]
    assert 0 < result["metrics"]["bleu4"] < 60 and 0 < result["metrics"]["rouge_l"] < 60
    result = reference_run("summarize", 5)
    assert result["metrics"] == {"bleu4": pytest.approx(100.0), "rouge_l": pytest.approx(100.0)}


def test_hover_reads_code_without_its_docstring_and_scores_against_the_description():
    from plusls.evaluation.hover import description, without_docstring

    documented = 'def f(x):\n    """Double x.\n\n    Args:\n        x: a number\n    """\n    return 2 * x\n'
    assert without_docstring(documented) == ("def f(x):\n    return 2 * x\n", True)
    assert without_docstring("def g():\n    print(1)\n    return\n") == ("def g():\n    print(1)\n    return\n", False)
    assert description("Double x.\n\n    Args:\n        x: a number") == "Double x."
    assert description("Load it\n    from disk.\n    :param path: where") == "Load it from disk."
    result = reference_run("hover", 3)
    assert result["metrics"]["rouge_l"] == pytest.approx(100.0)
    assert result["samples"][0]["reference"] == "Save model to a pickle located at `path`"
    named = run_eval(EvalOptions(task="hover", model="baseline:identifier-words", data=data_dir(), limit=3))
    assert [s["completion"] for s in named["samples"]] == ["Save act.", "Nature cnn.", "Conv only."]
    assert named["metrics"]["says_what_it_returns_pct"] == 0.0 and named["metrics"]["degenerate"] == 0


def test_identifier_words():
    assert identifier_summary("def get_user_name(self):") == "Get user name."
    assert identifier_summary("def parseHTTPResponse ( raw ) :") == "Parse http response."
    assert identifier_summary("x = 1") == ""


def test_mtpb_truncation_follows_codegen():
    assert truncate("\nif len_a > len_b:\n    result = a\nelse:\n    result = b\n\n\n\n#") == \
        "\nif len_a > len_b:\n    result = a\nelse:\n    result = b"
    assert truncate("x = 1\nprint(x)\nprint(x + 1)\n") == "x = 1\nprint(x)\n"
    assert truncate("# a comment first\nx = 1") == ""
    assert truncate("print(chars)\n```\n\nThis prints the list.") == "print(chars)\n"  # added: a closed fence


SANDWICH = {  # MTPB problem 1, turn by turn, by the turn's first words
    "Assign the string": lambda p: f'my_string = "{re.search(chr(34) + "(.*?)" + chr(34), p).group(1)}"',
    "Lowercase": lambda p: "my_string = my_string.lower()",
    "Assign the distinct": lambda p: "chars = list(set(my_string))",
    "Sort these": lambda p: "chars = sorted(chars)",
}


def mtpb_answer(last_turn: str):
    def answer(request):
        prompt = request.text.rstrip("\n").rsplit("\n", 1)[-1].removeprefix("# ")
        for start, code in SANDWICH.items():
            if prompt.startswith(start):
                return code(prompt) + "\n"
        return last_turn

    return answer


def test_mtpb_scores_multi_turn_programs_by_their_last_print(sandbox):
    result = MTPB().run(Context(Scripted(mtpb_answer("print(chars)\n")), Settings(), sandbox), data_dir(), 1)
    assert result["metrics"] == {"pass@1": 1.0}, result["samples"][0]
    assert len(result["samples"]) == 5  # one unit per test case
    first = result["samples"][0]["completion"]
    # Each turn's prompt, filled with the test case's input, is appended to the conversation so far.
    assert first.startswith("# Import libraries.\n\nimport numpy as np\n\n# Assign the string \"abcde\"")
    assert first.index("# Lowercase") < first.index("my_string.lower()") < first.index("# Print")
    # A bare expression as the last statement is printed, as in CodeGen's harness.
    bare = MTPB().run(Context(Scripted(mtpb_answer("chars\n")), Settings(), sandbox), data_dir(), 1)
    assert bare["metrics"] == {"pass@1": 1.0}
    wrong = MTPB().run(Context(Scripted(mtpb_answer("print(len(chars))\n")), Settings(), sandbox), data_dir(), 1)
    assert wrong["metrics"] == {"pass@1": 0.0}


def test_mtpb_has_no_reference_solutions():
    with pytest.raises(EvalError, match="no"):
        reference_run("mtpb", 1)


def test_chatml_uses_the_model_s_own_chat_template():
    from plusls.evaluation.prompts import frame

    template = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are helpful.<|im_end|>\n{% endif %}"
                "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    framed = frame("def f():\n", "chatml", template)
    assert framed.text.startswith("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nComplete")
    assert framed.text.endswith("<|im_end|>\n<|im_start|>assistant\n```python\n") and framed.whole
    assert frame("def f():\n", "chatml").text.startswith("<|im_start|>user\n")  # no template: plain ChatML
    # The answer restates the prompt before the body: a continuation's 256 tokens would cut long docstrings off.
    assert framed.new_tokens(256) >= 768 and frame("def f():\n", "raw").new_tokens(256) == 256
