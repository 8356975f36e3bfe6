"""The text-code matching model (training/matching.py) on a tiny random BERT: it learns the fixture's pairs, resumes
exactly, exports to ONNX with parity, and as a search reranker lifts the described function."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixture_repo import make_repo

# (summary, code) pairs: four of the fixture repository's functions as the index chunks them (the reranking test
# searches for them by these summaries), and a few more.
# Summaries in other words than the docstrings, so the tiny random embedder alone does not find them first.
pytestmark = pytest.mark.slow  # trains models


FIXTURE_FUNCTIONS = {"read_text": ("src/files.py", "read a file into one string"),
                     "fibonacci": ("src/mathutil.py", "fib sequence value at position n"),
                     "sortByAge": ("web/types.ts", "order people from young to old"),
                     "norm": ("core/lib.rs", "length of the vector")}


def _fixture_pairs() -> list[tuple[str, str]]:
    from fixture_repo import FILES

    from plusls.indexer.chunker import chunk_file

    out = []
    for name, (path, summary) in FIXTURE_FUNCTIONS.items():
        out.append((summary, next(c.text for c in chunk_file(path, FILES[path]) if c.name == name)))
    return out


PAIRS = _fixture_pairs() + [
    ("Return the sum of two numbers.", "def add(a, b):\n    return a + b"),
    ("Push an item on the stack.", "def push(self, item):\n    self.items.append(item)"),
    ("Print the numbers below ten.", "for i in range(10):\n    print(i)"),
    ("Print the command line arguments.", "import sys\nprint(sys.argv)"),
]
STEPS = 300
# A random tiny embedder mines near-random negatives at MiniLM's temperature 0.05 (always the same few codes):
# sample them evenly; and its random word embeddings must learn.
TINY = dict(negative_temperature=1.0, freeze_embeddings=False)


def tiny_bert(out: Path) -> Path:
    """A tiny random sentence-transformers BERT whose WordPiece vocabulary knows the fixture's words (128 positions:
    a pair fits without cutting most of the code; no dropout: it learns the fixture in fewer steps)."""
    import transformers as tf
    from tiny_models import CORPUS, build
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    build("bert", out)  # the sentence-transformers files; model and tokenizer are replaced below
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # Every word and character of the texts, sorted: the same vocabulary on every run (the WordPiece trainer's
    # ties are not).
    pre = pre_tokenizers.BertPreTokenizer()
    words = {w.lower() for t in CORPUS + [t for pair in PAIRS for t in pair] for w, _ in pre.pre_tokenize_str(t)}
    chars = {c for w in words for c in w}
    vocab = specials + sorted(words | chars) + sorted(f"##{c}" for c in chars)
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                      sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    torch.manual_seed(0)
    tf.BertModel(tf.BertConfig(vocab_size=len(fast), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=128, max_position_embeddings=128, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rows = "".join(json.dumps({"summary": s, "code": c}) + "\n" for s, c in PAIRS)
    (folder / "summary.train.jsonl").write_text(rows)
    (folder / "summary.heldout.jsonl").write_text(rows)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("matching")
    bert = tiny_bert(root / "bert")
    corpus = write_corpus(root / "corpus")
    from plusls.training.matching import train_matching

    result = train_matching(corpus, root / "run", bert, max_steps=STEPS, batch_size=8, lr=2e-3, seed=0, threads=1,
                            heldout_queries=0, log=lambda m: None, **TINY)
    return {"root": root, "bert": bert, "corpus": corpus, "result": result, "model": root / "run" / "model"}


@pytest.fixture(scope="module")
def exported_matcher(trained):
    from plusls.exported.export import export_model

    out = trained["root"] / "exported"
    manifest = export_model(trained["model"], "matching", out, log=lambda m: None)
    return out, manifest


def gold_mrr(model, tokenizer) -> float:
    """MRR of each fixture text's own code among all the fixture's codes, by the model's match logits."""
    from plusls.training.matching import pair_ids

    total = 0.0
    for n, (text, _) in enumerate(PAIRS):
        t = tokenizer(text, add_special_tokens=False)["input_ids"][: model.max_text]
        scores = []
        for _, code in PAIRS:
            c = tokenizer(code, add_special_tokens=False)["input_ids"][: model.max_code]
            ids, types = pair_ids(tokenizer.cls_token_id, tokenizer.sep_token_id, t, c)
            with torch.no_grad():
                scores.append(float(model.score(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long),
                                                torch.tensor([types]))))
        total += 1 / (1 + sum(s > scores[n] for s in scores))
    return total / len(PAIRS)


@pytest.fixture(scope="module")
def tiny_embedder(trained):
    from plusls.exported.export import export_model

    out = trained["root"] / "embedder"
    export_model(trained["bert"], "embedding", out, log=lambda m: None)
    return out


