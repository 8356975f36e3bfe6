"""The workspace index on real SQLite, FAISS and tree-sitter: incremental, crash-safe, searchable."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fixture_repo import make_repo

from plusls.exported import Embedder
from plusls.exported.static_embedder import static_for
from plusls.indexer.errors import WorkspaceIndexError
from plusls.indexer.search import search
from plusls.indexer.workspace_index import WorkspaceIndex


class Counting:
    """The real exported embedder, counting what it is asked to embed."""

    def __init__(self, directory):
        self.inner = Embedder(directory)
        self.dim = self.inner.dim
        self.texts: list[str] = []

    def embed(self, texts, **kw):
        self.texts.extend(texts)
        return self.inner.embed(texts, **kw)


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "ws")


@pytest.fixture
def embedder(exported):
    return Counting(exported["bert"])


def open_index(repo, embedder, tmp_path, model_id="tiny-bert", log=None):
    return WorkspaceIndex(repo, embedder, model_id, tmp_path / "index", log=log or (lambda m: None))


def consistent(index: WorkspaceIndex) -> bool:
    return set(index.vectors.ids().tolist()) == index.store.embedded_ids()


def test_first_index_covers_files_and_counts_skips(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    s = index.update()
    paths = {r[0] for r in index.store.db.execute("SELECT DISTINCT path FROM chunks")}
    assert {"src/files.py", "web/app.js", "web/types.ts", "server/main.go", "core/lib.rs", "java/Greeter.java",
            "docs/notes.md", "src/generated_keep.py"} <= paths
    assert not paths & {".env", "debug.log", "src/generated_api.py", "deploy/settings.py", "assets/logo.png"}
    assert s.skipped == {"gitignored": 2, "secret": 4, "binary": 1, "non-utf8": 1, "too-large": 1}
    counts = index.store.counts()
    assert counts["chunks"] == counts["embedded"] == s.chunks_embedded == len(index.vectors)
    assert consistent(index)


def test_unchanged_files_are_not_reembedded_and_edits_touch_only_changed_chunks(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    index.update()
    embedder.texts.clear()
    again = index.update()
    assert embedder.texts == [] and again.files_indexed == 0 and again.files_unchanged > 0
    path = repo / "src/mathutil.py"
    path.write_text(path.read_text().replace("return a\n", "return a  # done\n"))
    s = index.update()
    assert s.files_indexed == 1 and s.chunks_added == 1 and s.chunks_removed == 1
    # fibonacci's code and doc view, nothing else: is_prime kept its vectors
    assert embedder.texts[0].startswith("def fibonacci(n):") and embedder.texts[1:] == ["fibonacci: The n-th Fibonacci number."]
    assert consistent(index)


def test_deleting_a_file_removes_its_chunks_and_vectors(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    index.update()
    before = index.store.counts()["chunks"]
    (repo / "web/app.js").unlink()
    s = index.update()
    assert s.files_removed == 1 and s.chunks_removed == 4
    assert index.store.counts()["chunks"] == before - 4 == len(index.vectors)
    assert not search(index, "fetchJson", mode="bm25").results or all(
        r.path != "web/app.js" for r in search(index, "fetchJson").results)


def test_reindex_one_saved_file(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    index.update()
    (repo / "src/new.py").write_text("def parse_duration(text):\n    return int(text[:-1])\n")
    s = index.reindex_file(repo / "src/new.py")
    assert s.files_indexed == 1 and s.chunks_embedded == 1
    assert search(index, "parse duration", mode="bm25").results[0].qualname == "parse_duration"
    (repo / "src/.gitignore").write_text("new.py\n")  # now ignored: saving it removes it from the index
    assert index.reindex_file(repo / "src/new.py").files_removed == 1
    assert consistent(index)


def test_model_change_rebuilds_vectors_and_says_so(repo, embedder, tmp_path):
    open_index(repo, embedder, tmp_path).update()
    messages: list[str] = []
    embedder.texts.clear()
    index = open_index(repo, embedder, tmp_path, model_id="another-model", log=messages.append)
    assert any("embedding model changed from tiny-bert to another-model" in m for m in messages)
    s = index.update()
    assert s.files_indexed == 0 and s.chunks_embedded == index.store.counts()["chunks"] == len(embedder.texts) // 2
    assert s.rebuilt_reason and consistent(index)


def test_corrupt_index_is_a_clear_error(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    index.update()
    index.close()
    (tmp_path / "index" / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(WorkspaceIndexError, match="corrupt.*--rebuild"):
        open_index(repo, embedder, tmp_path)
    with pytest.raises(WorkspaceIndexError, match="not a folder"):
        open_index(tmp_path / "missing", embedder, tmp_path)


def test_bm25_weight_follows_the_query():
    from plusls.indexer.search import bm25_weight

    assert [bm25_weight(q) for q in ("is_prime", "sortByAge", "os.path.join", "read_text(", "Point::norm")] == [1.0] * 5
    assert bm25_weight("check whether a number is prime") == 0.0


def test_identifier_queries_use_bm25_in_hybrid_search(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    index.update()  # the tiny test embedder's vectors are random: a hit here comes from BM25
    for name in ("is_prime", "sortByAge", "Cache.put"):
        assert search(index, name).results[0].qualname == name


def test_search_filters_and_bm25_before_vectors(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    index.update(embed=False)  # parsed, not embedded: BM25 answers already
    r = search(index, "sort users by age")
    assert r.chunks_embedded == 0 and r.results[0].qualname == "sortByAge"
    index.embed_pending(index.update(embed=False), None)
    assert all(x.language == "go" for x in search(index, "start server", language="go").results)
    assert all(x.path.startswith("src/") for x in search(index, "value", path_glob="src/*").results)
    hit = search(index, "fibonacci number", mode="bm25").results[0]
    assert (hit.path, hit.start_line, hit.end_line, hit.kind) == ("src/mathutil.py", 1, 6, "function")
    assert hit.snippet.startswith("def fibonacci(n):")


def test_open_repairs_each_kind_of_mismatch(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    index.update()
    ids = sorted(index.store.embedded_ids())
    index.vectors.remove([ids[0]])  # marked embedded, vector lost (crash before the FAISS write)
    one = np.ones((1, embedder.dim), np.float32)
    index.vectors.add(np.array([10**9]), one, one)  # vectors of a deleted chunk
    index.vectors.save()
    index.store.mark_embedded([ids[1]], 0)  # vector written, mark lost
    index.close()
    embedder.texts.clear()
    index = open_index(repo, embedder, tmp_path)
    assert index.repaired == {"orphan_vectors_removed": 1, "chunks_requeued": 1, "vectors_recovered": 1}
    assert consistent(index)
    index.update()
    assert len(embedder.texts) == 2  # only the chunk whose vectors were lost is embedded again (two views)
    assert index.store.counts()["embedded"] == index.store.counts()["chunks"] == len(index.vectors)


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
import plusls.indexer.workspace_index as wi
from plusls.exported import Embedder
wi.SAVE_EVERY_S, wi.EMBED_GROUP = 0.05, 8
class Slow:
    def __init__(self):
        self.inner = Embedder({model!r}); self.dim = self.inner.dim
    def embed(self, texts, **kw):
        time.sleep(0.02)
        return self.inner.embed(texts, **kw)
index = wi.WorkspaceIndex({repo!r}, Slow(), "tiny-bert", {index_dir!r}, log=lambda m: None)
print("ready", flush=True)
index.update()
print("finished", flush=True)
"""


