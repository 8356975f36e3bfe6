"""`plusls export`: argument parsing only."""
from __future__ import annotations

import argparse

from plusls.common.errors import PluslsError

from .export import export_model


def _export(args: argparse.Namespace) -> int:
    try:
        export_model(args.src, args.kind, args.out, int8=args.int8, force=args.force, parity=args.parity)
    except ImportError as e:  # torch, transformers, optimum: all but a Llama/Qwen2 GGUF export need them
        raise PluslsError(f"this export needs the train extra ({e.name} is missing): pip install 'plusls[train]'") \
            from e
    return 0


def register(sub) -> None:
    e = sub.add_parser("export", help="export a local checkpoint directory (or .gguf file) to ONNX")
    e.add_argument("src", help="local Hugging Face checkpoint directory or .gguf file (never a hub id)")
    e.add_argument("--kind", required=True, choices=["causal-lm", "seq2seq", "embedding", "matching"])
    e.add_argument("--out", required=True)
    e.add_argument("--int8", action="store_true", help="quantize weights to int8 (refused where it changes the "
                   "model's choices)")
    e.add_argument("--parity", action="store_true", help="a GGUF file: also check the export against PyTorch "
                   "(needs the train extra and the fp32 model's size in memory; checkpoints are always checked)")
    e.add_argument("--force", action="store_true", help="replace OUT if it exists")
    e.set_defaults(func=_export)
