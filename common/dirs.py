"""Putting a finished directory in place of another one, so a reader never sees a half-written directory."""
from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE), so a reader sees the old or the new
    one, never neither. Elsewhere: three renames (b is missing for an instant, and put back if a cannot move)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
    except (AttributeError, OSError):
        pass
    aside = Path(b).with_name(Path(b).name + ".swap")
    os.replace(b, aside)
    try:
        os.replace(a, b)
    except OSError:
        os.replace(aside, b)
        raise
    os.replace(aside, a)


def replace_dir(new: Path, out: Path) -> None:
    """Put `new` at `out`. An existing `out` stays whole until the new one takes its place in one exchange, and is
    removed after."""
    if not os.path.lexists(out):
        os.replace(new, out)
        return
    exchange(new, out)
    shutil.rmtree(new, ignore_errors=True)  # now the old `out`
