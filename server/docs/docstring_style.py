"""A summary written as a docstring in the language's own convention, and where it goes."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

from plusls.common.text import as_sentence

from .definition_at import Definition

WIDTH = 88


@dataclass
class Insertion:
    line: int  # 0-based
    text: str
    character: int = 0  # 0: at the start of the line


def docstring_insertion(definition: Definition, summary: str) -> Insertion:
    text = as_sentence(summary)
    lang = definition.language
    if lang == "python":
        indent = definition.body_indent
        lines = textwrap.wrap(text, max(20, WIDTH - len(indent) - 6)) or [""]
        if len(lines) == 1:
            body = f'{indent}"""{lines[0]}"""\n'
        else:
            body = f'{indent}"""{lines[0]}\n' + "".join(f"{indent}{line}\n" for line in lines[1:]) + f'{indent}"""\n'
        if definition.body_inline:  # def f(): return 1 -> the body moves to its own line under the docstring
            return Insertion(definition.body_line, "\n" + body + indent, definition.body_column)
        return Insertion(definition.body_line, body)
    indent = definition.indent
    wrap = textwrap.wrap(text, max(20, WIDTH - len(indent) - 4)) or [""]
    if lang == "go":
        # Go doc comments start with the name of what they document.
        first = text if text.split(" ", 1)[0] == definition.name else f"{definition.name} {text[0].lower()}{text[1:]}"
        wrap = textwrap.wrap(first, max(20, WIDTH - len(indent) - 3))
        return Insertion(definition.start_line, "".join(f"{indent}// {line}\n" for line in wrap))
    if lang == "rust":
        return Insertion(definition.start_line, "".join(f"{indent}/// {line}\n" for line in wrap))
    # JSDoc (JavaScript, TypeScript) and Javadoc (Java)
    return Insertion(definition.start_line,
                     f"{indent}/**\n" + "".join(f"{indent} * {line}\n" for line in wrap) + f"{indent} */\n")
