"""The package layers, lowest first (README, Package layout): common <- exported <- indexer <- completion <- docstrings
<- server; training and evaluation on top of those (never server, never each other); cli assembles them all.

Every import is read from the source, including those inside functions: a lower layer never imports a higher one,
the two top layers never import each other, and an import inside a function must keep torch/transformers (or
another heavy library) off the path that does not need it, with a comment saying so."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = {"common": 0, "exported": 1, "indexer": 2, "completion": 3, "docstrings": 4, "server": 5, "training": 6,
         "evaluation": 6, "cli": 7}
HEAVY = {"torch", "transformers", "optimum", "onnx", "onnxruntime.quantization", "gguf", "safetensors", "psycopg",
         "matplotlib", "accelerate"}


@dataclass(frozen=True)
class Import:
    module: str  # importing module, e.g. plusls.server.cli
    target: str  # imported module, absolute
    line: int
    local: bool  # inside a function
    commented: bool  # a comment on its line or the line above


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["plusls", *parts])


def sources() -> dict[str, Path]:
    return {module_name(p): p for package in LAYER for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(name: str, path: Path) -> list[Import]:
    text = path.read_text()
    lines = text.split("\n")
    tree = ast.parse(text)
    local_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` may name a submodule: count it as importing pkg.sub where that exists.
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        row = node.lineno - 1
        commented = "#" in lines[row] or (row > 0 and lines[row - 1].strip().startswith("#"))
        found += [Import(name, t, node.lineno, id(node) in local_nodes, commented) for t in targets]
    return found


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "plusls" and parts[1] in LAYER else None


def all_imports() -> list[Import]:
    return [i for name, path in sources().items() for i in imports_of(name, path)]


def test_no_layer_imports_a_higher_one_or_its_peer():
    wrong = []
    for i in all_imports():
        src, dst = package_of(i.module), package_of(i.target)
        if dst is None or dst == src:
            continue
        if LAYER[dst] >= LAYER[src]:
            wrong.append(f"{i.module}:{i.line} imports {i.target} ({src} is layer {LAYER[src]}, {dst} {LAYER[dst]})")
    assert not wrong, "\n".join(wrong)


def heavy_modules() -> set[str]:
    """plusls modules whose import, followed through module-level imports, loads a heavy library."""
    src = sources()
    # Importing a.b.c first runs a/__init__ and a/b/__init__: parents count as imported.
    top = {name: [i.target for i in imports_of(name, path) if not i.local] + parents(name)
           for name, path in src.items()}

    def heavy(name: str, seen: set[str]) -> bool:
        if name in seen:
            return False
        seen.add(name)
        for t in top.get(name, []):
            if t.split(".")[0] in HEAVY or t in HEAVY:
                return True
            if t in src and heavy(t, seen):
                return True
        return False

    return {name for name in src if heavy(name, set())}


def parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(2, len(parts))]


def test_imports_inside_functions_only_keep_heavy_libraries_lazy():
    heavy = heavy_modules()
    src = sources()
    wrong = []
    for i in all_imports():
        if not i.local or package_of(i.target) is None or i.target not in src:
            continue
        if i.target not in heavy:
            wrong.append(f"{i.module}:{i.line} imports {i.target} inside a function; it loads no heavy library, "
                         "so import it at the top of the module")
        elif not i.commented:
            wrong.append(f"{i.module}:{i.line}: say in a comment why {i.target} is imported lazily")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_violation(tmp_path):
    """The rules above would catch a lower layer importing a higher one inside a function."""
    bad = tmp_path / "mod.py"
    bad.write_text("def f():\n    from plusls.server.cli import main\n")
    found = imports_of("plusls.exported.mod", bad)
    assert [(i.target, i.local) for i in found][0] == ("plusls.server.cli", True)
    assert LAYER[package_of(found[0].target)] > LAYER[package_of(found[0].module)]


def test_the_command_and_the_server_load_no_heavy_library():
    assert not {"plusls.cli", "plusls.server.lsp_server", "plusls.server.cli"} & heavy_modules()


def test_no_module_imports_itself_back():
    """No cycle among modules either, counting the imports inside functions (a cycle hidden in a function is still
    a cycle)."""
    src = sources()
    edges = {name: {i.target for i in imports_of(name, path) if i.target in src and i.target != name}
             for name, path in src.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for target in sorted(edges[name]):
            visit(target, path + [name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])
