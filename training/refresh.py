"""`plusls train refresh [WORKSPACE]`: fine-tune the serving models on the user's own code, swap only what measures
better.

1. Samples from the workspace, read with the indexer's walker (.gitignore, secrets and size rules) and tree-sitter
   chunker: (docstring summary, code) pairs of documented functions, fill-in-the-middle cuts of Python files, and
   the completions this user accepted in this workspace (the server's telemetry log). Whole files are held out.
2. Per model (search embedder, completion LM): measure the serving ONNX model on the held-out samples, fine-tune its
   PyTorch source within the time budget, export it (same int8 setting, parity checked) next to the current one,
   measure the export the same way, and swap the directories in one rename only if it is better. Until that
   rename the current model serves; an interrupted refresh leaves only a staging folder, removed by the next run.
3. A running server notices the replaced manifest on its next request and loads the new model (no restart).
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from plusls.common.dirs import exchange
from plusls.common.errors import PluslsError
from plusls.common.metrics import diagonal_mrr
from plusls.completion.prompt import Cursor, PromptBuilder, WindowState
from plusls.exported.export import export_model
from plusls.exported import Embedder
from plusls.exported.causal_lm import CausalLM
from plusls.exported.generation import GenerationConfig
from plusls.exported.manifest import read_manifest
from plusls.indexer.chunker import chunk_file
from plusls.indexer.walker import DEFAULT_MAX_BYTES, check_content, walk
from plusls.indexer.workspace_index import default_index_dir

from .completion import PREFIX_TOKENS, SUFFIX_TOKENS, accepted_completions, prepare_causal_source, train_fim
from .mining import fim_samples, first_sentence, strip_docstring

Log = Callable[[str], None]
HELDOUT_FRACTION = 0.25
MIN_TRAIN_PAIRS, MIN_HELDOUT_PAIRS = 8, 4
FIM_PER_FILE = 6
MAX_FIM_EVAL = 60  # held-out completion cuts measured (each one is a greedy generation)


class RefreshError(PluslsError):
    pass


@dataclass
class Samples:
    pairs: dict[str, list[dict]] = field(default_factory=lambda: {"train": [], "heldout": []})  # summary, code
    fim: dict[str, list[dict]] = field(default_factory=lambda: {"train": [], "heldout": []})  # prefix/middle/suffix
    accepted: int = 0
    files: int = 0


@dataclass
class Outcome:
    model: str
    metric: str
    before: float
    after: float | None = None
    swapped: bool = False
    reason: str = ""
    steps: int = 0

    def line(self) -> str:
        after = "n/a" if self.after is None else f"{self.after:.4f}"
        verdict = "replaced" if self.swapped else "kept the current model"
        return f"{self.model}: held-out {self.metric} {self.before:.4f} -> {after} ({self.steps} steps): {verdict}" \
               + (f"; {self.reason}" if self.reason else "")


# --- samples ------------------------------------------------------------------------------------------------------
def heldout_files(paths: list[str], seed: int) -> set[str]:
    """A fixed share of the files (at least one), chosen by a seeded hash: a file is all train or all held-out."""
    ranked = sorted(paths, key=lambda p: hashlib.sha1(f"{seed}:{p}".encode()).hexdigest())
    return set(ranked[: max(1, round(len(ranked) * HELDOUT_FRACTION))]) if len(ranked) > 1 else set()


def workspace_samples(root: Path, seed: int = 0, max_bytes: int = DEFAULT_MAX_BYTES,
                      telemetry: Path | None = None) -> Samples:
    root = Path(root).resolve()
    per_file: dict[str, tuple[list[dict], list[dict]]] = {}
    for rel, skip, full in walk(root, max_bytes):
        if skip:
            continue
        try:
            data = full.read_bytes()
        except OSError:
            continue
        if check_content(full.name, data, max_bytes):
            continue
        text = data.decode("utf-8")
        chunks = chunk_file(rel, text)
        pairs = []
        for c in chunks:
            if c.kind not in ("function", "method") or not c.docstring:
                continue
            summary = first_sentence(c.docstring)
            code = (strip_docstring(c.text) if c.language == "python" else c.text) or c.text
            if len(summary.split()) >= 3:
                pairs.append({"summary": summary, "code": code, "path": rel})
        fims = fim_samples(text, random.Random(f"{seed}:{rel}"), chunks, FIM_PER_FILE) if rel.endswith(".py") else []
        if pairs or fims:
            per_file[rel] = (pairs, [{**f, "path": rel} for f in fims])
    held = heldout_files(sorted(per_file), seed)
    out = Samples(files=len(per_file))
    for rel, (pairs, fims) in per_file.items():
        split = "heldout" if rel in held else "train"
        out.pairs[split] += pairs
        out.fim[split] += fims
    for record in accepted_completions(telemetry):  # this workspace's, for training only, never from a held-out file
        path = Path(record["path"]).resolve() if record["path"] else None
        if path is not None and path.is_relative_to(root) and path.relative_to(root).as_posix() not in held:
            out.fim["train"].append(record)
            out.accepted += 1
    return out


# --- swapping directories ----------------------------------------------------------------------------------------
def staging_dir(current: Path) -> Path:
    return current.with_name(f".{current.name}.refresh")


def previous_dir(current: Path) -> Path:
    return current.with_name(f"{current.name}.previous")


def swap_in(staged: Path, current: Path) -> Path:
    """Put the staged export in place of the current one; the replaced model is kept at NAME.previous."""
    exchange(staged, current)
    previous = previous_dir(current)
    shutil.rmtree(previous, ignore_errors=True)
    os.replace(staged, previous)
    return previous


def roll_back(current: Path) -> str:
    """Put NAME.previous back in place in one exchange; the refreshed model becomes NAME.previous, so rolling back
    twice restores the refresh. A running server picks the change up like a refresh."""
    previous = previous_dir(current)
    if not (previous / "manifest.json").is_file():
        raise RefreshError(f"{current} has no previous model to go back to (no {previous.name} beside it)")
    exchange(previous, current)
    return f"{current}: back to the model before the last refresh (the refreshed one is now {previous})"


def torch_source(current: Path) -> Path:
    """The PyTorch weights the serving export came from (the manifest records them)."""
    source = read_manifest(current).source or ""
    path = Path(source.split(" (GGUF")[0])
    if not path.exists():
        raise RefreshError(f"{current} was exported from {source or 'an unrecorded source'}, which is not on this "
                           "machine: export the model again from its checkpoint (`plusls export`) and refresh then")
    return path


# --- search --------------------------------------------------------------------------------------------------------
def heldout_mrr(model_dir: Path, pairs: list[dict]) -> float:
    """MRR of each held-out summary's own code among all held-out code, through the exported ONNX model."""
    embedder = Embedder(model_dir)
    texts = embedder.embed([p["summary"] for p in pairs])
    codes = embedder.embed([p["code"] for p in pairs])
    if not (np.isfinite(texts).all() and np.isfinite(codes).all()):
        return 0.0
    return diagonal_mrr(texts @ codes.T)


