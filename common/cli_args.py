"""Arguments several packages' subcommands share."""
from __future__ import annotations

import argparse

from .paths import default_models_dir


def models_dir_parent() -> argparse.ArgumentParser:
    """--models-dir, for `parents=` of a subcommand that loads exported models."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--models-dir", default=str(default_models_dir()),
                   help="where exported models live (default: %(default)s; env PLUSLS_MODELS_DIR)")
    return p
