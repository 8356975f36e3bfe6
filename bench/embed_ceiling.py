"""The embedding ceiling of indexing: how many chunks/s the embedder alone allows, and the CoSQA MRR@10 it gives,
per model variant and token limit; prints JSON.

Indexing embeds two texts per chunk (its code and its short doc view), so no pipeline can index faster than
1 / (1/code_texts_per_s + 1/doc_texts_per_s). Chunks come from the real chunker over the CoSQA code base (BM25-only
index, no embedding); each variant embeds every chunk's code view (at each token limit) and doc view, through
`Embedder.embed` (length-sorted batches, one single-threaded session per core). MRR@10 ranks each CoSQA file by its
best chunk, scoring a chunk max(query.code, query.doc) as the index does.

Variants: fp32 (the default export), int8 (`plusls export --int8`: dynamic quantization), fused (fp32 after
onnxruntime's transformer optimizer: Attention, SkipLayerNorm, BiasGelu fused).

    .venv/bin/python bench/embed_ceiling.py [--data ../shared/eval/cosqa] [--limits 128,256] [--variants fp32,int8]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from plusls.common.metrics import mrr_at_k


def chunk_texts(codes: dict[int, str], tmp: Path) -> tuple[list[int], list[str], list[str]]:
    from plusls.evaluation.retrieval import write_corpus
    from plusls.indexer.workspace_index import WorkspaceIndex

    index = WorkspaceIndex(write_corpus(codes, tmp / "ws"), None, "none", tmp / "index", log=lambda m: None)
    index.update(embed=False)
    pending = index.store.pending(0, 1 << 30)  # every chunk's (id, code view, doc view), as indexing embeds them
    paths = index.store.rows([i for i, _, _ in pending], text=False)
    files = [int(Path(paths[i]["path"]).stem) for i, _, _ in pending]
    code = [text for _, text, _ in pending]
    doc = [view for _, _, view in pending]
    index.close()
    return files, code, doc


def mrr_at_10(scores: np.ndarray, files: list[int], golds: list[int]) -> float:
    """Each query's files in rank order (a file with several chunks counts once, at its best), MRR@10."""
    rankings = []
    for row in scores:
        ranked: list[int] = []
        for c in np.argsort(-row):
            if files[c] not in ranked:
                ranked.append(files[c])
            if len(ranked) == 10:
                break
        rankings.append(ranked)
    return mrr_at_k(rankings, golds, 10)


def variant_dir(name: str, fp32_dir: Path, tmp: Path) -> Path:
    if name == "fp32":
        return fp32_dir
    from plusls.exported.defaults import EMBEDDER
    from plusls.exported.export import export_model

    out = tmp / name
    if name == "int8":
        export_model(EMBEDDER.source(), "embedding", out, int8=True, log=lambda m: None)
        return out
    if name == "fused":
        from onnxruntime.transformers.optimizer import optimize_model

        from plusls.exported.manifest import read_manifest, sha256_file

        shutil.copytree(fp32_dir, out)
        model = out / "model.onnx"
        optimize_model(str(model), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(str(model))
        manifest = read_manifest(out, verify=False)
        manifest.files["model.onnx"] = sha256_file(model)
        manifest.write(out)
        return out
    raise SystemExit(f"unknown variant {name!r}: use fp32, int8 or fused")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "eval" / "cosqa"))
    ap.add_argument("--limits", default="128,256")
    ap.add_argument("--variants", default="fp32,int8,fused")
    ap.add_argument("--limit", type=int, default=0, help="only the first N functions and the queries whose gold is "
                                                            "among them")
    args = ap.parse_args()

    from plusls.common.paths import default_models_dir
    from plusls.evaluation.retrieval import load_cosqa
    from plusls.exported import Embedder
    from plusls.exported.defaults import EMBEDDER, ensure_default

    codes, queries = load_cosqa(Path(args.data))
    if args.limit:
        codes = dict(list(codes.items())[: args.limit])
        queries = [(q, g) for q, g in queries if g in codes]
    golds = [g for _, g in queries]
    fp32_dir = ensure_default(EMBEDDER, default_models_dir())
    out: dict = {"bench": "embed_ceiling", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                 "date": time.strftime("%Y-%m-%d"), "load_before": os.getloadavg()[0], "variants": {}}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        files, code, doc = chunk_texts(codes, tmp)
        out["chunks"] = len(files)
        for name in args.variants.split(","):
            embedder = Embedder(variant_dir(name, fp32_dir, tmp))
            q = embedder.embed([text for text, _ in queries])
            start = time.perf_counter()
            doc_vectors = embedder.embed(doc)
            doc_rate = len(doc) / (time.perf_counter() - start)
            row: dict = {"doc_texts_per_s": round(doc_rate, 1)}
            for limit in (int(x) for x in args.limits.split(",")):
                start = time.perf_counter()
                code_vectors = embedder.embed(code, max_length=limit)
                code_rate = len(code) / (time.perf_counter() - start)
                row[f"code{limit}"] = {
                    "code_texts_per_s": round(code_rate, 1),
                    "chunks_per_s_ceiling_two_views": round(1 / (1 / code_rate + 1 / doc_rate), 1),
                    "mrr@10_code_view": round(mrr_at_10(q @ code_vectors.T, files, golds), 4),
                    "mrr@10_two_views": round(mrr_at_10(np.maximum(q @ code_vectors.T, q @ doc_vectors.T), files,
                                                        golds), 4)}
            out["variants"][name] = row
            print(json.dumps({name: row}), flush=True)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
