"""Golden cases: the definition under the cursor and the docstring edit, in each language's convention."""
from __future__ import annotations

import pytest

from plusls.common.text import identifier_words
from plusls.server.docs.definition_at import definition_at
from plusls.server.docs.docstring_style import docstring_insertion

CASES = {
    "python": ("m.py", 'class A:\n    def greet(self, name):\n        return "hi " + name\n', "return",
               2, 0, '        """Return a greeting."""\n'),
    "python-inline": ("m.py", "def one(): return 1\n", "return", 0, 11, '\n    """Return a greeting."""\n    '),
    "typescript": ("m.ts", "export function add(a: number, b: number) {\n  return a + b;\n}\n", "a + b",
                   0, 0, "/**\n * Return a greeting.\n */\n"),
    "javascript": ("m.js", "class K {\n  run() {\n    return 1;\n  }\n}\n", "return", 1, 0,
                   "  /**\n   * Return a greeting.\n   */\n"),
    "go": ("m.go", "package m\n\nfunc Greet(name string) string {\n\treturn name\n}\n", "return", 2, 0,
           "// Greet return a greeting.\n"),
    "rust": ("m.rs", "impl S {\n    pub fn greet(&self) -> u8 {\n        1\n    }\n}\n", "1\n", 1, 0,
             "    /// Return a greeting.\n"),
    "java": ("A.java", "class A {\n    @Override\n    public String greet() {\n        return \"hi\";\n    }\n}\n",
             "return", 1, 0, "    /**\n     * Return a greeting.\n     */\n"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_docstring_goes_where_the_language_wants_it(case):
    path, text, marker, line, character, want = CASES[case]
    definition = definition_at(path, text, text.index(marker))
    insertion = docstring_insertion(definition, "return a greeting")
    assert (insertion.line, insertion.character, insertion.text) == (line, character, want)


def test_existing_docstrings_and_code_without_them():
    text = 'def f(x):\n    """Double it."""\n    return 2 * x\n'
    d = definition_at("m.py", text, text.index("return"))
    assert d.docstring == "Double it." and "Double it" not in d.code and "return 2 * x" in d.code
    go = "package m\n\n// Add adds.\nfunc Add(a int) int {\n\treturn a\n}\n"
    assert definition_at("m.go", go, go.index("return")).docstring == "Add adds."
    assert definition_at("notes.txt", "hello", 2) is None
    assert definition_at("m.py", "x = 1\n", 2) is None


def test_identifier_words():
    assert identifier_words("get_user_name") == "Get user name."
    assert identifier_words("parseHTTPHeader") == "Parse http header."


def test_degenerate_summaries_are_dropped():
    from plusls.server.docs.summarizer import degenerate

    assert degenerate("read the file to the file.")
    assert degenerate("file")
    assert not degenerate("return the size of the largest file.")
