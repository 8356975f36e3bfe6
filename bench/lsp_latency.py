"""LSP round-trip latency of plusls serve over stdio, as an editor drives it; prints JSON.

A scripted editing session opens a real file, pauses as a reader would (`--pause`), then types character by
character (default: the last lines of this repo's indexer/walker.py, with the lines above already in the buffer,
and in mode `below` the lines after the typed text too). After each keystroke the client sends an incremental
didChange and textDocument/inlineCompletion, and waits for the answer before the next keystroke (a user pausing just
long enough to see the suggestion), so every request is served, none dropped. Single-line requests (cursor after text
on its line) are what the target is about; requests at an empty line (multi-line) are reported apart.
`single_line_vs_file`: how often a single-line suggestion's text is exactly what the file has after the cursor on
that line, and its mean edit similarity (the suggestion quality a user typing this file would see);
`line_start_vs_file`: the same for the first line suggested where only blanks precede the cursor (blanks ignored,
nothing shown counted as a miss, the file's blank lines left out).
Typing the characters a suggestion already showed is answered from the server's cache, as in real use;
`inline_single_line_model_ran` covers only the requests that ran the model.

Then: hover over every function of the file twice (first: the summarizer runs; second: from cache), and
workspace/symbol queries once the workspace is indexed. Server RSS (VmHWM, VmRSS) is read from /proc at the end.

    .venv/bin/python bench/lsp_latency.py [--models default|tiny] [--modes reuse,below,noreuse] [--chars 300]
                                          [--pause 4] [--no-line-choice]

default: Qwen2.5-Coder-0.5B-Instruct int8 (the embedded completer), the bundled docstring model, MiniLM.
tiny:    random tiny models built and exported on the spot (needs the train extra): protocol + server overhead.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

from plusls.common.metrics import edit_similarity
from plusls.completion.speed import SpeedCache
from plusls.exported.defaults import COMPLETERS

ROOT = Path(__file__).resolve().parents[1]
NEXT_FILE = "chunker.py"  # the second file opened, in the same workspace
QUERIES = ["walk the workspace", "gitignore rules", "is_prime", "hybrid search with bm25", "embed pending chunks",
           "secret files", "read_manifest", "split identifiers into words"]


def pct(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.array(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1), "mean_ms": round(float(a.mean()), 1)}


def tiny_models(tmp: Path) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import build

    from plusls.exported.export import export_model

    out = {}
    for arch, kind, key in (("llama", "causal-lm", "completion"), ("t5", "seq2seq", "docstring"),
                            ("bert", "embedding", "embedding")):
        out[key] = str(export_model(build(arch, tmp / "ckpt" / arch), kind, tmp / "models" / arch,
                                    log=lambda m: None) and tmp / "models" / arch)
    return out


def rss(pid: int) -> dict:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmHWM", "VmRSS")}


async def open_another(client: LanguageClient, path: Path, pause_s: float) -> float:
    """The first suggestion in a second file, the model already loaded: open it, put the cursor in the middle of
    a line 40 lines down (VS Code then sends documentHighlight there), pause as a reader would, then ask
    (seconds)."""
    lines = path.read_text().split("\n")
    line = next(i for i in range(40, len(lines)) if len(lines[i].strip()) > 20)
    column = len(lines[line]) // 2
    text = "\n".join(lines[:line] + [lines[line][:column]] + lines[line + 1 :])
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(path.as_uri(), "python", 1, text)))
    await client.text_document_document_highlight_async(t.DocumentHighlightParams(
        t.TextDocumentIdentifier(path.as_uri()), t.Position(line, column)))
    await asyncio.sleep(pause_s)
    t0 = time.perf_counter()
    await client.text_document_inline_completion_async(t.InlineCompletionParams(
        t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic), t.TextDocumentIdentifier(path.as_uri()),
        t.Position(line, column)))
    return time.perf_counter() - t0


async def session(workspace: Path, file: Path, start_line: int, chars: int, options: dict, cache: Path,
                  pause_s: float, below: bool) -> dict:
    from plusls.common.paths import default_models_dir

    # A fresh cache (index, telemetry); the exported default models stay where they are, and so do the completers'
    # speeds measured on this machine (`plusls doctor --bench`): a server's state after its first start.
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PLUSLS_MODELS_DIR=str(default_models_dir()))
    speeds = SpeedCache().path
    if speeds.is_file():
        (cache / "plusls").mkdir(parents=True, exist_ok=True)
        shutil.copy(speeds, cache / "plusls" / speeds.name)
    client = LanguageClient("bench", "1")
    await client.start_io(sys.executable, "-m", "plusls.cli", "serve", env=env)
    pid = client._server.pid
    await client.initialize_async(t.InitializeParams(
        capabilities=t.ClientCapabilities(), root_uri=workspace.as_uri(), initialization_options=options))
    client.initialized(t.InitializedParams())
    text = file.read_text()
    lines = text.split("\n")
    before = "\n".join(lines[:start_line]) + "\n"
    to_type = "\n".join(lines[start_line:])[:chars]
    after = text[len(before) + len(to_type) :] if below else ""  # mid-file: the rest of the file stays below
    uri = file.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "python", 1, before + after)))
    single, multi, ran, shown = [], [], [], 0
    exact, similarity = [], []  # single-line suggestions against what the file really has after the cursor
    line_exact, line_similarity = [], []  # the same for the first line shown where only blanks precede the cursor
    runs = 0
    await asyncio.sleep(pause_s)  # the user reads the file before typing (the server may warm up meanwhile)
    t_load = time.perf_counter()  # the first request may still be loading the model: timed apart
    await client.text_document_inline_completion_async(t.InlineCompletionParams(
        t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic), t.TextDocumentIdentifier(uri),
        t.Position(start_line, 0)))
    first_request_s = time.perf_counter() - t_load
    for n in range(1, len(to_type) + 1):
        typed = before + to_type[: n - 1]
        at = t.Position(typed.count("\n"), len(typed) - (typed.rfind("\n") + 1))
        client.text_document_did_change(t.DidChangeTextDocumentParams(  # one character, as editors send it
            t.VersionedTextDocumentIdentifier(version=n + 1, uri=uri),
            [t.TextDocumentContentChangePartial(range=t.Range(at, at), text=to_type[n - 1])]))
        current = before + to_type[:n]
        line = current.count("\n")
        col = len(current) - (current.rfind("\n") + 1)
        t0 = time.perf_counter()
        result = await client.text_document_inline_completion_async(t.InlineCompletionParams(
            t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic), t.TextDocumentIdentifier(uri),
            t.Position(line, col)))
        dt = time.perf_counter() - t0
        line_prefix = current[current.rfind("\n") + 1 :]
        (single if line_prefix.strip() else multi).append(dt)
        shown += bool(result and result.items)
        offset = len(before) + n
        truth = text[offset : text.find("\n", offset) if "\n" in text[offset:] else len(text)]
        if line_prefix.strip() or truth.strip():  # a blank line in the file has nothing to compare with
            guess = result.items[0].insert_text if result and result.items else ""
            guess = (guess if isinstance(guess, str) else guess.value).split("\n")[0]
            if line_prefix.strip() and guess:
                exact.append(guess.rstrip() == truth.rstrip())
                similarity.append(edit_similarity(truth.rstrip(), guess.rstrip()))
            elif not line_prefix.strip():  # nothing shown counts as a miss here
                line_exact.append(guess.strip() == truth.strip())
                line_similarity.append(edit_similarity(truth.strip(), guess.strip()))
        counters = (await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.stats")))
        if counters["completion"]["model_runs"] > runs and line_prefix.strip():
            ran.append(dt)  # this keystroke ran the model (not answered from a cache)
        runs = counters["completion"]["model_runs"]
    stats = await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.stats"))
    next_file_s = await open_another(client, file.parent / NEXT_FILE, pause_s)

    hover_cold, hover_cached = [], []
    full = before + to_type
    defs = [m.start() for m in re.finditer(r"^\s*def \w+", full, re.M)][-8:]
    for rnd in (hover_cold, hover_cached):
        for off in defs:
            line = full.count("\n", 0, off) + 1
            t0 = time.perf_counter()
            await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), t.Position(line, 8)))
            rnd.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    summary = await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.reindex"))
    index_s = time.perf_counter() - t0
    symbols = []
    for _ in range(3):
        for q in QUERIES:
            t0 = time.perf_counter()
            await client.workspace_symbol_async(t.WorkspaceSymbolParams(query=q))
            symbols.append(time.perf_counter() - t0)
    memory = rss(pid)
    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.sleep(0.2)
    await client.stop()
    return {"pause_after_open_s": pause_s, "code_below_cursor": below,
            "first_request_s": round(first_request_s, 2),
            "first_request_next_file_s": round(next_file_s, 2), "keystrokes": len(to_type),
            "inline_single_line": pct(single), "inline_single_line_model_ran": pct(ran),
            "inline_multi_line": pct(multi),
            "suggestions_shown": shown, "server_counters": stats["completion"],
            "single_line_vs_file": {"n": len(exact), "exact": round(float(np.mean(exact)), 3) if exact else None,
                                    "edit_similarity": round(float(np.mean(similarity)), 3) if similarity else None},
            "line_start_vs_file": {"n": len(line_exact),
                                   "exact": round(float(np.mean(line_exact)), 3) if line_exact else None,
                                   "edit_similarity": round(float(np.mean(line_similarity)), 3)
                                   if line_similarity else None},
            "hover_first": pct(hover_cold), "hover_cached": pct(hover_cached),
            "index": {"seconds": round(index_s, 1), "chunks_embedded": summary.get("chunksEmbedded")},
            "workspace_symbol": pct(symbols), "server_rss_mb": memory}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", choices=["default", "tiny"], default="default")
    p.add_argument("--modes", default="reuse,below,noreuse",
                   help="reuse: prefix reuse on, typing at the end of the buffer; below: the same with the rest of "
                        "the file below the cursor (mid-file editing); noreuse: prefix reuse off")
    p.add_argument("--pause", type=float, default=4.0, help="seconds between opening the file and typing")
    p.add_argument("--file", default=str(ROOT / "indexer" / "walker.py"))
    p.add_argument("--start-line", type=int, default=60)
    p.add_argument("--chars", type=int, default=300)
    p.add_argument("--completion", help="an exported causal-lm directory (or a default's name) instead of \"auto\"")
    p.add_argument("--draft", help="an exported causal-lm directory that drafts tokens for the completer")
    p.add_argument("--no-line-choice", action="store_true",
                   help="completion.lineChoice false: the FIM line always, no prefix-only rival (default: the "
                        "server's default for the model)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="plusls-bench-"))
    try:
        workspace = tmp / "ws"
        shutil.copytree(ROOT / "indexer", workspace / "indexer")
        file = workspace / "indexer" / Path(args.file).name
        if not file.exists():
            shutil.copy(args.file, file)
        models = tiny_models(tmp) if args.models == "tiny" else {}
        if args.completion:
            named = args.completion in COMPLETERS
            models["completion"] = args.completion if named else str(Path(args.completion).expanduser().resolve())
        if args.draft:
            models["draft"] = str(Path(args.draft).expanduser().resolve())
        results = {}
        for mode in args.modes.split(","):
            options = {"models": models, "search": {"indexOnStart": False},
                       "completion": {"prefixReuse": mode != "noreuse", "retrieval": False,
                                      **({"lineChoice": False} if args.no_line_choice else {})}}
            results[mode] = asyncio.run(session(workspace, file, args.start_line, args.chars, options,
                                                tmp / f"cache-{mode}", args.pause, mode == "below"))
        print(json.dumps({"bench": "lsp_latency", "models": args.models, "completion": models.get("completion"),
                          "line_choice": "off" if args.no_line_choice else "default", "file": Path(args.file).name,
                          "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                          "results": results}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
