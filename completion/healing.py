"""Token healing: the prompt's last tokens may split what the user is typing differently from how the model saw such
text (`\n  `+`  ` for `\n   `+` a`, `pri` before `nt`). They come off the prompt, and the output must start with
their text: each step of generation may only choose a token that continues it."""
from __future__ import annotations

import bisect
import re

import numpy as np

from .prompt import Cursor

MAX_TOKENS = 3  # taken off at most: the word being typed and the blanks before it


class TokenHealing:
    """A tokenizer's token strings and the index that constrains generation to a required start."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._strings: list[str] | None = None
        self._sorted: tuple[list[str], np.ndarray, dict[str, list[int]]] | None = None

    def strings(self) -> list[str]:
        if self._strings is None:
            vocab = self.tokenizer.get_vocab_size()  # one batched call, not one per token
            self._strings = self.tokenizer.decode_batch([[i] for i in range(vocab)], skip_special_tokens=False)
        return self._strings

    def index(self) -> tuple[list[str], np.ndarray, dict[str, list[int]]]:
        """The token strings sorted (with their ids) and each string's ids; built once, ahead of the first request
        that needs it (warming builds it while nobody waits)."""
        if self._sorted is None:
            order = sorted((s, i) for i, s in enumerate(self.strings()) if s)
            exact: dict[str, list[int]] = {}
            for s, i in order:
                exact.setdefault(s, []).append(i)
            self._sorted = ([s for s, _ in order], np.asarray([i for _, i in order]), exact)
        return self._sorted

    def cut(self, ids: list[int], cursor: Cursor, fim_middle: int | None,
            one_line: bool = False) -> tuple[int, str]:
        """(how many of the prompt's last tokens to take off, their text). They lie inside the cursor line's
        trailing blanks-and-word (and its line break, on an empty line of a prompt without FIM, unless the output
        is `one_line`: it ends at a line break). In a FIM prompt only the cursor line's text after the middle marker
        `fim_middle` can come off, never the marker."""
        if len(ids) < 2:
            return 0, ""
        segment = re.search(r"[ \t]*\w*$", cursor.line_prefix).group()
        if fim_middle is not None:
            limit = ids[::-1].index(fim_middle) if fim_middle in ids else 0  # the tokens after the marker
        else:
            limit = len(ids) - 1
            if cursor.multiline and cursor.line_start > 0 and not one_line:
                segment = "\n" + segment
        strings, n, text = self.strings(), 0, ""
        while n < min(MAX_TOKENS, limit) and strings[ids[-1 - n]] and segment.endswith(strings[ids[-1 - n]] + text):
            text = strings[ids[-1 - n]] + text
            n += 1
        return n, text

    def constrain(self, logits: np.ndarray, need: str) -> np.ndarray:
        """Last-position logits with every token that cannot start `need` (or be started by it) masked out: the
        tokens that start with it are one range of the sorted token strings, the ones it starts with are its own
        prefixes (no pass over the whole vocabulary per step)."""
        keys, ids, exact = self.index()
        lo, hi = bisect.bisect_left(keys, need), bisect.bisect_left(keys, need + "\U0010ffff")
        ok = [*ids[lo:hi], *(i for k in range(1, len(need)) for i in exact.get(need[:k], ()))]
        out = np.full_like(logits, -np.inf)
        out[:, ok] = logits[:, ok]
        return out

    def still_needed(self, need: str, token: int) -> str:
        """What of `need` is left for the tokens after `token`."""
        return need[len(self.strings()[token]):] if need else ""


def without_healed(text: str, healed: str) -> str:
    """The generated text without the healed start (the user typed it already); "" if the model went elsewhere."""
    if not healed:
        return text
    return text[len(healed):] if text.startswith(healed) else ""
