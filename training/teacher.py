"""The teacher: the instruct completion model (Qwen2.5-Coder) in chat form, labelling mined functions. Two kinds of
label: "summary", a summary line with the prompt the server uses (docstrings.chat_summary), for sequence-level
distillation of the docstring model; "query", a web-style search query (training.queries), for the search
embedder. `label` writes one jsonl row per function, flushed as it goes: a stopped run resumes where it ended.
Labels committed under training/labels/ seed a corpus's labels file, so later runs reuse them."""
from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator

from plusls.common.jsonl import read_jsonl
from plusls.common.progress import Progress
from plusls.docstrings.chat_summary import ChatSummarizer

from .mining import code_hash
from .queries import MAX_NEW_TOKENS, clean_query, query_messages

KINDS = ("summary", "query")
COMMITTED = Path(__file__).with_name("labels")


def labels_path(corpus: Path, teacher: str, split: str = "train", kind: str = "summary") -> Path:
    return corpus / "labels" / f"{kind}.{split}.{teacher}.jsonl"


def read_labels(path: Path, kind: str = "summary") -> dict[str, str]:
    """hash -> the teacher's label ("" when it wrote nothing usable); a torn last line is ignored."""
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            out[row["hash"]] = row[kind]
    return out


def label(corpus: Path, model_dir: Path, limit: int | None = None, minutes: float = 0.0, split: str = "train",
          log: Callable[[str], None] = print, kind: str = "summary") -> dict:
    """Label the corpus's `split` summary rows with the teacher, appending to its labels file; resumable. Rows are
    taken in a seeded order, so any prefix of the run is a random sample of the corpus. Queries are written for
    public functions only (what people search for)."""
    rows = list(read_jsonl(corpus / f"summary.{split}.jsonl"))
    random.Random(0).shuffle(rows)
    if kind == "query":
        rows = [r for r in rows if not r["name"].rsplit(".", 1)[-1].startswith("_")]
    rows = rows[:limit]
    out = labels_path(corpus, model_dir.name, split, kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    committed = COMMITTED / out.name
    if not out.exists() and committed.exists():
        shutil.copyfile(committed, out)
    done = read_labels(out, kind)
    todo = [r for r in rows if code_hash(r["code"]) not in done]
    log(f"teacher {model_dir.name}: {len(rows) - len(todo)} of {len(rows)} functions already labelled in {out}")
    teacher = ChatSummarizer(model_dir)
    progress = Progress(f"labelling ({kind})", len(todo))
    start, written, empty = time.monotonic(), 0, 0
    with open(out, "a") as f:
        if out.stat().st_size and not out.read_bytes().endswith(b"\n"):
            f.write("\n")  # a run killed mid-line: its torn row is skipped, the next starts on a line of its own
        for row in _until(todo, start, minutes):
            if kind == "summary":
                text = teacher.summarize(row["code"], row["name"].rsplit(".", 1)[-1])
            else:
                text = clean_query(teacher.answer(query_messages(row["code"]), MAX_NEW_TOKENS))
            f.write(json.dumps({"hash": code_hash(row["code"]), kind: text, "human": row["summary"]}) + "\n")
            f.flush()
            written, empty = written + 1, empty + (not text)
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
