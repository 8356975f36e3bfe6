"""The server's workspace index: built in the background, re-indexed on save, searched from any thread."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from plusls.completion.prompt import Cursor, Snippet
from plusls.exported.watched_model import WatchedModel
from plusls.indexer.search import SearchResponse, search
from plusls.indexer.workspace_index import IndexProgress, IndexSummary, WorkspaceIndex

from .settings import SearchSettings

SNIPPET_LINES = 12


class WorkspaceSearch:
    def __init__(self, root: Path, embedder: WatchedModel, settings: SearchSettings, index_dir: Path | None = None,
                 log: Callable[[str], None] = print):
        """`embedder()`: (the embedding model, its id), loaded again when its directory is replaced."""
        self.root = Path(root).resolve()
        self.embedder = embedder
        self.settings = settings
        self.index_dir = index_dir
        self.log = log
        self.index: WorkspaceIndex | None = None
        self._open_lock = threading.Lock()
        self._reload_asked = False

    def open(self) -> WorkspaceIndex:
        with self._open_lock:
            if self.index is None:
                embedder, model_id = self.embedder()
                self._reload_asked = False
                self.index = WorkspaceIndex(self.root, embedder, model_id, self.index_dir,
                                            max_bytes=self.settings.max_file_bytes, log=self.log)
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
        return self.open().update(progress=progress)

    def reindex_file(self, path: Path) -> IndexSummary | None:
        full = Path(path).resolve()
        if not full.is_relative_to(self.root):
            return None  # a file outside the workspace is not indexed
        return self.open().reindex_file(full)

    def search(self, query: str, k: int = 10) -> SearchResponse:
        return search(self.open(), query, k=k)

    def snippets_for(self, cursor: Cursor, k: int = 2) -> list[Snippet]:
        """Code from other files that resembles the lines before the cursor (retrieval-augmented completion)."""
        if self.index is None:
            return []
        query = cursor.text[max(0, cursor.line_start - 600) : cursor.offset].strip()
        if not query:
            return []
        own = self._relative(cursor.path)
        out = []
        for r in search(self.index, query, k=k + 4).results:
            if r.path == own or r.kind in ("lines", "module"):
                continue
            out.append(Snippet(r.path, "\n".join(r.snippet.split("\n")[:SNIPPET_LINES])))
            if len(out) == k:
                break
        return out

    def _relative(self, path: str) -> str:
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
