"""Golden cases: the definition under the cursor and the docstring edit, in each language's convention."""
from __future__ import annotations

import pytest

from plusls.common.text import identifier_words
from plusls.docstrings.definition_at import definition_at
from plusls.docstrings.docstring_style import docstring_insertion

CASES = {
    "python": ("m.py", 'class A:\n    def greet(self, name):\n        return "hi " + name\n', "return",
               2, 0, '        """Return a greeting.\n\n        Args:\n            name: Name.\n\n'
                     '        Returns:\n            The result.\n        """\n'),
    "python-inline": ("m.py", "def one(): return 1\n", "return", 0, 11,
                      '\n    """Return a greeting.\n\n    Returns:\n        The result.\n    """\n    '),
    "typescript": ("m.ts", "export function add(a: number, b: number) {\n  return a + b;\n}\n", "a + b",
                   0, 0, "/**\n * Return a greeting.\n * @param {number} a - A.\n * @param {number} b - B.\n"
                         " * @returns The result.\n */\n"),
    "javascript": ("m.js", "class K {\n  run() {\n    return 1;\n  }\n}\n", "return", 1, 0,
                   "  /**\n   * Return a greeting.\n   * @returns The result.\n   */\n"),
    "go": ("m.go", "package m\n\nfunc Greet(name string) string {\n\treturn name\n}\n", "return", 2, 0,
           "// Greet return a greeting.\n"),
    "rust": ("m.rs", "impl S {\n    pub fn greet(&self) -> u8 {\n        1\n    }\n}\n", "1\n", 1, 0,
             "    /// Return a greeting.\n"),
    "java": ("A.java", "class A {\n    @Override\n    public String greet() {\n        return \"hi\";\n    }\n}\n",
             "return", 1, 0, "    /**\n     * Return a greeting.\n     *\n     * @return The result.\n     */\n"),
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
    from plusls.docstrings.summarizer import degenerate

    assert degenerate("read the file to the file.")
    assert degenerate("file")
    assert not degenerate("return the size of the largest file.")
    assert degenerate("Get user name.", "get_user_name") and degenerate("get user name", "getUserName")
    assert not degenerate("Return the user's display name.", "get_user_name")


FULL = {  # signature -> the sections each convention writes from it (names, types, defaults, raises)
    "google": ("m.py", "def load_config(path: str, strict: bool = False, *extra, **options) -> dict:\n"
                       "    if not path:\n        raise ValueError(path)\n    return {}\n",
               '    """Load the config.\n\n    Args:\n        path (str): Path.\n'
               '        strict (bool, optional): Strict. Defaults to False.\n        *extra: Extra.\n'
               '        **options: Options.\n\n    Returns:\n        dict: The config.\n\n'
               '    Raises:\n        ValueError:\n    """\n'),
    "numpy": ("m.py", 'def f(x):\n    """F.\n\n    Parameters\n    ----------\n    x : int\n        X.\n    """\n\n\n'
                      "def is_even(n: int, base=10) -> bool:\n    return n % 2 == 0\n",
              '    """Load the config.\n\n    Parameters\n    ----------\n    n : int\n        N.\n'
              '    base : optional\n        Base. Defaults to 10.\n\n    Returns\n    -------\n    bool\n'
              '        True if even.\n    """\n'),
    "rest": ("m.py", 'def f(x):\n    """F.\n\n    :param x: X.\n    :type x: int\n    """\n\n\n'
                     "def scale(v: float, by=2):\n    return v * by\n",
             '    """Load the config.\n\n    :param v: V.\n    :type v: float\n    :param by: By. Defaults to 2.\n'
             '    :returns: The result.\n    """\n'),
    "jsdoc": ("m.ts", "function pad(s: string, width = 8, ...fill: string[]): string {\n"
                      "  if (width < 0) throw new RangeError('width');\n  return s;\n}\n",
              "/**\n * Load the config.\n * @param {string} s - S.\n * @param [width=8] - Width.\n"
              " * @param {...string} fill - Fill.\n * @returns {string} The result.\n * @throws {RangeError}\n */\n"),
    "javadoc": ("A.java", "class A {\n    int getSize(int limit, String... names) throws IOException {\n"
                          "        return limit;\n    }\n}\n",
                "    /**\n     * Load the config.\n     *\n     * @param limit Limit.\n     * @param names Names.\n"
                "     * @return The size.\n     * @throws IOException\n     */\n"),
    "rust": ("m.rs", "fn clamp(value: i32, low: i32) -> i32 {\n    value.max(low)\n}\n",
             "/// Load the config.\n///\n/// # Arguments\n///\n/// * `value` - Value.\n/// * `low` - Low.\n"),
}


@pytest.mark.parametrize("case", list(FULL))
def test_full_docstrings_follow_each_convention(case):
    path, text, want = FULL[case]
    marker = text.rfind("return") if "return" in text else text.rfind("value.max")
    definition = definition_at(path, text, marker)
    insertion = docstring_insertion(definition, "load the config", text)
    assert insertion.text == want
    # Every parameter name in the docstring is one of the signature's, and every one is there.
    names = [p.name for p in definition.parts.params]
    assert names and all(n in insertion.text for n in names)


def test_the_returns_section_says_what_the_hover_explained_it_returns():
    from plusls.docstrings.explanation import what_it_returns

    text = "def load(path: str) -> dict:\n    return json.loads(open(path).read())\n"
    definition = definition_at("m.py", text, text.index("return"))
    hover = ("Reads the file at path as JSON. Returns the parsed settings as a dictionary keyed by section name, "
             "with defaults for what is missing.")
    assert what_it_returns(hover) == "The parsed settings as a dictionary keyed by section name, with defaults " \
                                     "for what is missing."
    assert what_it_returns("Clears the cache. Returns nothing.") == what_it_returns("Load the config.") == ""
    written = docstring_insertion(definition, "load the config", text, what_it_returns(hover)).text
    assert "    Returns:\n        dict: The parsed settings as a dictionary keyed by section name, with\n" \
           "            defaults for what is missing.\n" in written  # wrapped under its entry
    assert "dict: The result." in docstring_insertion(definition, "load the config", text).text  # nothing explained


def test_python_style_follows_the_file():
    from plusls.docstrings.docstring_style import python_style

    assert python_style("") == "google"
    assert python_style('"""X.\n\nArgs:\n    a: A.\n"""') == "google"
    assert python_style('"""X.\n\n:param a: A.\n:returns: B.\n"""') == "rest"
    assert python_style('"""X.\n\nParameters\n----------\na : int\n"""') == "numpy"
