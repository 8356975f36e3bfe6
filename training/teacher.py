"""The teacher for sequence-level distillation: the instruct completion model (Qwen2.5-Coder), asked in its own chat
template for a docstring's summary line, with the project's convention in a system turn and a few real examples.

The system turn and the examples are the same for every function, so their key/values are read once and reused
(PrefixReuseLM); only the function's code is new per call. `label` writes one jsonl row per function, flushed as
it goes: a stopped run resumes where it ended.
"""
from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from plusls.common.chat import render_chat
from plusls.common.progress import Progress
from plusls.exported import CausalLM, GenerationConfig
from plusls.server.completion.prefix_reuse import PrefixReuseLM
from plusls.server.docs.summarizer import degenerate

from .data import code_hash, read_jsonl

SYSTEM = ("You write the first line of a Python function's docstring. Answer with one short sentence in the "
          "imperative mood, as in 'Return the user name.' or 'Create a new session.', at most 12 words. "
          "No backticks.")
SHOTS, MAX_CODE_CHARS, MAX_NEW_TOKENS = 8, 1500, 40
# Third-person verbs the instruct model opens with ("Returns ...") that a docstring's imperative drops the s of.
NOT_VERBS = {"is", "has", "does", "was", "this", "its", "as", "us", "class", "unless", "always", "thus"}


def shots_from(rows: Iterable[dict], k: int = SHOTS, seed: int = 0) -> list[dict]:
    """k real (code, summary) examples in the convention: short functions, 4-12 word imperative summaries."""
    good = [r for r in rows if 150 < len(r["code"]) < 500 and 4 <= len(r["summary"].split()) <= 12
            and imperative(r["summary"].split()[0]) == r["summary"].split()[0]]
    random.Random(seed).shuffle(good)
    return good[:k]


def messages(code: str, shots: list[dict]) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": SYSTEM}]
    for s in shots:
        turns += [{"role": "user", "content": s["code"]}, {"role": "assistant", "content": s["summary"]}]
    return turns + [{"role": "user", "content": code[:MAX_CODE_CHARS]}]


def imperative(word: str) -> str:
    """Returns -> Return, Applies -> Apply, Pushes -> Push; other words unchanged."""
    if word.lower() in NOT_VERBS or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(ss|sh|ch|x|z)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def clean_summary(text: str, name: str = "") -> str:
    """The teacher's answer as a summary line: its first sentence, imperative, no markup; "" when degenerate (or
    only `name` in words)."""
    text = " ".join(text.replace("`", "").strip().strip("\"'").split())
    if m := re.match(r"(.+?[.!?])(\s|$)", text):
        text = m.group(1)
    words = text.split()
    if words:
        words[0] = imperative(words[0])
    text = " ".join(words)
    return "" if degenerate(text, name) else text


class Teacher:
    """Summary lines from a causal LM directory in chat form (Qwen2.5-Coder-Instruct by default)."""

    def __init__(self, directory: Path, shots: list[dict]):
        self.lm = CausalLM(directory)
        template = self.lm.manifest.config.get("chat_template")
        if not template:
            raise ValueError(f"{directory}: the manifest records no chat template; the teacher needs an instruct "
                             "model exported with one (plusls export reads it from the GGUF or tokenizer)")
        self.template, self.shots = template, shots
        self.reuse = PrefixReuseLM(self.lm, max_documents=1, speculative=False)
        self.config = GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, stop=("\n",))

    def prompt(self, code: str) -> str:
        return render_chat(self.template, messages(code, self.shots))

    def summarize(self, code: str, name: str = "") -> str:
        generation, _ = self.reuse.generate("teacher", self.lm.encode(self.prompt(code)), self.config)
        return clean_summary(generation.text, name)


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
    teacher = Teacher(model_dir, shots_from(read_jsonl(corpus / "summary.train.jsonl")))
    progress = Progress("labelling", len(todo))
    start, written, empty = time.monotonic(), 0, 0
    with open(out, "a") as f:
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
