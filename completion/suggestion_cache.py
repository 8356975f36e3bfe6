"""Suggestions answered without running the model: the rest of the one shown when the user types its start, or the
answer to a prompt seen before."""
from __future__ import annotations

from dataclasses import dataclass

from plusls.common.lru import LRU

from .prompt import Cursor

BEFORE_CHARS, AFTER_CHARS = 2048, 256  # the text around a shown suggestion that must still be there to reuse it


@dataclass
class Suggestion:
    text: str
    id: str  # names this suggestion in plusls.acceptCompletion
    from_cache: bool = False


@dataclass
class ShownSuggestion:
    offset: int
    before: str  # the end of the text before the cursor when it was shown
    after: str  # the start of the text after it
    text: str
    id: str


class SuggestionCache:
    def __init__(self, size: int = 256):
        self._answers: LRU[str, str] = LRU(size)  # prompt key -> final (not deadline-cut) suggestion text
        self._shown: dict[str, ShownSuggestion] = {}  # per document

    def typed_ahead(self, uri: str, cursor: Cursor) -> Suggestion | None:
        """The user typed the start of the last suggestion shown: the rest of it."""
        last = self._shown.get(uri)
        if last is None:
            return None
        typed = cursor.offset - last.offset
        if not 0 < typed < len(last.text) or cursor.text[last.offset : cursor.offset] != last.text[:typed]:
            return None
        text = cursor.text
        if not (text.endswith(last.before, 0, last.offset) and text.startswith(last.after, cursor.offset)):
            return None  # an edit elsewhere near the cursor: the suggestion may no longer fit
        rest = last.text[typed:]
        return Suggestion(rest, last.id, from_cache=True) if rest.strip() else None

    def answer(self, key: str) -> str | None:
        return self._answers.get(key)

    def store(self, key: str, text: str) -> None:
        self._answers.put(key, text)

    def show(self, uri: str, cursor: Cursor, text: str, key: str, from_cache: bool = False) -> Suggestion | None:
        """The suggestion for `key` as shown at `cursor` (None when empty), remembered for typing ahead."""
        if not text:
            self._shown.pop(uri, None)
            return None
        sid = key[:16]
        before = cursor.text[max(0, cursor.offset - BEFORE_CHARS) : cursor.offset]
        after = cursor.text[cursor.offset : cursor.offset + AFTER_CHARS]
        self._shown[uri] = ShownSuggestion(cursor.offset, before, after, text, sid)
        return Suggestion(text, sid, from_cache=from_cache)

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)

    def clear_answers(self) -> None:
        """Another model or other settings: prompts answer differently now (what is shown stays typeable)."""
        self._answers.clear()
