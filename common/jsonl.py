"""Reading jsonl files (one JSON object a line; blank lines skipped; NAME.gz read through gzip)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from .errors import PluslsError


class JsonlError(PluslsError, ValueError):
    """A jsonl file that cannot be read: missing, not gzip though named .gz, not UTF-8, or a line that is not JSON.
    The message names the file and the line."""


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every row of PATH, in order. Raises JsonlError naming PATH and the line that failed."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows, number = [], 0
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):  # noqa: B007  (number is reported on error)
                if line.strip():
                    rows.append(json.loads(line))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" (line {number})" if number else ""
        raise JsonlError(f"cannot read {path}{where}: {e}") from e
    return rows