def refresh_search(current: Path, samples: Samples, run: Path, steps: int, minutes: float, seed: int,
                   threads: int, lr: float, log: Log) -> Outcome:
    from .contrastive import fine_tune_embedder  # torch

    source = torch_source(current)  # before any work: a missing checkpoint is said at once
    train, held = samples.pairs["train"], samples.pairs["heldout"]
    before = heldout_mrr(current, held)
    outcome = Outcome("search embedder", "text->code MRR", before)
    if len(train) < MIN_TRAIN_PAIRS or len(held) < MIN_HELDOUT_PAIRS:
        outcome.reason = (f"too few documented functions ({len(train)} to train on, {len(held)} held out; needs "
                          f"{MIN_TRAIN_PAIRS} and {MIN_HELDOUT_PAIRS})")
        return outcome
    log(f"search: fine-tuning on {len(train)} (summary, code) pairs, {len(held)} held out; MRR now {before:.4f}")
    # The loop's own eval (PyTorch) watches a slice; the verdict is measured on the exports, on all held-out pairs.
    result = fine_tune_embedder(source, train, held[:200], run, max_steps=steps, max_minutes=minutes,
                                batch_size=16, lr=lr, seed=seed, threads=threads, log=log)
    outcome.steps = result["steps"]
    return stage_and_swap(outcome, current, lambda out: export_model(
        run / "model", "embedding", out, int8=read_manifest(current).quantization is not None, force=True, log=log),
        lambda staged: heldout_mrr(staged, held), log)


def stage_and_swap(outcome: Outcome, current: Path, export: Callable[[Path], object],
                   measure: Callable[[Path], float], log: Log) -> Outcome:
    staged = staging_dir(current)
    log(f"{outcome.model}: exporting to {staged} (parity checked)")
    try:
        export(staged)
    except PluslsError as e:
        shutil.rmtree(staged, ignore_errors=True)
        outcome.reason = f"the refreshed model did not export ({e}), so it was refused"
        return outcome
    outcome.after = measure(staged)
    if outcome.after <= outcome.before:
        shutil.rmtree(staged, ignore_errors=True)
        outcome.reason = (f"the refreshed model measures {'the same' if outcome.after == outcome.before else 'worse'}"
                          f" on held-out code of this workspace ({outcome.after:.4f} vs {outcome.before:.4f}), so it"
                          " was refused; try more steps/minutes or a workspace with more documented functions")
        return outcome
    previous = swap_in(staged, current)
    outcome.swapped = True
    outcome.reason = f"the previous model is kept in {previous}"
    return outcome


