"""The model's prompt: the document around the cursor under a token budget, retrieved snippets, FIM when declared.
The one prompt layout: the server, the infilling eval and completion training (`plusls train completion`,
`refresh`) all build their prompts here.

The prefix window starts at a line boundary and keeps its start while it still fits, so consecutive keystrokes
produce prompts that share all but their last tokens (what prefix reuse needs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .filters import FilterContext, open_brackets

CHARS_PER_TOKEN = 8  # generous: text beyond budget * this is never tokenized (a 10 MB file costs nothing extra)
COMMENT = {"python": "#", "ruby": "#", "shell": "#", "text": "#"}


def text_window(cursor: Cursor, state: WindowState, prefix_chars: int,
                suffix_chars: int) -> tuple[str, str, str]:
    """The same layout as text, for a server that tokenizes itself: (the lines above the cursor's line, that line
    up to the cursor, what follows the cursor). The window's start stays put while it fits, so consecutive
    keystrokes send prompts that differ only at their end (what the server's prompt cache reuses)."""
    lowest = max(0, cursor.line_start - prefix_chars)
    if not lowest <= state.start <= cursor.line_start:
        state.start = line_start_after(cursor.text, max(lowest, cursor.line_start - prefix_chars * 3 // 4))
    return (cursor.text[state.start : cursor.line_start], cursor.line_prefix[-prefix_chars:],
            cursor.text[cursor.offset : cursor.offset + suffix_chars])


def line_start_after(text: str, pos: int) -> int:
    """The first line start at or after `pos`."""
    if pos <= 0 or text[pos - 1] == "\n":
        return max(0, pos)
    nl = text.find("\n", pos)
    return nl + 1 if nl >= 0 else pos


def snippet_comments(cursor: Cursor, snippets: list[Snippet]) -> str:
    """Retrieved snippets as comments in the document's language, for models without a repository layout."""
    if not snippets:
        return ""
    mark = COMMENT.get(cursor.language, "//")
    parts = []
    for s in snippets:
        body = "\n".join(f"{mark} {line}".rstrip() for line in s.text.split("\n"))
        parts.append(f"{mark} Similar code in {s.path}:\n{body}\n")
    return "".join(parts) + "\n"


def fim_prompt(fim: dict, prefix: list[int], suffix: list[int] | None) -> list[int]:
    """Prefix-suffix-middle order around a model's FIM tokens (`Manifest.fim`: part -> {"token", "id"}). `suffix`
    None: the prefix alone after its marker, read left to right (the start it shares with the FIM prompt stays)."""
    if suffix is None:
        return [fim["prefix"]["id"], *prefix]
    return [fim["prefix"]["id"], *prefix, fim["suffix"]["id"], *suffix, fim["middle"]["id"]]


@dataclass
class Cursor:
    """A document and a cursor offset (characters), with what the filters need to know about the line."""
    text: str
    offset: int
    language: str = "text"
    path: str = ""

    def __post_init__(self) -> None:
        self.offset = max(0, min(self.offset, len(self.text)))
        start = self.text.rfind("\n", 0, self.offset) + 1
        end = self.text.find("\n", self.offset)
        end = len(self.text) if end < 0 else end
        self.line_start, self.line_end = start, end
        self.line_prefix = self.text[start : self.offset]
        self.line_suffix = self.text[self.offset : end]
        self.line = self.text.count("\n", 0, start)

    @property
    def multiline(self) -> bool:
        """Multi-line suggestions only on an empty (or blank) line; mid-line or after text: one line."""
        return not self.line_prefix.strip() and not self.line_suffix.strip()

    def filter_context(self, multiline_enabled: bool = True, lines: int = 4) -> FilterContext:
        before = self.text[max(0, self.line_start - 2000) : max(0, self.line_start - 1)].split("\n")
        above = before[-lines:] if self.line_start else []
        below = self.text[self.line_end + 1 : self.line_end + 2000].split("\n")[:lines]
        # The statement the cursor is in may have opened brackets on earlier lines; it starts after a blank line.
        statement = before[max((i for i, line in enumerate(before) if not line.strip()), default=-1) + 1:]
        opened = open_brackets("\n".join(statement), COMMENT.get(self.language, "//")) if self.line_start else ""
        return FilterContext(self.line_prefix, self.line_suffix, above, below, self.multiline and multiline_enabled,
                             opened)


@dataclass
class Snippet:
    path: str
    text: str


@dataclass
class WindowState:
    """Per document: where the prefix window starts (a character offset at a line start)."""
    start: int = 0
    snippets: list[Snippet] = field(default_factory=list)
    snippets_for: str | None = None  # the scope the snippets were retrieved for


class PromptBuilder:
    """Layouts, from what the manifest declares: FIM (prefix-suffix-middle) or the prefix alone; snippets from other
    files as Qwen's repository layout (<|repo_name|>, <|file_sep|> path, code) or else as comments above."""

    def __init__(self, tokenizer, fim: dict | None, context_tokens: int, suffix_tokens: int,
                 repo: dict | None = None, line_after_middle: bool = True):
        self.tokenizer = tokenizer
        self.fim = fim  # {"prefix": {"token": "<fim_prefix>", "id": 1}, "suffix": ..., "middle": ...} or None
        self.repo = repo  # {"name": {"token": "<|repo_name|>", "id": ...}, "file_sep": ...} or None
        self.context_tokens = context_tokens
        self.suffix_tokens = suffix_tokens if fim else 0
        # False: the cursor's line stays in the prefix, before the suffix (prefix-suffix-middle as trained; a
        # keystroke then re-reads the suffix). bench/fim_layout.py measures both.
        self.line_after_middle = line_after_middle

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids if text else []

    def build(self, cursor: Cursor, state: WindowState, prefix_only: bool = False) -> list[int]:
        """The prompt for `cursor`. `prefix_only` (FIM models): the same prompt up to the cursor without the suffix
        part, read left to right (line_choice.py's rival): it starts with the FIM prompt's tokens up to the
        suffix marker, so it can reuse their key/values."""
        header = self._header_ids(cursor, state.snippets)
        budget = max(16, self.context_tokens - self.suffix_tokens - len(header))
        prefix = self._prefix_ids(cursor, state, budget)
        if not self.fim:
            return header + prefix
        suffix = None
        if not prefix_only:
            suffix = self.encode(cursor.text[cursor.offset : cursor.offset + self.suffix_tokens * CHARS_PER_TOKEN])
            suffix = suffix[: self.suffix_tokens]
        above, line = self._split_at_line(cursor, state, prefix, budget) if self.line_after_middle else (prefix, [])
        if self.repo is not None:  # the repository's files first, then this file's FIM part
            return header + fim_prompt(self.fim, above, suffix) + line
        return fim_prompt(self.fim, header + above, suffix) + line

    def _split_at_line(self, cursor: Cursor, state: WindowState, prefix: list[int],
                       budget: int) -> tuple[list[int], list[int]]:
        """The prefix as the lines above the cursor's line and that line's text before the cursor. The line goes
        after the middle marker, as the start of the middle (llama.vim's layout): typing on a line then changes
        only the prompt's last tokens, and the suffix's key/values before them stay reusable."""
        if not cursor.line_prefix:
            return prefix, []
        if state.start > cursor.line_start:  # the window starts inside one huge line
            return [], prefix
        above = self.encode(cursor.text[state.start : cursor.line_start])
        line = self.encode(cursor.line_prefix)[-budget:]
        room = budget - len(line)
        return (above[max(0, len(above) - room) :] if room > 0 else []), line

    def _prefix_ids(self, cursor: Cursor, state: WindowState, budget: int) -> list[int]:
        lowest = max(0, cursor.offset - budget * CHARS_PER_TOKEN)
        start = state.start if lowest <= state.start <= cursor.offset else None
        if start is not None:
            ids = self.encode(cursor.text[start : cursor.offset])
            if len(ids) <= budget:
                return ids
        # Move the window: start at a line so the prefix takes about 3/4 of the budget, leaving room to grow.
        start = line_start_after(cursor.text, lowest)
        ids = self.encode(cursor.text[start : cursor.offset])
        target = budget * 3 // 4
        while len(ids) > target and start < cursor.line_start:
            per_token = max(1.0, (cursor.offset - start) / max(1, len(ids)))  # this text's characters per token
            step = max(1, int((len(ids) - target) * per_token))  # characters: about the excess tokens
            nxt = line_start_after(cursor.text, min(start + step, cursor.line_start))
            start = nxt if nxt <= cursor.line_start else cursor.line_start
            ids = self.encode(cursor.text[start : cursor.offset])
        state.start = start
        return ids[-budget:]  # one huge line (minified code): its end

    def _header_ids(self, cursor: Cursor, snippets: list[Snippet]) -> list[int]:
        if not snippets:
            return []
        if self.repo is None:
            return self.encode(snippet_comments(cursor, snippets))
        sep = self.repo["file_sep"]["id"]
        ids = [self.repo["name"]["id"], *self.encode(Path(cursor.path).parent.name or "repo"), *self.encode("\n")]
        for s in snippets:
            ids += [sep, *self.encode(f"{s.path}\n{s.text}\n")]
        return ids + [sep, *self.encode(f"{Path(cursor.path).name or 'untitled'}\n")]
