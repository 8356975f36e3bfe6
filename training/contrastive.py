"""The search embedder fine-tuned with CodeT5+'s text-code contrastive objective (in-batch negatives).

Each batch holds B (text, code without its docstring) pairs from the mined corpus; the text is the docstring's
summary or, where `plusls train label --kind query` wrote one, a web-style search query for the function (as many
query pairs as summary pairs, so both kinds of text are learned). Both sides go through the same MiniLM sentence
embedder (mean pooling, L2 norm) and the loss is the symmetric InfoNCE over the B x B similarity matrix: every other
pair's code is a negative for a text, and the other way round. A batch is drawn as a few runs of neighbouring
functions of the corpus (the same file or package), so its negatives are hard ones: code with the same vocabulary.
The result is written in the sentence-transformers layout, so `plusls export --kind embedding` takes it as it
takes MiniLM.
"""
from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
import torch.nn.functional as F

from plusls.common.jsonl import read_jsonl
from plusls.common.metrics import diagonal_mrr
from plusls.exported.defaults import EMBEDDER
from plusls.exported.export.embedding_modules import load_sentence_embedder

from .loop import TrainConfig, batch_indices, train
from .mining import code_hash
from .teacher import read_labels

MAX_CODE, MAX_TEXT = 128, 32
NEIGHBOURS = 4  # pairs per run of neighbouring functions in a batch


class ContrastivePair(torch.nn.Module):
    def __init__(self, embedder: torch.nn.Module, temperature: float = 0.05):
        super().__init__()
        self.embedder, self.temperature = embedder, temperature

    def embed(self, ids, mask):
        return self.embedder(ids, mask, torch.zeros_like(ids))

    def forward(self, text_ids, text_mask, code_ids, code_mask):
        t, c = self.embed(text_ids, text_mask), self.embed(code_ids, code_mask)
        logits = t @ c.T / self.temperature
        target = torch.arange(len(t), device=t.device)
        return SimpleNamespace(loss=(F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2)


def pad_sequences(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, seqs))
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def encode(tokenizer, rows: list[dict]) -> list[tuple[list[int], list[int]]]:
    texts = tokenizer([r["summary"] for r in rows], truncation=True, max_length=MAX_TEXT)["input_ids"]
    codes = tokenizer([r["code"] for r in rows], truncation=True, max_length=MAX_CODE)["input_ids"]
    return list(zip(texts, codes))


