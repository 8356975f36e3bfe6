"""SQLite (WAL) storage of files and chunks, with an FTS5 table for BM25. Chunk ids are FAISS ids."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Iterable, Sequence

from .chunker import Chunk, doc_view

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, hash TEXT NOT NULL, size INTEGER, mtime REAL,
                                 language TEXT);
-- AUTOINCREMENT: an id is never reused, so a vector left in FAISS by a crash can never be taken for a new chunk.
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, language TEXT, kind TEXT, name TEXT,
    qualname TEXT, signature TEXT, docstring TEXT, start_line INTEGER, end_line INTEGER, start_byte INTEGER,
    end_byte INTEGER, hash TEXT, text TEXT, terms TEXT, embedded INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_pending ON chunks(embedded);
-- porter: "files" finds "file", "sorted" finds "sort" (CoSQA BM25 MRR@10 0.336 -> 0.349 with the stop words below)
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    qualname, docstring, terms, content='chunks', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, qualname, docstring, terms) VALUES (new.id, new.qualname, new.docstring, new.terms);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, qualname, docstring, terms)
    VALUES ('delete', old.id, old.qualname, old.docstring, old.terms);
END;
-- The chunk count, kept in the same transactions: count(*) reads a whole index (ms at 100k chunks, every search).
INSERT OR IGNORE INTO meta(key, value) VALUES ('chunks', (SELECT count(*) FROM chunks));
CREATE TRIGGER IF NOT EXISTS chunks_count_ai AFTER INSERT ON chunks BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'chunks';
END;
CREATE TRIGGER IF NOT EXISTS chunks_count_ad AFTER DELETE ON chunks BEGIN
    UPDATE meta SET value = value - 1 WHERE key = 'chunks';
END;
"""
CHUNK_COLUMNS = ("path", "language", "kind", "name", "qualname", "signature", "docstring", "start_line", "end_line",
                 "start_byte", "end_byte", "hash", "text")
SCHEMA_VERSION = "3"
_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|\d+")
# Query words that say nothing about which code is meant ("python how to get the ...", and keywords that most
# code contains): left out of BM25, which also keeps their long posting lists out of every lookup.
STOP_WORDS = frozenset(
    "a an the to of in on for from with by and or is are be how do does can i my use using way what when which "
    "into it its this that as at python javascript typescript java rust golang code function method "
    "if else elif return def self none true false not import class var let const".split())


def split_identifiers(text: str) -> str:
    """BM25 terms: the text plus its identifiers split into words (getUserName, get_user_name -> get user name)."""
    words = [w.lower() for ident in re.findall(r"\w+", text) if ("_" in ident or not ident.islower())
             for w in _WORD.findall(ident)]
    return text + "\n" + " ".join(words)


