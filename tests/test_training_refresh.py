"""`plusls train refresh` on a fixture workspace with tiny models: it improves retrieval on held-out files and
swaps the model in one rename; a refresh that measures worse is refused; a killed refresh leaves the old model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

# Docstrings say in other words what the code's names say: what a refresh must learn is this workspace's vocabulary.
pytestmark = pytest.mark.slow  # trains models


VERBS = {"read": "fetch", "write": "emit", "parse": "interpret", "load": "import", "save": "persist",
         "delete": "remove", "find": "locate", "count": "tally", "sort": "order", "merge": "combine",
         "split": "divide", "check": "verify"}
NOUNS = {"config": "settings", "user": "account", "file": "document", "record": "entry", "token": "credential",
         "image": "picture", "message": "note", "order": "purchase", "report": "summary", "table": "grid"}


def function(verb: str, noun: str) -> str:
    return (f"def {verb}_{noun}(item):\n"
            f'    """{VERBS[verb].capitalize()} the {NOUNS[noun]} and return it."""\n'
            f"    value = {verb}_helper(item)\n"
            f"    result = {noun}_store(value)\n"
            f"    return result\n")


def make_workspace(root: Path) -> Path:
    """12 modules of 5 documented functions each, and a secret."""
    (root / "pkg").mkdir(parents=True)
    for i in range(12):
        rel = f"pkg/module_{i}.py"
        parts = [function(list(VERBS)[(i + j) % len(VERBS)], list(NOUNS)[(i * 3 + j) % len(NOUNS)])
                 for j in range(5)]
        (root / rel).write_text("\n\n".join(parts))
    (root / ".env").write_text("SECRET=1\n")
    return root


def tiny_embedder(out: Path, corpus: list[str]) -> Path:
    """A tiny random sentence-transformers BERT whose WordPiece vocabulary is the workspace's words (built here, in
    a fixed order: the tokenizers trainer breaks frequency ties differently from run to run)."""
    import re

    import torch
    import transformers as tf
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    torch.manual_seed(0)
    words = sorted(set(re.findall(r"\w+|[^\w\s]", " ".join(corpus).lower())))
    chars = sorted(set("".join(words)))
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *chars,
                                *(f"##{c}" for c in chars)]))
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                      sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)
    config = tf.BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=64)
    out.mkdir(parents=True)
    tf.BertModel(config).save_pretrained(out)
    fast.save_pretrained(out)
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    return out


@pytest.fixture(scope="module")
def serving(tmp_path_factory) -> tuple[Path, Path]:
    """(workspace, the exported embedder that serves it now)."""
    from plusls.exported.export import export_model

    base = tmp_path_factory.mktemp("refresh")
    workspace = make_workspace(base / "ws")
    corpus = [p.read_text() for p in sorted((workspace / "pkg").glob("*.py"))] * 3
    src = tiny_embedder(base / "src", corpus)
    export_model(src, "embedding", base / "models" / "embedder", log=lambda m: None)
    return workspace, base / "models" / "embedder"


def fresh_copy(model: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "models" / model.name
    shutil.copytree(model, out)
    return out


def run_refresh(workspace: Path, current: Path, tmp_path: Path, steps: int = 60, lr: float = 1e-3):
    import torch

    from plusls.training.refresh import refresh

    threads = torch.get_num_threads()
    try:
        return refresh(workspace, {"search": current}, minutes=0, steps=steps, seed=0, threads=1,
                       lr={"search": lr}, telemetry=None, runs_dir=tmp_path / "runs", log=lambda m: None)[0]
    finally:
        torch.set_num_threads(threads)


def test_workspace_samples_hold_out_whole_files_and_skip_secrets(serving):
    from plusls.training.refresh import workspace_samples

    workspace, _ = serving
    samples = workspace_samples(workspace, seed=0)
    train_files = {p["path"] for p in samples.pairs["train"]}
    held_files = {p["path"] for p in samples.pairs["heldout"]}
    assert held_files and train_files and not held_files & train_files
    assert len(held_files) == 3 and len(samples.pairs["train"]) + len(samples.pairs["heldout"]) == 60
    assert all('"""' not in p["code"] for p in samples.pairs["train"])  # the docstring is the text side only
    assert all(f["path"] not in train_files for f in samples.fim["heldout"])
    assert samples.files == 12  # .env is never read


