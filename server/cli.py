"""`plusls serve`, `plusls demo` and `plusls doctor`: argument parsing only."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from plusls.common.cli_args import models_dir_parent
from plusls.exported.doctor import collect, format_report
from plusls.exported.sessions import RuntimeOptions

from .demo import run_demo
from .doctor import completer_report, format_completer
from .lsp_server import serve


def _serve(args: argparse.Namespace) -> int:
    serve()
    return 0


def _demo(args: argparse.Namespace) -> int:
    run_demo(Path(args.models_dir), Path(args.workspace), Path(args.log).expanduser() if args.log else None)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    options = RuntimeOptions.from_env()
    report = collect(Path(args.models_dir), options)
    report["completion_model"] = completer_report(Path(args.models_dir), options, args.bench)
    print(json.dumps(report, indent=2) if args.json else
          "\n".join([format_report(report), *format_completer(report["completion_model"])]))
    return 0


def register(sub) -> None:
    d = sub.add_parser("doctor", parents=[models_dir_parent()], help="versions, providers, models, GPU, which "
                       "completion model this machine serves")
    d.add_argument("--json", action="store_true")
    d.add_argument("--bench", action="store_true", help="measure the default completers' speed here again "
                   "(a few seconds each) and choose from it")
    d.set_defaults(func=_doctor)

    v = sub.add_parser("serve", help="run the language server on stdio (what an editor starts)")
    v.add_argument("--stdio", action="store_true", help="accepted for editors that pass it; stdio is the default")
    v.set_defaults(func=_serve)

    m = sub.add_parser("demo", parents=[models_dir_parent()],
                       help="export the default models, search, index, complete, doctor")
    m.add_argument("--workspace", default=".", help="the folder to index and search (default: current folder)")
    m.add_argument("--log", help="send details (export logs, warnings, the server's stderr) to this file")
    m.set_defaults(func=_demo)
