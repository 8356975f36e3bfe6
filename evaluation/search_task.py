"""Code search (CoSQA): the 500 dev queries over its 6,267-function code base, through the real workspace index;
MRR@10 and recall@1/5/10 per ranking mode (vector, BM25, hybrid), and hybrid+rerank when `--rerank` names a
reranker (indexer.rerankers: the completion model or a matching cross-encoder rescoring hybrid's top results)."""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from plusls.common.metrics import mrr_at_k, recall_at_k
from plusls.evaluation.retrieval import MODES, load_cosqa, rank_all, write_corpus
from plusls.indexer.rerankers import load_reranker
from plusls.indexer.workspace_index import WorkspaceIndex

from .datasets import find_file
from .sampling import Context

FOLDER, FILE = "cosqa", "cosqa-retrieval-dev-500.json"


class Search:
    name = "search"
    needs = "embedding"
    formats = ("raw",)

    def run(self, ctx: Context, data: str | None, limit: int | None) -> dict[str, Any]:
        folder = find_file(data, FOLDER, FILE).parent
        codes, queries = load_cosqa(folder)
        queries = queries[:limit]  # fewer queries; always the whole code base to search
        golds = [g for _, g in queries]
        model = ctx.generator
        metrics: dict[str, dict[str, float]] = {}
        samples: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="plusls-cosqa-") as tmp:
            root = write_corpus(codes, Path(tmp) / "workspace")
            index = WorkspaceIndex(root, model.embedder, model.model_id, Path(tmp) / "index", log=lambda m: None)
            summary = index.update(progress=model.progress)
            modes = [(m, None) for m in MODES]
            if ctx.options.get("rerank"):
                modes.append(("hybrid+rerank", load_reranker(ctx.options["rerank"])))
            for mode, reranker in modes:
                rankings, latency = rank_all(index, queries, mode.split("+")[0], reranker=reranker)
                metrics[mode] = {"mrr@10": mrr_at_k(rankings, golds, 10),
                                 **{f"recall@{k}": recall_at_k(rankings, golds, k) for k in (1, 5, 10)},
                                 "p50_search_ms": round(1000 * statistics.median(latency), 2)}
                for (query, gold), ranked, seconds in zip(queries, rankings, latency):
                    samples.append({"task_id": query, "mode": mode, "gold": gold, "ranked": ranked,
                                    "rank": ranked.index(gold) + 1 if gold in ranked else None,
                                    "latency_s": round(seconds, 4)})
            index.close()
        return {"data": str(folder), "problems": len(queries), "metrics": metrics, "samples": samples,
                "index": {"chunks": summary.chunks_embedded, "seconds": round(summary.seconds, 1),
                          "chunks_per_s": round(summary.chunks_per_s, 1)}}
