"""Which model directories the server uses, loaded lazily; a directory re-exported in place (a refresh swapped
it) is noticed on the next request and loaded again, without a restart."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from plusls.common.paths import default_models_dir
from plusls.exported.defaults import (COMPLETER, COMPLETER_GPU, bundled_docstring_dir, default_completer,
                                      ensure_default)
from plusls.exported.errors import PluslsError
from plusls.exported.sessions import RuntimeOptions, resolve_providers

from .settings import Settings


@dataclass
class ModelDirs:
    completion: Path | None
    docstring: Path | None
    embedding: Path | None
    models_dir: Path
    draft: Path | None = None


def runtime_options(settings: Settings) -> RuntimeOptions:
    base = RuntimeOptions.from_env()
    if settings.providers == "auto":
        return base
    return RuntimeOptions(providers=tuple(settings.providers), intra_op_threads=base.intra_op_threads)


def manifest_stamp(directory: Path | None) -> int:
    """Changes when a model directory is replaced (the manifest is written last by an export)."""
    try:
        st = os.stat(Path(directory) / "manifest.json") if directory else None
    except OSError:
        return 0
    return st.st_mtime_ns ^ st.st_ino if st else 0


class Watched:
    """A lazily loaded model that is loaded again when its directory's manifest changes."""

    def __init__(self, resolve: Callable[[], Path], load: Callable[[Path], object]):
        self._resolve, self._load = resolve, load
        self._stamp: int | None = None
        self._path: Path | None = None

    def changed(self) -> bool:
        return self._stamp is not None and manifest_stamp(self._path) != self._stamp

    def __call__(self):
        path = self._resolve()
        self._path = Path(path)
        self._stamp = manifest_stamp(self._path)
        return self._load(self._path)


def resolve_dirs(settings: Settings) -> ModelDirs:
    m = settings.models
    return ModelDirs(Path(m.completion).expanduser() if m.completion else None,
                     Path(m.docstring).expanduser() if m.docstring else bundled_docstring_dir(),
                     Path(m.embedding).expanduser() if m.embedding else None,
                     Path(m.dir).expanduser() if m.dir else default_models_dir(),
                     Path(m.draft).expanduser() if m.draft else None)


def completion_dir(dirs: ModelDirs, options: RuntimeOptions, log: Callable[[str], None]) -> Path:
    if dirs.completion is not None:
        return dirs.completion
    return ensure_default(default_completer(resolve_providers(options.providers)), dirs.models_dir, log)


def draft_dir(dirs: ModelDirs, options: RuntimeOptions, log: Callable[[str], None]) -> Path | None:
    """The draft model: the one set, else the 0.5B where the default completer is the 1.5B (CUDA), else none."""
    if dirs.draft is not None:
        return dirs.draft
    if dirs.completion is None and default_completer(resolve_providers(options.providers)) is COMPLETER_GPU:
        return ensure_default(COMPLETER, dirs.models_dir, log)
    return None


def docstring_dir(dirs: ModelDirs) -> Path:
    if dirs.docstring is None:
        raise PluslsError("no docstring model: set plusls.models.docstring to an exported seq2seq directory")
    return dirs.docstring
