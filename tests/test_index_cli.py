"""`plusls index` and `plusls search` as a user runs them, with the real default embedder (all-MiniLM-L6-v2)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_repo import make_repo

from plusls.common.paths import default_models_dir
from plusls.exported.defaults import EMBEDDER, ensure_default

PLUSLS = str(Path(sys.executable).with_name("plusls"))


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    ensure_default(EMBEDDER, default_models_dir())  # exported once, shared with the other real-model tests
    root = make_repo(tmp_path_factory.mktemp("ws"))
    env = dict(os.environ, PLUSLS_INDEX_DIR=str(tmp_path_factory.mktemp("indexes")))
    r = subprocess.run([PLUSLS, "index", str(root)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return root, env, r


def run(env, *args):
    return subprocess.run([PLUSLS, *args], capture_output=True, text=True, env=env)


def test_index_prints_progress_and_summary(indexed):
    _, _, r = indexed
    assert "first pass [" in r.stderr and "full pass [" in r.stderr and "chunks/s" in r.stderr
    assert re.search(r"searchable after \d+\.\ds", r.stdout)
    assert "skipped: 1 binary, 2 gitignored, 1 non-utf8, 4 secret, 1 too-large" in r.stdout
    assert "with vectors (flat-ip)" in r.stdout


@pytest.mark.parametrize("query, expected", [
    ("load a file's text into a string", "read_text"),
    ("order people from youngest to oldest", "sortByAge"),
    ("square root of x squared plus y squared", "Point.norm"),
    ("download JSON from a URL", "fetchJson"),
    ("say hi to a person", "Greeter.greet"),
])
def test_hybrid_search_finds_paraphrased_functions(indexed, query, expected):
    root, env, _ = indexed
    r = run(env, "search", query, "--path", str(root), "--json", "--k", "3")
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)["results"]
    assert results[0]["qualname"] == expected, [x["qualname"] for x in results]
    assert set(results[0]) >= {"path", "start_line", "end_line", "qualname", "score", "snippet"}


def test_search_filters_and_text_output(indexed):
    root, env, _ = indexed
    r = run(env, "search", "start listening", "--path", str(root), "--lang", "go")
    assert r.returncode == 0 and "server/main.go:" in r.stdout and ".py:" not in r.stdout
    r = run(env, "search", "cache", "--path", str(root), "--glob", "web/*", "--json")
    assert all(x["path"].startswith("web/") for x in json.loads(r.stdout)["results"])


def test_reindex_is_incremental(indexed):
    root, env, _ = indexed
    r = run(env, "index", str(root))
    assert r.returncode == 0 and "indexed 0 files" in r.stdout and "0 embedded" in r.stdout


@pytest.mark.slow  # many CLI subprocesses
def test_missing_path_and_corrupt_index_fail_clearly(indexed, tmp_path):
    root, env, _ = indexed
    r = run(env, "index", str(tmp_path / "nope"))
    assert r.returncode == 2 and "is not a folder" in r.stderr and "Traceback" not in r.stderr
    r = run(env, "search", "x", "--path", str(tmp_path))
    assert r.returncode == 2 and "no index yet" in r.stderr and "plusls index" in r.stderr
    other = make_repo(tmp_path / "other")
    index_dir = tmp_path / "idx"
    assert run(env, "index", str(other), "--index-dir", str(index_dir)).returncode == 0
    (index_dir / "index.sqlite").write_bytes(b"this is not a database" * 100)
    r = run(env, "search", "x", "--path", str(other), "--index-dir", str(index_dir))
    assert r.returncode == 2 and "corrupt" in r.stderr and "--rebuild" in r.stderr
    r = run(env, "index", str(other), "--index-dir", str(index_dir), "--rebuild")
    assert r.returncode == 0, r.stderr
