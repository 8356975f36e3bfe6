"""The shared index on a real PostgreSQL 16 + pgvector (pgserver): many repositories, incremental by content hash,
two indexers at once, an indexer killed with SIGKILL and resumed, a schema from another plusls, a restarted
database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from fixture_repo import make_repo
from postgres import Postgres

from plusls.exported import Embedder
from plusls.indexer.embedding_model import load_embedder
from plusls.indexer.errors import WorkspaceIndexError
from plusls.indexer.shared_index import SharedIndex

pytestmark = pytest.mark.slow  # runs PostgreSQL


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = Postgres(tmp_path_factory.mktemp("pg") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db(postgres, request):
    return postgres.database(request.node.name.split("[")[0][:40].lower())


@pytest.fixture
def embedder(exported):
    return Embedder(exported["bert"])


def generated(repo: Path, files: int) -> None:
    for i in range(files):
        (repo / f"gen/m{i}.py").parent.mkdir(exist_ok=True)
        (repo / f"gen/m{i}.py").write_text("".join(f"def f{i}_{j}(x):\n    return x + {j}\n\n" for j in range(8)))


def snapshot(url: str) -> list[tuple]:
    """Every stored chunk, as content (ids aside): what a clean index must equal."""
    with psycopg.connect(url) as c:
        return c.execute("SELECT repo, path, qualname, start_line, md5(text) FROM plusls_chunks "
                         "ORDER BY 1, 2, 4, 3").fetchall()


def test_two_repositories_in_one_database_incremental_by_content(db, embedder, tmp_path):
    one, two = make_repo(tmp_path / "one"), make_repo(tmp_path / "two")
    (two / "src" / "only_here.py").write_text("def only_in_two():\n    return 2\n")
    a = SharedIndex(db, one, embedder, "tiny-bert", log=lambda m: None)
    b = SharedIndex(db, two, embedder, "tiny-bert", log=lambda m: None)
    first = a.update()
    assert first.files_indexed > 3 and first.chunks_added > 5 and first.skipped["secret"] >= 1
    b.update()
    assert a.search("is_prime").results[0].qualname == "is_prime"
    assert a.search("only_in_two").results == [] or a.search("only_in_two").results[0].path != "src/only_here.py"
    assert b.search("only_in_two").results[0].path == "src/only_here.py"
    again = a.update()
    assert again.files_indexed == 0 and again.files_unchanged == first.files_indexed
    os.utime(one / "src" / "mathutil.py", (1, 1))  # another checkout's mtime: the content decides
    assert a.update().files_indexed == 0

    (one / "src" / "mathutil.py").write_text("def cube_volume(side):\n    return side ** 3\n")
    saved = a.reindex_file(one / "src" / "mathutil.py")
    assert saved.files_indexed == 1
    assert a.search("cube_volume").results[0].qualname == "cube_volume"
    assert not [r for r in a.search("is_prime").results if r.qualname == "is_prime"]
    (one / "src" / "mathutil.py").unlink()
    assert a.reindex_file(one / "src" / "mathutil.py").files_removed == 1
    assert a.search("cube_volume").results == [] or a.search("cube_volume").results[0].qualname != "cube_volume"
    assert b.search("is_prime").results[0].qualname == "is_prime"  # the other repository keeps its own


def test_two_indexers_at_once_write_each_file_once(db, embedder, exported, tmp_path):
    repo = make_repo(tmp_path / "ws")
    generated(repo, 40)
    errors = []

    def run():
        try:
            SharedIndex(db, repo, Embedder(exported["bert"]), "tiny-bert", log=lambda m: None).update()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    both = snapshot(db)
    assert len(both) == len(set(both))  # no chunk twice
    SharedIndex(db, repo, embedder, "tiny-bert", repo="ws-clean", log=lambda m: None).update()
    assert [r[1:] for r in both] == [r[1:] for r in snapshot(db) if r[0] == "ws-clean"]


def test_an_indexer_killed_mid_run_resumes_with_nothing_lost_or_twice(db, embedder, exported, tmp_path):
    repo = make_repo(tmp_path / "ws")
    generated(repo, 150)
    command = [sys.executable, "-m", "plusls.cli", "index", str(repo), "--store", db, "--model", str(exported["bert"])]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with psycopg.connect(db, autocommit=True) as c:
        end = time.monotonic() + 120
        while time.monotonic() < end:  # until some files have landed, not all
            try:
                if c.execute("SELECT count(*) FROM plusls_files").fetchone()[0] >= 20:
                    break
            except psycopg.errors.UndefinedTable:
                pass
            time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = snapshot(db)
    assert 0 < len({r[1] for r in partial}) < 150
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "unchanged" in resumed.stdout
    same, model_id = load_embedder(exported["bert"], tmp_path)  # what the command used
    SharedIndex(db, repo, same, model_id, repo="clean", log=lambda m: None).update()
    rows = snapshot(db)
    assert [r[1:] for r in rows if r[0] == "ws"] == [r[1:] for r in rows if r[0] == "clean"]


def test_another_schema_or_model_is_a_clear_error(db, embedder, tmp_path):
    repo = make_repo(tmp_path / "ws")
    SharedIndex(db, repo, embedder, "tiny-bert", log=lambda m: None)
    with pytest.raises(WorkspaceIndexError, match="embedded with tiny-bert"):
        SharedIndex(db, repo, embedder, "another-model", log=lambda m: None)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("UPDATE plusls_meta SET value = '0' WHERE key = 'schema'")
    with pytest.raises(WorkspaceIndexError, match="has schema 0, this plusls reads schema 1"):
        SharedIndex(db, repo, embedder, "tiny-bert", log=lambda m: None)
    with pytest.raises(WorkspaceIndexError, match="cannot reach the shared index at postgresql://me:\\*\\*\\*@"):
        SharedIndex("postgresql://me:hunter2@127.0.0.1:1/x", repo, embedder, "tiny-bert", log=lambda m: None)


def test_a_restarted_database_is_reconnected(postgres, db, embedder, tmp_path):
    repo = make_repo(tmp_path / "ws")
    index = SharedIndex(db, repo, embedder, "tiny-bert", log=lambda m: None)
    index.update()
    postgres.stop()
    with pytest.raises(WorkspaceIndexError, match="cannot reach|failed"):
        index.search("is_prime")
    postgres.start()
    assert index.search("is_prime").results[0].qualname == "is_prime"


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_the_server_searches_the_shared_index_with_its_unsaved_edits(postgres, db, exported, memorized,
                                                                           tmp_path):
    from lsp_session import change, init_options, open_doc, serving
    from lsprotocol import types as t

    repo = make_repo(tmp_path / "ws")
    options = init_options(exported, memorized)
    options["search"] = {"store": db, "repo": "team-repo"}
    async with serving(repo, tmp_path / "cache", options) as client:
        async def symbols(query: str) -> list[str]:
            found = await client.workspace_symbol_async(t.WorkspaceSymbolParams(query=query))
            return [s.name for s in found or []]

        indexed = await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.reindex"))
        assert "error" not in indexed
        assert (await symbols("is_prime"))[:1] == ["is_prime"]
        with psycopg.connect(db) as c:
            assert c.execute("SELECT count(*) FROM plusls_files WHERE repo = 'team-repo'").fetchone()[0] > 3

        path = repo / "src" / "mathutil.py"
        uri = open_doc(client, path)
        edited = path.read_text() + "\n\ndef brand_new_helper(x):\n    return x * 7\n"
        change(client, uri, 2, edited)
        assert (await symbols("brand_new_helper"))[:1] == ["brand_new_helper"]  # before it is saved
        assert (await symbols("is_prime"))[:1] == ["is_prime"]  # the rest of the edited file too

        path.write_text(edited)
        client.text_document_did_save(t.DidSaveTextDocumentParams(t.TextDocumentIdentifier(uri)))
        end = time.monotonic() + 30
        with psycopg.connect(db, autocommit=True) as c:
            while not c.execute("SELECT 1 FROM plusls_chunks WHERE name = 'brand_new_helper'").fetchone():
                assert time.monotonic() < end, "the saved file was not re-indexed"
                time.sleep(0.05)

        postgres.stop()
        with pytest.raises(Exception, match="shared index"):
            await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.search", ["is_prime"]))
        postgres.start()
        assert (await symbols("brand_new_helper"))[:1] == ["brand_new_helper"]
