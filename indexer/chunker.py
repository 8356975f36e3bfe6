"""Source text -> chunks: functions, methods and classes via tree-sitter; line windows for everything else."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from .languages import LanguageSpec, parser_for, spec_for

MAX_LINES = 60  # a definition longer than this is split into windows that repeat its signature
WINDOW, OVERLAP = 40, 10
FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}
WRAPPERS = {"decorated_definition", "export_statement", "lexical_declaration", "variable_declaration",
            "type_declaration"}


@dataclass
class Chunk:
    path: str  # relative to the workspace root, '/'-separated
    language: str
    kind: str  # function, method, class, lines, module
    name: str
    qualname: str
    signature: str
    docstring: str
    start_line: int  # 1-based, inclusive
    end_line: int
    start_byte: int
    end_byte: int
    text: str
    hash: str = field(default="")

    def __post_init__(self) -> None:
        if not self.hash:
            self.hash = hashlib.sha1(f"{self.qualname}\0{self.text}".encode()).hexdigest()


def doc_view(qualname: str, docstring: str, signature: str) -> str:
    """A chunk's second embedded view: its name with its docstring, else with its signature."""
    return f"{qualname}: {docstring}" if docstring else f"{qualname} {signature}"


def chunk_file(path: str, text: str) -> list[Chunk]:
    """All chunks of one file. Parse errors still give the definitions that parse."""
    spec = spec_for(path)
    if spec is None:
        return line_windows(path, text, language=_plain_language(path))
    return Chunker(path, text, spec).run()


def _plain_language(path: str) -> str:
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return suffix or "text"


def line_windows(path: str, text: str, language: str, kind: str = "lines", first_line: int = 1,
                 lines: list[str] | None = None) -> list[Chunk]:
    lines = text.split("\n") if lines is None else lines
    out, start = [], 0
    name = path.rsplit("/", 1)[-1]
    while start < len(lines):
        part = lines[start : start + WINDOW]
        body = "\n".join(part)
        if body.strip():
            line0 = first_line + start
            out.append(Chunk(path, language, kind, name, f"{path}:{line0}", "", "", line0, line0 + len(part) - 1,
                             -1, -1, body))
        if start + WINDOW >= len(lines):
            break
        start += WINDOW - OVERLAP
    return out


