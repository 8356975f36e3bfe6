"""Hover and "Generate docstring" latency through plusls serve over stdio, per summary source; prints JSON.

For each source (`--summaries`: completion = the completion model in chat form, docstring = the encoder-decoder):
a fresh server opens a real file (default: this repo's indexer/chunker.py) and then
1. asks for the docstring action on its first undocumented function at once (the model may still be loading:
   `first_docstring_s`),
2. waits until the background has summarized and explained every definition (`prefetch_s`, `prefetched`,
   `explanations`; it starts once the file is quiet and the completion model has read the file ahead),
3. hovers over every definition (`hover_cached`: what a user sees once the file has been open a moment),
4. runs the docstring action (code action + resolve) on every undocumented function (`docstring_cached`),
5. edits each undocumented function and asks for its docstring right away, before the background gets to it
   (`docstring_uncached`: the summary is written while the user waits).

    .venv/bin/python bench/docs_latency.py [--file PATH] [--summaries completion,docstring] [--limit 12]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).parent))
from lsp_latency import pct, rss  # noqa: E402

from plusls.docstrings.definition_at import definitions_in  # noqa: E402
from plusls.docstrings.explanation import sentences  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def said(hover: str) -> str:
    """The plusls paragraph of a hover's Markdown."""
    return hover.split("**plusls:** ", 1)[-1].split("\n\n", 1)[0]


async def stats(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.stats"))


async def docstring(client: LanguageClient, uri: str, at: t.Position) -> tuple[float, str]:
    t0 = time.perf_counter()
    actions = await client.text_document_code_action_async(t.CodeActionParams(
        t.TextDocumentIdentifier(uri), t.Range(at, at), t.CodeActionContext(diagnostics=[])))
    action = actions[0] if actions[0].edit else await client.code_action_resolve_async(actions[0])
    return time.perf_counter() - t0, action.edit.changes[uri][0].new_text


async def session(file: Path, source: str, limit: int, cache: Path) -> dict:
    from plusls.common.paths import default_models_dir

    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PLUSLS_MODELS_DIR=str(default_models_dir()))
    client = LanguageClient("bench", "1")
    await client.start_io(sys.executable, "-m", "plusls.cli", "serve", env=env)
    pid = client._server.pid
    options = {"models": {"summaries": source}, "search": {"indexOnStart": False}}
    await client.initialize_async(t.InitializeParams(
        capabilities=t.ClientCapabilities(), root_uri=file.parent.as_uri(), initialization_options=options))
    client.initialized(t.InitializedParams())
    text = file.read_text()
    uri = file.as_uri()
    definitions = definitions_in(str(file), text)
    undocumented = [d for d in definitions if d.kind == "function" and not d.docstring][:limit]
    lines = text.split("\n")

    def at(d) -> t.Position:
        line = d.body_line if d.kind == "function" else d.start_line
        return t.Position(line, len(lines[line]) // 2)

    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "python", 1, text)))
    first_s, _ = await docstring(client, uri, at(undocumented[0]))
    t0 = time.perf_counter()
    unique = len({d.hash for d in definitions})
    while ((now := await stats(client))["summaries"] < unique or now["summaries_pending"]) \
            and time.perf_counter() - t0 < 900:
        await asyncio.sleep(0.2)
    last, still = now["summaries_prefetched"], time.perf_counter()
    prefetch_s = still - t0
    hovers, texts = [], []
    for d in definitions:
        h0 = time.perf_counter()
        hover = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), at(d)))
        hovers.append(time.perf_counter() - h0)
        texts.append(hover.contents.value if hover else "")
    runs_before = (await stats(client))["summaries"]
    cached = [(await docstring(client, uri, at(d)))[0] for d in undocumented]
    cached_ran = (await stats(client))["summaries"] - runs_before
    uncached, version = [], 1
    for d in undocumented:  # a new comment line in the function changes its content hash
        version += 1
        lines.insert(d.body_line, f"{d.body_indent}# edited {version}")
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [t.TextDocumentContentChangeWholeDocument(text="\n".join(lines))]))
        uncached.append((await docstring(client, uri, at(d)))[0])
        del lines[d.body_line]
        version += 1
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [t.TextDocumentContentChangeWholeDocument(text="\n".join(lines))]))
    memory = rss(pid)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {"summaries": source, "definitions": len(definitions), "undocumented": len(undocumented),
            "first_docstring_s": round(first_s, 2), "prefetch_s": round(prefetch_s, 1), "prefetched": last,
            "explanations": now["explanations"], "hover_cached": pct(hovers),
            "hovers_with_summary": sum("**plusls:**" in x for x in texts),
            "hover_sentences": [len(sentences(said(x), complete=True)) for x in texts if "**plusls:**" in x],
            "hover_examples": [said(x) for x in texts if "**plusls:**" in x][:4],
            "docstring_cached": pct(cached), "docstring_cached_model_runs": cached_ran,
            "docstring_uncached": pct(uncached), "rss_mb": memory}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", default=str(ROOT / "indexer" / "chunker.py"))
    ap.add_argument("--summaries", default="completion,docstring")
    ap.add_argument("--limit", type=int, default=12, help="undocumented functions to run the docstring action on")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in args.summaries.split(","):
            runs.append(asyncio.run(session(Path(args.file).resolve(), source, args.limit, Path(tmp) / source)))
    print(json.dumps({"bench": "docs_latency", "started": started, "machine": platform.processor() or
                      platform.machine(), "cpus": os.cpu_count(), "file": args.file, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
