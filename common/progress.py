"""Progress of long jobs on stderr: one rewritten line on a terminal, a line every few seconds otherwise."""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Thread-safe counter of samples done / total with elapsed time and ETA, shown through a LineWriter."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, every_s: float = 30.0):
        self.label, self.total = label, total
        self.out = LineWriter(stream, every_s)
        self.done = 0
        self.start = time.monotonic()
        self._lock = threading.Lock()

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        tail = f", ETA {clock(eta)}" if self.done and self.done < self.total else ""
        return f"{self.label}: {self.done}/{self.total} samples, {clock(elapsed)} elapsed{tail}"

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            self.out.write(self.line(), final=self.done == self.total)

    def close(self) -> None:
        self.out.close()


def bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


class LineWriter:
    """Writes status lines: rewrites one line on a terminal; elsewhere at most one line every `every_s` (and always
    the final one), so logs stay short."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 2.0):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.every_s = every_s
        self._last = 0.0
        self._last_line = ""
        self._open = False

    def write(self, line: str, final: bool = False) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < self.every_s and not final:
            return
        self._last = now
        if line != self._last_line:
            self._last_line = line
            self.stream.write(("\r\033[K" + line) if self.tty else line + "\n")
        self._open = self.tty and not final
        if self.tty and final:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        """End a rewritten line that no final write ended."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
