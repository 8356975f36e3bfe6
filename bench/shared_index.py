"""The shared index (PostgreSQL + pgvector, indexer/shared_index.py) beside the local one (SQLite + FAISS) on the
same code; prints JSON.

Real part: `--files` .py files of this venv's site-packages copied into a workspace, indexed by both stores with the
default embedder (all-MiniLM-L6-v2, in-process): chunks/s end to end, query p50/p95 (the query's embedding
included, and the lookup alone), HNSW recall@10 against exact search over the same vectors, a saved file re-indexed
(p50/p95 over --saves files).

Scale part: `--scale` chunks in one repository, made from the real part's chunks (their text, and their vectors
each moved by a little noise and normalized again, so the vectors keep the real ones' spread), bulk loaded, the
HNSW indexes built after the load; then query p50/p95 (lookup alone: the same query vectors) and recall@10.

PostgreSQL 16 + pgvector come from the `pgserver` wheel, on this machine (the database shares its cores).

    .venv/bin/python bench/shared_index.py [--files 2000] [--scale 500000] [--queries 100] [--saves 20]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import site
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from postgres import Postgres  # noqa: E402

from plusls.common.paths import default_models_dir  # noqa: E402
from plusls.indexer.embedding_model import load_embedder  # noqa: E402
from plusls.indexer.search import search  # noqa: E402
from plusls.indexer.shared_index import SharedIndex  # noqa: E402
from plusls.indexer.workspace_index import WorkspaceIndex  # noqa: E402


def pct(values: list[float]) -> dict:
    a = np.array(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2)}


def copy_files(dest: Path, limit: int) -> int:
    packages = Path(site.getsitepackages()[0])
    files = sorted(p for p in packages.rglob("*.py") if p.is_file() and p.stat().st_size < 200_000)
    step = max(1, len(files) // limit)
    chosen = files[::step][:limit]  # spread over every package, not the first few
    for p in chosen:
        out = dest / p.relative_to(packages)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, out)
    return len(chosen)


def timed(fn, repeat: list) -> list[float]:
    out = []
    for arg in repeat:
        t = time.perf_counter()
        fn(arg)
        out.append(time.perf_counter() - t)
    return out


def as_array(value) -> np.ndarray:
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, np.float32)


def stored_vectors(url: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with psycopg.connect(url) as c:
        register_vector(c)
        rows = c.execute("SELECT id, code, text FROM plusls_chunks ORDER BY id").fetchall()
    return np.array([r[0] for r in rows]), np.stack([as_array(r[1]) for r in rows]), [r[2] for r in rows]


def hnsw_top(url: str, queries: np.ndarray, k: int = 10) -> tuple[list[list[int]], list[float]]:
    found, times = [], []
    with psycopg.connect(url) as c:
        register_vector(c)
        c.execute("SET hnsw.ef_search = 200")
        for q in queries:
            t = time.perf_counter()
            rows = c.execute("SELECT id FROM plusls_chunks WHERE repo = 'code' ORDER BY code <=> %s LIMIT %s",
                             (q, k)).fetchall()
            times.append(time.perf_counter() - t)
            found.append([r[0] for r in rows])
    return found, times


def recall(found: list[list[int]], ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    exact = [set(ids[np.argsort(-(vectors @ q))[:k]].tolist()) for q in queries]
    return round(float(np.mean([len(set(f) & e) / k for f, e in zip(found, exact)])), 4)


def real_part(args, tmp: Path, pg: Postgres, embedder, model_id) -> dict:
    work = tmp / "code"
    files = copy_files(work, args.files)
    url = pg.database("bench_real")
    shared = SharedIndex(url, work, embedder, model_id, log=lambda m: None)
    s = shared.update()
    local = WorkspaceIndex(work, embedder, model_id, tmp / "local-index", log=lambda m: None)
    loc = local.update()
    ids, vectors, texts = stored_vectors(url)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(texts), args.queries, replace=False)
    queries_text = [" ".join(texts[i].split()[:8]) for i in picks]  # a chunk's opening words
    query_vectors = embedder.embed(queries_text)
    found, lookup = hnsw_top(url, query_vectors)
    saved = sorted(work.rglob("*.py"))[:: max(1, files // args.saves)][: args.saves]
    for p in saved:
        p.write_text(p.read_text() + "\n\ndef added_by_the_bench():\n    return 1\n")
    shared_saves = timed(shared.reindex_file, saved)
    for p in saved:
        p.write_text(p.read_text() + "\n# saved again\n")
    local_saves = timed(local.reindex_file, saved)
    result = {
        "files": files, "chunks": len(texts),
        "index_end_to_end": {"shared_chunks_per_s": round(s.chunks_embedded / s.seconds, 1),
                             "local_chunks_per_s": round(loc.chunks_embedded / loc.seconds, 1),
                             "shared_s": round(s.seconds, 1), "local_s": round(loc.seconds, 1),
                             "shared_embedding_share": round(s.embed_seconds / s.seconds, 3)},
        "query_with_embedding": {"shared": pct(timed(shared.search, queries_text)),
                                 "local": pct(timed(lambda q: search(local, q), queries_text))},
        "lookup_only_hnsw": pct(lookup),
        "recall_at_10_hnsw_vs_exact": recall(found, ids, vectors, query_vectors),
        "saved_file_reindexed": {"shared": pct(shared_saves), "local": pct(local_saves)}}
    shared.close()
    local.close()
    return result, (texts, vectors, query_vectors)


def scale_part(args, pg: Postgres, embedder, model_id, real) -> dict:
    texts, vectors, queries = real
    url = pg.database("bench_scale")
    empty = Path(tempfile.mkdtemp())
    SharedIndex(url, empty, embedder, model_id, repo="code", log=lambda m: None).close()  # the schema
    rng = np.random.default_rng(1)
    with psycopg.connect(url, autocommit=True) as c:
        register_vector(c)
        c.execute("DROP INDEX plusls_chunks_code, plusls_chunks_doc, plusls_chunks_terms")
        c.execute("ALTER TABLE plusls_chunks ALTER terms SET DEFAULT ''::tsvector")
        c.execute("INSERT INTO plusls_files VALUES ('code', 'all.py', 'x')")
        t = time.perf_counter()
        with c.cursor().copy("COPY plusls_chunks (repo, path, kind, name, qualname, start_line, end_line, hash, "
                             "text, code, doc) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "text", "text", "text", "int4", "int4", "text", "text", "vector",
                            "vector"])
            for start in range(0, args.scale, 10_000):
                n = min(10_000, args.scale - start)
                base = vectors[rng.integers(0, len(vectors), n)]
                moved = base + rng.normal(0, 0.02, base.shape).astype(np.float32)
                moved /= np.linalg.norm(moved, axis=1, keepdims=True)
                for j in range(n):
                    i = start + j
                    copy.write_row(("code", "all.py", "function", f"f{i}", f"f{i}", i, i + 1, f"h{i}",
                                    texts[i % len(texts)][:400], moved[j], moved[j]))
        c.execute("UPDATE plusls_chunks SET terms = to_tsvector('english', text)")
        load_s = time.perf_counter() - t
        c.execute("SET maintenance_work_mem = '4GB'")
        builds = {}
        for name, using in (("terms", "gin(terms)"), ("code", "hnsw(code vector_cosine_ops)"),
                            ("doc", "hnsw(doc vector_cosine_ops)")):
            t = time.perf_counter()
            c.execute(f"CREATE INDEX plusls_chunks_{name} ON plusls_chunks USING {using}")
            builds[name] = round(time.perf_counter() - t, 1)
        c.execute("ANALYZE plusls_chunks")
        ids, stored = stored_ids_vectors(c)
    found, lookup = hnsw_top(url, queries)
    index = SharedIndex(url, empty, embedder, model_id, repo="code", log=lambda m: None)
    plain = ["parse the config file", "http request headers", "sort a list of dicts", "retry after a timeout"] * 10
    named = ["read_json", "parse_args", "getUserName", "os.path.join"] * 10  # BM25 ranks these too
    hybrid_plain = timed(lambda q: index.search(q), plain)
    parts: dict[str, list[float]] = {}
    hybrid_named = timed(lambda q: [parts.setdefault(k, []).append(v)
                                    for k, v in index.search(q).timings_ms.items()], named)
    index.close()
    return {"chunks": args.scale, "bulk_load_s": round(load_s, 1), "index_build_s": builds,
            "lookup_only_hnsw": pct(lookup), "query_with_embedding_plain_language": pct(hybrid_plain),
            "query_with_embedding_naming_code": pct(hybrid_named),
            "naming_code_parts_p50_ms": {k: round(float(np.median(v)), 2) for k, v in parts.items()},
            "recall_at_10_hnsw_vs_exact": recall(found, ids, stored, queries)}


def stored_ids_vectors(c) -> tuple[np.ndarray, np.ndarray]:
    rows = c.execute("SELECT id, code FROM plusls_chunks").fetchall()
    return np.array([r[0] for r in rows]), np.stack([as_array(r[1]) for r in rows])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--scale", type=int, default=500_000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--saves", type=int, default=20)
    args = p.parse_args()
    embedder, model_id = load_embedder(None, default_models_dir(), log=lambda m: None)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pg = Postgres(tmp / "pg")
        pg.start()
        try:
            real, vectors = real_part(args, tmp, pg, embedder, model_id)
            scale = scale_part(args, pg, embedder, model_id, vectors) if args.scale else None
        finally:
            pg.stop()
    cpu = "avx512_vnni" if "avx512_vnni" in Path("/proc/cpuinfo").read_text() else "avx2"
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, {cpu}, "
                      f"{platform.processor() or platform.machine()}", "embedder": model_id,
                      "postgres": "16 + pgvector 0.6 (pgserver), same machine", "real": real, "scale": scale},
                      indent=2))


if __name__ == "__main__":
    main()
