"""Fine-tuning the completion model (a causal LM, Qwen2.5-Coder-0.5B by default) on code, with fill-in-the-middle.

A tokenizer without FIM tokens gets the three StarCoder-style ones (embedding rows resized, mean-initialised) and
the export declares them, so the server then prompts the model with prefix and suffix. As in Bavarian et al.
(the FIM paper), a share of the samples (`fim_rate`) is FIM and the rest plain left-to-right code, so the model
keeps completing from a prefix alone (HumanEval, files without a suffix).

`plusls train completion` trains on the mined corpus (training/mining.py's FIM cuts) plus accepted completions
from the server's telemetry log; `plusls train refresh` uses the same `train_fim` on one workspace's samples.
"""
from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from typing import Callable

from plusls.common.errors import PluslsError
from plusls.completion.prompt import Cursor, PromptBuilder, WindowState
from plusls.exported.export.sources import find_gguf, materialize_gguf
from plusls.exported.special_tokens import find_fim

Log = Callable[[str], None]
FIM_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")  # added where a tokenizer has none
PREFIX_TOKENS, SUFFIX_TOKENS, MIDDLE_TOKENS = 192, 64, 64


class CompletionTrainingError(PluslsError):
    pass


def fim_ids(tokenizer, sample: dict, fim: dict, eos: int, as_fim: bool = True) -> tuple[list[int], list[int]]:
    """One training sequence and its labels, its context laid out by the server's prompt builder (so the model
    learns the layout it is served: the cursor line's text after the middle marker). FIM: the loss is on the
    middle and the EOS that ends it. Left to right: the prefix is context, the loss is on the middle and the code
    after it."""
    builder = PromptBuilder(tokenizer.backend_tokenizer, fim if as_fim else None, PREFIX_TOKENS + SUFFIX_TOKENS,
                            SUFFIX_TOKENS)
    context = builder.build(Cursor(sample["prefix"] + sample["suffix"], len(sample["prefix"])), WindowState())
    if as_fim:
        target = builder.encode(sample["middle"])[:MIDDLE_TOKENS] + [eos]
    else:
        target = builder.encode(sample["middle"] + sample["suffix"])[:MIDDLE_TOKENS + SUFFIX_TOKENS]
    return context + target, [-100] * len(context) + target


def add_fim_tokens(model, tokenizer) -> dict[str, dict]:
    """The tokenizer's own FIM tokens (any spelling the export knows, e.g. Qwen's <|fim_prefix|>); a tokenizer
    without any gets the three StarCoder-style ones, and the model embedding rows for them (initialised at the mean
    embedding); the export then declares them in the manifest. In the manifest's form: part -> {"token", "id"}."""
    fim = find_fim(tokenizer.get_vocab())
    if fim is not None:
        return fim
    tokenizer.add_special_tokens({"additional_special_tokens": list(FIM_TOKENS)})
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return find_fim(tokenizer.get_vocab())


def prepare_causal_source(source: Path, run: Path) -> Path:
    """A Hugging Face folder for `source` (a GGUF file is dequantized once into the run folder)."""
    gguf = find_gguf(source)
    if gguf is None:
        return source
    hf = run / "source"
    if not (hf / "config.json").exists():
        materialize_gguf(gguf, hf)
    return hf


def train_fim(source: Path, samples: list[dict], run: Path, steps: int, minutes: float, seed: int, threads: int,
              lr: float, log: Log, fim_rate: float = 1.0, batch_size: int = 4) -> int:
    """Fine-tune `source` (a Hugging Face causal LM folder) on `samples` ({prefix, middle, suffix}); the model and
    tokenizer go to run/model, checkpoints to run/ckpt.pt (a second call resumes). Returns the steps run."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .loop import TrainConfig, batch_indices, train  # torch, as above

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, torch_dtype=torch.float32)
    fim = add_fim_tokens(model, tokenizer)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else fim["middle"]["id"]
    # Which samples are FIM is fixed by the seed, so a resumed run sees the same sequences.
    rows = [fim_ids(tokenizer, s, fim, eos, random.Random(f"{seed}:fim:{i}").random() < fim_rate)
            for i, s in enumerate(samples)]

    def batch_at(step: int):  # seeded epochs, right-padded
        picked = [rows[i] for i in batch_indices(len(rows), batch_size, seed, step)]
        width = max(len(ids) for ids, _ in picked)
        ids = torch.full((len(picked), width), eos)
        labels = torch.full((len(picked), width), -100)
        mask = torch.zeros((len(picked), width), dtype=torch.long)
        for i, (x, y) in enumerate(picked):
            ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}, int(mask.sum())

    cfg = TrainConfig(out_dir=str(run), max_steps=steps, max_minutes=minutes, lr=lr, min_lr=lr / 10,
                      warmup_steps=min(20, steps // 10), seed=seed, threads=threads, checkpoint_every=25,
                      log_every=max(1, min(10, steps // 10)))
    result = train(cfg, model, batch_at, log=log)
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    return result["steps"]


def corpus_fim_samples(corpus: Path, limit: int | None = None) -> list[dict]:
    path = corpus / "fim.train.jsonl"
    if not path.is_file():
        raise CompletionTrainingError(f"{path} not found: mine the corpus first (`plusls train data`)")
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return samples[:limit] if limit else samples


def accepted_completions(log_path: Path | None) -> list[dict]:
    """Every accepted completion in the server's telemetry log, as a FIM sample (the suggestion is the middle)."""
    if log_path is None or not log_path.is_file():
        return []
    out = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if r.get("accepted") and r.get("text"):
            out.append({"prefix": r.get("prefix", ""), "middle": r["text"], "suffix": r.get("suffix", ""),
                        "cut": "accepted", "path": str(r.get("path", ""))})
    return out


def train_completion(corpus: Path, source: Path, out: Path, steps: int, minutes: float, seed: int = 0,
                     threads: int = 0, lr: float = 5e-5, fim_rate: float = 0.5, telemetry: Path | None = None,
                     limit: int | None = None, log: Log | None = None) -> dict:
    """Fine-tune the completion model on the mined corpus (and accepted completions); out/model is the result,
    to export with `plusls export out/model --kind causal-lm` and measure with `plusls eval`."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if not 0.0 <= fim_rate <= 1.0:
        raise CompletionTrainingError(f"--fim-rate is a share of the samples, between 0 and 1 (got {fim_rate})")
    samples = corpus_fim_samples(corpus, limit)
    accepted = accepted_completions(telemetry)
    rows = samples + accepted
    if not rows:
        raise CompletionTrainingError(f"nothing to train on: {corpus / 'fim.train.jsonl'} is empty and no accepted "
                                      "completions were logged; mine the corpus again (`plusls train data`)")
    log(f"completion: {len(samples)} FIM cuts from {corpus}, {len(accepted)} accepted completions; "
        f"{fim_rate:.0%} as fill-in-the-middle, the rest left to right")
    out.mkdir(parents=True, exist_ok=True)
    source = prepare_causal_source(source, out)
    done = train_fim(source, rows, out, steps, minutes, seed, threads, lr, log, fim_rate)
    shutil.rmtree(out / "source", ignore_errors=True)  # a dequantized GGUF (GBs), made again from the GGUF on resume
    return {"steps": done, "samples": len(samples), "accepted": len(accepted), "model": str(out / "model")}