def add_generated_files(repo: Path, files: int = 150) -> None:
    for i in range(files):  # 8 functions each: enough work that a kill or a search lands mid-way
        (repo / f"gen/m{i}.py").parent.mkdir(exist_ok=True)
        (repo / f"gen/m{i}.py").write_text("".join(f"def f{i}_{j}(x):\n    return x + {j}\n\n" for j in range(8)))


@pytest.mark.slow  # spawns indexing processes
def test_search_answers_while_another_process_indexes(repo, embedder, exported, tmp_path):
    add_generated_files(repo)
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), model=str(exported["bert"]), repo=str(repo),
                                index_dir=str(tmp_path / "index"))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    seen = []
    while proc.poll() is None:
        time.sleep(0.3)
        reader = WorkspaceIndex(repo, embedder, "tiny-bert", tmp_path / "index", read_only=True, log=lambda m: None)
        r = search(reader, "f3_5")
        seen.append((r.chunks_embedded, r.chunks_total, [x.qualname for x in r.results[:1]]))
        reader.close()
    assert proc.wait() == 0
    partial = [s for s in seen if s[2] == ["f3_5"] and s[0] < s[1]]
    assert partial, seen  # found by BM25 before all vectors were in
    assert len({s[0] for s in seen}) > 2  # and the vector count grew while we watched


