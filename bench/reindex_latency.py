"""Save -> re-indexed latency for one file, and peak RSS while indexing a large tree; prints JSON.

Reindex: a workspace of this repository's own source is indexed with the default embedder (all-MiniLM-L6-v2),
then one function of a 300-line Python file is edited and `WorkspaceIndex.reindex_file` timed, 30 times
(parse, SQLite swap of changed chunks, embedding of the changed chunk's two views, FAISS update and write).

RSS: `plusls index TREE` in a subprocess (default: the installed transformers package; --no-embed to time the
scan alone on something bigger), peak resident set size from getrusage.

    .venv/bin/python bench/reindex_latency.py [--tree PATH] [--no-embed]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def reindex_latency(runs: int) -> dict:
    from plusls.common.paths import default_models_dir
    from plusls.indexer.embedding_model import load_embedder
    from plusls.indexer.workspace_index import WorkspaceIndex

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        for sub in ("exported", "indexer", "server"):
            shutil.copytree(ROOT / sub, ws / sub, ignore=shutil.ignore_patterns("__pycache__"))
        embedder, model_id = load_embedder(None, default_models_dir(), log=lambda m: None)
        index = WorkspaceIndex(ws, embedder, model_id, Path(tmp) / "index", log=lambda m: None)
        index.update()
        target = ws / "indexer" / "chunker.py"
        original = target.read_text()
        times = []
        for i in range(runs):
            target.write_text(original.replace("def _dedent(text: str) -> str:",
                                               f"def _dedent(text: str) -> str:\n    edit = {i}"))
            t = time.perf_counter()
            s = index.reindex_file(target)
            times.append(time.perf_counter() - t)
            assert s.chunks_embedded == 1, s
        ms = np.array(times) * 1000
        return {"runs": runs, "chunks_in_index": index.store.counts()["chunks"],
                "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)}


def index_rss(tree: Path, no_embed: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(Path(sys.executable).with_name("plusls")), "index", str(tree), "--index-dir", tmp]
        if no_embed:
            cmd.append("--no-embed")
        # A fresh parent per measurement: RUSAGE_CHILDREN's peak covers every child a process ever waited for.
        probe = ("import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:], capture_output=True, "
                 "text=True); print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.stdout]))")
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - t
        peak_kb, stdout = json.loads(out.stdout)
        return {"tree": str(tree), "embed": not no_embed, "seconds": round(seconds, 1),
                "peak_rss_mb": round(peak_kb / 1024, 1), "summary": stdout.strip().splitlines()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--tree", default=None, help="default: the installed transformers package, scan only "
                    "(--no-embed), and this repository with embedding")
    ap.add_argument("--no-embed", action="store_true")
    args = ap.parse_args()
    import transformers  # noqa: F401  (only to find its folder; the index itself never imports it)

    out = {"bench": "reindex_latency", "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d"), "reindex_one_file": reindex_latency(args.runs)}
    if args.tree:
        out["index_tree"] = index_rss(Path(args.tree), args.no_embed)
    else:
        out["index_large_tree_scan_only"] = index_rss(Path(transformers.__file__).parent, True)
        out["index_repo_with_embedding"] = index_rss(ROOT, False)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
