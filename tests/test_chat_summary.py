"""Summaries from the completion model in chat form: the template's framing without jinja2, the answer cleaned to a
summary line, the server's background summaries giving way to suggestions, and resumable teacher labelling."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from plusls.common.chat import chat_frame, chat_messages, frame_chat, render_chat
from plusls.docstrings.chat_summary import (ChatSummarizer, ChatWriter, clean_summary, imperative, summarize,
                                            summary_messages)
from plusls.docstrings.definition_at import definition_at
from plusls.docstrings.explanation import hover_text
from plusls.docstrings.summarizer import EncoderDecoderWriter, Summarizer
from plusls.exported import GenerationConfig
from plusls.exported.generation import Generation

CHATML = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are helpful.<|im_end|>\n{% endif %}"
          "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def with_chat_template(model: Path, out: Path) -> Path:
    """A copy of an exported causal LM whose manifest records a chat template (as an instruct model's export does)."""
    shutil.copytree(model, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"]["chat_template"] = CHATML
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_the_recorded_frame_gives_the_template_s_own_text():
    frame = chat_frame(CHATML)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "def f(): pass"},
                {"role": "assistant", "content": "Do nothing."}, {"role": "user", "content": "def g(): return 1"}]
    assert chat_messages("Be brief.", [("def f(): pass", "Do nothing.")], "def g(): return 1") == messages
    assert frame_chat(frame, messages) == render_chat(CHATML, messages)
    assert frame_chat(frame, chat_messages("Be brief.", [], "x")) == render_chat(CHATML, [messages[0], {
        "role": "user", "content": "x"}])
    ignores_system = "{% for m in messages if m['role'] != 'system' %}{{ m['content'] }}{% endfor %}"
    assert chat_frame(ignores_system) is None  # cannot carry the convention: no chat-form summaries


def test_the_answer_becomes_an_imperative_summary_line():
    assert clean_summary("Returns the size of `path` in bytes. It uses os.stat.") == "Return the size of path in bytes."
    assert clean_summary('"Applies the patch to the tree."') == "Apply the patch to the tree."
    assert clean_summary("Pushes a frame.") == "Push a frame."
    assert clean_summary("Is the graph chordal?") == "Is the graph chordal?"
    assert clean_summary("Get user name.", "get_user_name") == ""  # the name in words says nothing
    assert clean_summary("Save the file to the file.") == ""  # a word pair twice
    assert [imperative(w) for w in ("Returns", "Class", "Process", "Copies", "Does", "Set")] == \
        ["Return", "Class", "Process", "Copy", "Does", "Set"]


def test_an_answer_that_repeats_itself_is_asked_again_without_repeated_pairs_once():
    answers = {0: "Save the file to the file.", 2: "Save the model to a file."}
    asked: list[int] = []

    def generate(config: GenerationConfig) -> Generation:
        asked.append(config.no_repeat_ngram_size or 0)
        return Generation(text=answers[asked[-1]], token_ids=[], finish_reason="stop")

    assert summarize(generate, GenerationConfig(), "save_act") == ("Save the model to a file.", True)
    assert asked == [0, 2]
    asked.clear()
    answers[2] = "Save the file to the file."  # still degenerate: nothing, after one more try
    assert summarize(generate, GenerationConfig(), "save_act") == ("", True) and asked == [0, 2]
    asked.clear()
    answers[0] = "Get user name."  # restating the name: another try would not help
    assert summarize(generate, GenerationConfig(), "get_user_name") == ("", True) and asked == [0]


def test_the_explanation_becomes_one_to_three_sentences_for_the_hover():
    # Answers the 0.5B gave for CodeXGLUE functions.
    assert hover_text("This function saves the model and parameters to a file. It returns the model data and the "
                      "parameters.") == "Saves the model and parameters to a file. Returns the model data and the " \
                                        "parameters."
    assert hover_text("The function `cg` solves A x = b with conjugate gradients. It takes several parameters:") == \
        "Solves A x = b with conjugate gradients."  # the list it introduces was cut by the newline stop
    long = ("This function creates a placeholder for an observation space. It checks if the space is discrete. It "
            "then creates a TensorFlow placeholder. The placeholder is named 'Ob' and it returns it. It also logs.")
    assert hover_text(long) == ("Creates a placeholder for an observation space. Checks if the space is discrete. "
                                "The placeholder is named 'Ob' and it returns it.")  # what it returns, not step 3
    assert hover_text("It takes a list of arguments. It iterates over each arg and, if it", complete=False) == \
        "Takes a list of arguments."  # cut by the token limit mid-sentence
    assert hover_text("Save the file to the file to the disk. It returns the path.") == "Returns the path."
    assert hover_text("It clears the environment variables and yields the environment variables it removed.") == \
        "Clears the environment variables and yields the environment variables it removed."  # a pair twice is fine
    assert hover_text("Get user name.", "get_user_name") == ""


