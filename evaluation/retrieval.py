"""Retrieval quality of the real index on a code-search benchmark (CoSQA): each candidate function becomes a file
of a temporary workspace, the workspace is indexed as a user's would be, and each query is searched in every mode."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from plusls.common.jsonl import read_jsonl
from plusls.indexer.search import search
from plusls.indexer.workspace_index import WorkspaceIndex

from .errors import EvalError

MODES = ("vector", "bm25", "hybrid")


def load_cosqa(data_dir: Path) -> tuple[dict[int, str], list[tuple[str, int]]]:
    """(code base {idx: code}, [(query, gold idx)]) from CoSQA's retrieval files."""
    base, queries = data_dir / "code_idx_map.txt", data_dir / "cosqa-retrieval-dev-500.json"
    for f in (base, queries):
        if not f.is_file():
            raise EvalError(f"{f} not found: pass the folder holding CoSQA's code_idx_map.txt and "
                                      "cosqa-retrieval-dev-500.json")
    codes = {idx: code for code, idx in json.loads(base.read_text()).items()}
    return codes, [(q["doc"], int(q["retrieval_idx"])) for q in json.loads(queries.read_text())]


def write_corpus(codes: dict[int, str], root: Path) -> Path:
    folder = root / "code"
    folder.mkdir(parents=True, exist_ok=True)
    for idx, code in codes.items():
        (folder / f"{idx}.py").write_text(code + "\n")
    return root


def ranked_documents(index: WorkspaceIndex, query: str, mode: str, k: int = 10, reranker=None) -> list[int]:
    """Document ids (file stems) in rank order; a file that yields several chunks counts once, at its best."""
    ranked: list[int] = []
    for result in search(index, query, k=k, mode=mode, reranker=reranker).results:
        idx = int(Path(result.path).stem)
        if idx not in ranked:
            ranked.append(idx)
    return ranked


def rank_all(index: WorkspaceIndex, queries: list[tuple[str, int]], mode: str,
             progress: Callable[[int, int], None] | None = None,
             reranker=None) -> tuple[list[list[int]], list[float]]:
    """Rankings for every query in one mode, and each search's latency in seconds."""
    rankings, latency = [], []
    for n, (query, _) in enumerate(queries, 1):
        t = time.perf_counter()
        rankings.append(ranked_documents(index, query, mode, reranker=reranker))
        latency.append(time.perf_counter() - t)
        if progress:
            progress(n, len(queries))
    return rankings, latency


def load_mined_pairs(corpus_dir: Path, limit: int | None = None) -> tuple[dict[int, str], list[tuple[str, int]]]:
    """The mined corpus's held-out (summary, code) pairs (packages never trained on) as a search benchmark: every
    code is a document to search, its docstring's first sentence the query that should find it."""
    path = corpus_dir / "summary.heldout.jsonl"
    if not path.is_file():
        raise EvalError(f"{path} not found: mine the corpus first with `plusls train data`")
    rows = read_jsonl(path)[:limit]
    return {n: r["code"] for n, r in enumerate(rows)}, [(r["summary"], n) for n, r in enumerate(rows)]
