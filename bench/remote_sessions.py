"""Simulated typing sessions against one llama-server on this machine, beside the same sessions completing in-process;
prints JSON.

Each session is its own `plusls serve` (as each developer's editor runs one) typing `--chars` characters of a
different file of this repository, keystroke by keystroke (incremental didChange, then inlineCompletion, waiting
for the answer). All sessions of a round type at once. Per round: request latency p50/p95 over every request that
asked the server, suggestions shown, errors (requests the server did not answer). With one session, what plusls
adds over the server's own time: the request's latency minus the time plusls spent waiting on the server's stream
(`remote_seconds` in plusls.stats), per request.

The server: llama.cpp's llama-server (scripts/build-llama-server.sh) on the real Qwen2.5-Coder-0.5B-Instruct GGUF,
`--slots` parallel slots, `--threads` threads. In-process rounds complete with the same model exported (int8).

    .venv/bin/python bench/remote_sessions.py [--sessions 1,4,8,16] [--in-process 1,4] [--chars 60] [--slots 4]
                                              [--pause 4] [--context-tokens 1024] [--timeout-ms 15000]
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

import numpy as np
from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from llama_server import LlamaServer, binary  # noqa: E402

from plusls.common.paths import default_models_dir  # noqa: E402
from plusls.exported.defaults import COMPLETER  # noqa: E402

FILES = ["indexer/walker.py", "indexer/chunker.py", "indexer/search.py", "indexer/store.py", "completion/prompt.py",
         "completion/filters.py", "completion/remote.py", "server/scheduler.py", "common/chat.py",
         "exported/generation.py", "server/settings.py", "indexer/vectors.py", "completion/completer.py",
         "server/model_dirs.py", "completion/speed.py", "indexer/cli.py"]
KEY_ENV, KEY = "PLUSLS_BENCH_KEY", "bench-key"


def pct(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.array(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1)}


async def session(file: Path, options: dict, chars: int, pause_s: float, cache: Path) -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PLUSLS_MODELS_DIR=str(default_models_dir()),
               **{KEY_ENV: KEY})
    client = LanguageClient("bench", "1")
    await client.start_io(sys.executable, "-m", "plusls.cli", "serve", env=env)
    await client.initialize_async(t.InitializeParams(capabilities=t.ClientCapabilities(),
                                                     root_uri=file.parent.as_uri(), initialization_options=options))
    client.initialized(t.InitializedParams())
    text = file.read_text()
    lines = text.split("\n")
    start = len(lines) // 2
    before = "\n".join(lines[:start]) + "\n"
    to_type = text[len(before) :][:chars]
    after = text[len(before) + len(to_type) :]
    uri = file.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "python", 1, before + after)))
    await asyncio.sleep(pause_s)  # the user reads: the server's prompt cache (or the local model) warms meanwhile
    t0 = time.perf_counter()
    await client.text_document_inline_completion_async(t.InlineCompletionParams(
        t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic), t.TextDocumentIdentifier(uri),
        t.Position(start, 0)))
    first = time.perf_counter() - t0  # may load the local model: timed apart
    latency, overhead, shown = [], [], 0
    previous = (await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.stats")))["completion"]
    for n in range(1, len(to_type) + 1):
        typed = before + to_type[: n - 1]
        at = t.Position(typed.count("\n"), len(typed) - (typed.rfind("\n") + 1))
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=n + 1, uri=uri),
            [t.TextDocumentContentChangePartial(range=t.Range(at, at), text=to_type[n - 1])]))
        current = before + to_type[:n]
        t0 = time.perf_counter()
        result = await client.text_document_inline_completion_async(t.InlineCompletionParams(
            t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic), t.TextDocumentIdentifier(uri),
            t.Position(current.count("\n"), len(current) - (current.rfind("\n") + 1))))
        dt = time.perf_counter() - t0
        shown += bool(result and result.items)
        counts = (await client.workspace_execute_command_async(t.ExecuteCommandParams("plusls.stats")))["completion"]
        if counts["remote_requests"] > previous["remote_requests"] or counts["model_runs"] > previous["model_runs"]:
            latency.append(dt)  # asked the model (not answered from a cache)
            if counts["remote_requests"] > previous["remote_requests"]:
                overhead.append(dt - (counts["remote_seconds"] - previous["remote_seconds"]))
        previous = counts
    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.sleep(0.2)
    await client.stop()
    return {"first": first, "latency": latency, "overhead": overhead, "shown": shown, "keystrokes": len(to_type),
            "errors": previous.get("remote_errors", 0)}


async def round_of(n: int, completion: str, args: argparse.Namespace, tmp: Path) -> dict:
    options = {"models": {"completion": completion},
               "remote": {"apiKeyEnv": KEY_ENV, "fallback": None, "contextTokens": args.context_tokens,
                          "timeoutMs": args.timeout_ms},
               "completion": {"retrieval": False}, "search": {"enabled": False}, "hover": {"enabled": False},
               "telemetry": {"enabled": False}}
    t0 = time.perf_counter()
    runs = await asyncio.gather(*(session(ROOT / FILES[i % len(FILES)], options, args.chars, args.pause,
                                          tmp / f"s{n}-{i}") for i in range(n)))
    latency = [x for r in runs for x in r["latency"]]
    overhead = [x for r in runs for x in r["overhead"]]
    return {"sessions": n, "wall_s": round(time.perf_counter() - t0, 1),
            "first_request_after_reading": pct([r["first"] for r in runs]), "requests_that_asked": pct(latency),
            "plusls_overhead": pct(overhead) if overhead else None,
            "shown": sum(r["shown"] for r in runs), "keystrokes": sum(r["keystrokes"] for r in runs),
            "errors": sum(r["errors"] for r in runs)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sessions", default="1,4,8,16")
    p.add_argument("--in-process", default="1,4", help="session counts also run in-process (each loads the model)")
    p.add_argument("--chars", type=int, default=60)
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pause", type=float, default=4.0, help="seconds of reading after opening the file")
    p.add_argument("--context-tokens", type=int, default=1024, help="plusls.remote.contextTokens (a CPU server)")
    p.add_argument("--timeout-ms", type=int, default=15000, help="plusls.remote.timeoutMs")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = LlamaServer(binary(), COMPLETER.source(lambda _: None), KEY, tmp / "llama-server.log",
                             slots=args.slots, threads=args.threads)
        server.start()
        try:
            remote = [asyncio.run(round_of(int(n), server.url, args, tmp)) for n in args.sessions.split(",")]
        finally:
            server.kill()
        local = [asyncio.run(round_of(int(n), "qwen2.5-coder-0.5b", args, tmp))
                 for n in args.in_process.split(",") if n]
    cpu = "avx512_vnni" if "avx512_vnni" in Path("/proc/cpuinfo").read_text() else "avx2"
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, {cpu}, "
                      f"{platform.processor() or platform.machine()}",
                      "server": {"engine": "llama-server", "model": COMPLETER.name, "slots": args.slots,
                                 "threads": args.threads},
                      "chars_per_session": args.chars, "pause_s": args.pause,
                      "remote_context_tokens": args.context_tokens, "remote": remote, "in_process": local}, indent=2))


if __name__ == "__main__":
    main()
