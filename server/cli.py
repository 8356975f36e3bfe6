"""The `plusls` command. Each subcommand parses its arguments and calls one domain function."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plusls.exported.errors import PluslsError
from plusls.exported.sessions import RuntimeOptions
from plusls.server.paths import default_models_dir


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


def _demo(args: argparse.Namespace) -> int:
    from plusls.server.demo import run_demo

    run_demo(Path(args.models_dir))
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
    e.add_argument("--kind", required=True, choices=["causal-lm", "seq2seq", "embedding"])
    e.add_argument("--out", required=True)
    e.add_argument("--int8", action="store_true", help="quantize weights to int8 after the fp32 parity check")
    e.add_argument("--force", action="store_true", help="replace OUT if it exists")
    e.set_defaults(func=_export)

    m = sub.add_parser("demo", parents=[models], help="export the embedded default models, embed, complete, doctor")
    m.set_defaults(func=_demo)
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
