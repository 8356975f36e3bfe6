"""A summary written as a full docstring in the language's own convention, and where it goes.

Python: the style the file already uses (Google, NumPy or reST; Google when none), the summary line and then
Args/Returns/Raises from the signature and body (names, annotated types, defaults). JavaScript/TypeScript: JSDoc
@param/@returns/@throws; Java: Javadoc; Rust: `///` with # Arguments; Go: a doc comment that starts with the name
(Go's convention lists no parameters). Parameter names come from the signature, never from a model."""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from plusls.common.text import as_sentence, identifier_words

from .definition_at import Definition
from .signature import Param, Signature

WIDTH = 88
STYLES = {  # how a Python docstring of each style announces its sections
    "google": re.compile(r"^\s*(Args|Arguments|Returns|Raises|Yields):\s*$", re.M),
    "numpy": re.compile(r"^\s*(Parameters|Returns|Raises|Yields)\s*\n\s*-{3,}\s*$", re.M),
    "rest": re.compile(r"^\s*:(param|type|returns?|rtype|raises)\b", re.M),
}
VERBS = {"get", "compute", "calc", "calculate", "find", "make", "build", "load", "read", "create", "fetch", "parse",
         "to", "as", "new", "generate", "count", "format", "render"}


@dataclass
class Insertion:
    line: int  # 0-based
    text: str
    character: int = 0  # 0: at the start of the line


def python_style(source: str) -> str:
    """The docstring style most used in `source`; Google when it has none."""
    counts = {name: len(pattern.findall(source)) for name, pattern in STYLES.items()}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "google"


def docstring_insertion(definition: Definition, summary: str, source: str = "", returns: str = "") -> Insertion:
    """The edit that documents `definition` with `summary`; `source`: the whole file (its docstring style);
    `returns`: what it returns, in words (from the hover's explanation), else worked out from its name."""
    text = as_sentence(summary)
    lang = definition.language
    sig = definition.parts
    returned = as_sentence(returns) if returns else _returns(definition.name, sig.returns)
    if lang == "python":
        indent = definition.body_indent
        lines = textwrap.wrap(text, max(20, WIDTH - len(indent) - 6)) or [""]
        lines += _python_sections(sig, returned, python_style(source))
        if len(lines) == 1:
            body = f'{indent}"""{lines[0]}"""\n'
        else:
            body = f'{indent}"""{lines[0]}\n' + "".join(f"{indent}{line}\n".replace(f"{indent}\n", "\n")
                                                      for line in lines[1:]) + f'{indent}"""\n'
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
        lines = wrap + _rust_sections(sig)
        return Insertion(definition.start_line, "".join(f"{indent}/// {line}".rstrip() + "\n" for line in lines))
    # JSDoc (JavaScript, TypeScript) and Javadoc (Java)
    tags = _javadoc_tags(sig, returned) if lang == "java" else _jsdoc_tags(sig, returned)
    lines = wrap + ([""] if tags and lang == "java" else []) + tags
    return Insertion(definition.start_line,
                     f"{indent}/**\n" + "".join(f"{indent} * {line}".rstrip() + "\n" for line in lines)
                     + f"{indent} */\n")


def _describe(p: Param) -> str:
    return identifier_words(p.name) or "The value."


def _returns(name: str, kind: str) -> str:
    """What a function returns, from its name: is_x -> "True if x.", get_size -> "The size."."""
    words = identifier_words(name).rstrip(".").lower().split()
    if words and words[0] in ("is", "has", "can", "should", "contains") and len(words) > 1:
        return as_sentence("true if " + " ".join(words[1:] if words[0] == "is" else words))
    if len(words) > 1 and words[0] in VERBS:
        return as_sentence("the " + " ".join(words[1:]))
    return "The result."


def hanging(line: str, indent: str) -> list[str]:
    """`line` wrapped to the docstring's width (the body's own indentation aside), continued at `indent`."""
    return textwrap.wrap(line, WIDTH - 8, subsequent_indent=indent, drop_whitespace=True) or [line]


def _python_sections(sig: Signature, returned: str, style: str) -> list[str]:
    params, out = sig.params, []
    if not (params or sig.returns_value or sig.raises):
        return out

    def label(p: Param) -> str:
        return f"{p.variadic}{p.name}" if p.variadic else p.name

    def default(p: Param) -> str:
        return f" Defaults to {p.default}." if p.default else ""

    if style == "numpy":
        if params:
            out += ["", "Parameters", "----------"]
            for p in params:
                kind = ", ".join(x for x in (p.type, "optional" if p.default else "") if x)
                out += [f"{label(p)} : {kind}" if kind else label(p), f"    {_describe(p)}{default(p)}"]
        if sig.returns_value:
            out += ["", "Returns", "-------", sig.returns or "object", *hanging(f"    {returned}", "    ")]
        if sig.raises:
            out += ["", "Raises", "------", *sig.raises]
        return out
    if style == "rest":
        out.append("")
        for p in params:
            out.append(f":param {label(p)}: {_describe(p)}{default(p)}")
            if p.type:
                out.append(f":type {label(p)}: {p.type}")
        if sig.returns_value:
            out.append(f":returns: {returned}")
            if sig.returns:
                out.append(f":rtype: {sig.returns}")
        out += [f":raises {e}:" for e in sig.raises]
        return out
    if params:
        out += ["", "Args:"]
        for p in params:
            kind = ", ".join(x for x in (p.type, "optional" if p.default else "") if x)
            out.append(f"    {label(p)}{f' ({kind})' if kind else ''}: {_describe(p)}{default(p)}")
    if sig.returns_value:
        out += ["", "Returns:", *hanging(f"    {sig.returns + ': ' if sig.returns else ''}{returned}", "        ")]
    if sig.raises:
        out += ["", "Raises:", *(f"    {e}:" for e in sig.raises)]
    return out


def _jsdoc_tags(sig: Signature, returned: str) -> list[str]:
    tags = []
    for p in sig.params:
        element = p.type.removesuffix("[]") if p.variadic else p.type  # JSDoc writes ...rest: T[] as {...T}
        kind = f"{{{'...' if p.variadic else ''}{element}}} " if p.type else ""
        label = f"[{p.name}={p.default}]" if p.default and p.default != "undefined" else (
            f"[{p.name}]" if p.default else p.name)
        tags.append(f"@param {kind}{label} - {_describe(p)}")
    if sig.returns_value:
        tags.append(f"@returns {f'{{{sig.returns}}} ' if sig.returns else ''}{returned}")
    tags += [f"@throws {{{e}}}" for e in sig.raises]
    return tags


def _javadoc_tags(sig: Signature, returned: str) -> list[str]:
    tags = [f"@param {p.name} {_describe(p)}" for p in sig.params]
    if sig.returns_value:
        tags.append(f"@return {returned}")
    return tags + [f"@throws {e}" for e in sig.raises]


def _rust_sections(sig: Signature) -> list[str]:
    if not sig.params:
        return []
    return ["", "# Arguments", "", *(f"* `{p.name}` - {_describe(p)}" for p in sig.params)]