class Store:
    def __init__(self, path: Path):
        self.path = path
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        if self.get_meta("schema") is None:
            self.set_meta("schema", SCHEMA_VERSION)

    def close(self) -> None:
        self.db.close()

    def check(self) -> None:
        """Raise sqlite3.DatabaseError if the file is damaged."""
        row = self.db.execute("PRAGMA quick_check").fetchone()
        if row[0] != "ok":
            raise sqlite3.DatabaseError(row[0])

    # --- meta ---------------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- files --------------------------------------------------------------------------------------------------
    def files(self) -> dict[str, tuple[str, int, float]]:
        return {p: (h, s, m) for p, h, s, m in self.db.execute("SELECT path, hash, size, mtime FROM files")}

    def file(self, path: str) -> tuple[str, int, float] | None:
        row = self.db.execute("SELECT hash, size, mtime FROM files WHERE path=?", (path,)).fetchone()
        return tuple(row) if row else None

    def replace_file(self, path: str, digest: str, size: int, mtime: float, language: str,
                     chunks: Sequence[Chunk]) -> tuple[list[int], list[int]]:
        """Swap a file's chunks in one transaction. A chunk whose content is unchanged keeps its id and its
        vector; returns (ids removed, ids added)."""
        with self.transaction():
            old = {}
            for cid, h, embedded in self.db.execute("SELECT id, hash, embedded FROM chunks WHERE path=?", (path,)):
                old.setdefault(h, []).append(cid)
            added, kept = [], set()
            for c in chunks:
                reuse = old.get(c.hash)
                if reuse:
                    cid = reuse.pop()
                    kept.add(cid)
                    self.db.execute("UPDATE chunks SET start_line=?, end_line=?, start_byte=?, end_byte=? WHERE id=?",
                                    (c.start_line, c.end_line, c.start_byte, c.end_byte, cid))
                    continue
                values = [getattr(c, k) for k in CHUNK_COLUMNS] + [split_identifiers(f"{c.qualname}\n{c.text}")]
                cur = self.db.execute(
                    f"INSERT INTO chunks({', '.join(CHUNK_COLUMNS)}, terms) VALUES ({', '.join('?' * 14)})", values)
                added.append(cur.lastrowid)
            removed = [cid for ids in old.values() for cid in ids if cid not in kept]
            self.db.executemany("DELETE FROM chunks WHERE id=?", [(cid,) for cid in removed])
            self.db.execute("INSERT OR REPLACE INTO files(path, hash, size, mtime, language) VALUES (?, ?, ?, ?, ?)",
                            (path, digest, size, mtime, language))
        return removed, added

    def touch_file(self, path: str, size: int, mtime: float) -> None:
        self.db.execute("UPDATE files SET size=?, mtime=? WHERE path=?", (size, mtime, path))

    def remove_file(self, path: str) -> list[int]:
        with self.transaction():
            ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE path=?", (path,))]
            self.db.execute("DELETE FROM chunks WHERE path=?", (path,))
            self.db.execute("DELETE FROM files WHERE path=?", (path,))
        return ids

    # --- embedding bookkeeping -------------------------------------------------------------------------------------
    def pending(self, after: int, limit: int) -> list[tuple[int, str, str]]:
        """Chunks without vectors yet, in id order from after+1: (id, code text, doc-view text)."""
        return self._pending("id>? ORDER BY id LIMIT ?", (after, limit))

    def pending_in(self, paths: Sequence[str]) -> list[tuple[int, str, str]]:
        """As `pending`, for the chunks of these files."""
        return self._pending(f"path IN ({', '.join('?' * len(paths))}) ORDER BY id", list(paths)) if paths else []

    def _pending(self, where: str, params: Sequence) -> list[tuple[int, str, str]]:
        rows = self.db.execute(f"SELECT id, text, qualname, docstring, signature FROM chunks WHERE embedded=0 AND "
                               f"{where}", params)
        return [(i, text, doc_view(qualname, docstring, signature)) for i, text, qualname, docstring, signature in rows]

    def existing(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        return {r[0] for r in self.db.execute(f"SELECT id FROM chunks WHERE id IN ({', '.join('?' * len(ids))})",
                                              list(ids))}

    def mark_embedded(self, ids: Iterable[int], value: int = 1) -> None:
        with self.transaction():
            self.db.executemany("UPDATE chunks SET embedded=? WHERE id=?", [(value, i) for i in ids])

    def embedded_ids(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks WHERE embedded=1")}

    def all_ids(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks")}

    def reset_embeddings(self) -> None:
        self.db.execute("UPDATE chunks SET embedded=0")

    def counts(self) -> dict[str, int]:
        files = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
        return {"files": files, **self.chunk_counts()}

    def chunk_counts(self) -> dict[str, int]:
        """Every search asks: the total is kept by triggers; pending chunks are found through their index."""
        chunks = int(self.get_meta("chunks"))
        pending = self.db.execute("SELECT count(*) FROM chunks WHERE embedded=0").fetchone()[0]
        return {"chunks": chunks, "embedded": chunks - pending}

    # --- search -------------------------------------------------------------------------------------------------
    def bm25(self, query: str, limit: int, where: str = "", params: Sequence = ()) -> list[tuple[int, float]]:
        words = {w.lower() for w in re.findall(r"\w+", split_identifiers(query)) if len(w) > 1}
        words = (words - STOP_WORDS) or words
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in sorted(words))
        if not where:  # FTS5 ranks and cuts by itself: cheaper than joining every match first
            sql = "SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?"
            return [(i, -s) for i, s in self.db.execute(sql, (match, limit))]
        sql = ("SELECT chunks.id, chunks_fts.rank FROM chunks_fts JOIN chunks ON chunks.id = chunks_fts.rowid"
               f" WHERE chunks_fts MATCH ? {where} ORDER BY chunks_fts.rank LIMIT ?")
        return [(i, -s) for i, s in self.db.execute(sql, (match, *params, limit))]

    def rows(self, ids: Sequence[int], text: bool = True) -> dict[int, dict]:
        if not ids:
            return {}
        cur = self.db.execute(
            f"SELECT id, path, language, kind, name, qualname, start_line, end_line, embedded{', text' if text else ''} "
            f"FROM chunks WHERE id IN ({', '.join('?' * len(ids))})", list(ids))
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names, r)) for r in cur}

    def transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
