"""Which embedding model an index uses: a configured exported directory, or the embedded default MiniLM; and the
static first-pass embedder distilled from it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from plusls.common.paths import cache_home
from plusls.exported import Embedder, RuntimeOptions
from plusls.exported.defaults import EMBEDDER, ensure_default
from plusls.exported.static_embedder import StaticEmbedder, static_for


def load_embedder(model_dir: str | Path | None, models_dir: Path, log: Callable[[str], None] = print,
                  options: RuntimeOptions | None = None) -> tuple[Embedder, str]:
    """(embedder, model id). The id names the model and its weights' checksum, so another model, or the same
    model re-exported differently, is noticed and triggers a rebuild of the vectors."""
    if model_dir is None:

        model_dir = ensure_default(EMBEDDER, models_dir, log)
    embedder = Embedder(model_dir, options or RuntimeOptions.from_env())
    digest = embedder.manifest.files[embedder.manifest.onnx_file("encoder")][:12]
    return embedder, f"{Path(model_dir).name}@{digest}"


def first_pass_for(embedder, model_id: str, log: Callable[[str], None] = print) -> StaticEmbedder | None:
    """The static embedder for a local encoder (distilled once, cached); None for a remote one, whose server
    embeds fast enough and whose tokens plusls does not know."""
    if not isinstance(embedder, Embedder):
        return None
    return static_for(embedder, model_id, cache_home() / "static", log)
