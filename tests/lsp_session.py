"""Start the real `plusls serve` over stdio with a pytest-lsp client, on a fixture workspace with tiny models."""
from __future__ import annotations

import asyncio
import os
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities


def server_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(XDG_CACHE_HOME=str(cache), PLUSLS_MODELS_DIR=str(cache / "models"), PLUSLS_THREADS="1")
    env.pop("PLUSLS_INDEX_DIR", None)
    return env


def init_options(exported: dict[str, Path], memorized: Path, **completion) -> dict:
    return {"models": {"completion": str(memorized), "docstring": str(exported["t5"]),
                       "embedding": str(exported["bert"])},
            "completion": {"debounceMs": 0, "retrieval": False, **completion}}


async def start(workspace: Path, cache: Path, options: dict | None, editor: str = "neovim") -> LanguageClient:
    config = ClientServerConfig(server_command=[sys.executable, "-m", "plusls.cli", "serve"],
                                server_env=server_env(cache))
    client = await config.start()
    client.init_result = await client.initialize_session(t.InitializeParams(
        capabilities=client_capabilities(editor), root_uri=workspace.as_uri(),
        workspace_folders=[t.WorkspaceFolder(workspace.as_uri(), workspace.name)],
        initialization_options=options))
    return client


@asynccontextmanager
async def serving(workspace: Path, cache: Path, options: dict | None) -> AsyncIterator[LanguageClient]:
    """A started, initialized server that is shut down and stopped however the test ends."""
    client = await start(workspace, cache, options)
    try:
        yield client
    finally:
        await client.shutdown_session()
        await client.stop()


def open_doc(client: LanguageClient, path: Path, text: str | None = None, language: str = "python") -> str:
    uri = path.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        t.TextDocumentItem(uri, language, 1, path.read_text() if text is None else text)))
    return uri


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        t.VersionedTextDocumentIdentifier(version=version, uri=uri),
        [t.TextDocumentContentChangeWholeDocument(text=text)]))


def inline_params(uri: str, line: int, character: int) -> t.InlineCompletionParams:
    return t.InlineCompletionParams(
        context=t.InlineCompletionContext(trigger_kind=t.InlineCompletionTriggerKind.Automatic),
        text_document=t.TextDocumentIdentifier(uri), position=t.Position(line, character))


def position_after(text: str, marker: str) -> t.Position:
    """The position right after the first `marker` in `text`."""
    end = text.index(marker) + len(marker)
    line = text.count("\n", 0, end)
    return t.Position(line, end - (text.rfind("\n", 0, end) + 1))


async def wait_indexed(client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for reports in client.progress_reports.values():
            if any(isinstance(r, t.WorkDoneProgressEnd) for r in reports):
                return
        await asyncio.sleep(0.1)
    raise AssertionError("indexing did not finish")
