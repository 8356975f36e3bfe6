"""Post-processing of raw model text into what the editor shows. Each filter is a small pure function.

The order matters and is fixed in `postprocess`: cut special tokens, keep one line (mid-line) or the current scope
(empty line), drop what the editor already has (the suffix, the lines above), balance brackets, strip whitespace.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

OPEN, CLOSE = "([{", ")]}"
PAIR = dict(zip(CLOSE, OPEN))
SPECIAL = re.compile(r"<\|[^|<>\s]{1,40}\|>|<(?:fim|FIM)[_-]?\w{0,12}>|</?s>|<pad>|<unk>|\[(?:PAD|SEP|CLS|MASK)\]")


@dataclass
class FilterContext:
    line_prefix: str  # text of the cursor's line before the cursor
    line_suffix: str  # text of the cursor's line after the cursor
    lines_above: list[str] = field(default_factory=list)  # nearest last
    lines_below: list[str] = field(default_factory=list)  # nearest first
    multiline: bool = False
    open_brackets: str = ""  # brackets opened before the cursor's line and still open (a call spread over lines)


def cut_special_tokens(text: str) -> str:
    """Everything before the first special-token-looking string: a model that emits one has left the code."""
    m = SPECIAL.search(text)
    return text[: m.start()] if m else text


def keep_first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def trim_to_scope(text: str, ctx: FilterContext) -> str:
    """Multi-line text up to the end of the block the cursor is in: the first later line indented less than the
    cursor's line ends it (a closing bracket at that indentation is kept when the completion opened it). At column 0
    a new top-level statement after a blank line ends it."""
    lines = text.split("\n")
    base = _indent(ctx.line_prefix)
    kept = [lines[0]]
    depth = _bracket_depth(ctx.line_prefix + lines[0])
    for line in lines[1:]:
        if line.strip() and _indent(line) < base:
            if line.strip()[0] in CLOSE and depth > 0:
                kept.append(line)
            break
        if base == 0 and line.strip() and _indent(line) == 0 and not kept[-1].strip() and len(kept) > 1:
            break
        kept.append(line)
        depth += _bracket_depth(line)
    return "\n".join(kept)


def skip_leading_newlines(text: str, ctx: FilterContext) -> str:
    """A completion that starts by ending the (empty) cursor line: start at its first real line instead, without
    the indentation the cursor line already has."""
    stripped = text.lstrip("\n")
    if stripped is text or not stripped:
        return text
    return stripped[len(ctx.line_prefix):] if stripped.startswith(ctx.line_prefix) else stripped.lstrip(" \t")


def _bracket_depth(text: str) -> int:
    depth = 0
    for ch in _code_only(text):
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth -= 1
    return depth


def _code_only(text: str) -> str:
    """The text with string literals blanked out, so brackets inside strings do not count."""
    return re.sub(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|`(?:\\.|[^`\\])*`", lambda m: " " * len(m.group()), text)


def drop_suffix_overlap(text: str, ctx: FilterContext) -> str:
    """Remove the end of the completion that repeats what already follows the cursor: on the line (`)` after an
    auto-closed bracket) or, for multi-line text, the lines below; nothing when it starts with the next line."""
    suffix = ctx.line_suffix.strip()
    if suffix and "\n" not in text:
        for n in range(min(len(suffix), len(text)), 0, -1):
            if text.rstrip().endswith(suffix[:n]):
                return text.rstrip()[: len(text.rstrip()) - n]
    below = [line.strip() for line in ctx.lines_below if line.strip()]
    lines = text.split("\n")
    if below and not ctx.line_prefix.strip() and not suffix and _repeats(lines, below):
        return ""  # at an empty line, the line that comes next anyway (a FIM model's common miss)
    if below and "\n" in text:
        for i in range(1, len(lines)):
            if lines[i].strip() and _repeats(lines[i:], below):
                return "\n".join(lines[:i])
    return text


def _repeats(lines: list[str], below: list[str], window: int = 3) -> bool:
    """`lines` start with the code below the cursor: their first non-blank lines (up to `window`, as many as both
    have) equal it. One equal line is not enough when more follow: `x.append(c)` may rightly come twice."""
    ours = [line.strip() for line in lines if line.strip()][:window]
    n = min(len(ours), len(below))
    return n > 0 and ours[:n] == below[:n]


def drop_repeats(text: str, ctx: FilterContext) -> str:
    """Nothing when the completion only repeats the lines right above the cursor; cut a line the model loops on."""
    above = [line.strip() for line in ctx.lines_above if line.strip()]
    lines = text.split("\n")
    first = (ctx.line_prefix + lines[0]).strip()
    if above and first and first == above[-1] and len(lines) == 1:
        return ""
    kept: list[str] = []
    for line in lines:
        if line.strip() and len(kept) >= 2 and line.strip() == kept[-1].strip() == kept[-2].strip():
            break
        kept.append(line)
    while len(kept) >= 2 and kept[-1].strip() and kept[-1].strip() == kept[-2].strip():
        kept.pop()  # the loop's second copy
    return "\n".join(kept)


def balance_brackets(text: str, ctx: FilterContext) -> str:
    """Cut at the first closing bracket that closes nothing opened before the cursor (on its line or earlier lines
    of the statement) or in the text."""
    stack = list(ctx.open_brackets) + _open_brackets(ctx.line_prefix)
    code = _code_only(text)
    for i, ch in enumerate(code):
        if ch in OPEN:
            stack.append(ch)
        elif ch in CLOSE:
            if not stack or stack[-1] != PAIR[ch]:
                return text[:i]
            stack.pop()
    return text


def open_brackets(text: str, comment: str = "#") -> str:
    """The brackets `text` leaves open, innermost last (comments from `comment` on and one-line strings do not
    count)."""
    return "".join(_unclosed(re.sub(f"(?m){re.escape(comment)}.*$", "", _code_only(text))))


def _open_brackets(line: str) -> list[str]:
    return _unclosed(_code_only(line))


def _unclosed(code: str) -> list[str]:
    """The brackets `code` (strings already blanked) leaves open, innermost last."""
    stack: list[str] = []
    for ch in code:
        if ch in OPEN:
            stack.append(ch)
        elif ch in CLOSE and stack and stack[-1] == PAIR[ch]:
            stack.pop()
    return stack


def strip_trailing_whitespace(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip()


def postprocess(text: str, ctx: FilterContext) -> str:
    text = cut_special_tokens(text)
    if ctx.multiline:
        text = trim_to_scope(skip_leading_newlines(text, ctx), ctx)
    else:
        text = keep_first_line(text)
    text = drop_suffix_overlap(text, ctx)
    text = drop_repeats(text, ctx)
    text = balance_brackets(text, ctx)
    text = strip_trailing_whitespace(text)
    return text if text.strip() else ""
