"""`plusls train`: argument parsing only; the work is in the training modules (mining, docstring, ...)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plusls.common.paths import default_models_dir, telemetry_log_path
from plusls.exported.defaults import COMPLETER, EMBEDDER, ensure_default

from .completion import train_completion
from .mining import HELD_OUT, default_corpus_dir, main
from .refresh import refresh, roll_back
from .teacher import KINDS, label

CORPUS_HELP = "corpus folder from `plusls train data` (default: its default)"
EMBEDDER_HELP = "sentence-transformers folder to start from (default: the embedded MiniLM)"


def _corpus_parent() -> argparse.ArgumentParser:
    """--corpus, for `parents=` of a subcommand that reads the mined corpus."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--corpus", help=CORPUS_HELP)
    return p


def _run_parent(steps: int, lr: float | None = None, minutes: float = 0.0, steps_help: str | None = None,
                minutes_help: str | None = None) -> argparse.ArgumentParser:
    """--steps, --minutes, --lr (when LR is given), --threads and --seed of a training run, with this subcommand's
    defaults. A new parser per subcommand: argparse shares a parent's actions, so set_defaults on one subcommand
    would change the others' defaults."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--steps", type=int, default=steps, help=steps_help)
    p.add_argument("--minutes", type=float, default=minutes, help=minutes_help)
    if lr is not None:
        p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    return p


def register(subparsers) -> argparse.ArgumentParser:
    t = subparsers.add_parser("train", help="mine training data and train plusls's own models (needs the train extra)",
                              description="Training: corpus mining from permissively licensed local code, and the "
                                          "docstring encoder-decoder.")
    sub = t.add_subparsers(dest="train_command", required=True)
    d = sub.add_parser("data", help="mine (docstring, code), summary and FIM samples from the stdlib and the "
                                    "installed packages (PSF/MIT/BSD/Apache-2.0 only) into a jsonl corpus")
    d.add_argument("--out", help="corpus folder (default: ~/.cache/plusls/training/corpus)")
    d.add_argument("--held-out", nargs="*", help="packages held out for evaluation (default: a fixed list; "
                                                 "stdlib modules as stdlib:NAME)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_data)
    s = sub.add_parser("docstring", help="train the code -> docstring encoder-decoder (MiniLM warm start); "
                                         "resumes from OUT/ckpt.pt",
                       parents=[_corpus_parent(),
                                _run_parent(1000, lr=2e-4, minutes_help="also stop after this many minutes")])
    s.add_argument("--out", required=True, help="run folder: checkpoint, result.json, model/ (Hugging Face format)")
    s.add_argument("--design", default="bert2bert",
                   help="bert2bert or frozen-encoder (see training/docstring.py DESIGNS)")
    s.add_argument("--batch-tokens", type=int, default=2048, help="padded source tokens per batch")
    s.add_argument("--limit", type=int, help="only the first N training pairs")
    s.add_argument("--init-from", help="a previous run folder: continue from its model on a new schedule")
    s.add_argument("--labels", help="teacher summaries from `plusls train label` to train on beside the human ones "
                                    "(its jsonl file, printed by that command)")
    s.set_defaults(func=_docstring)
    lab = sub.add_parser("label", help="the instruct completion model labels each mined function: a summary line "
                                       "(distillation data for the docstring model) or a web-style search query "
                                       "(for the search embedder); resumable: run it again to go on",
                         parents=[_corpus_parent()])
    lab.add_argument("--kind", choices=KINDS, default="summary")
    lab.add_argument("--teacher", help="exported instruct causal LM with a chat template (default: the embedded "
                                       "completer, Qwen2.5-Coder-0.5B-Instruct)")
    lab.add_argument("--split", choices=("train", "heldout"), default="train")
    lab.add_argument("--limit", type=int, help="label only the first N functions of the corpus's seeded order")
    lab.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes (0: no limit)")
    lab.set_defaults(func=_label)
    c = sub.add_parser("contrastive", help="fine-tune the search embedder (MiniLM) with the text-code contrastive "
                                           "loss on the mined (summary, code) pairs; resumes from OUT/ckpt.pt",
                       parents=[_corpus_parent(), _run_parent(300, lr=2e-5)])
    c.add_argument("--out", required=True, help="run folder: checkpoint, result.json, model/ (sentence-transformers)")
    c.add_argument("--embedder", help=EMBEDDER_HELP)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--queries", help="search queries to train on beside the summaries (the jsonl file `plusls train "
                                     "label --kind query` prints)")
    c.add_argument("--freeze-words", action="store_true", help="keep the base model's word embeddings")
    c.add_argument("--interpolate", type=float, default=1.0, metavar="A",
                   help="write base + A * (trained - base); the shipped search encoder took 0.3")
    c.set_defaults(func=_contrastive)
    m = sub.add_parser("matching", help="train the text-code matching cross-encoder (reranker) from MiniLM with "
                                        "hard negatives mined by the frozen embedder; resumes from OUT/ckpt.pt",
                       parents=[_corpus_parent(), _run_parent(1000, lr=5e-5)])
    m.add_argument("--out", required=True, help="run folder: checkpoint, result.json, model/")
    m.add_argument("--embedder", help=EMBEDDER_HELP)
    m.add_argument("--batch-size", type=int, default=16, help="positives per batch (as many negatives)")
    m.add_argument("--limit", type=int, help="only the first N training pairs")
    m.set_defaults(func=_matching)
    f = sub.add_parser("completion", help="fine-tune the completion model (Qwen2.5-Coder-0.5B) on the mined corpus's "
                                          "code with fill-in-the-middle (its own FIM tokens, added only where it "
                                          "has none) and on accepted completions; resumes from OUT/ckpt.pt",
                       parents=[_corpus_parent(), _run_parent(1000, lr=5e-5)])
    f.add_argument("--out", required=True, help="run folder: checkpoint, model/ (Hugging Face format)")
    f.add_argument("--source", help="causal LM to start from: a Hugging Face folder or a GGUF file "
                                    "(default: the embedded Qwen2.5-Coder-0.5B GGUF)")
    f.add_argument("--telemetry", help="accepted-completions log to train on too (default: the server's)")
    f.add_argument("--fim-rate", type=float, default=0.5, help="share of samples in FIM form (the rest left to right)")
    f.add_argument("--limit", type=int, help="only the first N FIM samples")
    f.set_defaults(func=_completion)
    r = sub.add_parser("refresh", help="fine-tune the search and completion models on WORKSPACE (its documented "
                                       "functions, FIM cuts and your accepted completions); a model replaces the "
                                       "serving one only if it measures better on held-out files of WORKSPACE",
                       parents=[_run_parent(100_000, minutes=30.0,
                                            steps_help="also stop each model after this many steps",
                                            minutes_help="training time budget, shared by the models "
                                                         "(exporting and measuring come on top)")])
    r.add_argument("workspace", nargs="?", default=".", help="workspace folder (default: the current folder)")
    r.add_argument("--only", choices=("search", "completion"), help="refresh one model (default: both)")
    r.add_argument("--models-dir", help="exported models folder (default: ~/.cache/plusls/models)")
    r.add_argument("--embedding", help="the exported search embedder to refresh (default: the embedded MiniLM)")
    r.add_argument("--completion", help="the exported completion model to refresh (default: Qwen2.5-Coder-0.5B int8)")
    r.add_argument("--telemetry", help="accepted-completions log (default: the server's)")
    r.add_argument("--rollback", action="store_true", help="put back the models the last refresh replaced")
    r.set_defaults(func=_refresh)
    return t


def _data(args: argparse.Namespace) -> int:
    main(Path(args.out) if args.out else None, args.held_out if args.held_out is not None else HELD_OUT, args.seed,
         log=_log)
    return 0


def _docstring(args: argparse.Namespace) -> int:
    from .docstring import train_docstring  # torch: only when this trainer runs

    result = train_docstring(Path(args.corpus) if args.corpus else default_corpus_dir(), Path(args.out),
                             design=args.design, max_steps=args.steps, max_minutes=args.minutes,
                             max_tokens=args.batch_tokens, lr=args.lr, seed=args.seed, threads=args.threads,
                             limit=args.limit, init_from=Path(args.init_from) if args.init_from else None,
                             labels=Path(args.labels) if args.labels else None)
    print(json.dumps({k: result[k] for k in ("steps", "stopped", "train_seconds", "eval")}))
    return 0


def _label(args: argparse.Namespace) -> int:
    teacher = Path(args.teacher) if args.teacher else ensure_default(COMPLETER, default_models_dir(), log=_log)
    label(Path(args.corpus) if args.corpus else default_corpus_dir(), teacher, args.limit, args.minutes, args.split,
          log=_log, kind=args.kind)
    return 0


def _contrastive(args: argparse.Namespace) -> int:
    from .contrastive import train_contrastive  # torch: only when this trainer runs

    result = train_contrastive(Path(args.corpus) if args.corpus else default_corpus_dir(), Path(args.out),
                               Path(args.embedder) if args.embedder else None, max_steps=args.steps,
                               max_minutes=args.minutes, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               threads=args.threads, queries=Path(args.queries) if args.queries else None,
                               freeze_words=args.freeze_words, interpolate=args.interpolate)
    print(json.dumps({k: result[k] for k in ("steps", "stopped", "train_seconds", "heldout_mrr_before", "eval",
                                             "eval_interpolated") if k in result}))
    return 0


def _matching(args: argparse.Namespace) -> int:
    from .matching import train_matching  # torch: only when this trainer runs

    result = train_matching(Path(args.corpus) if args.corpus else default_corpus_dir(), Path(args.out),
                            Path(args.embedder) if args.embedder else None, max_steps=args.steps,
                            max_minutes=args.minutes, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            threads=args.threads, limit=args.limit)
    print(json.dumps({k: result.get(k) for k in ("steps", "stopped", "train_seconds", "eval")}))
    return 0


def _completion(args: argparse.Namespace) -> int:
    result = train_completion(Path(args.corpus) if args.corpus else default_corpus_dir(),
                              Path(args.source).expanduser() if args.source else COMPLETER.source(), Path(args.out),
                              steps=args.steps, minutes=args.minutes, seed=args.seed, threads=args.threads,
                              lr=args.lr, fim_rate=args.fim_rate, limit=args.limit,
                              telemetry=Path(args.telemetry).expanduser() if args.telemetry else telemetry_log_path())
    print(json.dumps(result))
    print(f"export it: plusls export {result['model']} --kind causal-lm --int8 --out DIR; "
          "measure it: plusls eval humaneval --model DIR", file=sys.stderr)
    return 0


def _refresh(args: argparse.Namespace) -> int:
    log = _log
    models = Path(args.models_dir).expanduser() if args.models_dir else default_models_dir()
    chosen = {"search": (args.embedding, EMBEDDER), "completion": (args.completion, COMPLETER)}
    chosen = {name: pair for name, pair in chosen.items() if args.only in (None, name)}
    if args.rollback:
        for given, default in chosen.values():
            print(roll_back(Path(given).expanduser() if given else models / default.name))
        return 0
    targets = {name: Path(given).expanduser() if given else ensure_default(default, models, log)
               for name, (given, default) in chosen.items()}
    outcomes = refresh(Path(args.workspace), targets, minutes=args.minutes, steps=args.steps, seed=args.seed,
                       threads=args.threads, log=log,
                       telemetry=Path(args.telemetry).expanduser() if args.telemetry else telemetry_log_path())
    for o in outcomes:
        print(o.line())
    return 0 if any(o.swapped for o in outcomes) else 3


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
