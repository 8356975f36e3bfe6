"""The `plusls` command: the subcommands each package registers, under one parser."""
from __future__ import annotations

import argparse
import sys

from plusls.common.errors import PluslsError
from plusls.evaluation import cli as evaluation_cli
from plusls.exported import cli as exported_cli
from plusls.indexer import cli as indexer_cli
from plusls.server import cli as server_cli
from plusls.training import cli as training_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plusls", description="Offline AI language server for code")
    sub = p.add_subparsers(dest="command", required=True)
    for package in (exported_cli, indexer_cli, server_cli, evaluation_cli, training_cli):
        package.register(sub)
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