def pair_batches(pairs, batch_size: int, seed: int, neighbours: int = 1):
    """batch_at(step): seeded epochs of `batch_size` pairs (a batch is a pure function of the step), each batch
    made of runs of `neighbours` consecutive pairs."""
    runs = max(1, len(pairs) // neighbours)

    def batch_at(step: int):
        starts = batch_indices(runs, max(1, batch_size // neighbours), seed, step)
        idx = [i for s in starts for i in range(s * neighbours, min(len(pairs), (s + 1) * neighbours))]
        t_ids, t_mask = pad_sequences([pairs[i][0] for i in idx])
        c_ids, c_mask = pad_sequences([pairs[i][1] for i in idx])
        tokens = int(t_mask.sum() + c_mask.sum())
        return {"text_ids": t_ids, "text_mask": t_mask, "code_ids": c_ids, "code_mask": c_mask}, tokens

    return batch_at


def retrieval_mrr(model: ContrastivePair, pairs, batch: int = 64) -> float:
    """MRR of each text's own code among all held-out codes (in-domain retrieval)."""
    with torch.no_grad():
        texts, codes = [], []
        for i in range(0, len(pairs), batch):
            chunk = pairs[i : i + batch]
            texts.append(model.embed(*pad_sequences([p[0] for p in chunk])))
            codes.append(model.embed(*pad_sequences([p[1] for p in chunk])))
        sims = torch.cat(texts) @ torch.cat(codes).T
    return diagonal_mrr(sims.numpy())


def with_queries(rows: list[dict], queries: dict[str, str], seed: int) -> list[dict]:
    """The rows with a query as (query, code) pairs, and as many summary pairs of other rows (a function is never
    its own negative through its other text), in corpus order (neighbours stay together); all summary rows when
    there are no queries."""
    asked = {n for n, r in enumerate(rows) if queries.get(code_hash(r["code"]))}
    if not asked:
        return rows
    others = [n for n in range(len(rows)) if n not in asked]
    keep = set(random.Random(seed).sample(others, min(len(others), len(asked))))
    return [{**r, "summary": queries[code_hash(r["code"])]} if n in asked else r
            for n, r in enumerate(rows) if n in asked or n in keep]


def train_contrastive(corpus: Path, out: Path, embedder_dir: Path | None = None, max_steps: int = 300,
                      max_minutes: float = 0.0, batch_size: int = 32, lr: float = 2e-5, seed: int = 0,
                      threads: int = 0, limit: int | None = None, heldout_limit: int = 400,
                      queries: Path | None = None, freeze_words: bool = False, interpolate: float = 1.0,
                      log: Callable[[str], None] | None = None) -> dict:
    """Fine-tune the sentence embedder in `embedder_dir` (default: the embedded MiniLM) on the mined corpus, with
    the search queries in `queries` (a `plusls train label --kind query` file) beside the summaries."""
    if embedder_dir is None:

        embedder_dir = EMBEDDER.source()
    train_rows = list(read_jsonl(corpus / "summary.train.jsonl"))[:limit]
    if queries is not None:
        train_rows = with_queries(train_rows, read_labels(queries, "query"), seed)
    held_rows = list(read_jsonl(corpus / "summary.heldout.jsonl"))
    random.Random(seed).shuffle(held_rows)
    return fine_tune_embedder(Path(embedder_dir), train_rows, held_rows[:heldout_limit], out, max_steps=max_steps,
                              max_minutes=max_minutes, batch_size=batch_size, lr=lr, seed=seed, threads=threads,
                              freeze_words=freeze_words, interpolate=interpolate, log=log)


def fine_tune_embedder(embedder_dir: Path, train_rows: list[dict], held_rows: list[dict], out: Path,
                       max_steps: int = 300, max_minutes: float = 0.0, batch_size: int = 32, lr: float = 2e-5,
                       seed: int = 0, threads: int = 0, freeze_words: bool = False, interpolate: float = 1.0,
                       log: Callable[[str], None] | None = None) -> dict:
    """Contrastive fine-tune of a sentence-transformers folder on {"summary", "code"} rows; writes out/model
    (sentence-transformers layout) and out/result.json. Resumes from out/ckpt.pt. interpolate: the model written is
    base + interpolate * (trained - base) (WiSE-FT: a fraction of the change keeps what the base knew of queries
    unlike the training texts; the shipped search encoder took 0.3, docs/measurements.md)."""
    from transformers import AutoTokenizer

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    tokenizer = AutoTokenizer.from_pretrained(embedder_dir)
    pairs, held = encode(tokenizer, train_rows), encode(tokenizer, held_rows)
    torch.manual_seed(seed)
    model = ContrastivePair(load_sentence_embedder(embedder_dir))
    if freeze_words:  # the base model's word embeddings (half of MiniLM's weights) stay as they are
        model.embedder.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    model.eval()
    # the starting weights, kept only when the result is to be interpolated with them
    base = {k: v.detach().clone() for k, v in model.state_dict().items()} if interpolate != 1.0 else None
    before = retrieval_mrr(model, held)
    log(f"contrastive: {len(pairs)} training pairs; held-out text->code MRR before {before:.4f}")
    cfg = TrainConfig(out_dir=str(out), max_steps=max_steps, max_minutes=max_minutes, lr=lr, min_lr=lr / 10,
                      warmup_steps=min(50, max_steps // 10), seed=seed, threads=threads, checkpoint_every=50,
                      log_every=max(1, min(10, max_steps // 10)))
    result = train(cfg, model, pair_batches(pairs, min(batch_size, len(pairs)), seed, NEIGHBOURS),
                   evaluate=lambda m, step: {"heldout_mrr": round(retrieval_mrr(m, held), 4)}, log=log)
    if base is not None:
        model.load_state_dict({k: base[k] + interpolate * (v - base[k]) if v.is_floating_point() else v
                               for k, v in model.state_dict().items()})
        result["eval_interpolated"] = {"heldout_mrr": round(retrieval_mrr(model, held), 4), "alpha": interpolate}
    final = out / "model"
    if final.exists():
        shutil.rmtree(final)
    shutil.copytree(embedder_dir, final, ignore=shutil.ignore_patterns("*.safetensors", "pytorch_model*.bin"))
    model.embedder.encoder.save_pretrained(final)
    result.update(heldout_mrr_before=round(before, 4), train_pairs=len(pairs), batch_size=batch_size, lr=lr)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
