"""Indexing progress for the CLI: the first pass over the files (searchable as it goes), then the full pass's
chunks embedded with their rate and ETA."""
from __future__ import annotations

from typing import TextIO

from plusls.common.progress import LineWriter, bar

from .workspace_index import IndexProgress


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, every_s: float = 2.0):
        self.out = LineWriter(stream, every_s)

    def __call__(self, p: IndexProgress) -> None:
        if p.stage == "scan":
            line = f"first pass {bar(p.files_done, p.files_total)} {p.files_done}/{p.files_total} files"
        else:
            rate = p.chunks_embedded / p.elapsed if p.elapsed > 0 else 0.0
            left = p.chunks_total - p.chunks_embedded
            eta = f"ETA {left / rate:.0f}s" if rate > 0 and left > 0 else ""
            line = (f"full pass {bar(p.chunks_embedded, p.chunks_total)} {p.chunks_embedded}/{p.chunks_total} chunks "
                    f"embedded  {rate:.0f} chunks/s  {eta}")
        self.out.write(line, final=p.stage == "done")
