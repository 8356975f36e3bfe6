"""The demo's editor session: `plusls serve` started over stdio and driven as an editor drives it."""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

# A function being typed: the server sees the text up to the cursor, as after a keystroke.
TYPED = '''import os


def count_lines(path: str) -> int:
    """Number of lines in a text file."""
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def largest_file(folder):
    sizes = {name: os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)}
    return max(sizes, key='''


async def editor_session(workspace: Path, models_dir: Path) -> None:
    client = LanguageClient("plusls-demo", "1")

    @client.feature(t.WINDOW_LOG_MESSAGE)
    def _log(params: t.LogMessageParams) -> None:  # the server's index summary and the like: not shown here
        pass

    @client.feature(t.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def _progress_token(params: t.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(t.PROGRESS)
    def _progress(params: t.ProgressParams) -> None:  # indexing progress: the summary is printed below
        pass

    @client.feature(t.WINDOW_SHOW_MESSAGE)
    def _show(params: t.ShowMessageParams) -> None:
        print(f"  (server says: {params.message})")

    await client.start_io(sys.executable, "-m", "plusls.cli", "serve")
    try:
        await client.initialize_async(t.InitializeParams(
            capabilities=t.ClientCapabilities(), root_uri=workspace.resolve().as_uri(),
            initialization_options={"models": {"dir": str(models_dir)}, "search": {"indexOnStart": False}}))
        client.initialized(t.InitializedParams())
        uri = (workspace.resolve() / "plusls_demo_scratch.py").as_uri()  # never written to disk
        client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "python", 1, TYPED)))
        lines = TYPED.split("\n")
        end = t.Position(len(lines) - 1, len(lines[-1]))
        doc = t.TextDocumentIdentifier(uri)

        t0 = time.perf_counter()
        result = await client.text_document_inline_completion_async(t.InlineCompletionParams(
            t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic), doc, end))
        text = result.items[0].insert_text if result and result.items else "(no suggestion)"
        print(f"  inline completion after {lines[-1].strip()!r}: {text!r} ({_ms(t0)}, loads the model)")
        t0 = time.perf_counter()
        await client.text_document_inline_completion_async(t.InlineCompletionParams(
            t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic), doc, end))
        print(f"  the same request again: {_ms(t0)} (cache)")

        at = t.Position(lines.index("def largest_file(folder):") + 1, 8)
        t0 = time.perf_counter()
        hover = await client.text_document_hover_async(t.HoverParams(doc, at))
        print(f"  hover on largest_file ({_ms(t0)}):")
        print("".join(f"    {line}\n" for line in (hover.contents.value if hover else "(none)").split("\n")), end="")
        actions = await client.text_document_code_action_async(t.CodeActionParams(
            doc, t.Range(at, at), t.CodeActionContext(diagnostics=[])))
        for action in actions or []:
            resolved = action if action.edit else await client.code_action_resolve_async(action)
            (edit,) = resolved.edit.changes[uri]
            print(f"  code action {action.title!r}: inserts {edit.new_text.rstrip()!r} at line {edit.range.start.line}")

        summary = await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.reindex"))
        print(f"  plusls.reindex: {summary}")
        for query in ("walk the workspace and skip ignored files", "ExportError"):
            t0 = time.perf_counter()
            symbols = await client.workspace_symbol_async(t.WorkspaceSymbolParams(query=query))
            top = ", ".join(f"{s.name} ({s.container_name})" for s in (symbols or [])[:3])
            print(f"  workspace/symbol {query!r} ({_ms(t0)}): {top}")
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await asyncio.sleep(0.2)
        await client.stop()


def _ms(t0: float) -> str:
    return f"{(time.perf_counter() - t0) * 1000:.0f} ms"


def run_editor_session(workspace: Path, models_dir: Path) -> None:
    print(f"\nlanguage server (plusls serve over stdio, driven like an editor, workspace {workspace}):")
    asyncio.run(editor_session(workspace, models_dir))
