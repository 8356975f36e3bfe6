"""`plusls eval`: argument parsing only; the work is run.run_eval. Imports stay light (argparse only)."""
from __future__ import annotations

import argparse
import shlex
import sys

from .run import EvalOptions, run_eval, summary
from .sampling import Settings

TASK_HELP = "humaneval, mbpp, mtpb, infilling, summarize, hover, search"


def register(subparsers) -> argparse.ArgumentParser:
    e = subparsers.add_parser(
        "eval",
        help="run a benchmark (HumanEval, MBPP, MTPB, infilling, summarize, hover, CoSQA search) on a model",
        description="Sample a model on a benchmark, run generated code in a sandbox, report pass@k / BLEU.")
    e.add_argument("task", help=TASK_HELP)
    e.add_argument("--model", help="exported model directory, `completer` (the embedded completer), or "
                                   "baseline:reference / baseline:identifier-words (default: the embedded completer, "
                                   "Qwen2.5-Coder-0.5B, for code tasks; the bundled docstring model for summarize and "
                                   "hover, where an instruct causal LM answers in chat form)")
    e.add_argument("--models-dir", help="where the default model is exported (default: plusls's models folder)")
    e.add_argument("--data", help="benchmark data: the folder laid out as shared/eval (default: $PLUSLS_EVAL_DATA "
                                  "or ../shared/eval beside the repo), a task folder, or the task's file")
    e.add_argument("--limit", type=int, help="only the first N problems")
    e.add_argument("--samples", type=int, default=1, help="samples per problem, n of pass@k (default 1)")
    e.add_argument("--temperature", type=float, help="0 = greedy (default for 1 sample; 0.8 for more)")
    e.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling when temperature > 0")
    e.add_argument("--max-new-tokens", type=int, help="per generation (default: the task's)")
    e.add_argument("--prompt-format", default="raw",
                   help="raw (default), fence, indent, fence-indent, chatml; humaneval takes all, mbpp raw/fence/"
                        "chatml, mtpb and infilling raw/fence")
    e.add_argument("--batch-size", type=int, default=1, help="prompts per model call")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--timeout", type=float, help="seconds per program in the sandbox (default: the task's)")
    e.add_argument("--workers", type=int, default=2, help="sandboxed programs run in parallel")
    e.add_argument("--sandbox", default="auto", help="auto, namespace (root, Linux) or guard (weaker)")
    e.add_argument("--memory-mb", type=int, default=2048, help="address-space limit per program")
    e.add_argument("--infill-mode", default="auto",
                   help="infilling: auto (what the server shows with the model: choice for the default 0.5B, else "
                        "fim or prefix), choice, fim, prefix or both")
    e.add_argument("--subset", default="single", help="infilling: single or multi (line infilling)")
    e.add_argument("--rerank", metavar="completer|DIR",
                   help="search: also rank hybrid+rerank, by the completion model's likelihood of the query "
                        "('completer', or an instruct model's export) or with an exported matching model")
    e.add_argument("--json", dest="json_path", metavar="F", help="write the full results (every sample) to F")
    e.add_argument("--report", dest="report_path", metavar="F",
                   help="write a Markdown report to F with PNG plots beside it")
    e.set_defaults(func=_eval)
    return e


def _eval(args: argparse.Namespace) -> int:
    temperature = args.temperature if args.temperature is not None else (0.0 if args.samples == 1 else 0.8)
    settings = Settings(samples=args.samples, temperature=temperature, top_p=args.top_p,
                        max_new_tokens=args.max_new_tokens, prompt_format=args.prompt_format,
                        batch_size=args.batch_size, seed=args.seed, timeout_s=args.timeout, workers=args.workers)
    options = EvalOptions(task=args.task, model=args.model, data=args.data, limit=args.limit, settings=settings,
                          sandbox=args.sandbox, memory_mb=args.memory_mb, infill_mode=args.infill_mode,
                          subset=args.subset, rerank=args.rerank, json_path=args.json_path,
                          report_path=args.report_path,
                          command="plusls " + shlex.join(sys.argv[1:]), models_dir=args.models_dir)
    print(summary(run_eval(options)))
    return 0
