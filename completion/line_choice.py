"""Which first line a suggestion shows where the cursor starts a line between code above and below: the
fill-in-the-middle answer, or a rival read left to right from the prefix alone. There the instruct completers' FIM
and prefix-only answers each get right lines the other misses, and the one the model is surer of (the mean
log-probability of the first line's tokens, the one ending it included) is right more often than either, even
where the FIM line looks sure (a gate that skipped the rival for sure FIM lines lost lines on HumanEval's first
half). Mid-line the rival measured no better, and where no code follows, worse, so it runs only at line starts.
The one place for this policy: the server (completer.py) and `plusls eval infilling` decide here."""
from __future__ import annotations

from typing import Sequence

from .prompt import Cursor

AFTER_CHARS = 4096


def line_score(token_ids: Sequence[int], logprobs: Sequence[float], tokenizer) -> float | None:
    """The mean log-probability of the first line: its tokens up to the one that holds the line break, or all of
    them and the stop token that ended them. A line that reached the token limit without ending (a run of blanks
    or brackets, which a mean would call sure) scores -inf. None when no log-probabilities were recorded."""
    if not logprobs:
        return None
    for k in range(len(token_ids)):
        if "\n" in tokenizer.decode(list(token_ids[: k + 1]), skip_special_tokens=False):
            return sum(logprobs[: k + 1]) / (k + 1)
    if len(logprobs) > len(token_ids):  # the last one is the stop token's
        return sum(logprobs) / len(logprobs)
    return float("-inf")


def applies(cursor: Cursor) -> bool:
    """A rival may run for a cursor with nothing but blanks before it on its line and code after it (looked for in
    the next AFTER_CHARS characters)."""
    return not cursor.line_prefix.strip() and bool(cursor.text[cursor.offset : cursor.offset + AFTER_CHARS].strip())


def rival_wins(fim_text: str, fim_score: float | None, rival_text: str, rival_score: float | None) -> bool:
    """The rival's line is shown where it differs from the FIM first line and the model is surer of it (the same
    line keeps the FIM answer, with whatever lines follow it)."""
    if fim_score is None or rival_score is None or rival_score <= fim_score:
        return False
    return rival_text.split("\n")[0].rstrip() != fim_text.split("\n")[0].rstrip()