@pytest.mark.slow  # spawns indexing processes
@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0])
def test_kill_9_during_indexing_then_reopen_completes(delay, repo, embedder, exported, tmp_path):
    add_generated_files(repo)
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), model=str(exported["bert"]), repo=str(repo),
                                index_dir=str(tmp_path / "index"))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    index = open_index(repo, embedder, tmp_path)  # opens, repairs
    assert consistent(index)
    killed = index.store.counts()
    assert killed["embedded"] < killed["chunks"] or killed["files"] < 150  # the kill landed mid-way
    index.update()
    counts = index.store.counts()
    assert counts["files"] > 150 and counts["chunks"] == counts["embedded"] == len(index.vectors)
    assert consistent(index)
    assert index.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert search(index, "f7_3", mode="bm25").results[0].qualname == "f7_3"


def test_index_from_an_older_format_is_rebuilt(repo, embedder, tmp_path):
    index = open_index(repo, embedder, tmp_path)
    index.update()
    index.store.set_meta("schema", "0")
    index.close()
    messages: list[str] = []
    index = open_index(repo, embedder, tmp_path, log=messages.append)
    assert any("index format changed (was 0): rebuilding" in m for m in messages)
    s = index.update()
    assert s.files_unchanged == 0 and s.files_indexed > 0 and consistent(index)


def with_first_pass(repo, embedder, tmp_path):
    static = static_for(embedder.inner, "tiny-bert", tmp_path / "static")
    return WorkspaceIndex(repo, embedder, "tiny-bert", tmp_path / "index", log=lambda m: None, static=static)


def test_first_pass_vectors_answer_before_the_encoder_and_go_once_it_has(repo, embedder, tmp_path):
    index = with_first_pass(repo, embedder, tmp_path)
    s = index.update(embed=False)
    assert embedder.texts == [] and s.scan_seconds > 0
    pending = index.store.counts()
    assert pending["embedded"] == 0 and len(index.first_pass) == pending["chunks"]
    response = search(index, "the n-th number of a sequence", mode="vector")
    assert response.results and all(r.vector_rank is not None for r in response.results)
    assert "first_pass" in response.timings_ms
    index.close()
    reopened = with_first_pass(repo, embedder, tmp_path)  # rebuilt in memory for the chunks still pending
    assert len(reopened.first_pass) == pending["chunks"]
    reopened.update()
    assert reopened.first_pass.empty and consistent(reopened)
    response = search(reopened, "the n-th number of a sequence", mode="vector")
    assert "first_pass" not in response.timings_ms and response.results


def test_open_documents_are_embedded_first(repo, embedder, tmp_path):
    index = with_first_pass(repo, embedder, tmp_path)
    index.update(embed=False)
    seen: list[tuple[set[str], int]] = []

    def progress(p):
        if p.stage == "embed" and not seen:  # the first report of the full pass, after its first save
            rows = index.store.db.execute("SELECT DISTINCT path FROM chunks WHERE embedded=1").fetchall()
            seen.append(({r[0] for r in rows}, len(index.first_pass)))

    index.update(progress=progress, first=["src/mathutil.py"])
    own = index.store.db.execute("SELECT count(*) FROM chunks WHERE path='src/mathutil.py'").fetchone()[0]
    assert seen[0][0] == {"src/mathutil.py"}
    assert seen[0][1] == index.store.counts()["chunks"] - own  # their first-pass vectors are gone, the rest wait
