"""Search latency at 10k and 100k chunks; prints JSON.

Chunks are real CoSQA functions (cycled, each copy a distinct chunk) so BM25 sees real text; vectors are random
unit vectors (384-d, as MiniLM's), which is fine for timing. The FAISS index kind is what plusls picks for that
size (flat below vectors.IVF_THRESHOLD, IVF above). Per query: vector lookup, BM25 lookup, the whole hybrid
search() with its SQLite row fetch and fusion, and the same including the MiniLM query embedding.
500 CoSQA queries per size; p50/p95 in milliseconds.

    .venv/bin/python bench/search_latency.py [--sizes 10000,100000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


class FixedVectors:
    """Stands in for the embedder when building: random unit vectors (timing only)."""

    dim = 384

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def embed(self, texts, **kw):
        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def pct(values: list[float]) -> dict:
    a = np.array(values) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "eval" / "cosqa"))
    args = ap.parse_args()

    from plusls.common.paths import default_models_dir
    from plusls.evaluation.retrieval import load_cosqa
    from plusls.exported import Embedder
    from plusls.exported.defaults import EMBEDDER, ensure_default
    from plusls.indexer.chunker import Chunk
    from plusls.indexer.search import search
    from plusls.indexer.workspace_index import IndexSummary, WorkspaceIndex

    codes, queries = load_cosqa(Path(args.data))
    code_list = list(codes.values())
    minilm = Embedder(ensure_default(EMBEDDER, default_models_dir()))
    out = {"bench": "search_latency", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d"), "sizes": {}}
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp) / "ws"
            ws.mkdir()
            index = WorkspaceIndex(ws, FixedVectors(), "random", Path(tmp) / "index", log=lambda m: None)
            t = time.perf_counter()
            per_file = 100
            for f in range(size // per_file):
                chunks = []
                for j in range(per_file):
                    n = f * per_file + j
                    text = code_list[n % len(code_list)]
                    chunks.append(Chunk(f"f{f}.py", "python", "function", f"fn{n}", f"fn{n}", "", "", j * 10 + 1,
                                        j * 10 + 9, -1, -1, f"{text}\n# copy {n}"))
                index.store.replace_file(f"f{f}.py", str(f), 0, 0.0, "python", chunks)
            index.embed_pending(IndexSummary(), None)  # no update(): these files exist only in the index
            build_s = time.perf_counter() - t
            qvecs = minilm.embed([q for q, _ in queries])
            vec, bm, hybrid, full = [], [], [], []
            for (q, _), qv in zip(queries, qvecs):
                t = time.perf_counter()
                index.vectors.search(qv, 50)
                vec.append(time.perf_counter() - t)
                t = time.perf_counter()
                index.store.bm25(q, 50)
                bm.append(time.perf_counter() - t)
                index.embedder = FixedQuery(qv)
                t = time.perf_counter()
                search(index, q)
                hybrid.append(time.perf_counter() - t)
                index.embedder = minilm
                t = time.perf_counter()
                search(index, q)
                full.append(time.perf_counter() - t)
            row = {"chunks": index.store.counts()["chunks"], "vector_index": index.vectors.kind,
                   "build_s": round(build_s, 1), "vector_lookup": pct(vec), "bm25_lookup": pct(bm),
                   "hybrid_search_without_embedding": pct(hybrid), "hybrid_search_with_query_embedding": pct(full)}
            out["sizes"][str(size)] = row
            print(json.dumps({size: row}), flush=True)
            index.close()
    print(json.dumps(out, indent=2))


class FixedQuery:
    """An embedder that returns an already computed query vector: isolates lookup time from embedding time."""

    dim = 384

    def __init__(self, vector: np.ndarray):
        self.vector = vector

    def embed(self, texts, **kw):
        return self.vector[None, :]


if __name__ == "__main__":
    main()
