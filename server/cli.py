"""`plusls serve` and `plusls demo`: argument parsing only."""
from __future__ import annotations

import argparse
from pathlib import Path

from plusls.common.cli_args import models_dir_parent

from .demo import run_demo
from .lsp_server import serve


def _serve(args: argparse.Namespace) -> int:
    serve()
    return 0


def _demo(args: argparse.Namespace) -> int:
    run_demo(Path(args.models_dir), Path(args.workspace), Path(args.log).expanduser() if args.log else None)
    return 0


def register(sub) -> None:
    v = sub.add_parser("serve", help="run the language server on stdio (what an editor starts)")
    v.add_argument("--stdio", action="store_true", help="accepted for editors that pass it; stdio is the default")
    v.set_defaults(func=_serve)

    m = sub.add_parser("demo", parents=[models_dir_parent()],
                       help="export the default models, search, index, complete, doctor")
    m.add_argument("--workspace", default=".", help="the folder to index and search (default: current folder)")
    m.add_argument("--log", help="send details (export logs, warnings, the server's stderr) to this file")
    m.set_defaults(func=_demo)