class ScriptedModel:
    """A chat model that answers from a script and records what it was asked."""

    def __init__(self, answers: list[str]):
        self.answers, self.prompts = answers, []

    def can_chat(self) -> bool:
        return True

    def chat(self, messages: list[dict], config: GenerationConfig, cancel) -> Generation:
        self.prompts.append(frame_chat(chat_frame(CHATML), messages))
        answer = self.answers.pop(0)
        reason = "cancelled" if answer == "CANCEL" else "stop"
        return Generation(text="" if reason == "cancelled" else answer, token_ids=[], finish_reason=reason)


def test_hover_explains_in_a_follow_up_that_shares_the_summary_conversation():
    code = "def size_of(path):\n    return os.stat(path).st_size\n"
    definition = definition_at("m.py", code, code.index("return"))
    model = ScriptedModel(["Return the size of a file.", "CANCEL",
                           "This function reads the size of path. It returns the size in bytes."])
    summarizer = Summarizer(ChatWriter(model, EncoderDecoderWriter(lambda: None)))
    assert summarizer.hover(definition) == "Return the size of a file."  # explanation cancelled: the line, uncached
    assert summarizer.hover_cached(definition) is None and summarizer.cached(definition) == "Return the size of a file."
    assert summarizer.hover(definition) == "Reads the size of path. Returns the size in bytes."
    assert summarizer.hover(definition) == summarizer.hover_cached(definition) and len(model.prompts) == 3
    summary_asked, explain_asked = model.prompts[0], model.prompts[2]
    assert explain_asked.startswith(summary_asked)  # the summary's key/values serve the follow-up as they are
    assert explain_asked[len(summary_asked):].startswith("Return the size of a file.<|im_end|>")
    assert "what it returns" in explain_asked and summarizer.model_runs == 1 and summarizer.explanations == 2


def test_the_prompt_holds_the_convention_the_examples_and_the_code():
    prompt = frame_chat(chat_frame(CHATML), summary_messages("def area(r):\n    return 3.14 * r * r"))
    assert prompt.count("<|im_start|>user") == 9 and prompt.count("<|im_start|>assistant") == 9  # 8 examples
    assert "imperative mood" in prompt and prompt.endswith("return 3.14 * r * r<|im_end|>\n<|im_start|>assistant\n")


def test_labelling_resumes_where_it_stopped(exported, tmp_path):
    from plusls.training.teacher import label, labels_path, read_labels

    teacher = with_chat_template(exported["qwen2"], tmp_path / "teacher")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [{"name": f"m.f{i}", "code": f"def f{i}(x):\n    return x + {i}\n", "summary": f"Add {i} to x."}
            for i in range(3)]
    (corpus / "summary.train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    first = label(corpus, teacher, limit=2, log=lambda _: None)
    assert first["this_run"] == 2 and len(read_labels(labels_path(corpus, "teacher"))) == 2
    with open(labels_path(corpus, "teacher"), "a") as f:
        f.write('{"hash": "torn')  # a run killed mid-line
    second = label(corpus, teacher, log=lambda _: None)
    assert second["this_run"] == 1 and second["labelled"] == 3  # only the one not yet labelled
    assert len(read_labels(labels_path(corpus, "teacher"))) == 3


def test_a_model_without_a_chat_template_is_refused_with_the_reason(exported):
    from plusls.exported import ModelDirError

    with pytest.raises(ModelDirError, match="no chat template"):
        ChatSummarizer(exported["qwen2"])


def test_who_writes_summaries_is_one_of_two_and_a_typo_keeps_the_previous_choice():
    from plusls.server.settings import parse_settings

    chosen, errors = parse_settings({"models": {"summaries": "docstring"}})
    assert chosen.models.summaries == "docstring" and not errors
    kept, errors = parse_settings({"models": {"summaries": "docstrings"}}, chosen)
    assert kept.models.summaries == "docstring" and "expected one of 'completion', 'docstring'" in errors[0]


def test_query_labels_cover_public_functions_and_start_from_committed_ones(exported, tmp_path, monkeypatch):
    from plusls.training import teacher as teacher_module
    from plusls.training.mining import code_hash
    from plusls.training.teacher import label, labels_path, read_labels

    model = with_chat_template(exported["qwen2"], tmp_path / "teacher")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [{"name": f"m.{'_' if i == 1 else ''}f{i}", "code": f"def f{i}(x):\n    return x + {i}\n",
             "summary": f"Add {i} to x."} for i in range(4)]
    (corpus / "summary.train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    committed = tmp_path / "committed"
    committed.mkdir()
    (committed / labels_path(corpus, "teacher", kind="query").name).write_text(
        json.dumps({"hash": code_hash(rows[0]["code"]), "query": "python add zero", "human": ""}) + "\n")
    monkeypatch.setattr(teacher_module, "COMMITTED", committed)
    result = label(corpus, model, log=lambda _: None, kind="query")
    assert result["this_run"] == 2 and result["of"] == 3  # f1 is private; f0's query came with the code
    labels = read_labels(labels_path(corpus, "teacher", kind="query"), "query")
    assert set(labels) == {code_hash(rows[i]["code"]) for i in (0, 2, 3)}
    assert labels[code_hash(rows[0]["code"])] == "python add zero"
