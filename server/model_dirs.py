"""Which model directories the server uses: the settings', else the embedded defaults. A default missing on disk is
exported once, in the background as the server starts (with progress), never inside a request: until it is
there, a request that needs it is told so."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from plusls.common.errors import PluslsError
from plusls.common.paths import default_models_dir
from plusls.exported.defaults import (COMPLETER, COMPLETER_GPU, EMBEDDER, DefaultModel, bundled_docstring_dir,
                                      default_completer, ensure_default, exported_dir)
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


def resolve_dirs(settings: Settings) -> ModelDirs:
    m = settings.models
    return ModelDirs(Path(m.completion).expanduser() if m.completion else None,
                     Path(m.docstring).expanduser() if m.docstring else bundled_docstring_dir(),
                     Path(m.embedding).expanduser() if m.embedding else None,
                     Path(m.dir).expanduser() if m.dir else default_models_dir(),
                     Path(m.draft).expanduser() if m.draft else None)


class DefaultModels:
    def __init__(self, dirs: ModelDirs, options: RuntimeOptions, exporting: set[str] | None = None):
        """`exporting`: the names being exported, shared with the previous instance when settings change."""
        self.dirs, self.options = dirs, options
        self.exporting: set[str] = exporting if exporting is not None else set()
        self.failed: dict[str, str] = {}
        # Resolved once per settings, not per keystroke: it looks up the 1.5B's installed wheels.
        self.completer = default_completer(resolve_providers(options.providers)) if dirs.completion is None else None

    def wanted(self) -> list[DefaultModel]:
        """The defaults this server uses: the completer (the 1.5B on CUDA when installed, with the 0.5B drafting
        for it), the embedder; none that the settings replace."""
        wanted = []
        if self.completer is not None:
            wanted.append(self.completer)
            if self.completer is COMPLETER_GPU and self.dirs.draft is None:
                wanted.append(COMPLETER)
        if self.dirs.embedding is None:
            wanted.append(EMBEDDER)
        return wanted

    def missing(self) -> list[DefaultModel]:
        return [m for m in self.wanted() if exported_dir(m, self.dirs.models_dir) is None]

    def export(self, model: DefaultModel, log: Callable[[str], None]) -> Path:
        """Export `model` (minutes, torch; on a thread of its own)."""
        self.exporting.add(model.name)
        try:
            return ensure_default(model, self.dirs.models_dir, log)
        except Exception as e:
            self.failed[model.name] = str(e)
            raise
        finally:
            self.exporting.discard(model.name)

    def path(self, model: DefaultModel) -> Path:
        """The exported directory; a clear error while it is being exported or when its export failed."""
        if model.name in self.exporting:
            raise PluslsError(f"the default {model.kind} model {model.name} is being exported (once, a few "
                              "minutes; see the progress): it is used as soon as that is done")
        if (ready := exported_dir(model, self.dirs.models_dir)) is not None:
            return ready
        why = f" (the export failed: {self.failed[model.name]})" if model.name in self.failed else ""
        raise PluslsError(f"the default {model.kind} model {model.name} is not exported{why}: run `plusls demo`, "
                          "or restart the server, to export it")

    def completer_ready(self) -> bool:
        """False while the default completer this server uses is being exported."""
        return self.completer is None or self.completer.name not in self.exporting

    def completion_dir(self) -> Path:
        return self.dirs.completion if self.completer is None else self.path(self.completer)

    def draft_dir(self) -> Path | None:
        """The draft model: the one set, else the 0.5B where the default completer is the 1.5B (CUDA), else none."""
        if self.dirs.draft is not None:
            return self.dirs.draft
        if self.completer is COMPLETER_GPU:
            return self.path(COMPLETER)
        return None

    def embedding_dir(self) -> Path:
        return self.dirs.embedding if self.dirs.embedding is not None else self.path(EMBEDDER)


def docstring_dir(dirs: ModelDirs) -> Path:
    if dirs.docstring is None:
        raise PluslsError("no docstring model: set plusls.models.docstring to an exported seq2seq directory")
    return dirs.docstring
