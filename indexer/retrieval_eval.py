"""Retrieval quality of the real index on a code-search benchmark (CoSQA): each candidate function becomes a file
of a temporary workspace, the workspace is indexed as a user's would be, and each query is searched in every mode."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from .errors import WorkspaceIndexError
from .search import search
from .workspace_index import WorkspaceIndex

CUTOFFS = (1, 5, 10)


def load_cosqa(data_dir: Path) -> tuple[dict[int, str], list[tuple[str, int]]]:
    """(code base {idx: code}, [(query, gold idx)]) from CoSQA's retrieval files."""
    base, queries = data_dir / "code_idx_map.txt", data_dir / "cosqa-retrieval-dev-500.json"
    for f in (base, queries):
        if not f.is_file():
            raise WorkspaceIndexError(f"{f} not found: pass the folder holding CoSQA's code_idx_map.txt and "
                                      "cosqa-retrieval-dev-500.json")
    codes = {idx: code for code, idx in json.loads(base.read_text()).items()}
    return codes, [(q["doc"], int(q["retrieval_idx"])) for q in json.loads(queries.read_text())]


def write_corpus(codes: dict[int, str], root: Path) -> Path:
    folder = root / "code"
    folder.mkdir(parents=True, exist_ok=True)
    for idx, code in codes.items():
        (folder / f"{idx}.py").write_text(code + "\n")
    return root


def gold_rank(paths: list[str], gold: int) -> int | None:
    """1-based rank of the gold document among result paths (a file may yield several chunks: first counts)."""
    seen: list[int] = []
    for p in paths:
        idx = int(Path(p).stem)
        if idx not in seen:
            seen.append(idx)
    return seen.index(gold) + 1 if gold in seen else None


def score(ranks: list[int | None], k: int = 10) -> dict[str, float]:
    n = len(ranks)
    out = {f"mrr@{k}": sum(1.0 / r for r in ranks if r is not None and r <= k) / n}
    out.update({f"recall@{c}": sum(1 for r in ranks if r is not None and r <= c) / n for c in CUTOFFS})
    return {key: round(v, 4) for key, v in out.items()}


def evaluate(index: WorkspaceIndex, queries: list[tuple[str, int]], modes=("vector", "bm25", "hybrid"),
             progress: Callable[[int, int], None] | None = None) -> dict:
    results: dict = {}
    for mode in modes:
        ranks, latency = [], []
        for n, (query, gold) in enumerate(queries, 1):
            t = time.perf_counter()
            response = search(index, query, k=10, mode=mode)
            latency.append(time.perf_counter() - t)
            ranks.append(gold_rank([r.path for r in response.results], gold))
            if progress:
                progress(n, len(queries))
        latency.sort()
        results[mode] = score(ranks) | {"p50_ms": round(1000 * latency[len(latency) // 2], 2)}
    return results
