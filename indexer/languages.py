"""Languages the chunker parses with tree-sitter (per-language grammar wheels, nothing downloaded at run time)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    extensions: tuple[str, ...]
    functions: frozenset[str]  # node types that are functions or methods
    classes: frozenset[str]  # node types that contain methods (class, impl, interface, struct type)
    comments: frozenset[str] = frozenset({"comment"})


SPECS = [
    LanguageSpec("python", (".py", ".pyi"), frozenset({"function_definition"}), frozenset({"class_definition"})),
    LanguageSpec("javascript", (".js", ".mjs", ".cjs", ".jsx"),
                 frozenset({"function_declaration", "generator_function_declaration", "method_definition",
                            "variable_declarator"}),
                 frozenset({"class_declaration", "class"})),
    LanguageSpec("typescript", (".ts", ".mts", ".cts"),
                 frozenset({"function_declaration", "generator_function_declaration", "method_definition",
                            "variable_declarator", "function_signature"}),
                 frozenset({"class_declaration", "abstract_class_declaration", "interface_declaration"})),
    LanguageSpec("tsx", (".tsx",),
                 frozenset({"function_declaration", "generator_function_declaration", "method_definition",
                            "variable_declarator"}),
                 frozenset({"class_declaration", "abstract_class_declaration", "interface_declaration"})),
    LanguageSpec("go", (".go",), frozenset({"function_declaration", "method_declaration"}),
                 frozenset({"type_spec"})),
    LanguageSpec("rust", (".rs",), frozenset({"function_item"}),
                 frozenset({"impl_item", "trait_item", "struct_item", "enum_item"}),
                 comments=frozenset({"line_comment", "block_comment"})),
    LanguageSpec("java", (".java",), frozenset({"method_declaration", "constructor_declaration"}),
                 frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}),
                 comments=frozenset({"line_comment", "block_comment"})),
]
BY_EXTENSION = {ext: spec for spec in SPECS for ext in spec.extensions}


def spec_for(path: str | PurePath) -> LanguageSpec | None:
    return BY_EXTENSION.get(PurePath(path).suffix.lower())


@lru_cache(maxsize=None)
def parser_for(name: str):
    """A tree-sitter parser for one language (grammar from its wheel), created once."""
    import tree_sitter

    if name == "python":
        import tree_sitter_python as g
        lang = g.language()
    elif name == "javascript":
        import tree_sitter_javascript as g
        lang = g.language()
    elif name in ("typescript", "tsx"):
        import tree_sitter_typescript as g
        lang = g.language_typescript() if name == "typescript" else g.language_tsx()
    elif name == "go":
        import tree_sitter_go as g
        lang = g.language()
    elif name == "rust":
        import tree_sitter_rust as g
        lang = g.language()
    elif name == "java":
        import tree_sitter_java as g
        lang = g.language()
    else:
        raise ValueError(f"no grammar for {name}")
    return tree_sitter.Parser(tree_sitter.Language(lang))
