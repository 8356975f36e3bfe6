"""Which embedding model an index uses: a configured exported directory, or the embedded default MiniLM."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from plusls.exported import Embedder, RuntimeOptions
from plusls.exported.defaults import EMBEDDER, ensure_default


def load_embedder(model_dir: str | Path | None, models_dir: Path, log: Callable[[str], None] = print,
                  options: RuntimeOptions | None = None) -> tuple[Embedder, str]:
    """(embedder, model id). The id names the model and its weights' checksum, so another model, or the same
    model re-exported differently, is noticed and triggers a rebuild of the vectors."""
    if model_dir is None:

        model_dir = ensure_default(EMBEDDER, models_dir, log)
    embedder = Embedder(model_dir, options or RuntimeOptions.from_env())
    digest = embedder.manifest.files[embedder.manifest.onnx_file("encoder")][:12]
    return embedder, f"{Path(model_dir).name}@{digest}"
