"""`plusls train data` on a small fixture tree: licence filter, dedupe, held-out packages, the three sample kinds."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from plusls.common.jsonl import read_jsonl
from plusls.training.mining import (
    build_corpus,
    distribution_licence,
    first_sentence,
    installed_sources,
    licence_family,
    spdx_family,
    stdlib_sources,
    strip_docstring,
)

pytestmark = pytest.mark.slow  # mines a corpus from the installed packages


UTILS = '''"""Utilities."""
import os


def read_text(path):
    """Read a whole file as text.

    The file is closed afterwards.
    """
    with open(path) as f:
        data = f.read()
    return data


def join_parts(parts, sep="/"):
    """Join path parts with a separator."""
    cleaned = [p.strip(sep) for p in parts]
    return sep.join(cleaned)
'''
HELD = '''def parse_header(line):
    """Split one header line into its name and value."""
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()
'''
GPL = '''def secret_sauce(x):
    """Compute the secret sauce of a value."""
    y = x * 2
    return y + 1
'''


def _dist(site: Path, name: str, licence_line: str, files: dict[str, str]) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{licence_line}\n")
    (info / "RECORD").write_text("".join(f"{p},,\n" for p in files))
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)


@pytest.fixture
def tree(tmp_path) -> tuple[Path, Path]:
    stdlib, site = tmp_path / "lib", tmp_path / "site"
    (stdlib / "shutilish").mkdir(parents=True)
    (stdlib / "shutilish" / "__init__.py").write_text(UTILS)
    (stdlib / "test").mkdir()
    (stdlib / "test" / "test_x.py").write_text(GPL.replace("secret_sauce", "a_test_helper"))
    _dist(site, "mitpkg", "License-Expression: MIT", {"mitpkg/__init__.py": UTILS.replace("read_text", "load")})
    _dist(site, "gplpkg", "License: GPL-3.0-or-later", {"gplpkg/core.py": GPL})
    _dist(site, "heldpkg", "Classifier: License :: OSI Approved :: BSD License", {"heldpkg/headers.py": HELD})
    # a vendored-style copy of the held-out file inside a training package: must not reach training
    other = HELD.replace("line", "text").replace("parse_", "split_")  # similar, not the same: kept for training
    _dist(site, "copier", "License-Expression: Apache-2.0", {"copier/headers.py": HELD, "copier/other.py": other})
    return stdlib, site


def test_corpus_keeps_permissive_code_and_never_trains_on_held_out(tree, tmp_path):
    stdlib, site = tree
    sources = stdlib_sources(stdlib) + installed_sources(site)
    stats = build_corpus(tmp_path / "corpus", sources, held_out=["heldpkg"], log=lambda m: None)
    out = tmp_path / "corpus"
    train = {k: list(read_jsonl(out / f"{k}.train.jsonl")) for k in ("pairs", "summary", "fim")}
    held = {k: list(read_jsonl(out / f"{k}.heldout.jsonl")) for k in ("pairs", "summary", "fim")}
    everything = json.dumps([train, held])
    # licence filter: the GPL package is skipped and counted as such; tests folders are not mined
    assert "secret_sauce" not in everything and "a_test_helper" not in everything
    assert stats["skipped_licences"] == {"other: GPL-3.0-or-later": 1}
    assert {r["licence"] for r in train["pairs"]} == {"PSF", "MIT", "Apache-2.0"}
    # held out: heldpkg only in the held-out split; its copy inside `copier` is dropped as a duplicate
    assert {r["package"] for r in held["pairs"]} == {"heldpkg"}
    assert not any("parse_header" in r["code"] for r in train["pairs"] + train["summary"])
    assert any(r["name"] == "parse_header" for r in held["summary"])
    assert stats["duplicates_dropped"]["files"] == 1
    assert stats["held_out_packages"] == ["heldpkg"]
    # summary pairs: docstring removed from the code, first sentence as the target
    read = next(r for r in train["summary"] if r["name"] == "read_text")
    assert read["summary"] == "Read a whole file as text."
    assert '"""' not in read["code"] and read["code"].startswith("def read_text(path):")
    assert "return data" in read["code"]
    pair = next(r for r in train["pairs"] if r["name"] == "read_text")
    assert pair["docstring"].startswith("Read a whole file") and '"""Read' in pair["code"]
    # FIM: prefix + middle + suffix is a slice of the file, the middle is not empty
    for r in train["fim"] + held["fim"]:
        assert r["middle"].strip()
        if r["cut"] == "lines":
            assert r["middle"].endswith("\n") and (r["prefix"] == "" or r["prefix"].endswith("\n"))
    assert any((r["prefix"] + r["middle"] + r["suffix"]) in (UTILS, UTILS.replace("read_text", "load"))
               for r in train["fim"])


def test_licence_names_from_metadata():
    assert licence_family("MIT License") == "MIT"
    assert licence_family("BSD-3-Clause") == "BSD"
    assert licence_family("Apache Software License") == "Apache-2.0"
    assert licence_family("Python Software Foundation License") == "PSF"
    assert licence_family("GNU General Public License v3 (GPLv3)") is None
    assert licence_family("MPL-2.0") is None
    assert spdx_family("Apache-2.0 OR BSD-2-Clause") == "Apache-2.0"
    assert spdx_family("MPL-2.0 AND MIT") is None  # every part of an AND must be permissive
    assert distribution_licence({"License-Expression": "LGPL-2.1"}).startswith("other")


def test_summary_and_docstring_helpers():
    assert first_sentence("Return the sum. Raises nothing.\n\nMore.") == "Return the sum."
    assert first_sentence("Build the\n  index of e.g. files") == "Build the index of e.g. files"
    code = 'def f(a):\n    """Doc."""\n    return a\n'
    assert strip_docstring(code) == "def f(a):\n    return a"
    assert strip_docstring('def f():\n    """Only a docstring."""') is None
