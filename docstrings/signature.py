"""What a definition's signature and body say for its docstring: parameters (name, type, default), the return
type and whether it returns a value, and the exceptions it raises; read from the tree-sitter tree."""
from __future__ import annotations

from dataclasses import dataclass, field

NESTED = {"function_definition", "class_definition", "lambda", "function_declaration", "function_expression",
          "arrow_function", "method_definition", "class_declaration", "method_declaration", "function_item",
          "closure_expression", "func_literal"}
SELF = {"self", "cls"}


@dataclass
class Param:
    name: str
    type: str = ""
    default: str = ""
    variadic: str = ""  # "*", "**" or "..."


@dataclass
class Signature:
    params: list[Param] = field(default_factory=list)
    returns: str = ""  # the declared return type, "" if none
    returns_value: bool = False  # a declared non-void type, or a `return <value>` in the body
    raises: list[str] = field(default_factory=list)


def read_signature(node, text, language: str, method: bool) -> Signature:
    """`text(node) -> str`; `method`: the definition sits in a class (Python's self/cls is left out)."""
    if node.type == "variable_declarator":  # const f = (a) => ...
        node = node.child_by_field_name("value") or node
    params_node = node.child_by_field_name("parameters")
    params = [p for child in (params_node.named_children if params_node else []) for p in _params(child, text)]
    if language == "python" and method and params and params[0].name in SELF and not params[0].variadic:
        params = params[1:]
    returns = _declared_return(node, text, language)
    body = node.child_by_field_name("body")
    returns_value, raises = _body_facts(body, text) if body is not None else (False, [])
    if language == "java":
        raises = [text(t) for c in node.named_children if c.type == "throws" for t in c.named_children]
    void = returns in ("void", "None", "()", "")
    return Signature(params, returns if not void else "", (not void) or (returns == "" and returns_value), raises)


def _params(node, text) -> list[Param]:
    t = node.type
    name, typ, default = node.child_by_field_name("name"), node.child_by_field_name("type"), None
    if t == "identifier":
        return [Param(text(node))]
    if t in ("list_splat_pattern", "dictionary_splat_pattern", "rest_pattern"):
        inner = node.named_children[0] if node.named_children else node
        return [Param(text(inner), variadic={"list_splat_pattern": "*", "dictionary_splat_pattern": "**"}.get(t, "..."))]
    if t == "typed_parameter":  # python b: int (no name field)
        inner = node.named_children[0]
        star = _params(inner, text)[0] if inner.type != "identifier" else Param(text(inner))
        return [Param(star.name, text(typ) if typ else "", variadic=star.variadic)]
    if t in ("default_parameter", "typed_default_parameter"):
        default = node.child_by_field_name("value")
    elif t == "assignment_pattern":  # js b = 2
        name, default = node.child_by_field_name("left"), node.child_by_field_name("right")
    elif t in ("required_parameter", "optional_parameter"):  # typescript
        pattern = node.child_by_field_name("pattern")
        inner = _params(pattern, text)[0] if pattern is not None else Param("")
        default = node.child_by_field_name("value")
        typ = node.child_by_field_name("type")
        kind = text(typ).lstrip(": ").strip() if typ is not None else ""
        optional = t == "optional_parameter" and default is None
        return [Param(inner.name, kind, text(default) if default else ("undefined" if optional else ""),
                      inner.variadic)]
    elif t == "spread_parameter":  # java String... b
        decl = next((c for c in node.named_children if c.type == "variable_declarator"), None)
        kind = next((text(c) for c in node.named_children if c.type != "variable_declarator"), "")
        return [Param(text(decl.child_by_field_name("name") if decl else node), kind, variadic="...")]
    elif t == "parameter_declaration":  # go a, b int
        names = [c for c in node.named_children if c.type == "identifier"]
        return [Param(text(n), text(typ) if typ else "") for n in names]
    elif t == "parameter" and node.child_by_field_name("pattern") is not None:  # rust a: i32
        name = node.child_by_field_name("pattern")
    elif t not in ("formal_parameter", "parameter"):
        return []  # self_parameter, keyword/positional separators, comments
    if name is None:
        return []
    return [Param(text(name), text(typ) if typ is not None else "", text(default) if default is not None else "")]


def _declared_return(node, text, language: str) -> str:
    field_name = {"java": "type", "go": "result"}.get(language, "return_type")
    ret = node.child_by_field_name(field_name)
    return text(ret).lstrip(":").strip() if ret is not None else ""


def _body_facts(body, text) -> tuple[bool, list[str]]:
    """Whether the body returns a value, and what it raises/throws, not counting nested definitions."""
    returns, raises = False, []
    stack = list(reversed(body.named_children))
    while stack:  # depth first, in source order
        n = stack.pop()
        if n.type in NESTED:
            continue
        if n.type == "return_statement" and n.named_children:
            returns = True
        elif n.type in ("raise_statement", "throw_statement") and n.named_children:
            raised = n.named_children[0]
            if raised.type in ("call", "new_expression"):
                raised = raised.child_by_field_name("function") or raised.child_by_field_name("constructor") or raised
            name = text(raised).split("(")[0].strip()
            if name and name not in raises:
                raises.append(name)
        stack.extend(reversed(n.named_children))
    return returns, raises
