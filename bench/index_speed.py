"""Search quality and indexing speed, both passes, side by side in one run; prints JSON.

For each embedder variant (an exported directory, one or two vectors per chunk, a token limit) and each benchmark
(CoSQA dev: 500 web queries over 6,267 functions; the mined corpus's held-out (summary, code) pairs: 1,626
functions of packages never trained on), a workspace holding one file per function is indexed as a user's is:
- first pass (`update(embed=False)`): walk, tree-sitter, SQLite/FTS5 and the static first-pass vectors; timed,
  then every query searched (hybrid: first-pass vectors + BM25), as `workspace/symbol` answers while indexing;
- full pass (`embed_pending`): the encoder's vectors; timed, then every query in each mode.
MRR@10 and recall@1/10 per mode, and hybrid at each `--bm25-weights` (BM25's weight for plain-language queries,
the fusion weight chosen on CoSQA dev). `--rerank` adds hybrid+rerank (and hybrid over the same queries, which
may be fewer: `--rerank-queries`). `--eager` adds the plain baseline: PyTorch eager all-MiniLM-L6-v2, batch 64,
padded to 256 tokens, over the first chunks.

    .venv/bin/python bench/index_speed.py [--dirs DIR,...] [--views 2,1] [--max-length 128,256] [--limit N] [--eager]
        [--rerank completer --rerank-queries N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "eval"


def eager_baseline(model_dir: Path, texts: list[str]) -> float:
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(os.cpu_count() or 1)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            enc = tok(texts[i : i + 64], padding="max_length", truncation=True, max_length=256, return_tensors="pt")
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    return len(texts) / (time.perf_counter() - t)


class Variant:
    """The embedder as the index sees it, with a token limit, and optionally one vector per chunk (the doc view's
    slot then holds the code view's vector: the same ranking as one view, at one view's cost)."""

    def __init__(self, inner, max_length: int, views: int):
        self.inner, self.dim, self.max_length, self.views = inner, inner.dim, max_length, views

    def embed(self, texts, max_length=None, **kw):
        if self.views == 2 or len(texts) < 2:
            return self.inner.embed(texts, max_length=self.max_length, **kw)
        import numpy as np

        code = self.inner.embed(texts[: len(texts) // 2], max_length=self.max_length, **kw)
        return np.concatenate([code, code])


def quality(index, queries, modes, reranker=None) -> dict:
    """Each mode's ranking quality; "hybrid+rerank": hybrid's top results reranked by `reranker`."""
    from plusls.common.metrics import mrr_at_k, recall_at_k
    from plusls.evaluation.retrieval import rank_all

    golds = [g for _, g in queries]
    out = {}
    for mode in modes:
        rankings, latency = rank_all(index, queries, mode.split("+")[0], reranker=reranker if "+" in mode else None)
        latency.sort()
        out[mode] = {"mrr@10": round(mrr_at_k(rankings, golds, 10), 4),
                     **{f"recall@{k}": round(recall_at_k(rankings, golds, k), 4) for k in (1, 10)},
                     "search_p50_ms": round(1000 * latency[len(latency) // 2], 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cosqa", default=str(SHARED / "cosqa"))
    ap.add_argument("--corpus", default=None, help="the mined corpus (default: plusls train data's folder)")
    ap.add_argument("--datasets", default="cosqa,heldout")
    ap.add_argument("--dirs", default="", help="exported embedding model directories (default: the default one)")
    ap.add_argument("--views", default="2")
    ap.add_argument("--max-length", default="128", help="tokens of a chunk the encoder reads (the index: 128)")
    ap.add_argument("--limit", type=int, default=0,
                    help="only the first N functions and the queries whose gold is among them")
    ap.add_argument("--no-first-pass", action="store_true")
    ap.add_argument("--bm25-weights", default="", help="also hybrid with these BM25 weights for plain-language queries")
    ap.add_argument("--rerank", default=None, metavar="completer|DIR",
                    help="also hybrid+rerank with this reranker (and hybrid over the same queries)")
    ap.add_argument("--rerank-queries", type=int, default=0, metavar="N", help="rerank only the first N queries")
    ap.add_argument("--eager", type=int, default=0, metavar="N",
                    help="also time the PyTorch eager baseline on N chunks")
    args = ap.parse_args()

    from plusls.common.paths import cache_home, default_models_dir
    from plusls.evaluation.retrieval import MODES, load_cosqa, load_mined_pairs, write_corpus
    from plusls.exported.defaults import EMBEDDER, ensure_default
    from plusls.exported.static_embedder import static_for
    from plusls.indexer import search as search_module
    from plusls.indexer.embedding_model import load_embedder
    from plusls.indexer.rerankers import load_reranker
    from plusls.indexer.workspace_index import WorkspaceIndex
    from plusls.training.mining import default_corpus_dir

    datasets = {}
    for name in args.datasets.split(","):
        if name == "cosqa":
            codes, queries = load_cosqa(Path(args.cosqa))
        else:
            codes, queries = load_mined_pairs(Path(args.corpus) if args.corpus else default_corpus_dir())
        if args.limit:
            codes = dict(list(codes.items())[: args.limit])
            queries = [(q, g) for q, g in queries if g in codes]
        datasets[name] = (codes, queries)
    reranker = load_reranker(args.rerank) if args.rerank else None
    dirs = [Path(d) for d in args.dirs.split(",") if d] or [ensure_default(EMBEDDER, default_models_dir())]
    cpu = open("/proc/cpuinfo").read()
    out: dict = {"bench": "index_speed", "date": time.strftime("%Y-%m-%d"),
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                            f"{'AVX-512 VNNI' if 'avx512_vnni' in cpu else 'no VNNI'}",
                 "datasets": {k: {"functions": len(c), "queries": len(q)} for k, (c, q) in datasets.items()},
                 "variants": {}}
    texts: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_dir in dirs:
            base, model_id = load_embedder(model_dir, default_models_dir(), log=lambda m: None)
            static = None if args.no_first_pass else static_for(base, model_id, cache_home() / "static")
            for views in map(int, args.views.split(",")):
                for length in map(int, args.max_length.split(",")):
                    name = f"{model_dir.name}-{views}view-{length}"
                    embedder = Variant(base, length, views)
                    row: dict = {"quantization": base.manifest.quantization}
                    for ds, (codes, queries) in datasets.items():
                        root = write_corpus(codes, Path(tmp) / ds)
                        index = WorkspaceIndex(root, embedder, name, Path(tmp) / f"index-{name}-{ds}",
                                               log=lambda m: None, static=static)
                        first = index.update(embed=False)
                        r: dict = {"chunks": first.chunks_added,
                                   "first_pass_chunks_per_s": round(first.chunks_added / first.scan_seconds, 1)}
                        if static is not None:
                            r["first_pass"] = quality(index, queries, ["hybrid"])["hybrid"]
                        t = time.perf_counter()
                        index.embed_pending(first, None)
                        full = time.perf_counter() - t
                        r["full_pass_chunks_per_s"] = round(first.chunks_added / full, 1)
                        r["end_to_end_chunks_per_s"] = round(first.chunks_added / (full + first.scan_seconds), 1)
                        r["full"] = quality(index, queries, MODES)
                        if reranker is not None:
                            some = queries[: args.rerank_queries or None]
                            r["reranked"] = {"queries": len(some),
                                             **quality(index, some, ["hybrid", "hybrid+rerank"], reranker)}
                        for w in [float(w) for w in args.bm25_weights.split(",") if w]:
                            default = search_module.PLAIN_LANGUAGE_BM25_WEIGHT
                            search_module.PLAIN_LANGUAGE_BM25_WEIGHT = w
                            r["full"][f"hybrid@{w}"] = quality(index, queries, ["hybrid"])["hybrid"]
                            search_module.PLAIN_LANGUAGE_BM25_WEIGHT = default
                        row[ds] = r
                        print(json.dumps({name: {ds: r}}), flush=True)
                        if not texts:
                            texts = [t for (t,) in index.store.db.execute("SELECT text FROM chunks ORDER BY id")]
                        index.close()
                    out["variants"][name] = row
    if args.eager:
        out["pytorch_eager_chunks_per_s"] = round(eager_baseline(EMBEDDER.source(), texts[: args.eager]), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
