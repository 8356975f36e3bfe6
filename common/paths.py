"""Where plusls keeps its files."""
from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """Everything plusls keeps: $PLUSLS_CACHE_DIR, else $XDG_CACHE_HOME/plusls, else ~/.cache/plusls."""
    if os.environ.get("PLUSLS_CACHE_DIR"):
        return Path(os.environ["PLUSLS_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plusls"


def default_models_dir() -> Path:
    return Path(os.environ.get("PLUSLS_MODELS_DIR") or cache_home() / "models")


def telemetry_log_path() -> Path:
    """Accepted and rejected completions (the server writes them, refresh training reads them)."""
    return cache_home() / "telemetry" / "completions.jsonl"


def index_home() -> Path:
    return Path(os.environ["PLUSLS_INDEX_DIR"]) if os.environ.get("PLUSLS_INDEX_DIR") else cache_home() / "index"
