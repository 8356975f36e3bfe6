"""Hover text from the model's explanation of a function: at most three whole sentences, the first saying what it
does and one saying what it returns when the model said so, without the "This function ..." preamble the instruct
model starts with."""
from __future__ import annotations

import re

from .summarizer import degenerate

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
PREAMBLE = re.compile(r"^(?:this|the)\s+(?:`[^`]+`\s+)?(?:function|method)\s+(?:`[^`]+`\s+)?", re.I)
IT_VERB = re.compile(r"^It\s+(?=(?!is\b|has\b|does\b|was\b)[a-z]+s\b)")
RETURNS_LEAD = re.compile(r"^(?:Returns|Yields)\s+(?!nothing\b)(.+)$")
RETURNS = re.compile(r"\b(?:return|returns|returned|returning|yield|yields|yielded|yielding)\b", re.I)
MAX_SENTENCES = 3
# A sentence of explanation is degenerate when four words come twice (a loop), not a pair as for summary lines: it
# may say "the environment variables" twice and be right.
LOOP = 4


def sentences(text: str, complete: bool) -> list[str]:
    """The whole sentences of `text`; a last one without an end mark counts only when the answer was `complete`."""
    parts = [p for p in SENTENCE_END.split(" ".join(text.split())) if p]
    if parts and not complete and not parts[-1].endswith((".", "!", "?")):
        parts.pop()  # cut by the token limit mid-sentence
    return parts


def without_preamble(sentence: str) -> str:
    """"This function saves x." / "The function `f` saves x." -> "Saves x."; "It returns y." -> "Returns y."."""
    rest = IT_VERB.sub("", PREAMBLE.sub("", sentence, count=1), count=1)
    return rest[:1].upper() + rest[1:]


def hover_text(answer: str, name: str = "", complete: bool = True) -> str:
    """1-3 sentences: the first two, plus the first later one about what is returned; "" when nothing usable."""
    # A sentence ending in ":" ("It takes these parameters:") introduces a list the newline stop cut off.
    kept = [s for s in (without_preamble(s) for s in sentences(answer, complete))
            if not s.endswith(":") and not degenerate(s, name, LOOP)]
    out = kept[:2]
    if not any(RETURNS.search(s) for s in out):
        out += [s for s in kept[2:] if RETURNS.search(s)][:1]
    return " ".join(out[:MAX_SENTENCES])


def what_it_returns(hover: str) -> str:
    """"... Returns the size in bytes." -> "The size in bytes." (a docstring's Returns section); "" when no
    sentence of the hover starts so."""
    for sentence in sentences(hover, complete=True):
        if m := RETURNS_LEAD.match(sentence):
            return m.group(1)[:1].upper() + m.group(1)[1:]
    return ""