# --- completion ----------------------------------------------------------------------------------------------------
def first_line_match(model_dir: Path, cuts: list[dict]) -> float:
    """Share of held-out line cuts whose first line the exported model writes exactly (greedy), prompted as the
    server prompts it: FIM when its manifest declares FIM tokens, else the prefix alone."""

    lm = CausalLM(model_dir)
    # The server's prompt builder, with the windows the model was trained with.
    builder = PromptBuilder(lm.tokenizer, lm.manifest.fim, PREFIX_TOKENS + SUFFIX_TOKENS, SUFFIX_TOKENS)
    config = GenerationConfig(max_new_tokens=32, stop=("\n",))
    hits = 0
    for cut in cuts:
        cursor = Cursor(cut["prefix"] + cut["suffix"], len(cut["prefix"]), "python")
        text = lm.generate_ids([builder.build(cursor, WindowState())], config)[0].text
        hits += text.split("\n")[0].strip() == cut["middle"].split("\n")[0].strip()
    return hits / max(1, len(cuts))


def refresh_completion(current: Path, samples: Samples, run: Path, steps: int, minutes: float, seed: int,
                       threads: int, lr: float, log: Log) -> Outcome:
    source = torch_source(current)
    cuts = [f for f in samples.fim["heldout"] if f["cut"] == "lines" and f["middle"].strip()][:MAX_FIM_EVAL]
    train = samples.fim["train"]
    before = first_line_match(current, cuts) if cuts else 0.0
    outcome = Outcome("completion model", "first-line exact match", before)
    if len(train) < MIN_TRAIN_PAIRS or len(cuts) < MIN_HELDOUT_PAIRS:
        outcome.reason = f"too few fill-in-the-middle samples ({len(train)} to train on, {len(cuts)} held out)"
        return outcome
    log(f"completion: fine-tuning on {len(train)} FIM samples ({samples.accepted} accepted completions), "
        f"{len(cuts)} held-out lines; first-line exact match now {before:.4f}")
    source = prepare_causal_source(source, run)
    outcome.steps = train_fim(source, train, run, steps, minutes, seed, threads, lr, log)

    return stage_and_swap(outcome, current, lambda out: export_model(
        run / "model", "causal-lm", out, int8=read_manifest(current).quantization is not None, force=True, log=log),
        lambda staged: first_line_match(staged, cuts), log)


# --- the command ---------------------------------------------------------------------------------------------------
def refresh(workspace: Path, targets: dict[str, Path], minutes: float = 30.0, steps: int = 100_000, seed: int = 0,
            threads: int = 0, lr: dict[str, float] | None = None, telemetry: Path | None = None,
            runs_dir: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES, log: Log | None = None) -> list[Outcome]:
    """targets: "search" and/or "completion" -> the exported model directory that serves it now.
    `minutes` is the training budget, shared evenly; measuring and exporting come on top."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    workspace = Path(workspace).expanduser()
    if not workspace.is_dir():
        raise RefreshError(f"{workspace} is not a folder; pass the workspace folder to refresh on")
    for name, current in targets.items():
        read_manifest(current, verify=True)  # a clear error before any work when a model folder is broken
        shutil.rmtree(staging_dir(current), ignore_errors=True)  # left by an interrupted refresh
    t0 = time.perf_counter()
    samples = workspace_samples(workspace, seed, max_bytes, telemetry)
    log(f"read {samples.files} files of {workspace}: {len(samples.pairs['train'])}+{len(samples.pairs['heldout'])} "
        f"(summary, code) pairs, {len(samples.fim['train'])}+{len(samples.fim['heldout'])} FIM samples "
        f"(train+held-out, {samples.accepted} accepted completions) in {time.perf_counter() - t0:.1f}s")
    runs = runs_dir or _default_runs_dir(workspace)
    lr = {"search": 2e-5, "completion": 5e-5, **(lr or {})}
    work = {"search": refresh_search, "completion": refresh_completion}
    outcomes = []
    for name, current in targets.items():
        run = runs / name / time.strftime("%Y%m%d-%H%M%S")
        outcome = work[name](Path(current), samples, run, steps, minutes / len(targets), seed, threads, lr[name],
                             log)
        if outcome.swapped or outcome.after is None and (run / "model").is_dir():
            # Swapped: run/model is the serving model's source now (its manifest says so). Not exported: the
            # trained weights may still be worth having, exported another way.
            (run / "ckpt.pt").unlink(missing_ok=True)
            shutil.rmtree(run / "source", ignore_errors=True)
            if not outcome.swapped:
                outcome.reason += (f"; the trained weights are kept in {run / 'model'} (`plusls export` them "
                                   "without --int8 to try them)")
        else:
            shutil.rmtree(run, ignore_errors=True)
        log(outcome.line())
        outcomes.append(outcome)
    return outcomes


def _default_runs_dir(workspace: Path) -> Path:
    return default_index_dir(workspace).parent.parent / "refresh" / default_index_dir(workspace).name
