"""The docstring encoder-decoder: a tiny bert2bert trained on a few pairs, exported, and run by plusls's runtime;
and the bundled model the server uses by default."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from plusls.exported import GenerationConfig, Seq2SeqLM
from plusls.training.docstring import DECODING

pytestmark = pytest.mark.slow  # trains models


PAIRS = [
    ("def add(a, b):\n    return a + b", "Return the sum of two numbers."),
    ("def read_file(path):\n    with open(path) as f:\n        return f.read()", "Read a whole file."),
    ("class Stack:\n    def push(self, item):\n        self.items.append(item)", "Push an item on the stack."),
    ("for i in range(10):\n    print(i)", "Print ten numbers."),
]


@pytest.fixture(scope="module")
def trained(checkpoints, tmp_path_factory) -> tuple[Path, Path]:
    """(Hugging Face model dir, exported ONNX dir) of a tiny bert2bert that learnt PAIRS."""
    import torch

    from plusls.exported.export import export_model
    from plusls.training.docstring import Design, train_docstring
    from plusls.training.mining import code_hash

    root = tmp_path_factory.mktemp("docstring")
    corpus = root / "corpus"
    corpus.mkdir()
    rows = [json.dumps({"code": c, "summary": s}) for c, s in PAIRS]
    (corpus / "summary.train.jsonl").write_text("\n".join(rows) + "\n")
    (corpus / "summary.heldout.jsonl").write_text(rows[0] + "\n")
    # What `plusls train label` writes: the teacher's summary per code hash (here the human one, so the four pairs
    # stay unambiguous for the parity checks below).
    labels = root / "labels.jsonl"
    labels.write_text(json.dumps({"hash": code_hash(PAIRS[1][0]), "summary": PAIRS[1][1],
                                  "human": PAIRS[1][1]}) + "\n" + json.dumps({"hash": code_hash(PAIRS[2][0]),
                                                                             "summary": "", "human": ""}) + "\n")
    threads = torch.get_num_threads()
    try:
        result = train_docstring(corpus, root / "run", Design("tiny", 2, False, "test"),
                                 minilm_dir=checkpoints["bert"], max_steps=120, max_tokens=512, lr=3e-3,
                                 threads=1, labels=labels, log=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    assert result["steps"] == 120 and (root / "run" / "result.json").exists()
    assert result["train_pairs"] == 5 and result["teacher_pairs"] == 1  # an empty label adds nothing
    out = root / "onnx"
    export_model(root / "run" / "model", "seq2seq", out, log=lambda m: None)
    return root / "run" / "model", out


def test_exported_docstring_model_generates_what_pytorch_generates(trained):
    import torch
    from transformers import AutoTokenizer, EncoderDecoderModel

    hf_dir, onnx_dir = trained
    runtime = Seq2SeqLM(onnx_dir)
    manifest = runtime.manifest
    assert manifest.kind == "seq2seq" and manifest.architecture == "EncoderDecoderModel"
    assert manifest.special_tokens["eos"]["token"] == "[SEP]" and manifest.parity["fp32_max_abs_diff"] < 1e-4
    # The decoding chosen for the model travels with it: generation_config.json -> manifest -> runtime.
    assert manifest.config["generation"] == DECODING and runtime.generation_defaults == DECODING
    model = EncoderDecoderModel.from_pretrained(hf_dir).eval()
    assert model.generation_config.no_repeat_ngram_size == DECODING["no_repeat_ngram_size"]
    tok = AutoTokenizer.from_pretrained(hf_dir)
    codes = [c for c, _ in PAIRS]
    got = runtime.generate(codes, GenerationConfig(max_new_tokens=12, copy_bias=0.0))  # transformers has no copy bias
    for code, g in zip(codes, got):
        with torch.no_grad():
            ids = model.generate(**tok(code, return_tensors="pt"), max_new_tokens=12, do_sample=False, num_beams=1)
        assert g.text == tok.decode(ids[0], skip_special_tokens=True)
    # it learnt its four pairs: the summaries come back (lowercased by MiniLM's uncased vocabulary)
    learnt = sum(g.text == s.lower() for g, (_, s) in zip(got, PAIRS))
    assert learnt >= 3, [g.text for g in got]


def test_exported_docstring_model_accepts_space_joined_code_tokens(trained):
    """CodeXGLUE feeds code tokens joined by spaces; BERT's tokenizer reads them as the raw code."""
    runtime = Seq2SeqLM(trained[1])
    raw = runtime.generate(PAIRS[1][0], GenerationConfig(max_new_tokens=12))[0].text
    joined = runtime.generate("def read_file ( path ) : with open ( path ) as f : return f . read ( )",
                              GenerationConfig(max_new_tokens=12))[0].text
    assert raw == joined


