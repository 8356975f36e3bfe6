"""`plusls train completion`: FIM fine-tuning of a causal LM on a mined corpus and accepted completions."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow  # trains models


SAMPLES = [{"prefix": f"def add_{i}(a, b):\n    ", "middle": "return a + b", "suffix": f"\n\n\nx_{i} = 1\n",
            "cut": "lines"} for i in range(12)]


def test_fim_and_left_to_right_sequences(checkpoints):
    from transformers import AutoTokenizer

    from plusls.completion.prompt import Cursor, PromptBuilder, WindowState
    from plusls.training.completion import fim_ids

    tok = AutoTokenizer.from_pretrained(checkpoints["llama"])
    tok.add_special_tokens({"additional_special_tokens": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]})
    vocab = tok.get_vocab()
    fim = {part: {"token": f"<fim_{part}>", "id": vocab[f"<fim_{part}>"]} for part in ("prefix", "suffix", "middle")}
    eos = tok.eos_token_id
    ids, labels = fim_ids(tok, SAMPLES[0], fim, eos, as_fim=True)
    marks = {fim[p]["id"] for p in fim}
    assert marks <= set(ids) and ids[-1] == eos
    middle = [t for t, y in zip(ids, labels) if y != -100]
    assert tok.decode(middle[:-1]) == "return a + b"  # loss only on the middle and its EOS
    # The layout the server sends: the cursor line's text ("    ") after the middle marker, as the middle's start.
    context = ids[: len(ids) - len(middle)]
    line = tok("    ", add_special_tokens=False)["input_ids"]
    assert context[-len(line) - 1 :] == [fim["middle"]["id"], *line]
    text = SAMPLES[0]["prefix"] + SAMPLES[0]["suffix"]
    served = PromptBuilder(tok.backend_tokenizer, fim, 256, 64).build(Cursor(text, len(SAMPLES[0]["prefix"])),
                                                                      WindowState())
    assert context == served
    ids, labels = fim_ids(tok, SAMPLES[0], fim, eos, as_fim=False)
    assert not marks & set(ids)
    target = tok.decode([t for t, y in zip(ids, labels) if y != -100])
    assert target.startswith("return a + b") and "x_0 = 1" in target  # middle, then the code after it


def test_train_completion_cli_adds_fim_tokens_and_learns(checkpoints, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "fim.train.jsonl").write_text("\n".join(json.dumps(s) for s in SAMPLES) + "\n")
    log = tmp_path / "completions.jsonl"
    log.write_text(json.dumps({"accepted": True, "text": "return a - b", "prefix": "def sub(a, b):\n    ",
                               "suffix": "", "path": "/elsewhere/x.py"}) + "\n"
                   + json.dumps({"accepted": False, "text": "no", "prefix": "", "suffix": "", "path": "/x.py"}) + "\n")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "plusls.cli", "train", "completion", "--out", str(out), "--corpus",
           str(corpus), "--source", str(checkpoints["llama"]), "--telemetry", str(log), "--steps", "30",
           "--lr", "3e-3", "--threads", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["steps"], result["samples"], result["accepted"]) == (30, 12, 1)
    assert "plusls export" in done.stderr
    vocab = json.loads((out / "model" / "tokenizer.json").read_text())["added_tokens"]
    assert {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"} <= {t["content"] for t in vocab}
    import torch

    history = torch.load(out / "ckpt.pt", weights_only=False)["history"]
    assert history[-1]["loss"] < history[0]["loss"] * 0.8


def test_train_completion_bad_input_says_what_to_do(checkpoints, tmp_path):
    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "plusls.cli", "train", "completion", "--out",
                               str(tmp_path / "run"), "--corpus", str(tmp_path), "--source", str(checkpoints["llama"]),
                               "--telemetry", str(tmp_path / "none.jsonl"), *extra],
                              capture_output=True, text=True, timeout=300)

    missing = run()
    assert missing.returncode != 0 and "plusls train data" in missing.stderr
    (tmp_path / "fim.train.jsonl").write_text("")
    empty = run()
    assert empty.returncode != 0 and "nothing to train on" in empty.stderr
    rate = run("--fim-rate", "1.5")
    assert rate.returncode != 0 and "between 0 and 1" in rate.stderr
    assert not (tmp_path / "run" / "ckpt.pt").exists()


def test_a_model_with_its_own_fim_tokens_gets_none_added(checkpoints):
    """Qwen2.5-Coder spells them <|fim_prefix|> ...: training uses those and adds nothing (no untrained rows)."""
    from transformers import AutoTokenizer

    from plusls.training.completion import add_fim_tokens

    tok = AutoTokenizer.from_pretrained(checkpoints["qwen2"])
    size = len(tok)
    fim = add_fim_tokens(None, tok)  # None: resizing the model would fail, and must not happen
    assert len(tok) == size
    assert {p: fim[p]["token"] for p in fim} == {"prefix": "<|fim_prefix|>", "suffix": "<|fim_suffix|>",
                                                 "middle": "<|fim_middle|>"}