def test_refresh_improves_held_out_retrieval_and_swaps_the_model(serving, tmp_path):
    from plusls.exported import Embedder
    from plusls.exported.manifest import read_manifest
    from plusls.training.refresh import previous_dir

    workspace, model = serving
    current = fresh_copy(model, tmp_path)
    old_files = read_manifest(current).files
    outcome = run_refresh(workspace, current, tmp_path)
    assert outcome.swapped, outcome.line()
    assert outcome.after > outcome.before + 0.3  # it learnt that "fetch the settings" is read_config
    new = read_manifest(current, verify=True)
    assert new.files != old_files and Path(new.source).is_dir()  # the next refresh starts from these weights
    assert read_manifest(previous_dir(current)).files == old_files  # kept for going back
    assert Embedder(current).embed(["read the config"]).shape == (1, 32)
    # --rollback puts the replaced model back (and a second one the refreshed model again).
    back = subprocess.run([sys.executable, "-m", "plusls.cli", "train", "refresh", "--rollback", "--only",
                           "search", "--embedding", str(current)], capture_output=True, text=True)
    assert back.returncode == 0 and "back to the model before the last refresh" in back.stdout, back.stderr
    assert read_manifest(current, verify=True).files == old_files
    assert read_manifest(previous_dir(current)).files == new.files
    # Deterministic with a seed: the same refresh of the same model measures the same.
    again = run_refresh(workspace, fresh_copy(model, tmp_path / "again"), tmp_path / "again")
    assert (again.before, again.after) == (outcome.before, outcome.after)


def test_refresh_that_measures_worse_is_refused_and_the_model_kept(serving, tmp_path):
    """After a good refresh, one gone wrong (a learning rate 50x too high) measures worse on the held-out files:
    it is refused and the good model keeps serving."""
    from plusls.exported.manifest import read_manifest
    from plusls.training.refresh import previous_dir, staging_dir

    workspace, model = serving
    current = fresh_copy(model, tmp_path)
    assert run_refresh(workspace, current, tmp_path).swapped
    good = read_manifest(current).files
    kept = read_manifest(previous_dir(current)).files
    outcome = run_refresh(workspace, current, tmp_path / "bad", lr=5e-2)
    assert not outcome.swapped and outcome.after < outcome.before
    assert "refused" in outcome.reason and "worse" in outcome.reason
    assert read_manifest(current, verify=True).files == good
    assert read_manifest(previous_dir(current)).files == kept and not staging_dir(current).exists()
    assert not any((tmp_path / "bad" / "runs" / "search").iterdir())  # the refused run's weights are not kept


