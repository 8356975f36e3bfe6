"""One index for a team: PostgreSQL with pgvector (HNSW, cosine) for the vectors and Postgres full-text search
(tsvector + GIN over the code with its identifiers split into words) for keywords, fused as the local search fuses
them (search.fuse). Many repositories share one database, keyed by repository and path.

Each file is chunked and embedded outside any transaction, then swapped in one transaction under a lock on that
file: two indexers at once never write a file twice, and an indexer killed mid-run leaves every file either as it
was or complete; the next run redoes only files whose content hash differs. The schema's version is checked at
connect."""
from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from .chunker import Chunk, chunk_file, doc_view
from .errors import WorkspaceIndexError
from .languages import spec_for
from .search import POOL, SearchResponse, bm25_weight, fuse, snippet
from .store import STOP_WORDS, split_identifiers
from .walker import DEFAULT_MAX_BYTES, check_content, path_allowed, walk
from .workspace_index import EMBED_GROUP, EmbedderLike, IndexProgress, IndexSummary, embed_views

SCHEMA_VERSION = "1"
# HNSW candidates per query: the repository filter applies after the index scan, so look at more than POOL.
EF_SEARCH = 200
# Chunks holding any of the query's words, when few hold all of them, are ranked among this many: ranking every
# chunk that holds a common word ("get", "name") would grow with the index.
ANY_WORD_SCAN = 2000
SETUP_LOCK = 0x706C75736C73  # advisory lock id: one process creates the tables
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS plusls_meta(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS plusls_files(repo text NOT NULL, path text NOT NULL, hash text NOT NULL,
                                        PRIMARY KEY (repo, path));
CREATE TABLE IF NOT EXISTS plusls_chunks(
    id bigserial PRIMARY KEY, repo text NOT NULL, path text NOT NULL, language text, kind text, name text,
    qualname text, start_line int, end_line int, hash text NOT NULL, text text NOT NULL, terms tsvector NOT NULL,
    code vector({dim}) NOT NULL, doc vector({dim}) NOT NULL,
    FOREIGN KEY (repo, path) REFERENCES plusls_files ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS plusls_chunks_file ON plusls_chunks(repo, path);
CREATE INDEX IF NOT EXISTS plusls_chunks_name ON plusls_chunks(repo, name);
CREATE INDEX IF NOT EXISTS plusls_chunks_qualname ON plusls_chunks(repo, qualname);
CREATE INDEX IF NOT EXISTS plusls_chunks_terms ON plusls_chunks USING gin(terms);
CREATE INDEX IF NOT EXISTS plusls_chunks_code ON plusls_chunks USING hnsw(code vector_cosine_ops);
CREATE INDEX IF NOT EXISTS plusls_chunks_doc ON plusls_chunks USING hnsw(doc vector_cosine_ops);
"""
ROW_COLUMNS = "id, path, language, kind, name, qualname, start_line, end_line"


def repo_name(root: Path) -> str:
    """The key a repository's files are stored under: its folder's name (`--repo` names it otherwise)."""
    return Path(root).resolve().name


class SharedIndex:
    def __init__(self, url: str, root: str | Path, embedder: EmbedderLike, model_id: str, repo: str | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, log: Callable[[str], None] = print):
        self.url, self.root = url, Path(root).resolve()
        if not self.root.is_dir():
            raise WorkspaceIndexError(f"{root} is not a folder; pass the repository folder to index")
        self.repo = repo or repo_name(self.root)
        self.embedder, self.model_id, self.max_bytes, self.log = embedder, model_id, max_bytes, log
        self.lock = threading.RLock()  # one connection, one statement at a time
        self._conn: psycopg.Connection | None = None
        self._ready = False  # the vector type exists (its extension is made under the setup lock)
        self._unsaved: dict[tuple[str, str], tuple[list[Chunk], tuple[np.ndarray, np.ndarray] | None]] = {}
        self._counts: dict[str, int] | None = None  # for search responses; counted again after each change here
        with self.lock:
            conn = self._connect()
            self._setup(conn)
            register_vector(conn)
            self._ready = True

    # --- connection and schema -------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as e:
                raise WorkspaceIndexError(f"cannot reach the shared index at {_safe(self.url)}: "
                                          f"{str(e).strip().splitlines()[0]}") from e
            self._conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
            if self._ready:
                register_vector(self._conn)
        return self._conn

    def _run(self, work: Callable[[psycopg.Connection], object]):
        """`work` on the connection; once more on a fresh one when the server went away (a restart)."""
        with self.lock:
            for attempt in (1, 2):
                conn = self._connect()
                try:
                    return work(conn)
                except psycopg.OperationalError as e:
                    if attempt == 2 or not conn.broken:
                        raise WorkspaceIndexError(f"the shared index at {_safe(self.url)} failed: {e}") from e

    def _setup(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
            conn.execute(SCHEMA.format(dim=self.embedder.dim))
            meta = dict(conn.execute("SELECT key, value FROM plusls_meta").fetchall())
            if not meta:
                conn.execute("INSERT INTO plusls_meta VALUES ('schema', %s), ('model_id', %s), ('dim', %s)",
                             (SCHEMA_VERSION, self.model_id, str(self.embedder.dim)))
                return
        if meta.get("schema") != SCHEMA_VERSION:
            raise WorkspaceIndexError(f"the shared index at {_safe(self.url)} has schema {meta.get('schema')}, this "
                                      f"plusls reads schema {SCHEMA_VERSION}: upgrade plusls everywhere, or index "
                                      "into a new database")
        if meta.get("model_id") != self.model_id:
            raise WorkspaceIndexError(f"the shared index at {_safe(self.url)} was embedded with {meta['model_id']}, "
                                      f"not {self.model_id}: everyone who shares it must use that embedding model "
                                      "(plusls.search.embedding / --model), or index into a new database")

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()

    # --- indexing ------------------------------------------------------------------------------------------------
    def stored(self) -> dict[str, str]:
        rows = self._run(lambda c: c.execute("SELECT path, hash FROM plusls_files WHERE repo = %s",
                                             (self.repo,)).fetchall())
        return dict(rows)

    def update(self, progress: Callable[[IndexProgress], None] | None = None) -> IndexSummary:
        """Bring the repository's part of the index up to date: new and changed files (by content hash), deleted
        ones removed."""
        t0 = time.perf_counter()
        summary = IndexSummary()
        entries = list(walk(self.root, self.max_bytes))
        state = IndexProgress("scan", files_total=len(entries))
        known, seen = self.stored(), set()
        batch: list[_Changed] = []
        for rel, reason, full in entries:
            state.files_done += 1
            outcome = reason or self._read(rel, full, known.get(rel), summary)
            if isinstance(outcome, str):
                summary.skipped[outcome] += 1
                continue
            seen.add(rel)
            if outcome is not None:
                batch.append(outcome)
            if sum(len(c.chunks) for c in batch) >= EMBED_GROUP:
                self._flush(batch, summary)
                batch = []
            state.chunks_embedded = summary.chunks_embedded
            if progress and (state.files_done % 20 == 0 or state.files_done == state.files_total):
                progress(state)
        self._flush(batch, summary)
        for rel in set(known) - seen:
            self._remove(rel, summary)
        if summary.files_indexed or summary.files_removed:
            self._run(lambda c: c.execute("ANALYZE plusls_chunks"))  # the planner's statistics: HNSW, not a scan
        summary.seconds = time.perf_counter() - t0
        if progress:
            state.stage = "done"
            progress(state)
        return summary

    def reindex_file(self, path: str | Path) -> IndexSummary:
        """One saved file again (or removed, when it is gone or no longer indexable)."""
        t0 = time.perf_counter()
        full = Path(path).resolve()
        rel = full.relative_to(self.root).as_posix()
        summary = IndexSummary()
        known = self._run(lambda c: c.execute("SELECT hash FROM plusls_files WHERE repo = %s AND path = %s",
                                              (self.repo, rel)).fetchone())
        if full.is_file() and not full.is_symlink() and path_allowed(self.root, rel):
            outcome = self._read(rel, full, known[0] if known else None, summary)
            if isinstance(outcome, str):
                summary.skipped[outcome] += 1
                if known:
                    self._remove(rel, summary)
            elif outcome is not None:
                self._flush([outcome], summary)
        elif known:
            self._remove(rel, summary)
        summary.seconds = time.perf_counter() - t0
        return summary

    def _read(self, rel: str, full: Path, known: str | None, summary: IndexSummary) -> _Changed | str | None:
        """The file's chunks when its content changed; a skip reason; None when unchanged."""
        try:
            data = full.read_bytes()
        except OSError:
            return "unreadable"
        if reason := check_content(full.name, data, self.max_bytes):
            return reason
        digest = hashlib.sha1(data).hexdigest()
        if digest == known:
            summary.files_unchanged += 1
            return None
        spec = spec_for(rel)
        return _Changed(rel, digest, spec.name if spec else "text", chunk_file(rel, data.decode("utf-8")))

    def _flush(self, batch: list[_Changed], summary: IndexSummary) -> None:
        """Embed the batch's new chunks in one call (a chunk whose content is already stored for its file keeps its
        vectors), then write each file in its own transaction."""
        if not batch:
            return
        stored = self._run(lambda c: self._stored_vectors(c, [f.rel for f in batch]))
        fresh = [c for f in batch for c in f.chunks if c.hash not in stored]
        t = time.perf_counter()
        if fresh:
            code, doc = _views(self.embedder, fresh)
            stored.update({c.hash: (code[n], doc[n]) for n, c in enumerate(fresh)})
        summary.embed_seconds += time.perf_counter() - t
        for f in batch:
            if self._run(lambda c: self._write(c, f, stored)):
                summary.files_indexed += 1
                summary.chunks_added += len(f.chunks)
            else:
                summary.files_unchanged += 1  # another indexer wrote this very content meanwhile
        summary.chunks_embedded += len(fresh)
        self._counts = None

    def _stored_vectors(self, conn: psycopg.Connection, paths: list[str]) -> dict[str, tuple]:
        rows = conn.execute("SELECT hash, code, doc FROM plusls_chunks WHERE repo = %s AND path = ANY(%s)",
                            (self.repo, paths)).fetchall()
        return {h: (code, doc) for h, code, doc in rows}

    def _write(self, conn: psycopg.Connection, changed: _Changed, vectors: dict[str, tuple]) -> bool:
        rel, digest, chunks = changed.rel, changed.digest, changed.chunks
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{self.repo}:{rel}",))
            row = conn.execute("SELECT hash FROM plusls_files WHERE repo = %s AND path = %s",
                               (self.repo, rel)).fetchone()
            if row and row[0] == digest:
                return False
            conn.execute("DELETE FROM plusls_files WHERE repo = %s AND path = %s", (self.repo, rel))
            conn.execute("INSERT INTO plusls_files VALUES (%s, %s, %s)", (self.repo, rel, digest))
            if chunks:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO plusls_chunks(repo, path, language, kind, name, qualname, start_line, end_line,"
                        " hash, text, terms, code, doc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                        " to_tsvector('english', %s), %s, %s)",
                        [(self.repo, rel, changed.language, c.kind, c.name, c.qualname, c.start_line, c.end_line,
                          c.hash, c.text, _terms(c), *vectors[c.hash]) for c in chunks])
        return True

    def _remove(self, rel: str, summary: IndexSummary) -> None:
        removed = self._run(lambda c: c.execute("DELETE FROM plusls_files WHERE repo = %s AND path = %s",
                                                (self.repo, rel)).rowcount)
        summary.files_removed += removed
        self._counts = None

    def counts(self) -> dict[str, int]:
        files, chunks = self._run(lambda c: c.execute(
            "SELECT (SELECT count(*) FROM plusls_files WHERE repo = %(r)s),"
            " (SELECT count(*) FROM plusls_chunks WHERE repo = %(r)s)", {"r": self.repo}).fetchone())
        return {"files": files, "chunks": chunks, "embedded": chunks}

    # --- search --------------------------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, unsaved: dict[str, str] | None = None) -> SearchResponse:
        """Hybrid search over this repository's part of the index. `unsaved`: relative path -> text of documents
        with unsaved changes, ranked with the stored chunks in place of those paths' stored ones."""
        timings: dict[str, float] = {}
        t = time.perf_counter()
        q = self.embedder.embed([query])[0]
        extra = self._extra(unsaved) if unsaved else None
        timings["embed"] = _ms(t)
        t = time.perf_counter()
        hidden = sorted(extra.paths) if extra else []
        vector_hits = self._run(lambda c: self._nearest(c, q, hidden))
        if extra:
            vector_hits = sorted(vector_hits + extra.nearest(q), key=lambda h: -h[1])[:POOL]
        timings["vector"] = _ms(t)
        weight = bm25_weight(query)
        bm25_hits: list[tuple[int, float]] = []
        if weight > 0 and (words := query_words(query)):
            t = time.perf_counter()
            bm25_hits = self._run(lambda c: self._keywords(c, query, words, hidden))
            if extra:
                bm25_hits = sorted(bm25_hits + extra.keyword_hits(words), key=lambda h: -h[1])[:POOL]
            timings["bm25"] = _ms(t)
        t = time.perf_counter()
        rows = self._rows([i for i in {i for i, _ in vector_hits} | {i for i, _ in bm25_hits} if i >= 0])
        if extra:
            rows.update(extra.rows)
        results, winners = fuse(query, vector_hits, bm25_hits, rows, weight, "hybrid", k)
        for result, i in zip(results, winners):
            result.snippet = snippet(rows[i]["text"])
        timings["fuse"] = _ms(t)
        if self._counts is None:
            self._counts = self.counts()
        return SearchResponse(query, results, self._counts["chunks"], self._counts["embedded"], timings)

    def _keywords(self, conn: psycopg.Connection, query: str, words: list[str],
                  hidden: list[str]) -> list[tuple[int, float]]:
        """Keyword hits in rank order: chunks named exactly what the query names, then chunks holding every word
        (ranked by how well they match), then, when those are few, chunks holding any word (ranked among the first
        ANY_WORD_SCAN). Bounded work at any index size, where ranking every chunk with a common word is not."""
        args = {"repo": self.repo, "hidden": hidden, "k": POOL, "name": query.strip().rstrip("("),
                "all": " & ".join(words), "any": " | ".join(words)}
        where = "repo = %(repo)s AND NOT path = ANY(%(hidden)s)"
        found = conn.execute(f"SELECT id FROM plusls_chunks WHERE {where} AND (name = %(name)s OR qualname = %(name)s)"
                             " LIMIT %(k)s", args).fetchall()
        found += conn.execute(f"SELECT id FROM plusls_chunks WHERE {where} AND terms @@ to_tsquery('english', %(all)s)"
                              " ORDER BY ts_rank_cd(terms, to_tsquery('english', %(any)s)) DESC LIMIT %(k)s",
                              args).fetchall()
        if len(found) < POOL and len(words) > 1:
            found += conn.execute(
                f"SELECT id FROM (SELECT id, terms FROM plusls_chunks WHERE {where} AND terms @@ "
                f"to_tsquery('english', %(any)s) LIMIT {ANY_WORD_SCAN}) AS scanned ORDER BY "
                "ts_rank_cd(terms, to_tsquery('english', %(any)s)) DESC LIMIT %(k)s", args).fetchall()
        ranked = list(dict.fromkeys(i for (i,) in found))[:POOL]
        return [(i, float(len(words) + POOL - n)) for n, i in enumerate(ranked)]  # above unsaved chunks' word counts

    def _extra(self, unsaved: dict[str, str]) -> ExtraChunks:
        """The unsaved documents' chunks and vectors; each (path, content) is chunked and embedded once."""
        chunks, vectors, current = [], [], set()
        for rel, text in sorted(unsaved.items()):
            key = (rel, hashlib.sha1(text.encode()).hexdigest())
            current.add(key)
            if key not in self._unsaved:
                found = chunk_file(rel, text)
                self._unsaved[key] = (found, _views(self.embedder, found) if found else None)
            found, views = self._unsaved[key]
            if found:
                chunks += found
                vectors.append(views)
        self._unsaved = {key: value for key, value in self._unsaved.items() if key in current}
        both = np.concatenate([c for c, _ in vectors] + [d for _, d in vectors]) if chunks else None
        return ExtraChunks(set(unsaved), chunks, both)

    def _nearest(self, conn: psycopg.Connection, q: np.ndarray, hidden: list[str]) -> list[tuple[int, float]]:
        """The better of each chunk's two views, as the local store scores them: one statement, two HNSW scans."""
        view = ("(SELECT id, 1 - ({v} <=> %(q)s) AS s FROM plusls_chunks WHERE repo = %(repo)s"
                " AND NOT path = ANY(%(hidden)s) ORDER BY {v} <=> %(q)s LIMIT %(k)s)")
        sql = (f"SELECT id, max(s) FROM ({view.format(v='code')} UNION ALL {view.format(v='doc')}) AS hits"
               " GROUP BY id ORDER BY 2 DESC LIMIT %(k)s")
        rows = conn.execute(sql, {"q": q, "repo": self.repo, "hidden": hidden, "k": POOL}).fetchall()
        return [(i, float(score)) for i, score in rows]

    def _rows(self, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        cur = self._run(lambda c: c.execute(f"SELECT {ROW_COLUMNS}, text FROM plusls_chunks WHERE id = ANY(%s)",
                                            (ids,)))
        names = [d.name for d in cur.description]
        return {r[0]: {**dict(zip(names, r)), "embedded": 1} for r in cur.fetchall()}


@dataclass
class _Changed:
    """A file whose content differs from the stored one: its new chunks, to embed and write."""
    rel: str
    digest: str
    language: str
    chunks: list[Chunk]


def _views(embedder: EmbedderLike, chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    return embed_views(embedder, [c.text for c in chunks], [doc_view(c.qualname, c.docstring, c.signature)
                                                            for c in chunks])


class ExtraChunks:
    """Chunks of documents with unsaved changes, embedded in memory, under negative ids, to rank beside the stored
    ones (a developer's edits are searchable before they are saved and indexed)."""

    def __init__(self, paths: set[str], chunks: list[Chunk], vectors: np.ndarray | None):
        self.paths = paths
        n = len(chunks)
        self.code, self.doc = (vectors[:n], vectors[n:]) if n else (None, None)
        self.rows = {-1 - j: {"id": -1 - j, "path": c.path, "language": c.language, "kind": c.kind, "name": c.name,
                              "qualname": c.qualname, "start_line": c.start_line, "end_line": c.end_line,
                              "text": c.text, "embedded": 1, "terms": set(_terms(c).lower().split())}
                     for j, c in enumerate(chunks)}

    def nearest(self, q: np.ndarray) -> list[tuple[int, float]]:
        if not self.rows:
            return []
        scores = np.maximum(self.code @ q, self.doc @ q)
        return [(-1 - j, float(s)) for j, s in enumerate(scores)]

    def keyword_hits(self, words: list[str]) -> list[tuple[int, float]]:
        """Chunks sharing query words, scored by how many (ranked among the stored chunks' BM25 hits)."""
        hits = [(i, float(len(set(words) & row["terms"]))) for i, row in self.rows.items()]
        return [h for h in hits if h[1] > 0]


def query_words(query: str) -> list[str]:
    words = {w.lower() for w in re.findall(r"\w+", split_identifiers(query)) if len(w) > 1}
    return sorted((words - STOP_WORDS) or words)


def _terms(chunk: Chunk) -> str:
    return split_identifiers(f"{chunk.qualname}\n{chunk.docstring}\n{chunk.text}")


def _safe(url: str) -> str:
    """The URL without its password (it may hold one; messages and logs never do)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 3)
