"""tree-sitter chunks per language: names, qualified names, signatures, docstrings, spans."""
from __future__ import annotations

from fixture_repo import FILES

from plusls.indexer.chunker import MAX_LINES, chunk_file


def table(path: str, text: str) -> list[tuple]:
    return [(c.kind, c.qualname, c.start_line, c.end_line) for c in chunk_file(path, text)]


def by_name(path: str, text: str) -> dict:
    return {c.qualname: c for c in chunk_file(path, text)}


def test_python_functions_classes_methods():
    assert table("src/files.py", FILES["src/files.py"]) == [
        ("function", "read_text", 4, 7), ("class", "Cache", 10, 11),
        ("method", "Cache.get", 13, 14), ("method", "Cache.put", 16, 17)]
    c = by_name("src/files.py", FILES["src/files.py"])
    assert c["read_text"].signature == "def read_text(path: str) -> str"
    assert c["read_text"].docstring == "Return the whole contents of a text file."
    assert c["Cache"].docstring == "Keeps computed values in memory."
    assert c["read_text"].text.startswith("def read_text") and c["read_text"].text.endswith("return f.read()")
    src = FILES["src/files.py"].encode()
    chunk = c["Cache.get"]
    assert src[chunk.start_byte : chunk.end_byte].decode() == chunk.text


def test_javascript_functions_classes_arrows_and_jsdoc():
    c = by_name("web/app.js", FILES["web/app.js"])
    assert set(c) == {"fetchJson", "Cart", "Cart.total", "debounce"}
    assert c["fetchJson"].docstring == "Send an HTTP GET request and parse the JSON reply."
    assert c["fetchJson"].start_line == 1  # the leading comment belongs to the chunk
    assert c["Cart.total"].kind == "method" and c["Cart.total"].docstring == "Total price of all items."
    assert c["debounce"].kind == "function"


def test_typescript_and_tsx():
    c = by_name("web/types.ts", FILES["web/types.ts"])
    assert c["sortByAge"].docstring == "Sort users by age, youngest first."
    assert c["sortByAge"].signature == "function sortByAge(users: User[]): User[]"
    assert c["User"].kind == "class" and c["User"].language == "typescript"
    assert by_name("web/Button.tsx", FILES["web/Button.tsx"])["Button"].language == "tsx"


def test_go_rust_java():
    go = by_name("server/main.go", FILES["server/main.go"])
    assert go["Server.Start"].kind == "method" and go["Server.Start"].docstring == "Start opens the listening socket."
    assert go["Server"].docstring == "Server listens for connections." and "main" in go
    rs = by_name("core/lib.rs", FILES["core/lib.rs"])
    assert rs["Point.norm"].docstring == "Distance from the origin." and rs["Point.norm"].kind == "method"
    java = by_name("java/Greeter.java", FILES["java/Greeter.java"])
    assert java["Greeter.greet"].signature == "public String greet(String who)"
    assert java["Greeter"].docstring == "Greets people."


def test_long_function_is_split_into_windows_that_keep_the_signature():
    body = "".join(f"    x{i} = {i}\n" for i in range(150))
    chunks = chunk_file("long.py", f"def long_function(a, b):\n{body}")
    assert len(chunks) >= 4 and all(c.qualname == "long_function" for c in chunks)
    assert all(c.text.startswith("def long_function(a, b)") for c in chunks)
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 151
    assert all(c.end_line - c.start_line < MAX_LINES for c in chunks)
    assert all(a.end_line >= b.start_line for a, b in zip(chunks, chunks[1:]))  # windows overlap


def test_parse_errors_still_index_what_parses():
    text = "def good_one():\n    return 1\n\ndef broken(:\n    pass\n\nclass AlsoGood:\n    def m(self):\n        return 2\n"
    names = {c.qualname for c in chunk_file("bad.py", text)}
    assert {"good_one", "AlsoGood", "AlsoGood.m"} <= names


def test_top_level_code_and_plain_text_become_line_windows():
    script = "import sys\n\nargs = sys.argv\nprint(args)\nexit(0)\n"
    chunks = chunk_file("run.py", script)
    assert [(c.kind, c.start_line) for c in chunks] == [("module", 1)]
    notes = chunk_file("docs/notes.md", FILES["docs/notes.md"])
    assert notes[0].kind == "lines" and notes[0].language == "md" and "deploy" in notes[0].text
    long = "\n".join(f"line {i}" for i in range(100))
    spans = [(c.start_line, c.end_line) for c in chunk_file("a.txt", long)]
    assert spans[0] == (1, 40) and spans[1][0] == 31 and spans[-1][1] == 100
