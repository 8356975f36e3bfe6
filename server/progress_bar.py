"""Progress for long CLI jobs on stderr: one rewritten line on a terminal, a line every few seconds otherwise."""
from __future__ import annotations

import sys
import time

from plusls.indexer.workspace_index import Progress


class ProgressBar:
    def __init__(self, stream=sys.stderr, every_s: float = 2.0):
        self.stream, self.every_s = stream, every_s
        self.tty = stream.isatty()
        self.last = 0.0
        self.last_line = ""

    def __call__(self, p: Progress) -> None:
        now = time.perf_counter()
        if not self.tty and now - self.last < self.every_s and p.stage != "done":
            return
        self.last = now
        if p.stage == "scan":
            line = f"scanning {_bar(p.files_done, p.files_total)} {p.files_done}/{p.files_total} files"
        else:
            rate = p.chunks_embedded / p.elapsed if p.elapsed > 0 else 0.0
            left = p.chunks_total - p.chunks_embedded
            eta = f"ETA {left / rate:.0f}s" if rate > 0 and left > 0 else ""
            line = (f"embedding {_bar(p.chunks_embedded, p.chunks_total)} {p.chunks_embedded}/{p.chunks_total} "
                    f"chunks  {rate:.0f} chunks/s  {eta}")
        if line != self.last_line:
            self.last_line = line
            self.stream.write(("\r\033[K" + line) if self.tty else line + "\n")
        if self.tty and p.stage == "done":
            self.stream.write("\n")
        self.stream.flush()


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"
