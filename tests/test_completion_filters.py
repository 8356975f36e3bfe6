"""Golden cases for each completion filter: raw model text in, what the editor must show out."""
from __future__ import annotations

import pytest

from plusls.completion.filters import (
    FilterContext,
    balance_brackets,
    cut_special_tokens,
    drop_repeats,
    drop_suffix_overlap,
    open_brackets,
    postprocess,
    skip_leading_newlines,
    strip_trailing_whitespace,
    trim_to_scope,
)
from plusls.completion.prompt import Cursor


def ctx(line_prefix="", line_suffix="", above=(), below=(), multiline=False) -> FilterContext:
    return FilterContext(line_prefix, line_suffix, list(above), list(below), multiline)


@pytest.mark.parametrize("raw, want", [
    ("return x<|endoftext|>def", "return x"),
    ("a + b<fim_middle>junk", "a + b"),
    ("x = 1</s>", "x = 1"),
    ("print('<b>')", "print('<b>')"),  # html in a string is not a special token
])
def test_cut_special_tokens(raw, want):
    assert cut_special_tokens(raw) == want


@pytest.mark.parametrize("prefix, raw, want", [
    # empty line inside a function body: stop at the dedent
    ("    ", "total = a + b\n    return total\n\ndef other():\n    pass", "total = a + b\n    return total\n"),
    # brace language: the closing brace of a block the completion opened is kept, the rest cut
    ("    ", "if (x) {\n        y();\n    }\n}\nfunction next() {}", "if (x) {\n        y();\n    }"),
    ("", "def f():\n    return 1\n\ndef g():\n    return 2", "def f():\n    return 1\n"),
])
def test_trim_to_scope(prefix, raw, want):
    assert trim_to_scope(raw, ctx(prefix, multiline=True)) == want


def test_skip_leading_newlines_removes_the_indent_the_line_has():
    assert skip_leading_newlines("\n    return x", ctx("    ")) == "return x"
    assert skip_leading_newlines("return x", ctx("    ")) == "return x"


@pytest.mark.parametrize("raw, line_suffix, below, want", [
    ("foo(a, b))", ")", [], "foo(a, b)"),  # auto-closed bracket after the cursor
    ('"hello")', '")', [], '"hello'),
    ("x = 1", "", [], "x = 1"),
    ("a = 1\nb = 2\nreturn a", "", ["return a", "x"], "a = 1\nb = 2"),  # multi-line that runs into the next line
    ("return result", "", ["", "    return result"], ""),  # at an empty line: the next line again is no suggestion
    ("return result\nx = 1", "", ["return result"], ""),
    ("result = []", "", ["return result"], "result = []"),
    # a line that rightly comes twice: the code below only repeats once the lines after it match too
    ("out.append(c)\nelse:\n    out.append(d)", "", ["out.append(c)", "return out"],
     "out.append(c)\nelse:\n    out.append(d)"),
    ("n += 1\nout.append(c)\nn -= 1\nout.append(c)\nreturn out", "", ["out.append(c)", "return out"],
     "n += 1\nout.append(c)\nn -= 1"),
])
def test_drop_suffix_overlap(raw, line_suffix, below, want):
    assert drop_suffix_overlap(raw, ctx("", line_suffix, below=below)) == want


@pytest.mark.parametrize("prefix, above, raw, want", [
    ("", ["x = compute(a)"], "x = compute(a)", ""),  # only repeats the line above
    ("    ", ["y = 2"], "y = 3", "y = 3"),
    ("", [], "a()\nb()\nb()\nb()\nb()", "a()\nb()"),  # the model loops on one line
])
def test_drop_repeats(prefix, above, raw, want):
    assert drop_repeats(raw, ctx(prefix, above=above)) == want


@pytest.mark.parametrize("line_prefix, raw, want", [
    ("print(", "x)", "x)"),  # closes what the line opened
    ("x = ", "f(a)) + 1", "f(a)"),  # an extra ) closes nothing: cut there
    ("s = ", "')' + f(x)", "')' + f(x)"),  # a bracket in a string does not count
    ("v = [", "1, 2}", "1, 2"),  # wrong kind of bracket
])
def test_balance_brackets(line_prefix, raw, want):
    assert balance_brackets(raw, ctx(line_prefix)) == want


def test_brackets_opened_on_earlier_lines_may_be_closed():
    # the cursor on the third line of a call: its ) closes the call opened two lines up, the extra one is cut
    text = "def f():\n    x = 1\n\n    total = compute(\n        a,\n        "
    context = Cursor(text, len(text), "python").filter_context()
    assert context.open_brackets == "("
    assert balance_brackets("b))", context) == "b)"
    assert open_brackets("f(a, [1,  # (\n  ')' + g(x)") == "(["  # comments and strings do not count
    assert open_brackets("x = a // (b", "#") == "("  # // is Python's floor division, not a comment


def test_strip_trailing_whitespace():
    assert strip_trailing_whitespace("a = 1   \n  b  \n\n") == "a = 1\n  b"


@pytest.mark.parametrize("c, raw, want", [
    (ctx("    return a +", ""), " b\n    print(1)", " b"),  # mid-line: one line
    (ctx("print(", ")"), '"hi")<|endoftext|>', '"hi"'),
    (ctx("    ", "", multiline=True), "\n    x = 1\n    return x\nother = 2", "x = 1\n    return x"),
    (ctx("x = ", ""), "\n", ""),  # nothing useful: no item
    (ctx("", "", above=["import os"]), "import os", ""),
])
def test_postprocess_pipeline(c, raw, want):
    assert postprocess(raw, c) == want