class Chunker:
    def __init__(self, path: str, text: str, spec: LanguageSpec):
        self.path, self.text, self.spec = path, text, spec
        self.src = text.encode("utf-8")
        self.chunks: list[Chunk] = []

    def run(self) -> list[Chunk]:
        tree = parser_for(self.spec.name).parse(self.src)
        self.visit(tree.root_node, [])
        self.add_module_gaps()
        return self.chunks

    def visit(self, node, scope: list[str]) -> None:
        for child in node.named_children:
            if child.type in self.spec.functions:
                self.function(child, scope)
            elif child.type in self.spec.classes:
                name = self.class_name(child)
                if name is None:
                    self.visit(child, scope)
                    continue
                self.klass(child, name, scope)
                self.visit(child, scope + [name])
            else:
                self.visit(child, scope)

    # --- definitions -------------------------------------------------------------------------------------------
    def function(self, node, scope: list[str]) -> None:
        if node.type == "variable_declarator":  # const f = () => ...
            value = node.child_by_field_name("value")
            if value is None or value.type not in FUNCTION_VALUES:
                return
        name = self.node_text(node.child_by_field_name("name")) or "<anonymous>"
        if node.type == "method_declaration" and self.spec.name == "go":
            scope = scope + [self.go_receiver(node)]
        kind = "method" if scope else "function"
        self.emit(node, kind, name, scope)

    def klass(self, node, name: str, scope: list[str]) -> None:
        body = node.child_by_field_name("body")
        end = node.end_byte
        # Methods get chunks of their own: the class chunk is its header, docstring and fields.
        for child in (body.named_children if body is not None else []):
            inner = child
            while inner.type in WRAPPERS and inner.named_children:
                inner = inner.named_children[-1]
            if inner.type in self.spec.functions:
                method, comment = self.anchor(child)
                end = (comment or method).start_byte
                break
        self.emit(node, "class", name, scope, end_byte=end)

    def emit(self, node, kind: str, name: str, scope: list[str], end_byte: int | None = None) -> None:
        anchor, comment = self.anchor(node)
        start = (comment or anchor).start_byte
        end = end_byte if end_byte is not None else anchor.end_byte
        text = self.src[start:end].decode("utf-8", "replace").rstrip()
        if not text.strip():
            return
        qual = ".".join(scope + [name])
        signature = self.signature(node)
        docstring = self.python_docstring(node) if self.spec.name == "python" else _strip_comment(
            self.node_text(comment) if comment else "")
        first = self.src[:start].count(b"\n") + 1
        lines = text.split("\n")
        if len(lines) <= MAX_LINES:
            self.chunks.append(Chunk(self.path, self.spec.name, kind, name, qual, signature, docstring, first,
                                     first + len(lines) - 1, start, start + len(text.encode()), text))
            return
        for part in line_windows(self.path, text, self.spec.name, kind, first_line=first, lines=lines):
            body = part.text if part.start_line == first else f"{signature}\n    ...\n{part.text}"
            self.chunks.append(Chunk(self.path, self.spec.name, kind, name, qual, signature, docstring,
                                     part.start_line, part.end_line, -1, -1, body))

    def anchor(self, node):
        """The node with its decorators/export wrapper, and the comment block right above it (if any)."""
        while node.parent is not None and node.parent.type in WRAPPERS:
            node = node.parent
        comment = None
        prev = node.prev_named_sibling
        line = node.start_point[0]
        while prev is not None and prev.type in self.spec.comments and prev.end_point[0] >= line - 1:
            comment, line = prev, prev.start_point[0]
            prev = prev.prev_named_sibling
        return node, comment

    # --- names, signatures, docstrings ---------------------------------------------------------------------------
    def class_name(self, node) -> str | None:
        if node.type == "impl_item":  # impl Trait for Type / impl Type
            return self.node_text(node.child_by_field_name("type"))
        if node.type == "type_spec":
            kind = node.child_by_field_name("type")
            if kind is None or kind.type not in ("struct_type", "interface_type"):
                return None
        return self.node_text(node.child_by_field_name("name"))

    def go_receiver(self, node) -> str:
        receiver = self.node_text(node.child_by_field_name("receiver"))
        m = re.search(r"(\w+)(\[[^\]]*\])?\s*\)\s*$", receiver)
        return m.group(1) if m else receiver

    def signature(self, node) -> str:
        body = node.child_by_field_name("body")
        if node.type == "variable_declarator":
            value = node.child_by_field_name("value")
            body = value.child_by_field_name("body") if value is not None else None
        end = body.start_byte if body is not None else node.end_byte
        sig = self.src[node.start_byte : end].decode("utf-8", "replace")
        return " ".join(sig.split()).rstrip(" {:=>").rstrip() if body is not None else sig.split("\n")[0].strip()

    def python_docstring(self, node) -> str:
        body = node.child_by_field_name("body")
        if body is None or not body.named_children:
            return ""
        first = body.named_children[0]
        if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
            raw = self.node_text(first.named_children[0])
            return _strip_quotes(raw)
        return ""

    def node_text(self, node) -> str:
        return "" if node is None else self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    # --- code outside definitions ----------------------------------------------------------------------------------
    def add_module_gaps(self) -> None:
        """Top-level code between definitions (scripts, constants, config) as line-window chunks."""
        lines = self.text.split("\n")
        covered = [False] * (len(lines) + 2)
        for c in self.chunks:
            for i in range(c.start_line, min(c.end_line, len(lines)) + 1):
                covered[i] = True
        run: list[int] = []
        for i in range(1, len(lines) + 2):
            if i <= len(lines) and not covered[i]:
                run.append(i)
                continue
            if sum(1 for j in run if lines[j - 1].strip()) >= 3:
                self.chunks.extend(line_windows(self.path, "", self.spec.name, "module", first_line=run[0],
                                                lines=lines[run[0] - 1 : run[-1]]))
            run = []
        self.chunks.sort(key=lambda c: (c.start_line, c.end_line))


def _strip_quotes(raw: str) -> str:
    m = re.match(r'^[rRbBuUfF]*("""|\'\'\'|"|\')(.*)\1$', raw, re.S)
    return _dedent(m.group(2) if m else raw)


def _strip_comment(raw: str) -> str:
    out = []
    for line in raw.split("\n"):
        line = line.strip()
        line = re.sub(r"^(/\*\*?|\*/|\*|///?|//!|#)\s?", "", line)
        line = re.sub(r"\*/$", "", line).rstrip()
        out.append(line)
    return "\n".join(out).strip()


def _dedent(text: str) -> str:
    lines = text.strip("\n").split("\n")
    indents = [len(x) - len(x.lstrip()) for x in lines[1:] if x.strip()]
    cut = min(indents, default=0)
    return "\n".join([lines[0].strip()] + [x[cut:] for x in lines[1:]]).strip()
