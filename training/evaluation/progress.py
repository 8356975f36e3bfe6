"""Progress of a long run on stderr: samples done / total, elapsed time and ETA."""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Thread-safe counter that redraws one line on a terminal, or prints a line every `every_s` elsewhere."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, every_s: float = 30.0):
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.every_s = every_s
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        tail = f", ETA {clock(eta)}" if self.done and self.done < self.total else ""
        return f"{self.label}: {self.done}/{self.total} samples, {clock(elapsed)} elapsed{tail}"

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.tty:
                self.stream.write("\r" + self.line() + "\x1b[K")
                self.stream.flush()
            elif now - self._last >= self.every_s or self.done == self.total:
                self._last = now
                print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
