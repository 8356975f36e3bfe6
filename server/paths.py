"""Where plusls keeps its files."""
from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plusls"


def default_models_dir() -> Path:
    return Path(os.environ.get("PLUSLS_MODELS_DIR") or cache_home() / "models")
