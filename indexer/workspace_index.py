"""One workspace's index: walk -> chunk -> SQLite/FTS5 and a static first-pass vector at once (searchable within
seconds), then embed pending chunks with the encoder into FAISS, the documents the user has open first.

The first-pass vectors are kept in memory for the chunks still waiting for the encoder, and rebuilt on open.

Crash safety: a file's chunks change in one SQLite transaction; vectors go to FAISS first, the FAISS file is
written atomically, and only then are those chunks marked embedded. On open, FAISS ids that SQLite does not
know (a crash after a delete) are dropped and chunks marked embedded but missing from FAISS (a crash before the
FAISS write) are queued again, so the next run completes what the last one left."""
from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from plusls.common.paths import index_home

from .chunker import chunk_file
from .errors import WorkspaceIndexError
from .languages import spec_for
from .store import SCHEMA_VERSION, Store
from .vectors import VectorStore
from .walker import DEFAULT_MAX_BYTES, check_content, path_allowed, walk

SAVE_EVERY_S = 5.0  # how often embedding progress is made durable (FAISS write + SQLite marks)
EMBED_GROUP = 256  # chunks per embedding call: the embedder sorts them by length, so batches pad little
# Tokens of a chunk the encoder reads: at 128, CoSQA and the held-out pairs rank as well as at 256, and indexing
# is faster (docs/measurements.md, bench/index_speed.py).
EMBED_TOKENS = 128


class EmbedderLike(Protocol):
    dim: int

    def embed(self, texts, batch_size: int = 32, max_length: int | None = None) -> np.ndarray: ...


@dataclass
class IndexProgress:
    stage: str  # "scan", "embed", "done"
    files_done: int = 0
    files_total: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def percent(self) -> int:
        """Scanning is the first half, embedding the second."""
        if self.stage == "scan":
            return self.files_done * 50 // max(self.files_total, 1)
        return 50 + self.chunks_embedded * 50 // max(self.chunks_total, 1)

    def counts(self) -> str:
        if self.stage == "scan":
            return f"first pass: {self.files_done}/{self.files_total} files"
        return f"full pass: {self.chunks_embedded}/{self.chunks_total} chunks embedded"


@dataclass
class IndexSummary:
    files_indexed: int = 0  # files (re)chunked this run
    files_unchanged: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0
    skipped: Counter = field(default_factory=Counter)
    rebuilt_reason: str | None = None
    repaired: dict = field(default_factory=dict)
    seconds: float = 0.0
    scan_seconds: float = 0.0  # the first pass: chunks searchable by BM25 and first-pass vectors
    embed_seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0


