"""Finding and reading the benchmark files. The data lives outside the repo; the user gives its path."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import EvalError

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = "PLUSLS_EVAL_DATA"
LAYOUT_HELP = ("a folder with humaneval/, humaneval_infilling/, mbpp/, mtpb/, code2text_python/ "
               "(the layout of shared/eval/README.md), or the task's own file")


def default_data_dir() -> Path | None:
    """$PLUSLS_EVAL_DATA, else ../shared/eval beside the repo checkout when it exists."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    guess = REPO_ROOT.parent / "shared" / "eval"
    return guess if guess.is_dir() else None


def find_file(data: str | Path | None, folder: str, name: str) -> Path:
    """The task's file: DATA may be the benchmark root, the task's folder, or the file itself."""
    root = Path(data) if data is not None else default_data_dir()
    if root is None:
        raise EvalError(f"no benchmark data found: pass --data PATH ({LAYOUT_HELP}) or set ${ENV}")
    if not root.exists():
        raise EvalError(f"--data {root} does not exist; it should be {LAYOUT_HELP}")
    if root.is_file():
        return root
    for candidate in (root / folder / name, root / name):
        if candidate.is_file():
            return candidate
    raise EvalError(f"{root} has no {folder}/{name}; --data should be {LAYOUT_HELP}")


def require_keys(rows: list[dict], keys: tuple[str, ...], path: Path) -> list[dict]:
    if not rows:
        raise EvalError(f"{path} holds no problems")
    missing = [k for k in keys if k not in rows[0]]
    if missing:
        raise EvalError(f"{path} does not look like the expected benchmark file: rows lack {', '.join(missing)}")
    return rows
