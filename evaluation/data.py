"""Finding and reading the benchmark files. The data lives outside the repo; the user gives its path."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    rows, number = [], 0
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):  # noqa: B007  (number is reported on error)
                if line.strip():
                    rows.append(json.loads(line))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EvalError(f"cannot read {path} (line {number}): {e}") from e
    return rows


def require_keys(rows: list[dict], keys: tuple[str, ...], path: Path) -> list[dict]:
    if not rows:
        raise EvalError(f"{path} holds no problems")
    missing = [k for k in keys if k not in rows[0]]
    if missing:
        raise EvalError(f"{path} does not look like the expected benchmark file: rows lack {', '.join(missing)}")
    return rows