def embed_views(embedder: EmbedderLike, code: Sequence[str], doc: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each chunk's two vectors, its code view and its doc view, from one call: the embedder sorts all of them by
    length into batches."""
    vectors = embedder.embed(list(code) + list(doc), max_length=EMBED_TOKENS)
    return vectors[: len(code)], vectors[len(code) :]


def default_index_dir(root: Path) -> Path:
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return index_home() / f"{root.resolve().name}-{key}"


class WorkspaceIndex:
    def __init__(self, root: str | Path, embedder: EmbedderLike | None, model_id: str,
                 index_dir: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES, log: Callable[[str], None] = print,
                 read_only: bool = False, static: EmbedderLike | None = None):
        """read_only: for searching while another process may be indexing; nothing on disk is changed.
        static: the first-pass embedder (exported.static_embedder), for chunks the encoder has not reached yet."""
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise WorkspaceIndexError(f"{root} is not a folder; pass the workspace folder to index")
        self.dir = Path(index_dir) if index_dir else default_index_dir(self.root)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.embedder, self.model_id, self.max_bytes, self.log = embedder, model_id, max_bytes, log
        self.read_only = read_only
        self.lock = threading.RLock()  # one writer at a time; searches take it briefly
        self.repaired: dict = {}
        self.rebuilt_reason: str | None = None
        try:
            if not read_only:
                self._drop_old_schema()
            self.store = Store(self.dir / "index.sqlite")
            self.store.check()
            self._open_vectors()
        except (sqlite3.DatabaseError, RuntimeError, ValueError) as e:
            raise WorkspaceIndexError(f"the index in {self.dir} is corrupt ({e}); rebuild it with "
                              f"`plusls index {self.root} --rebuild`") from e
        self.static = static if embedder is not None else None
        self.first_pass = VectorStore(None, static.dim) if self.static is not None else None
        if self.first_pass is not None:
            self._fill_first_pass()

    # --- open, model check, repair ----------------------------------------------------------------------------------
    def _drop_old_schema(self) -> None:
        """An index written by an older plusls layout is rebuilt from scratch (it is a cache), said out loud."""
        path = self.dir / "index.sqlite"
        if not path.exists():
            return
        db = sqlite3.connect(str(path))
        try:
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError:
            return  # damaged: reported by the check below
        finally:
            db.close()
        if row is None or row[0] != SCHEMA_VERSION:
            self.rebuilt_reason = f"index format changed (was {row[0] if row else 'unversioned'}): rebuilding"
            self.log(f"plusls: {self.rebuilt_reason}")
            for f in self.dir.iterdir():
                f.unlink()

    def _open_vectors(self) -> None:
        dim = self.embedder.dim if self.embedder else int(self.store.get_meta("dim") or 0)
        stored_model = self.store.get_meta("model_id")
        path = self.dir / "vectors.faiss"
        if self.read_only:
            if self.embedder is not None and stored_model not in (None, self.model_id):
                raise WorkspaceIndexError(f"the index was built with {stored_model}, not {self.model_id}; "
                                          f"run `plusls index {self.root}` to rebuild it")
            # Vectors of chunks deleted since the last FAISS write are dropped at query time (unknown ids).
            self.vectors = VectorStore(path, dim) if dim and path.exists() else None
            return
        if self.embedder is not None and stored_model not in (None, self.model_id):
            self.rebuilt_reason = f"embedding model changed from {stored_model} to {self.model_id}: rebuilding vectors"
            self.log(f"plusls: {self.rebuilt_reason}")
            path.unlink(missing_ok=True)
            self.store.reset_embeddings()
        self.vectors = VectorStore(path, dim) if dim else None
        if self.embedder is not None:
            self.store.set_meta("model_id", self.model_id)
            self.store.set_meta("dim", str(dim))
        if self.vectors is not None:
            self._repair()

    def _repair(self) -> None:
        in_faiss = set(self.vectors.ids().tolist())
        known = self.store.all_ids()
        marked = self.store.embedded_ids()
        orphans = in_faiss - known  # chunk deleted, FAISS not yet saved
        unmarked_present = (in_faiss & known) - marked  # vector written, mark lost: keep the vector, mark it
        missing = marked - in_faiss  # marked but the FAISS write never landed: embed again
        if orphans:
            self.vectors.remove(orphans)
        if unmarked_present:
            self.store.mark_embedded(unmarked_present)
        if missing:
            self.store.mark_embedded(missing, 0)
        if orphans or missing or unmarked_present:
            self.repaired = {"orphan_vectors_removed": len(orphans), "chunks_requeued": len(missing),
                             "vectors_recovered": len(unmarked_present)}
            self.vectors.save()

    def _fill_first_pass(self) -> None:
        after = 0
        while batch := self.store.pending(after, 8 * EMBED_GROUP):
            after = batch[-1][0]
            self._add_first_pass([b[0] for b in batch], [b[1] for b in batch])

    def _add_first_pass(self, ids: list[int], texts: list[str]) -> None:
        if ids:
            self.first_pass.add(np.array(ids, np.int64), self.static.embed(texts))

    def close(self) -> None:
        self.store.close()

    # --- indexing -----------------------------------------------------------------------------------------------
    def update(self, progress: Callable[[IndexProgress], None] | None = None, embed: bool = True,
               first: Sequence[str] = ()) -> IndexSummary:
        """Bring the index up to date with the workspace: chunk new and changed files (searchable by BM25 and
        first-pass vectors at once), drop deleted ones, then embed every chunk that has no vector yet, those of
        the files in `first` (workspace-relative paths: the open documents) before the others."""
        t0 = time.perf_counter()
        summary = IndexSummary(rebuilt_reason=self.rebuilt_reason, repaired=self.repaired)
        state = IndexProgress("scan")
        entries = list(walk(self.root))
        state.files_total = len(entries)
        known = self.store.files()
        seen = set()
        for rel, reason, full in entries:
            state.files_done += 1
            if reason:
                summary.skipped[reason] += 1
            else:
                seen.add(rel)
                outcome = self._index_file(rel, full, known.get(rel), summary)
                if outcome is not None:
                    summary.skipped[outcome] += 1
                    seen.discard(rel)
            if progress and state.files_done % 50 == 0:
                progress(state)
        for rel in set(known) - seen:
            self._drop(rel, summary)
        if progress:
            progress(state)
        summary.scan_seconds = time.perf_counter() - t0
        if embed and self.embedder is not None:
            self.embed_pending(summary, progress, first)
        summary.seconds = time.perf_counter() - t0
        return summary

    def _index_file(self, rel: str, full: Path, known: tuple[str, int, float] | None,
                    summary: IndexSummary) -> str | None:
        """Chunk one file if its content changed; returns a skip reason or None."""
        try:
            st = full.stat()
            if known is not None and known[1] == st.st_size and known[2] == st.st_mtime:
                summary.files_unchanged += 1  # same size and mtime: not even read
                return None
            data = full.read_bytes()
        except OSError:
            return "unreadable"
        reason = check_content(full.name, data, self.max_bytes)
        if reason:
            if known is not None:
                self._drop(rel, summary)
            return reason
        digest = hashlib.sha1(data).hexdigest()
        if known is not None and known[0] == digest:
            self.store.touch_file(rel, st.st_size, st.st_mtime)
            summary.files_unchanged += 1
            return None
        chunks = chunk_file(rel, data.decode("utf-8"))
        spec = spec_for(rel)
        with self.lock:
            removed, added = self.store.replace_file(rel, digest, st.st_size, st.st_mtime,
                                                     spec.name if spec else "text", chunks)
            if self.vectors is not None:
                self.vectors.remove(removed)
            if self.first_pass is not None:
                self.first_pass.remove(removed)
                texts = self.store.rows(added)
                self._add_first_pass(added, [texts[i]["text"] for i in added])
        summary.files_indexed += 1
        summary.chunks_added += len(added)
        summary.chunks_removed += len(removed)
        return None

    def _drop(self, rel: str, summary: IndexSummary) -> None:
        with self.lock:
            removed = self.store.remove_file(rel)
            if self.vectors is not None:
                self.vectors.remove(removed)
            if self.first_pass is not None:
                self.first_pass.remove(removed)
        summary.files_removed += 1
        summary.chunks_removed += len(removed)

    def reindex_file(self, path: str | Path) -> IndexSummary:
        """Re-index one saved file (or drop it if it is gone, ignored or no longer indexable) and embed its chunks."""
        t0 = time.perf_counter()
        full = Path(path).resolve()
        rel = full.relative_to(self.root).as_posix()
        summary = IndexSummary()
        known = self.store.file(rel)
        if not (full.is_file() and not full.is_symlink() and path_allowed(self.root, rel)):
            if known is not None:
                self._drop(rel, summary)
        else:
            reason = self._index_file(rel, full, known, summary)
            if reason:
                summary.skipped[reason] += 1
        if self.embedder is not None:
            self.embed_pending(summary, None)
        summary.seconds = time.perf_counter() - t0
        return summary

    def embed_pending(self, summary: IndexSummary, progress: Callable[[IndexProgress], None] | None,
                      first: Sequence[str] = ()) -> None:
        counts = self.store.counts()
        state = IndexProgress("embed", chunks_embedded=counts["embedded"], chunks_total=counts["chunks"])
        t0 = last_save = time.perf_counter()
        unsaved: list[int] = []
        with self.lock:
            batch = self.store.pending_in(first)
        save_now = bool(batch)  # the open documents' chunks: saved at once, so the id-ordered pass skips them
        after = 0  # chunks are taken in id order; those embedded but not yet saved still read as pending
        while True:
            if not batch:
                with self.lock:
                    batch = self.store.pending(after, EMBED_GROUP)
                if not batch:
                    break
                after = batch[-1][0]
            ids = np.array([b[0] for b in batch], np.int64)
            code, doc = embed_views(self.embedder, [b[1] for b in batch], [b[2] for b in batch])
            with self.lock:
                keep = np.isin(ids, list(self.store.existing(ids.tolist())))  # a file may have changed meanwhile
                self.vectors.add(ids[keep], code[keep], doc[keep])
                unsaved.extend(ids[keep].tolist())
            state.chunks_embedded += int(keep.sum())
            summary.chunks_embedded += int(keep.sum())
            if save_now or time.perf_counter() - last_save >= SAVE_EVERY_S:
                self._save(unsaved)
                unsaved, last_save, save_now = [], time.perf_counter(), False
            if progress:
                progress(state)
            batch = []
        self._save(unsaved)
        summary.embed_seconds += time.perf_counter() - t0
        if progress:
            state.stage = "done"
            progress(state)

    def _save(self, ids: list[int]) -> None:
        """FAISS first (atomic file), then the SQLite marks: a crash in between is repaired on open."""
        with self.lock:
            self.vectors.maybe_upgrade()
            self.vectors.save()
            self.store.mark_embedded(ids)
            if self.first_pass is not None:
                self.first_pass.remove(ids)
            self.store.set_meta("vector_index", self.vectors.kind)
