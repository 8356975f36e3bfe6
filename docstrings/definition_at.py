"""The innermost function or class around a cursor, read with the indexer's tree-sitter grammars."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

from plusls.indexer.chunker import FUNCTION_VALUES, Chunker, _strip_comment
from plusls.indexer.languages import parser_for, spec_for

from .signature import Signature, read_signature


@dataclass
class Definition:
    language: str
    kind: str  # "function" or "class"
    name: str
    signature: str
    docstring: str  # the existing one ("" if none)
    code: str  # the definition's source without its docstring: what the summarizer reads
    start_line: int  # 0-based line of the definition (decorators/export included)
    indent: str  # the definition line's indentation
    body_line: int  # Python: the 0-based line where the body starts
    body_indent: str
    body_inline: bool  # Python: `def f(): return 1` (body on the header line)
    body_column: int = 0  # where that inline body starts
    parts: Signature = field(default_factory=Signature)  # parameters, return, raises (functions only)

    @property
    def hash(self) -> str:
        return hashlib.sha1(f"{self.language}\0{self.code}".encode()).hexdigest()


def definition_at(path: str, text: str, offset: int) -> Definition | None:
    """The innermost definition containing the character `offset`, or None (unknown language, no definition)."""
    if (parsed := _parsed(path, text)) is None:
        return None
    reader, tree = parsed
    point = len(text[:offset].encode("utf-8"))
    node = tree.root_node.descendant_for_byte_range(point, point)
    while node is not None:
        if definition := _named(reader, node):
            return definition
        node = node.parent
    return None


def definitions_in(path: str, text: str) -> list[Definition]:
    """Every function and class of the document, in source order (what hover may be asked about)."""
    if (parsed := _parsed(path, text)) is None:
        return []
    reader, tree = parsed
    out, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if definition := _named(reader, node):
            out.append(definition)
        stack.extend(reversed(node.children))
    return out


@lru_cache(maxsize=8)
def _parsed(path: str, text: str):
    """The document read and parsed once per text: hovers, code actions and background summaries share it."""
    spec = spec_for(path)
    if spec is None:
        return None
    reader = Chunker(path, text, spec)
    return reader, parser_for(spec.name).parse(reader.src)


def _named(reader: Chunker, node) -> Definition | None:
    """The definition `node` is, if it is a function or class with a name."""
    spec = reader.spec
    if node.type not in spec.functions | spec.classes or (node.type == "variable_declarator"
                                                           and not _is_function_value(node)):
        return None
    is_class = node.type in spec.classes
    name = reader.class_name(node) if is_class else reader.node_text(node.child_by_field_name("name"))
    return _definition(reader, node, name, "class" if is_class else "function") if name else None


def _is_function_value(node) -> bool:
    value = node.child_by_field_name("value")
    return value is not None and value.type in FUNCTION_VALUES


def _definition(reader: Chunker, node, name: str, kind: str) -> Definition:
    anchor, comment = reader.anchor(node)  # with decorators / export wrapper
    src = reader.src
    line_start = src.rfind(b"\n", 0, anchor.start_byte) + 1
    header = src[line_start : anchor.start_byte].decode("utf-8", "replace")
    indent = header[: len(header) - len(header.lstrip(" \t"))]
    python = reader.spec.name == "python"
    docstring = reader.python_docstring(node) if python else _comment_text(reader, comment)
    code = reader.node_text(node)
    body_line, body_indent, inline, body_column = anchor.start_point[0] + 1, indent + "    ", False, 0
    body = node.child_by_field_name("body")
    if python and body is not None and body.named_children:
        first = body.named_children[0]
        header_end = (node.child_by_field_name("return_type") or node.child_by_field_name("parameters")
                      or node.child_by_field_name("name")).end_byte
        inline = b"\n" not in src[header_end : first.start_byte]
        if inline:
            body_line = first.start_point[0]
            body_column = len(src[src.rfind(b"\n", 0, first.start_byte) + 1 : first.start_byte].decode())
        else:
            body_line = first.start_point[0]
            line = src.split(b"\n", first.start_point[0] + 1)[first.start_point[0]].decode("utf-8", "replace")
            body_indent = line[: len(line) - len(line.lstrip(" \t"))]
        if docstring:  # the summarizer reads the code without the docstring it would replace
            cut_from = src.rfind(b"\n", 0, first.start_byte)  # the docstring's whole line(s) go
            cut_from = cut_from if cut_from >= node.start_byte else first.start_byte
            code = (src[node.start_byte : cut_from] + src[first.end_byte : node.end_byte]).decode("utf-8", "replace")
    parts = read_signature(node, reader.node_text, reader.spec.name, _in_class(node, reader.spec.classes)) \
        if kind == "function" else Signature()
    return Definition(reader.spec.name, kind, name, reader.signature(node), docstring, code,
                      anchor.start_point[0], indent, body_line, body_indent, inline, body_column, parts)


def _in_class(node, classes) -> bool:
    parent = node.parent
    while parent is not None and parent.type not in classes:
        if parent.type in ("function_definition",):
            return False
        parent = parent.parent
    return parent is not None


def _comment_text(reader: Chunker, comment) -> str:
    return _strip_comment(reader.node_text(comment)) if comment is not None else ""