def test_loss_falls_and_the_model_ranks_each_texts_code_above_the_distractors(trained):
    from transformers import AutoModel, AutoTokenizer

    from plusls.exported.export.embedding_modules import MatchingModel, load_matching

    losses = [h["loss"] for h in trained["result"]["history"] if "loss" in h]
    assert losses[-1] < 0.6 * losses[0]
    tok = AutoTokenizer.from_pretrained(trained["model"])
    torch.manual_seed(0)
    untrained = MatchingModel(AutoModel.from_pretrained(trained["bert"], add_pooling_layer=False), "mean", 32, 93)
    before, after = gold_mrr(untrained.eval(), tok), gold_mrr(load_matching(trained["model"]), tok)
    assert after >= 0.75 and after > before + 0.3, (before, after)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(trained, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    import plusls.training.matching as matching

    kw = dict(max_steps=6, batch_size=4, lr=2e-3, seed=0, threads=1, heldout_queries=0, checkpoint_every=3,
              log=lambda m: None, **TINY)
    matching.train_matching(trained["corpus"], tmp_path / "a", trained["bert"], **kw)

    class Killed(Exception):
        pass

    real = matching.matching_batches

    def dying(*a, **k):
        batch_at = real(*a, **k)
        return lambda step: (_ for _ in ()).throw(Killed()) if step == 4 else batch_at(step)

    monkeypatch.setattr(matching, "matching_batches", dying)
    with pytest.raises(Killed):
        matching.train_matching(trained["corpus"], tmp_path / "b", trained["bert"], **kw)
    monkeypatch.setattr(matching, "matching_batches", real)
    assert (tmp_path / "b" / "ckpt.pt").exists() and not (tmp_path / "b" / "model").exists()
    matching.train_matching(trained["corpus"], tmp_path / "b", trained["bert"], **kw)
    for name in ("model.safetensors", "matching_head.safetensors"):
        a = load_file(str(tmp_path / "a" / "model" / name))
        b = load_file(str(tmp_path / "b" / "model" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_export_parity_and_runtime_scores(trained, exported_matcher):
    from plusls.exported.export.embedding_modules import load_matching
    from plusls.exported.matching import Matcher

    out, manifest = exported_matcher
    assert manifest.kind == "matching" and manifest.parity["fp32_max_abs_diff"] <= 1e-3
    assert set(manifest.files) >= {"model.onnx", "tokenizer.json"}
    matcher = Matcher(out)
    model = load_matching(trained["model"])
    text, codes = PAIRS[1][0], [c for _, c in PAIRS]
    got = matcher.score(text, codes)
    ref = []
    for ids, types in matcher.pairs(text, codes):
        with torch.no_grad():
            ref.append(float(model.score(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long),
                                         torch.tensor([types]))))
    assert np.abs(np.array(ref) - got).max() < 1e-3
    assert int(np.argmax(got)) == 1


def test_int8_export_records_its_agreement(trained, tmp_path):
    from plusls.exported.errors import ExportError
    from plusls.exported.export import export_model

    try:
        manifest = export_model(trained["model"], "matching", tmp_path / "int8", int8=True, log=lambda m: None)
    except ExportError as e:  # a tiny random model may lose too much: then the refusal says so
        assert "int8 loses too much quality" in str(e)
        return
    assert manifest.quantization.startswith("int8") and manifest.parity["int8_pair_order_agreement"] >= 0.9


def test_reranking_lifts_the_described_function(trained, exported_matcher, tiny_embedder, tmp_path):
    from plusls.exported import Embedder
    from plusls.exported.matching import Matcher
    from plusls.indexer.search import rerank_order, search
    from plusls.indexer.workspace_index import WorkspaceIndex

    emb_dir = tiny_embedder
    repo = make_repo(tmp_path / "ws")
    index = WorkspaceIndex(repo, Embedder(emb_dir), "tiny-bert", tmp_path / "index", log=lambda m: None)
    index.update()
    matcher = Matcher(exported_matcher[0])
    wanted = {summary: name for name, (_, summary) in FIXTURE_FUNCTIONS.items()}
    top = index.store.chunk_counts()["chunks"]  # every chunk a candidate
    improved = 0
    for query, name in wanted.items():
        plain = search(index, query, k=top).results
        response = search(index, query, k=top, reranker=matcher, rerank_top=top)
        assert "rerank" in response.timings_ms
        key = [(r.path, r.start_line) for r in plain]
        scores = {(r.path, r.start_line): r.rerank_score for r in response.results}
        by_score = sorted(key, key=lambda k: -scores[k])
        want = next(k for k, r in zip(key, plain) if r.qualname.split(".")[-1] == name)
        assert by_score.index(want) <= 2, (query, by_score)  # the matcher puts it in its first three
        reranked = [(r.path, r.start_line) for r in response.results]
        assert reranked == [key[n] for n in rerank_order([scores[k] for k in key])]  # fused with the index's order
        improved += reranked.index(want) < key.index(want)
    assert improved >= 2  # the random embedder alone does not find them first
    # A query naming code is left to the exact-name boost: no reranking.
    assert "rerank" not in search(index, "read_text", k=5, reranker=matcher).timings_ms
    index.close()


def test_eval_search_reports_hybrid_with_reranking(exported_matcher, tiny_embedder, tmp_path):
    """`plusls eval search --rerank DIR` on a CoSQA-shaped set of the fixture pairs: one more mode, hybrid+rerank."""
    from plusls.evaluation.run import EvalOptions, run_eval

    cosqa = tmp_path / "cosqa"
    cosqa.mkdir()
    (cosqa / "code_idx_map.txt").write_text(json.dumps({code: n for n, (_, code) in enumerate(PAIRS)}))
    (cosqa / "cosqa-retrieval-dev-500.json").write_text(json.dumps(
        [{"doc": text, "retrieval_idx": n} for n, (text, _) in enumerate(PAIRS[:4])]))
    result = run_eval(EvalOptions(task="search", model=str(tiny_embedder), data=str(tmp_path),
                                  rerank=str(exported_matcher[0])))
    metrics = result["metrics"]
    assert set(metrics) == {"vector", "bm25", "hybrid", "hybrid+rerank"}
    assert metrics["hybrid+rerank"]["mrr@10"] >= metrics["hybrid"]["mrr@10"]
    assert metrics["hybrid+rerank"]["recall@1"] >= 0.5
