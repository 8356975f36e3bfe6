"""Hybrid search: FAISS vector similarity and FTS5 BM25, fused with reciprocal rank fusion.

BM25's weight in the fusion depends on the query. A query naming code (snake_case, camelCase, dotted names,
calls) gets weight 1: exact identifiers are what BM25 finds and embeddings blur. A plain-language query gets 0
for chunks that have vectors: on CoSQA's plain-language queries every BM25 weight tried lowered MRR@10
(docs/measurements.md, `plusls eval search`), so such a query skips BM25 altogether once every chunk has its
vectors.
Chunks that have no vector yet (indexing still running) always take BM25 at weight 1, and their first-pass
(static) vectors as a third ranking: that is how search answers before the encoder's vectors land.

With a reranker (the completion model's likelihood of the query, indexer.query_likelihood; or a text-code
matching cross-encoder, exported.matching.Matcher), the first RERANK_TOP fused results are scored against the
query one by one, and their order becomes the reciprocal rank fusion of the fused order and the scores'; the rest
keep theirs. A query naming code is not reranked (the exact-name boost and BM25 decide those)."""
from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

from .workspace_index import WorkspaceIndex

RRF_K = 60  # the constant from Cormack et al.; ranks matter, raw scores of the two kinds are not comparable
POOL = 50  # candidates taken from each ranking
MODES = ("hybrid", "vector", "bm25")
IDENTIFIER = re.compile(r"\w_\w|[a-z][A-Z]|\w\.\w|\w\(|::")
PLAIN_LANGUAGE_BM25_WEIGHT = 0.0
RERANK_TOP = 10  # fused results the reranker rescores
# The reranker's ranking against the fused one, chosen on CoSQA dev among 0.1-2 (both halves of its queries agree;
# the completion model's scores alone rank worse than the fused order).
RERANK_WEIGHT = 0.5
# The static first-pass ranking's weight: chosen on CoSQA dev among 0-1 (it lowers the held-out mined pairs, whose
# queries share words with the code, at every weight: docs/measurements.md).
FIRST_PASS_WEIGHT = 0.25


class Reranker(Protocol):
    def score(self, text: str, codes: Sequence[str]) -> Sequence[float]:
        """A score per code, or for the first codes only (a time budget): those are reordered."""


def bm25_weight(query: str) -> float:
    return 1.0 if IDENTIFIER.search(query) else PLAIN_LANGUAGE_BM25_WEIGHT


@dataclass
class SearchResult:
    path: str
    start_line: int
    end_line: int
    qualname: str
    kind: str
    language: str
    score: float
    snippet: str
    vector_rank: int | None = None
    bm25_rank: int | None = None
    rerank_score: float | None = None


@dataclass
class SearchResponse:
    query: str
    results: list[SearchResult]
    chunks_total: int
    chunks_embedded: int  # vector results cover only these while indexing is still running
    timings_ms: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def search(index: WorkspaceIndex, query: str, k: int = 10, language: str | None = None,
           path_glob: str | None = None, mode: str = "hybrid", reranker: Reranker | None = None,
           rerank_top: int = RERANK_TOP) -> SearchResponse:
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    timings: dict[str, float] = {}
    filtered = bool(language or path_glob)
    names_code = bool(IDENTIFIER.search(query))
    with index.lock:
        counts = index.store.chunk_counts()
    vector_hits: list[tuple[int, float]] = []
    if mode != "bm25" and index.embedder is not None and index.vectors is not None and not index.vectors.empty:
        t = time.perf_counter()
        q = index.embedder.embed([query])[0]
        timings["embed"] = _ms(t)
        t = time.perf_counter()
        with index.lock:
            vector_hits = index.vectors.search(q, POOL * (8 if filtered else 1))
        timings["vector"] = _ms(t)
    static_hits: list[tuple[int, float]] = []
    # Not for a query naming code: static neighbours of an identifier would answer before its file is parsed.
    if mode != "bm25" and not names_code and index.first_pass is not None and not index.first_pass.empty:
        t = time.perf_counter()
        q = index.static.embed([query])[0]
        with index.lock:
            static_hits = index.first_pass.search(q, POOL * (8 if filtered else 1))
        timings["first_pass"] = _ms(t)
    bm25_hits: list[tuple[int, float]] = []
    weight = 1.0 if mode == "bm25" or not vector_hits else bm25_weight(query)
    if mode != "vector" and (weight > 0 or counts["embedded"] < counts["chunks"]):
        where, params = [], []
        if weight == 0:  # BM25 counts only for chunks without vectors yet: look only among them
            where.append("AND chunks.embedded = 0")
        if language:
            where.append("AND chunks.language = ?")
            params.append(language)
        if path_glob:
            where.append("AND chunks.path GLOB ?")
            params.append(path_glob)
        t = time.perf_counter()
        with index.lock:
            bm25_hits = index.store.bm25(query, POOL, " ".join(where), params)
        timings["bm25"] = _ms(t)
    t = time.perf_counter()
    with index.lock:
        rows = index.store.rows(list({i for hits in (vector_hits, static_hits, bm25_hits) for i, _ in hits}),
                                text=False)
    if filtered:  # BM25 filtered in SQL; vectors are filtered here
        vector_hits, static_hits = ([(i, s) for i, s in hits if i in rows and _matches(rows[i], language, path_glob)]
                                    for hits in (vector_hits, static_hits))
    rerank = reranker is not None and rerank_top > 1 and not names_code and mode != "bm25"
    results, winners = fuse(query, vector_hits, bm25_hits, rows, weight, mode, max(k, rerank_top) if rerank else k,
                            static_hits)
    with index.lock:  # text only for what is shown (and what the reranker reads)
        texts = index.store.rows(winners)
    for result, i in zip(results, winners):
        result.snippet = snippet(texts[i]["text"])
    timings["fuse"] = _ms(t)
    if rerank and len(results) > 1:
        t = time.perf_counter()
        top = min(rerank_top, len(results))
        scores = [float(x) for x in reranker.score(query, [texts[i]["text"] for i in winners[:top]])]
        for result, score in zip(results, scores):
            result.rerank_score = round(score, 4)
        results[: len(scores)] = [results[n] for n in rerank_order(scores)]
        timings["rerank"] = _ms(t)
    results = results[:k]
    return SearchResponse(query, results, counts["chunks"], counts["embedded"], timings)


