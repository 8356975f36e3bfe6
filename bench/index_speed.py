"""Indexing throughput and CoSQA retrieval quality, side by side in one run; prints JSON.

- baseline: the plain way, PyTorch eager all-MiniLM-L6-v2 (transformers AutoModel + mean pooling), batch 64,
  every input padded to 256 tokens, over the same chunk texts the index embeds (first --baseline-chunks);
- plusls: `WorkspaceIndex.update()` on a workspace holding the CoSQA code base (6,267 functions, one file each):
  walk, tree-sitter, SQLite/FTS5, embedding through onnxruntime (length-sorted batches), FAISS; for each
  embedder variant (fp32 at 256 tokens, fp32 at 128, int8 at 128);
- quality: MRR@10 and recall@1/5/10 of the 500 CoSQA dev queries per ranking mode, for each variant.

    .venv/bin/python bench/index_speed.py [--data ../shared/eval/cosqa] [--limit N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


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


class Truncating:
    """An embedder variant: the same model with a shorter token limit."""

    def __init__(self, inner, max_length: int):
        self.inner, self.dim, self.max_length = inner, inner.dim, max_length

    def embed(self, texts, max_length=None, **kw):  # the embedder's own batch size (8: measured best)
        return self.inner.embed(texts, max_length=max_length or self.max_length, **kw)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "eval" / "cosqa"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N functions and the queries whose gold is among them")
    ap.add_argument("--baseline-chunks", type=int, default=640)
    ap.add_argument("--variants", default="fp32-256,fp32-128,int8-128")
    args = ap.parse_args()

    from plusls.common.metrics import mrr_at_k, recall_at_k
    from plusls.common.paths import default_models_dir
    from plusls.evaluation.retrieval import MODES, load_cosqa, rank_all, write_corpus
    from plusls.exported import Embedder
    from plusls.exported.defaults import EMBEDDER, ensure_default
    from plusls.exported.export import export_model
    from plusls.indexer.workspace_index import WorkspaceIndex

    codes, queries = load_cosqa(Path(args.data))
    if args.limit:
        codes = dict(list(codes.items())[: args.limit])
        queries = [(q, g) for q, g in queries if g in codes]
    fp32_dir = ensure_default(EMBEDDER, default_models_dir())
    int8_dir = Path(tempfile.mkdtemp(prefix="plusls-bench-")) / "minilm-int8"  # always this plusls's int8 method
    export_model(EMBEDDER.source(), "embedding", int8_dir, int8=True, log=lambda m: None)
    out: dict = {"bench": "index_speed", "functions": len(codes), "queries": len(queries),
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
                 "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = write_corpus(codes, Path(tmp) / "ws")
        texts = None
        for name in args.variants.split(","):
            precision, length = name.split("-")
            base = Embedder(int8_dir if precision == "int8" else fp32_dir)
            embedder = Truncating(base, int(length))
            index = WorkspaceIndex(root, embedder, name, Path(tmp) / f"index-{name}", log=lambda m: None)
            summary = index.update()
            row = {"chunks": summary.chunks_embedded, "embed_chunks_per_s": round(summary.chunks_per_s, 1),
                   "end_to_end_chunks_per_s": round(summary.chunks_embedded / summary.seconds, 1),
                   "index_seconds": round(summary.seconds, 1), "quantization": base.manifest.quantization,
                   "int8_parity": base.manifest.parity.get("int8_min_cosine")}
            golds = [g for _, g in queries]
            row["quality"] = {}
            for mode in MODES:
                rankings, _ = rank_all(index, queries, mode)
                row["quality"][mode] = {"mrr@10": round(mrr_at_k(rankings, golds, 10), 4),
                                        **{f"recall@{k}": round(recall_at_k(rankings, golds, k), 4) for k in (1, 10)}}
            out["variants"][name] = row
            print(json.dumps({name: row}), flush=True)
            if texts is None:
                texts = [t for _, t in index.store.db.execute(
                    "SELECT id, text FROM chunks ORDER BY id LIMIT ?", (args.baseline_chunks,))]
            index.close()
    eager = eager_baseline(EMBEDDER.source(), texts)
    out["pytorch_eager_chunks_per_s"] = round(eager, 1)
    for row in out["variants"].values():
        row["speedup_vs_eager"] = round(row["end_to_end_chunks_per_s"] / eager, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
