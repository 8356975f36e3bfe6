"""Which model directories the server uses: the settings', else the embedded defaults. A default missing on disk is
exported once, in the background as the server starts (with progress), never inside a request: until it is
there, a request that needs it is told so. With `models.completion: "auto"` the completer is the largest installed
default this machine serves within the latency budgets, from speeds measured once per machine (completion/choice.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from plusls.common.errors import PluslsError
from plusls.common.paths import default_models_dir
from plusls.completion.choice import Candidate, Choice, choose, predict
from plusls.completion.speed import SpeedCache, speed_key
from plusls.exported.causal_lm import CausalLM
from plusls.exported.defaults import (COMPLETER, COMPLETER_LARGE, COMPLETERS, EMBEDDER, DefaultModel,
                                      bundled_docstring_dir, ensure_default, exported_dir, installed_completers)
from plusls.exported.manifest import read_manifest
from plusls.exported.sessions import RuntimeOptions, resolve_providers

from .settings import Settings

AUTO = "auto"
NONE = "none"  # no local completer: a server completes, with no stand-in


@dataclass
class ModelDirs:
    completion: Path | None  # None: a default completer (`completer` names it, or "auto")
    docstring: Path | None
    embedding: Path | None
    models_dir: Path
    draft: Path | None = None
    completer: str = AUTO
    remote: str | None = None  # an inference server's URL: it completes, the local model only stands in

    def local(self) -> bool:
        """Whether a local model completes (or stands in for the server)."""
        return self.completion is not None or self.completer != NONE


def is_url(value: str | None) -> bool:
    return bool(value) and value.startswith(("http://", "https://"))


def runtime_options(settings: Settings) -> RuntimeOptions:
    base = RuntimeOptions.from_env()
    if settings.providers == "auto":
        return base
    return RuntimeOptions(providers=tuple(settings.providers), intra_op_threads=base.intra_op_threads)


def resolve_dirs(settings: Settings) -> ModelDirs:
    m = settings.models
    remote = m.completion if is_url(m.completion) else None
    local = settings.remote.fallback if remote else m.completion
    named = local in (None, AUTO, *COMPLETERS)
    return ModelDirs(None if named else Path(local).expanduser(),
                     Path(m.docstring).expanduser() if m.docstring else bundled_docstring_dir(),
                     Path(m.embedding).expanduser() if m.embedding else None,
                     Path(m.dir).expanduser() if m.dir else default_models_dir(),
                     Path(m.draft).expanduser() if m.draft else None,
                     NONE if remote and local is None else local if named and local else AUTO, remote)


class DefaultModels:
    def __init__(self, dirs: ModelDirs, options: RuntimeOptions, exporting: set[str] | None = None,
                 speeds: SpeedCache | None = None):
        """`exporting`: the names being exported, shared with the previous instance when settings change."""
        self.dirs, self.options = dirs, options
        self.exporting: set[str] = exporting if exporting is not None else set()
        self.failed: dict[str, str] = {}
        self.speeds = speeds or SpeedCache()
        self.providers = resolve_providers(options.providers)
        self.auto = dirs.completion is None and dirs.completer == AUTO
        # Resolved once per settings, not per keystroke; "auto" chooses now when every candidate's speed is known,
        # else once the server has measured them (choose(measure=True), on a worker thread).
        self.candidates = installed_completers() if self.auto else []
        self.completer: DefaultModel | None = None if self.auto or dirs.completion else \
            COMPLETERS.get(dirs.completer)
        self.choice: Choice | None = None
        if self.auto:
            self.choose(measure=False)

    def wanted(self) -> list[DefaultModel]:
        """The defaults this server uses: the completers it may choose from (and the 0.5B drafting for the 1.5B on
        CUDA), the embedder; none that the settings replace."""
        wanted = list(self.candidates) if self.auto else [self.completer] if self.completer else []
        if self._drafts() and COMPLETER not in wanted:
            wanted.append(COMPLETER)
        if self.dirs.embedding is None:
            wanted.append(EMBEDDER)
        return wanted

    def missing(self) -> list[DefaultModel]:
        return [m for m in self.wanted() if exported_dir(m, self.dirs.models_dir) is None]

    def export(self, model: DefaultModel, log: Callable[[str], None]) -> Path:
        """Export `model` (a minute or two; on a thread of its own)."""
        self.exporting.add(model.name)
        try:
            return ensure_default(model, self.dirs.models_dir, log)
        except Exception as e:
            self.failed[model.name] = str(e)
            raise
        finally:
            self.exporting.discard(model.name)

    def choosing(self) -> bool:
        """True until "auto" has chosen the completer."""
        return self.auto and self.completer is None

    def choose(self, measure: bool, again: bool = False) -> Choice | None:
        """Choose among the exported candidates from their speeds here: known ones only, or (`measure`) measuring
        the others now, a few seconds each (`again`: all of them). None while a candidate is unexported or
        unmeasured."""
        found, broken = [], []
        for model in self.candidates:
            path = exported_dir(model, self.dirs.models_dir)
            if path is None:
                if model.name in self.exporting or not measure:
                    return None
                continue  # failed to export: choose among the others
            manifest = read_manifest(path)
            speed = None if again else self.speeds.get(speed_key(manifest, self.providers))
            if speed is None:
                if not measure:
                    return None
                try:
                    speed = self.speeds.speed_of(CausalLM(path, self.options), again=again)
                except Exception as e:  # one that does not load or run here (memory, a broken file) is no candidate
                    broken.append(f"{model.name}: {e}")
                    continue
            found.append(Candidate(model.name, speed, predict(speed, manifest.max_length)))
        if not found:
            if broken:
                raise PluslsError(f"no default completer runs here ({'; '.join(broken)})")
            return None
        self.choice = choose(found, [f"{b} (it did not run here)" for b in broken])
        self.completer = next(m for m in self.candidates if m.name == self.choice.name)
        return self.choice

    def path(self, model: DefaultModel) -> Path:
        """The exported directory; a clear error while it is being exported or when its export failed."""
        if model.name in self.exporting:
            raise PluslsError(f"the default {model.kind} model {model.name} is being exported (once, a minute or "
                              "two; see the progress): it is used as soon as that is done")
        if (ready := exported_dir(model, self.dirs.models_dir)) is not None:
            return ready
        why = f" (the export failed: {self.failed[model.name]})" if model.name in self.failed else ""
        raise PluslsError(f"the default {model.kind} model {model.name} is not exported{why}: run `plusls demo`, "
                          "or restart the server, to export it")

    def completer_ready(self) -> bool:
        """False while the default completer is being chosen or exported (a server completes meanwhile)."""
        if self.dirs.completion is not None or self.dirs.remote is not None:
            return True
        return self.completer is not None and self.completer.name not in self.exporting

    def completion_dir(self) -> Path:
        if self.dirs.completion is not None:
            return self.dirs.completion
        if not self.dirs.local():
            raise PluslsError("no local completion model: plusls.remote.fallback is null")
        if self.completer is None:
            raise PluslsError("the completion model is being chosen (its speed on this machine is measured once, "
                              "a few seconds): it is used as soon as that is done")
        return self.path(self.completer)

    def _drafts(self) -> bool:
        """The 0.5B drafts for the default 1.5B where CUDA runs it (measured there; not on a CPU)."""
        return self.dirs.draft is None and self.completer is COMPLETER_LARGE and "CUDAExecutionProvider" in \
            self.providers

    def draft_dir(self) -> Path | None:
        """The draft model: the one set, else the 0.5B where the default 1.5B completes on CUDA, else none."""
        if self.dirs.draft is not None:
            return self.dirs.draft
        return self.path(COMPLETER) if self._drafts() else None

    def embedding_dir(self) -> Path:
        return self.dirs.embedding if self.dirs.embedding is not None else self.path(EMBEDDER)


def docstring_dir(dirs: ModelDirs) -> Path:
    if dirs.docstring is None:
        raise PluslsError("no docstring model: set plusls.models.docstring to an exported seq2seq directory")
    return dirs.docstring
