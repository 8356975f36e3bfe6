"""FAISS vectors keyed by chunk id: inner product on unit vectors; flat below a size threshold, IVF above it.
The file is written atomically (temp file, fsync, rename), so a crash leaves the previous complete file.

Each chunk has two vectors: its code, and a short "doc view" (qualified name with its docstring or signature);
a chunk scores the better of the two, which beat either view alone on CoSQA (docs/measurements.md,
`plusls eval search`)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

IVF_THRESHOLD = 50_000  # flat (exact) while a full scan is fast; IVF past it, as a scan grows with the store
IVF_NPROBE = 16
DOC_BIT = 1 << 40  # the doc-view vector of chunk i is stored under id i | DOC_BIT
# One query at a time: OpenMP threads only add spin-waits, which made lookups many times slower on a busy machine
# (docs/measurements.md, search latency).
faiss.omp_set_num_threads(1)


class VectorStore:
    def __init__(self, path: Path | None, dim: int):
        """path None: kept in memory only (the static first pass's vectors, rebuilt on open)."""
        self.path, self.dim = path, dim
        if path is not None and path.exists():
            self.index = faiss.read_index(str(path))
            if self.index.d != dim:
                raise ValueError(f"{path} holds {self.index.d}-dim vectors, the embedder makes {dim}")
        else:
            self.index = self._flat()
        self._tune()

    def _flat(self):
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _tune(self) -> None:
        if self.is_ivf:
            self.index.nprobe = IVF_NPROBE

    @property
    def is_ivf(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    @property
    def kind(self) -> str:
        return f"ivf{self.index.nlist}-flat-ip" if self.is_ivf else "flat-ip"

    def __len__(self) -> int:
        """Chunks with vectors (each has two). Walks the id lists: not for hot paths (see `empty`)."""
        return len(self.ids())

    @property
    def empty(self) -> bool:
        return self.index.ntotal == 0

    def ids(self) -> np.ndarray:
        """Chunk ids present (code-view vectors)."""
        raw = self.raw_ids()
        return raw[raw < DOC_BIT]

    def raw_ids(self) -> np.ndarray:
        if not self.is_ivf:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(self.index.nlist) if lists.list_size(i)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def add(self, ids: np.ndarray, code: np.ndarray, doc: np.ndarray | None = None) -> None:
        if len(ids):
            ids = np.asarray(ids, np.int64)
            if doc is None:
                self.index.add_with_ids(np.ascontiguousarray(code, np.float32), ids)
                return
            both = np.concatenate([code, doc]).astype(np.float32)
            self.index.add_with_ids(np.ascontiguousarray(both), np.concatenate([ids, ids | DOC_BIT]))

    def remove(self, ids) -> None:
        ids = np.asarray(list(ids), np.int64)
        if len(ids):
            self.index.remove_ids(np.concatenate([ids, ids | DOC_BIT]))

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, best similarity of its two views), best first."""
        if self.index.ntotal == 0:
            return []
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), np.float32), 2 * k)
        best: dict[int, float] = {}
        for i, s in zip(ids[0], scores[0]):
            if i >= 0:
                chunk = int(i) & (DOC_BIT - 1)
                best[chunk] = max(best.get(chunk, -2.0), float(s))
        return sorted(best.items(), key=lambda x: -x[1])[:k]

    def maybe_upgrade(self) -> bool:
        """Move a flat index past IVF_THRESHOLD vectors to IVF (trained on the vectors it holds)."""
        if self.is_ivf or self.index.ntotal < IVF_THRESHOLD:
            return False
        ids = self.raw_ids()
        vectors = self.index.index.reconstruct_n(0, self.index.ntotal)
        nlist = int(4 * math.sqrt(len(ids)))
        # IVF keeps ids itself (no IDMap wrapper, whose remove_ids assumes a compacting inner index).
        self.quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(self.quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors)
        ivf.add_with_ids(vectors, ids)
        self.index = ivf
        self._tune()
        return True

    def save(self) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
