"""The teacher for sequence-level distillation: the instruct completion model (Qwen2.5-Coder) asked for a summary
line in chat form, with the prompt the server uses (server.docs.chat_summary). `label` writes one jsonl row per
function, flushed as it goes: a stopped run resumes where it ended."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Callable, Iterator

from plusls.common.jsonl import read_jsonl
from plusls.common.progress import Progress
from plusls.docstrings.chat_summary import ChatSummarizer

from .mining import code_hash


def labels_path(corpus: Path, teacher: str, split: str = "train") -> Path:
    return corpus / "labels" / f"summary.{split}.{teacher}.jsonl"


def read_labels(path: Path) -> dict[str, str]:
    """hash -> the teacher's summary ("" when it wrote nothing usable); a torn last line is ignored."""
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            out[row["hash"]] = row["summary"]
    return out


def label(corpus: Path, model_dir: Path, limit: int | None = None, minutes: float = 0.0, split: str = "train",
          log: Callable[[str], None] = print) -> dict:
    """Label the corpus's `split` summary rows with the teacher, appending to its labels file; resumable. Rows are
    taken in a seeded order, so any prefix of the run is a random sample of the corpus."""
    rows = list(read_jsonl(corpus / f"summary.{split}.jsonl"))
    random.Random(0).shuffle(rows)
    rows = rows[:limit]
    out = labels_path(corpus, model_dir.name, split)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = read_labels(out)
    todo = [r for r in rows if code_hash(r["code"]) not in done]
    log(f"teacher {model_dir.name}: {len(rows) - len(todo)} of {len(rows)} functions already labelled in {out}")
    teacher = ChatSummarizer(model_dir)
    progress = Progress("labelling", len(todo))
    start, written, empty = time.monotonic(), 0, 0
    with open(out, "a") as f:
        if out.stat().st_size and not out.read_bytes().endswith(b"\n"):
            f.write("\n")  # a run killed mid-line: its torn row is skipped, the next starts on a line of its own
        for row in _until(todo, start, minutes):
            summary = teacher.summarize(row["code"], row["name"].rsplit(".", 1)[-1])
            f.write(json.dumps({"hash": code_hash(row["code"]), "summary": summary,
                                "human": row["summary"]}) + "\n")
            f.flush()
            written, empty = written + 1, empty + (not summary)
            progress.advance()
    progress.close()
    seconds = time.monotonic() - start
    result = {"labels": str(out), "labelled": len(rows) - len(todo) + written, "of": len(rows), "this_run": written,
              "empty": empty, "seconds": round(seconds, 1),
              "seconds_per_function": round(seconds / written, 2) if written else None}
    log(json.dumps(result))
    return result


def _until(rows: list[dict], start: float, minutes: float) -> Iterator[dict]:
    for row in rows:
        if minutes and time.monotonic() - start > 60 * minutes:
            return
        yield row
