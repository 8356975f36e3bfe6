"""A model loaded lazily and loaded again when its directory is replaced on disk (`plusls train refresh` swaps a
re-exported directory in place; the server notices on its next request, without a restart)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Generic, TypeVar

M = TypeVar("M")


def manifest_stamp(directory: Path | None) -> int:
    """Changes when a model directory is replaced (an export writes the manifest last)."""
    try:
        st = os.stat(Path(directory) / "manifest.json") if directory else None
    except OSError:
        return 0
    return st.st_mtime_ns ^ st.st_ino if st else 0


class WatchedModel(Generic[M]):
    """`model()` resolves the directory and loads it; `changed()` says whether the directory it loaded has been
    replaced since."""

    def __init__(self, resolve: Callable[[], Path], load: Callable[[Path], M]):
        self._resolve, self._load = resolve, load
        self._stamp: int | None = None
        self.path: Path | None = None

    def changed(self) -> bool:
        return self._stamp is not None and manifest_stamp(self.path) != self._stamp

    def __call__(self) -> M:
        self.path = Path(self._resolve())
        self._stamp = manifest_stamp(self.path)
        return self._load(self.path)