def test_contrastive_fine_tune_improves_held_out_retrieval_and_exports(checkpoints, tmp_path):
    """The search embedder's text-code contrastive fine-tune on a tiny BERT: retrieval of held-out code by its
    summary gets better, and the result exports as an embedding model the runtime loads."""
    import torch

    from plusls.exported import Embedder
    from plusls.exported.export import export_model
    from plusls.training.contrastive import train_contrastive

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [json.dumps({"code": c, "summary": s}) for c, s in PAIRS]
    (corpus / "summary.train.jsonl").write_text("\n".join(rows) + "\n")
    (corpus / "summary.heldout.jsonl").write_text("\n".join(rows) + "\n")
    threads = torch.get_num_threads()
    try:
        result = train_contrastive(corpus, tmp_path / "run", checkpoints["bert"], max_steps=40, batch_size=4,
                                   lr=1e-3, threads=1, log=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    assert result["eval"]["heldout_mrr"] > result["heldout_mrr_before"]
    export_model(tmp_path / "run" / "model", "embedding", tmp_path / "onnx", log=lambda m: None)
    vectors = Embedder(tmp_path / "onnx").embed([c for c, _ in PAIRS])
    assert vectors.shape[0] == len(PAIRS)


def test_contrastive_interpolate_writes_that_fraction_of_the_change(checkpoints, tmp_path):
    """--interpolate A: the model written is base + A * (trained - base), so a run can keep part of what the base
    knew; the same run with A = 1 gives the trained weights."""
    import numpy as np
    import torch
    from safetensors.numpy import load_file

    from plusls.training.contrastive import train_contrastive

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [json.dumps({"code": c, "summary": s}) for c, s in PAIRS]
    for split in ("train", "heldout"):
        (corpus / f"summary.{split}.jsonl").write_text("\n".join(rows) + "\n")
    threads = torch.get_num_threads()
    try:
        for a in (1.0, 0.25):
            train_contrastive(corpus, tmp_path / f"run{a}", checkpoints["bert"], max_steps=10, batch_size=4,
                              lr=1e-3, threads=1, interpolate=a, log=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    base = load_file(str(next(checkpoints["bert"].glob("*.safetensors"))))
    full, part = (load_file(str(tmp_path / f"run{a}" / "model" / "model.safetensors")) for a in (1.0, 0.25))
    name = next(k for k in full if k.endswith("attention.self.query.weight"))
    key = next(k for k in base if k.endswith(name))  # the checkpoint may prefix its names
    assert not np.allclose(full[name], base[key])
    assert np.allclose(part[name], base[key] + 0.25 * (full[name] - base[key]), atol=1e-5)


def test_bundled_docstring_model_summarizes_a_function():
    """The model the server uses by default: committed, under 80 MB, int8, verified on load, and it ends a short
    summary sentence that starts from what the function does."""
    from plusls.exported.defaults import bundled_docstring_dir

    directory = bundled_docstring_dir()
    assert directory is not None, "exported/bundled/docstring is missing"
    assert sum(f.stat().st_size for f in directory.iterdir()) < 80 * 2**20
    assert (directory / "MODEL_CARD.md").is_file()
    model = Seq2SeqLM(directory)  # checks every file's sha256 against the manifest
    assert model.manifest.quantization and "int8" in model.manifest.quantization
    codes = ["def read_json(path):\n    with open(path) as f:\n        return json.load(f)",
             "def add(a, b):\n    return a + b"]
    outs = model.generate(codes, GenerationConfig(max_new_tokens=32))
    for out, verb in zip(outs, ("read", "add")):
        assert out.finish_reason == "eos" and 2 <= len(out.text.split()) <= 32, out
        assert out.text.split()[0] == verb, out.text  # it starts from what the function does


def test_query_pairs_join_as_many_summary_pairs_and_batches_hold_neighbours():
    """With search queries, each labelled function trains as (query, code) and as many other functions as
    (summary, code): a code is never twice in the training rows, so never its own negative; a batch is made of
    runs of neighbouring rows (same file: hard negatives)."""
    from plusls.training.contrastive import pair_batches, with_queries
    from plusls.training.mining import code_hash

    rows = [{"code": f"def f{i}(x):\n    return x + {i}\n", "summary": f"Add {i} to x."} for i in range(20)]
    queries = {code_hash(rows[i]["code"]): f"python add {i}" for i in (3, 4, 11)}
    queries[code_hash(rows[5]["code"])] = ""  # the teacher wrote nothing usable: a summary row like the others
    out = with_queries(rows, queries, seed=0)
    assert [r["summary"] for r in out if r["summary"].startswith("python")] == ["python add 3", "python add 4",
                                                                                "python add 11"]
    assert len(out) == 6 and len({r["code"] for r in out}) == 6
    assert with_queries(rows, {}, seed=0) == rows
    pairs = [([i], [i]) for i in range(20)]
    batch, _ = pair_batches(pairs, 8, seed=0, neighbours=4)(0)
    firsts = batch["text_ids"][:, 0].tolist()
    assert len(firsts) == 8 and all(firsts[k + 1] == firsts[k] + 1 for k in (0, 1, 2, 4, 5, 6))


@pytest.mark.parametrize("answer, query", [("python read json file into dict", "python read json file into dict"),
                                           ("Sort A Dict By Value\nmore", "sort a dict by value"),
                                           ("`flatten nested list`", "flatten nested list"),
                                           ("def f(x): return x", ""), ("sorting", "")])
def test_a_teacher_answer_becomes_a_query_or_nothing(answer, query):
    from plusls.training.queries import clean_query

    assert clean_query(answer) == query
