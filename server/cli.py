"""The `plusls` command. Each subcommand parses its arguments and calls one domain function."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plusls.exported.errors import PluslsError
from plusls.exported.sessions import RuntimeOptions
from plusls.server.paths import default_models_dir
from plusls.training.cli import add_train_parser
from plusls.training.evaluation.cli import add_eval_parser


def _doctor(args: argparse.Namespace) -> int:
    from plusls.exported.doctor import collect, format_report

    report = collect(Path(args.models_dir), RuntimeOptions.from_env())
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _export(args: argparse.Namespace) -> int:
    try:
        from plusls.exported.export import export_model
    except ImportError as e:
        raise PluslsError(f"export needs the train extra ({e.name} is missing): pip install 'plusls[train]'") from e
    export_model(args.src, args.kind, args.out, int8=args.int8, force=args.force)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from plusls.server.lsp_server import serve

    serve()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from plusls.server.demo import run_demo

    run_demo(Path(args.models_dir), Path(args.workspace))
    return 0


def _open_index(args: argparse.Namespace, read_only: bool = False):
    from plusls.indexer.embedding_model import load_embedder
    from plusls.indexer.workspace_index import WorkspaceIndex

    root = Path(args.path)
    if not root.is_dir():
        raise PluslsError(f"{root} is not a folder; pass the workspace folder")
    embedder, model_id = load_embedder(args.model, Path(args.models_dir), log=lambda m: print(m, file=sys.stderr))
    return WorkspaceIndex(root, embedder, model_id, args.index_dir, max_bytes=args.max_bytes,
                          log=lambda m: print(m, file=sys.stderr), read_only=read_only)


def _index(args: argparse.Namespace) -> int:
    from plusls.indexer.workspace_index import default_index_dir
    from plusls.server.progress_bar import ProgressBar

    if args.rebuild:
        import shutil

        shutil.rmtree(Path(args.index_dir) if args.index_dir else default_index_dir(Path(args.path)),
                      ignore_errors=True)
    index = _open_index(args)
    summary = index.update(progress=ProgressBar(), embed=not args.no_embed)
    counts = index.store.counts()
    skipped = ", ".join(f"{n} {r}" for r, n in sorted(summary.skipped.items())) or "none"
    print(f"indexed {summary.files_indexed} files ({summary.files_unchanged} unchanged, {summary.files_removed} "
          f"removed), {summary.chunks_added} chunks added, {summary.chunks_removed} removed, "
          f"{summary.chunks_embedded} embedded ({summary.chunks_per_s:.0f} chunks/s) in {summary.seconds:.1f}s")
    print(f"skipped: {skipped}")
    print(f"index: {counts['files']} files, {counts['chunks']} chunks, {counts['embedded']} with vectors "
          f"({index.vectors.kind}) in {index.dir}")
    if summary.repaired:
        print(f"repaired after an interrupted run: {summary.repaired}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from plusls.indexer.search import search
    from plusls.indexer.workspace_index import default_index_dir

    index_dir = Path(args.index_dir) if args.index_dir else default_index_dir(Path(args.path))
    if not (index_dir / "index.sqlite").exists():
        raise PluslsError(f"{args.path} has no index yet; run `plusls index {args.path}` first")
    reranker = None
    if args.rerank:
        from plusls.exported.matching import Matcher

        reranker = Matcher(Path(args.rerank))
    response = search(_open_index(args, read_only=True), args.query, k=args.k, language=args.lang, path_glob=args.glob,
                      mode=args.mode, reranker=reranker)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plusls", description="Offline AI language server for code")
    sub = p.add_subparsers(dest="command", required=True)
    models = argparse.ArgumentParser(add_help=False)
    models.add_argument("--models-dir", default=str(default_models_dir()),
                        help="where exported models live (default: %(default)s; env PLUSLS_MODELS_DIR)")

    d = sub.add_parser("doctor", parents=[models], help="versions, providers, models, GPU")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_doctor)

    e = sub.add_parser("export", help="export a local checkpoint directory (or .gguf file) to ONNX")
    e.add_argument("src", help="local Hugging Face checkpoint directory or .gguf file (never a hub id)")
    e.add_argument("--kind", required=True, choices=["causal-lm", "seq2seq", "embedding", "matching"])
    e.add_argument("--out", required=True)
    e.add_argument("--int8", action="store_true", help="quantize weights to int8 after the fp32 parity check")
    e.add_argument("--force", action="store_true", help="replace OUT if it exists")
    e.set_defaults(func=_export)

    ws = argparse.ArgumentParser(add_help=False)
    ws.add_argument("--model", default=None, help="exported embedding model directory (default: all-MiniLM-L6-v2)")
    ws.add_argument("--index-dir", default=None, help="where the index lives (default: per workspace under "
                    "~/.cache/plusls/index; env PLUSLS_INDEX_DIR)")
    ws.add_argument("--max-bytes", type=int, default=1_000_000, help="skip files larger than this")

    i = sub.add_parser("index", parents=[models, ws], help="index a workspace for semantic search")
    i.add_argument("path", nargs="?", default=".")
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
    s.add_argument("--rerank", metavar="DIR", default=None,
                   help="rerank the top results with this exported matching model (plusls export --kind matching)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_search)

    v = sub.add_parser("serve", help="run the language server on stdio (what an editor starts)")
    v.add_argument("--stdio", action="store_true", help="accepted for editors that pass it; stdio is the default")
    v.set_defaults(func=_serve)

    m = sub.add_parser("demo", parents=[models], help="export the default models, search, index, complete, doctor")
    m.add_argument("--workspace", default=".", help="the folder to index and search (default: current folder)")
    m.set_defaults(func=_demo)
    add_eval_parser(sub)
    add_train_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PluslsError as e:
        print(f"plusls: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("plusls: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
