"""`plusls index` and `plusls search`: argument parsing and printing; the work is in workspace_index and search."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from plusls.common.cli_args import models_dir_parent
from plusls.common.errors import PluslsError

from .embedding_model import first_pass_for, load_embedder
from .progress_bar import ProgressBar
from .remote_embedder import RemoteEmbedder
from .rerankers import load_reranker
from .search import search
from .workspace_index import WorkspaceIndex, default_index_dir


def _open_index(args: argparse.Namespace, read_only: bool = False) -> WorkspaceIndex:
    root = Path(args.path)
    if not root.is_dir():
        raise PluslsError(f"{root} is not a folder; pass the workspace folder")
    embedder, model_id = _embedder(args)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    return WorkspaceIndex(root, embedder, model_id, args.index_dir, max_bytes=args.max_bytes, log=log,
                          read_only=read_only, static=first_pass_for(embedder, model_id, log))


def _embedder(args: argparse.Namespace):
    """(embedder, model id): an /v1/embeddings endpoint (--embed-url) or the local model."""
    if args.embed_url:
        remote = RemoteEmbedder(args.embed_url, args.embed_model, args.embed_key_env)
        return remote, remote.model_id
    return load_embedder(args.model, Path(args.models_dir), log=lambda m: print(m, file=sys.stderr))


def _shared(args: argparse.Namespace, path: str):
    from .shared_index import SharedIndex  # psycopg: only for a shared index

    if not Path(path).is_dir():
        raise PluslsError(f"{path} is not a folder; pass the repository folder")
    embedder, model_id = _embedder(args)
    return SharedIndex(args.store, path, embedder, model_id, repo=args.repo, max_bytes=args.max_bytes,
                       log=lambda m: print(m, file=sys.stderr))


def _index_shared(args: argparse.Namespace) -> int:
    if args.repo and len(args.path) > 1:
        raise PluslsError("--repo names one repository: pass one path with it")
    for path in args.path:
        index = _shared(args, path)
        summary = index.update(progress=ProgressBar())
        counts = index.counts()
        print(f"{index.repo}: indexed {summary.files_indexed} files ({summary.files_unchanged} unchanged, "
              f"{summary.files_removed} removed), {summary.chunks_added} chunks in {summary.seconds:.1f}s; the shared "
              f"index holds {counts['files']} files, {counts['chunks']} chunks of it")
        index.close()
    return 0


def _index(args: argparse.Namespace) -> int:
    if args.store:
        return _index_shared(args)
    if len(args.path) > 1:
        raise PluslsError("a local index covers one workspace: pass one path (several go into a --store)")
    args.path = args.path[0]
    if args.rebuild:
        shutil.rmtree(Path(args.index_dir) if args.index_dir else default_index_dir(Path(args.path)),
                      ignore_errors=True)
    index = _open_index(args)
    summary = index.update(progress=ProgressBar(), embed=not args.no_embed)
    counts = index.store.counts()
    skipped = ", ".join(f"{n} {r}" for r, n in sorted(summary.skipped.items())) or "none"
    print(f"indexed {summary.files_indexed} files ({summary.files_unchanged} unchanged, {summary.files_removed} "
          f"removed), {summary.chunks_added} chunks added, {summary.chunks_removed} removed, "
          f"{summary.chunks_embedded} embedded ({summary.chunks_per_s:.0f} chunks/s) in {summary.seconds:.1f}s "
          f"(searchable after {summary.scan_seconds:.1f}s)")
    print(f"skipped: {skipped}")
    print(f"index: {counts['files']} files, {counts['chunks']} chunks, {counts['embedded']} with vectors "
          f"({index.vectors.kind}) in {index.dir}")
    if summary.repaired:
        print(f"repaired after an interrupted run: {summary.repaired}")
    return 0


def _search(args: argparse.Namespace) -> int:
    if args.store:
        response = _shared(args, args.path).search(args.query, k=args.k)
    else:
        index_dir = Path(args.index_dir) if args.index_dir else default_index_dir(Path(args.path))
        if not (index_dir / "index.sqlite").exists():
            raise PluslsError(f"{args.path} has no index yet; run `plusls index {args.path}` first")
        reranker = load_reranker(args.rerank) if args.rerank else None
        response = search(_open_index(args, read_only=True), args.query, k=args.k, language=args.lang,
                          path_glob=args.glob, mode=args.mode, reranker=reranker)
    if args.json:
        print(json.dumps(response.to_dict(), indent=2))
        return 0
    if response.chunks_embedded < response.chunks_total:
        print(f"(vectors cover {response.chunks_embedded}/{response.chunks_total} chunks: indexing is not finished)")
    for n, r in enumerate(response.results, 1):
        print(f"{n:>2}. {r.path}:{r.start_line}-{r.end_line}  {r.qualname}  ({r.kind}, {r.score:.4f})")
        print("".join(f"      {line}\n" for line in r.snippet.split("\n")), end="")
    if not response.results:
        print("no results")
    return 0


def register(sub) -> None:
    models = models_dir_parent()
    ws = argparse.ArgumentParser(add_help=False)
    ws.add_argument("--model", default=None, help="exported embedding model directory (default: the fine-tuned MiniLM)")
    ws.add_argument("--index-dir", default=None, help="where the index lives (default: per workspace under "
                    "~/.cache/plusls/index; env PLUSLS_INDEX_DIR)")
    ws.add_argument("--max-bytes", type=int, default=1_000_000, help="skip files larger than this")
    ws.add_argument("--store", default=os.environ.get("PLUSLS_INDEX_STORE"), metavar="URL",
                    help="a shared index: postgresql://user@host/db with pgvector (env PLUSLS_INDEX_STORE); "
                    "the password from ~/.pgpass or PGPASSWORD, not the URL")
    ws.add_argument("--repo", default=None, help="the repository's name in a shared index (default: its folder's)")
    ws.add_argument("--embed-url", default=None, help="an OpenAI-compatible /v1/embeddings server to embed with")
    ws.add_argument("--embed-model", default=None, help="the model name to send to --embed-url")
    ws.add_argument("--embed-key-env", default=None, help="the environment variable holding --embed-url's API key")

    i = sub.add_parser("index", parents=[models, ws], help="index a workspace for semantic search")
    i.add_argument("path", nargs="*", default=["."], help="the workspace (several: each a repository of --store)")
    i.add_argument("--rebuild", action="store_true", help="delete the index and build it again")
    i.add_argument("--no-embed", action="store_true", help="chunk and BM25 only; embed later")
    i.set_defaults(func=_index)

    s = sub.add_parser("search", parents=[models, ws], help="search an indexed workspace")
    s.add_argument("query")
    s.add_argument("--path", default=".", help="the workspace (default: current folder)")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--lang", default=None, help="only this language (python, javascript, typescript, go, ...)")
    s.add_argument("--glob", default=None, help="only paths matching this glob, e.g. 'src/*'")
    s.add_argument("--mode", default="hybrid", choices=["hybrid", "vector", "bm25"])
    s.add_argument("--rerank", metavar="completer|DIR", default=None,
                   help="rerank the top results by the completion model's likelihood of the query ('completer', or "
                        "an instruct model's export), or with an exported matching model (plusls export --kind "
                        "matching)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_search)
