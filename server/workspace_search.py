"""The server's workspace index: built in the background, re-indexed on save, searched from any thread. Local
(SQLite + FAISS) by default; a team's shared PostgreSQL index when `search.store` names one, searched together with
this editor's documents that have unsaved changes."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from plusls.completion.prompt import Cursor, Snippet
from plusls.exported.watched_model import WatchedModel
from plusls.indexer.embedding_model import first_pass_for
from plusls.indexer.search import Reranker, SearchResponse, search
from plusls.indexer.workspace_index import IndexProgress, IndexSummary, WorkspaceIndex

from .settings import SearchSettings, is_database_url

SNIPPET_LINES = 12


class WorkspaceSearch:
    def __init__(self, root: Path, embedder: WatchedModel, settings: SearchSettings, index_dir: Path | None = None,
                 log: Callable[[str], None] = print, unsaved: Callable[[], dict[str, str]] = dict,
                 open_paths: Callable[[], list[str]] = list):
        """`embedder()`: (the embedding model, its id), loaded again when its directory is replaced. `unsaved()`:
        path -> text of the open documents with unsaved changes; `open_paths()`: the open documents' paths, whose
        chunks the encoder embeds first."""
        self.root = Path(root).resolve()
        self.unsaved = unsaved
        self.open_paths = open_paths
        self.embedder = embedder
        self.settings = settings
        self.index_dir = index_dir
        self.log = log
        self.index: Any = None  # a WorkspaceIndex, or a SharedIndex where search.store names one
        self._open_lock = threading.Lock()
        self._reload_asked = False

    def open(self) -> WorkspaceIndex:
        with self._open_lock:
            if self.index is None:
                embedder, model_id = self.embedder()
                self._reload_asked = False
                if is_database_url(self.settings.store):
                    from plusls.indexer.shared_index import SharedIndex  # psycopg: only for a shared index

                    self.index = SharedIndex(self.settings.store, self.root, embedder, model_id,
                                             self.settings.repo or None, self.settings.max_file_bytes, self.log)
                else:
                    self.index = WorkspaceIndex(self.root, embedder, model_id, self.index_dir,
                                                max_bytes=self.settings.max_file_bytes, log=self.log,
                                                static=first_pass_for(embedder, model_id, self.log))
            return self.index

    def embedder_replaced(self) -> bool:
        """True once after the embedding model's directory was replaced on disk (plusls train refresh), until the
        index is opened again with it."""
        if self.index is None or self._reload_asked or not self.embedder.changed():
            return False
        self._reload_asked = True
        return True

    def update(self, progress: Callable[[IndexProgress], None] | None = None, reload: bool = False) -> IndexSummary:
        """reload: open the index again, so the embedder is loaded again; the index, seeing another model id,
        rebuilds its vectors and says so in the summary. The old index is not closed: a search may still be
        reading it on another thread (SQLite WAL readers and its in-memory FAISS stay valid); it goes with its
        last user."""
        if reload:
            with self._open_lock:
                self.index = None
        index = self.open()
        if isinstance(index, WorkspaceIndex):
            return index.update(progress=progress, first=[r for p in self.open_paths() if (r := self._inside(p))])
        return index.update(progress=progress)

    def reindex_file(self, path: Path) -> IndexSummary | None:
        full = Path(path).resolve()
        if not full.is_relative_to(self.root):
            return None  # a file outside the workspace is not indexed
        return self.open().reindex_file(full)

    def search(self, query: str, k: int = 10, reranker: Reranker | None = None) -> SearchResponse:
        """`reranker`: rescores the local index's top results (a shared index answers without it)."""
        index = self.open()
        if isinstance(index, WorkspaceIndex):
            return search(index, query, k=k, reranker=reranker)
        unsaved = {rel: text for path, text in self.unsaved().items() if (rel := self._inside(path))}
        return index.search(query, k, unsaved)

    def snippets_for(self, cursor: Cursor, k: int = 2) -> list[Snippet]:
        """Code from other files that resembles the lines before the cursor (retrieval-augmented completion)."""
        if self.index is None:
            return []
        query = cursor.text[max(0, cursor.line_start - 600) : cursor.offset].strip()
        if not query:
            return []
        own = self._relative(cursor.path)
        out = []
        for r in self.search(query, k=k + 4).results:
            if r.path == own or r.kind in ("lines", "module"):
                continue
            out.append(Snippet(r.path, "\n".join(r.snippet.split("\n")[:SNIPPET_LINES])))
            if len(out) == k:
                break
        return out

    def _relative(self, path: str) -> str:
        return self._inside(path) or path

    def _inside(self, path: str) -> str | None:
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