def test_killed_refresh_leaves_the_previous_model_serving(serving, tmp_path):
    from plusls.exported import Embedder
    from plusls.exported.manifest import read_manifest

    workspace, model = serving
    current = fresh_copy(model, tmp_path)
    manifest = (current / "manifest.json").read_bytes()
    env = {**os.environ, "PLUSLS_INDEX_DIR": str(tmp_path / "index")}
    proc = subprocess.Popen([sys.executable, "-m", "plusls.cli", "train", "refresh", str(workspace),
                             "--only", "search", "--embedding", str(current), "--steps", "100000", "--minutes", "0",
                             "--threads", "1"], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    seen = []
    for line in proc.stderr:  # wait until it trains
        seen.append(line)
        if line.startswith("step ") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any(line.startswith("step ") for line in seen), "".join(seen)
    assert (current / "manifest.json").read_bytes() == manifest
    read_manifest(current, verify=True)
    assert Embedder(current).embed(["x"]).shape == (1, 32)
    # The next refresh clears what the killed one left and completes.
    outcome = run_refresh(workspace, current, tmp_path, steps=60)
    assert outcome.swapped, outcome.line()


def test_refresh_cli_explains_a_missing_workspace(tmp_path):
    out = subprocess.run([sys.executable, "-m", "plusls.cli", "train", "refresh", str(tmp_path / "nope"),
                          "--only", "search", "--embedding", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "manifest" in out.stderr or "not a folder" in out.stderr


def test_accepted_completions_of_this_workspace_become_training_samples(serving, tmp_path):
    from plusls.training.refresh import heldout_files, workspace_samples

    workspace, _ = serving
    log = tmp_path / "completions.jsonl"
    files = [f"pkg/module_{i}.py" for i in range(12)]
    held = sorted(heldout_files(files, 0))
    inside = str(workspace / next(f for f in files if f not in held))
    records = [{"accepted": True, "text": "return result", "prefix": "def f():\n    ", "suffix": "", "path": inside},
               {"accepted": False, "text": "rejected", "prefix": "", "suffix": "", "path": inside},
               {"accepted": True, "text": "elsewhere", "prefix": "", "suffix": "", "path": str(tmp_path / "x.py")},
               {"accepted": True, "text": "held out", "prefix": "", "suffix": "", "path": str(workspace / held[0])}]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n{\"cut short by a cra")
    samples = workspace_samples(workspace, seed=0, telemetry=log)
    accepted = [f for f in samples.fim["train"] if f["cut"] == "accepted"]
    assert samples.accepted == 1 and [f["middle"] for f in accepted] == ["return result"]
    assert not any(f["cut"] == "accepted" for f in samples.fim["heldout"])


def test_completion_refresh_adds_fim_tokens_and_refuses_what_is_not_better(serving, exported, tmp_path):
    """A causal LM without FIM tokens gets them (embeddings resized), trains on the workspace's FIM cuts and
    exports with the tokens declared; a tiny model that writes no held-out line better is refused."""
    import torch

    from plusls.exported.export import export_model
    from plusls.exported.manifest import read_manifest
    from plusls.training.completion import FIM_TOKENS, train_fim
    from plusls.training.refresh import refresh, workspace_samples

    workspace, _ = serving
    src = read_manifest(exported["llama"]).source
    assert read_manifest(exported["llama"]).fim is None
    samples = workspace_samples(workspace, seed=0)
    threads = torch.get_num_threads()
    try:
        assert train_fim(Path(src), samples.fim["train"], tmp_path / "run", 40, 0, 0, 1, 3e-3, log=lambda m: None) == 40
        history = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)["history"]
        assert history[-1]["loss"] < history[0]["loss"] * 0.8
        fim = export_model(tmp_path / "run" / "model", "causal-lm", tmp_path / "onnx", log=lambda m: None).fim
        assert [fim[part]["token"] for part in ("prefix", "suffix", "middle")] == list(FIM_TOKENS)

        current = fresh_copy(exported["llama"], tmp_path)
        before = read_manifest(current).files
        outcome = refresh(workspace, {"completion": current}, minutes=0, steps=40, threads=1,
                          lr={"completion": 3e-3}, runs_dir=tmp_path / "runs", log=lambda m: None)[0]
    finally:
        torch.set_num_threads(threads)
    assert (outcome.before, outcome.after, outcome.swapped) == (0.0, 0.0, False)
    assert "refused" in outcome.reason and read_manifest(current, verify=True).files == before


def test_a_refreshed_model_that_fails_its_export_checks_is_refused_and_its_weights_kept(serving, tmp_path,
                                                                                       monkeypatch):
    from plusls.exported.errors import ExportError
    from plusls.exported.manifest import read_manifest
    from plusls.training import refresh

    def failing(*args, **kwargs):
        raise ExportError("int8 loses too much quality: int8_top1_agreement 0.870 < 0.9; export without --int8")

    monkeypatch.setattr(refresh, "export_model", failing)
    workspace, model = serving
    current = fresh_copy(model, tmp_path)
    before = read_manifest(current).files
    outcome = run_refresh(workspace, current, tmp_path, steps=5)
    assert not outcome.swapped and outcome.after is None
    assert "did not export" in outcome.reason and "int8_top1_agreement" in outcome.reason
    assert read_manifest(current, verify=True).files == before
    (run,) = (tmp_path / "runs" / "search").iterdir()
    assert (run / "model" / "config.json").is_file() and not (run / "ckpt.pt").exists()
    assert str(run / "model") in outcome.reason
