"""Which first line a suggestion shows: the fill-in-the-middle answer, or, when the model is unsure of it, a rival
read left to right from the prefix alone. The instruct completers' FIM and prefix-only answers each get right lines
the other misses, and the one the model is surer of (the mean log-probability of the first line's tokens, the one
ending it included) is right more often than either. The rival runs only below GATE, so a keystroke whose FIM line
the model is sure of costs one generation. The one place for this policy: the server (completer.py) and
`plusls eval infilling` decide here."""
from __future__ import annotations

from typing import Sequence

GATE = -0.1  # mean log-probability per token of the FIM first line below which a prefix-only rival is generated


def line_score(token_ids: Sequence[int], logprobs: Sequence[float], tokenizer) -> float | None:
    """The mean log-probability of the first line: its tokens up to the one that holds the line break (or all of
    them, and an ending stop token, when none does). None when the generation recorded no log-probabilities."""
    if not logprobs:
        return None
    for k in range(len(token_ids)):
        if "\n" in tokenizer.decode(list(token_ids[: k + 1]), skip_special_tokens=False):
            return sum(logprobs[: k + 1]) / (k + 1)
    return sum(logprobs) / len(logprobs)


def wants_rival(fim_score: float | None) -> bool:
    return fim_score is not None and fim_score < GATE


def rival_wins(fim_score: float | None, rival_score: float | None) -> bool:
    return fim_score is not None and rival_score is not None and rival_score > fim_score