def rerank_order(scores: Sequence[float]) -> list[int]:
    """Positions of results in fused order, reordered by reciprocal rank fusion of that order and the scores'."""
    by_score = sorted(range(len(scores)), key=lambda n: -scores[n])  # stable: ties keep the fused order
    rank = {n: r for r, n in enumerate(by_score, 1)}
    fused = {n: 1.0 / (RRF_K + n + 1) + RERANK_WEIGHT / (RRF_K + rank[n]) for n in range(len(scores))}
    return sorted(fused, key=lambda n: -fused[n])


def fuse(query: str, vector_hits: list[tuple[int, float]], bm25_hits: list[tuple[int, float]], rows: dict[int, dict],
         weight: float, mode: str, want: int, static_hits: Sequence[tuple[int, float]] = ()
         ) -> tuple[list[SearchResult], list[int]]:
    """The ranking every store shares: reciprocal rank fusion of the vector, first-pass vector and BM25 rankings
    (BM25 at `weight` for chunks with vectors, 1 for those without), the exact-name boost, one result per (path,
    qualname). Returns the results without snippets and their chunk ids."""
    vrank = {i: r for r, (i, _) in enumerate(vector_hits[:POOL], 1)}
    srank = {i: r for r, (i, _) in enumerate(static_hits[:POOL], 1)}
    brank = {i: r for r, (i, _) in enumerate(bm25_hits, 1)}
    fused = {i: 1.0 / (RRF_K + r) for i, r in vrank.items()}
    for i, r in srank.items():  # chunks the encoder has not reached: never in vrank
        fused[i] = fused.get(i, 0.0) + FIRST_PASS_WEIGHT / (RRF_K + r)
    for i, r in brank.items():
        w = weight if i in rows and rows[i]["embedded"] else 1.0
        if w > 0:
            fused[i] = fused.get(i, 0.0) + w / (RRF_K + r)
    if IDENTIFIER.search(query) or mode == "bm25":
        # A chunk whose name is exactly what the query names comes first (as in workspace/symbol).
        wanted = query.strip().rstrip("(")
        for i in fused:
            if i in rows and wanted in (rows[i]["name"], rows[i]["qualname"]):
                fused[i] += 1.0
    results, seen, winners = [], set(), []
    for i in sorted(fused, key=lambda i: -fused[i]):
        row = rows.get(i)
        if row is None:
            continue
        key = (row["path"], row["qualname"])  # windows of one long function: keep the best
        if key in seen:
            continue
        seen.add(key)
        results.append(SearchResult(row["path"], row["start_line"], row["end_line"], row["qualname"], row["kind"],
                                    row["language"], round(fused[i], 6), "", vrank.get(i) or srank.get(i),
                                    brank.get(i)))
        winners.append(i)
        if len(results) == want:
            break
    return results, winners


def _matches(row: dict, language: str | None, path_glob: str | None) -> bool:
    return (not language or row["language"] == language) and (not path_glob or fnmatch.fnmatchcase(row["path"], path_glob))


def snippet(text: str, lines: int = 6) -> str:
    out = text.split("\n")
    return "\n".join(out[:lines]) + ("\n..." if len(out) > lines else "")


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 3)
