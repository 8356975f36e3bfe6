"""The text-code matching model (CodeT5+'s fourth objective): a cross-encoder that reranks search results.

Input "[CLS] text [SEP] code [SEP]" (token type 0 for the text, 1 for the code) through a BERT encoder initialised
from the embedded MiniLM, mean pooling over the pair, and a new linear head giving one match logit. Training is
binary match / no-match: every (summary, code) pair of a batch is a positive, and each text also gets a hard negative
code mined in the batch by a frozen copy of the MiniLM sentence embedder, sampled in proportion to softmax(sim / t)
over the batch's other codes (as CodeT5+ and ALBEF/BLIP mine theirs). Batches, negatives included, are a pure
function of the step and the seed, so a resumed run sees what an uninterrupted one would.

The result (out/model) is a Hugging Face BERT folder plus matching_head.safetensors and matching.json;
`plusls export --kind matching` turns it into an ONNX model directory read by exported.matching.Matcher.
"""
from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from typing import Callable

import torch

from plusls.common.jsonl import read_jsonl
from plusls.common.metrics import mrr_at_k
from plusls.exported.defaults import EMBEDDER
from plusls.exported.export.embedding_modules import MAX_CODE, MAX_TEXT, MatchingModel, load_sentence_embedder
from plusls.exported.matching import pair_ids

from .contrastive import pad_sequences
from .loop import TrainConfig, batch_indices, train


def _pad3(rows: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for i, (s, t) in enumerate(rows):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        types[i, : len(t)] = torch.tensor(t)
    return ids, mask, types


class Encoded:
    """Token ids of the corpus rows: bare (for the cross-encoder) and with [CLS]/[SEP] (for the frozen embedder)."""

    def __init__(self, tokenizer, rows: list[dict], max_text: int = MAX_TEXT, max_code: int = MAX_CODE):
        self.cls, self.sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        kw = {"add_special_tokens": False, "truncation": True}
        self.texts = tokenizer([r["summary"] for r in rows], max_length=max_text, **kw)["input_ids"]
        self.codes = tokenizer([r["code"] for r in rows], max_length=max_code, **kw)["input_ids"]
        self.code_keys = [hash(r["code"]) for r in rows]
        self.text_keys = [hash(r["summary"].strip().lower()) for r in rows]

    def __len__(self) -> int:
        return len(self.texts)

    def single(self, seq: list[int]) -> list[int]:
        return [self.cls, *seq, self.sep]

    def pair(self, i: int, j: int) -> tuple[list[int], list[int]]:
        return pair_ids(self.cls, self.sep, self.texts[i], self.codes[j])


def mine_negatives(embedder, data: Encoded, idx: list[int], gen: torch.Generator,
                   temperature: float = 0.05) -> list[int]:
    """For each text of the batch, a code of another pair, drawn by the frozen embedder's softmax(sim / t)
    (pairs sharing the code or the text are never negatives of each other)."""
    with torch.no_grad():
        t = embedder(*pad_sequences([data.single(data.texts[i]) for i in idx]), torch.zeros(1, dtype=torch.long))
        c = embedder(*pad_sequences([data.single(data.codes[i]) for i in idx]), torch.zeros(1, dtype=torch.long))
    sims = t @ c.T / temperature
    for a, i in enumerate(idx):
        for b, j in enumerate(idx):
            if a == b or data.code_keys[i] == data.code_keys[j] or data.text_keys[i] == data.text_keys[j]:
                sims[a, b] = float("-inf")
    out = []
    for a in range(len(idx)):
        row = sims[a]
        if torch.isinf(row).all():  # a batch of one distinct pair: any other row will do
            out.append(idx[(a + 1) % len(idx)])
            continue
        out.append(idx[int(torch.multinomial(torch.softmax(row, 0), 1, generator=gen))])
    return out


class _Frozen(torch.nn.Module):
    """The sentence embedder with zero token types (its forward takes them)."""

    def __init__(self, embedder):
        super().__init__()
        self.embedder = embedder

    def forward(self, ids, mask, _types):
        return self.embedder(ids, mask, torch.zeros_like(ids))


def matching_batches(data: Encoded, embedder, batch_size: int, seed: int, temperature: float = 0.05):
    """batch_at(step): `batch_size` positives and as many mined hard negatives (a pure function of the step)."""
    def batch_at(step: int):
        idx = batch_indices(len(data), batch_size, seed, step)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        negs = mine_negatives(embedder, data, idx, gen, temperature)
        rows = [data.pair(i, i) for i in idx] + [data.pair(i, j) for i, j in zip(idx, negs)]
        ids, mask, types = _pad3(rows)
        labels = torch.tensor([1] * len(idx) + [0] * len(idx))
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": labels}, int(mask.sum())

    return batch_at


def score_pairs(model: MatchingModel, data: Encoded, pairs: list[tuple[int, int]], batch: int = 32) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for s in range(0, len(pairs), batch):
            out.append(model.score(*_pad3([data.pair(i, j) for i, j in pairs[s : s + batch]])))
    return torch.cat(out) if out else torch.zeros(0)


def rerank_mrr(model: MatchingModel, embedder, data: Encoded, queries: int = 100, candidates: int = 10) -> dict:
    """Held-out in-domain check: each of `queries` texts searches all held-out codes with the frozen embedder; MRR@10
    of the embedder's ranking vs the matching model's reranking of its top `candidates`."""
    n = len(data)

    def embed(seqs: list[list[int]]) -> torch.Tensor:
        return torch.cat([embedder(*pad_sequences([data.single(x) for x in seqs[s : s + 64]]), None)
                          for s in range(0, len(seqs), 64)])

    with torch.no_grad():  # only the texts that are queries; every code is a candidate
        sims = embed(data.texts[: min(queries, n)]) @ embed(data.codes).T
    embedded, reranked, golds = [], [], []
    for q in range(min(queries, n)):
        top = torch.topk(sims[q], min(candidates, n)).indices.tolist()
        golds.append({j for j in range(n) if data.code_keys[j] == data.code_keys[q]})
        scores = score_pairs(model, data, [(q, j) for j in top])
        embedded.append(top)
        reranked.append([top[k] for k in torch.argsort(-scores, stable=True).tolist()])
    if not golds:
        return {"embedder_mrr": 0.0, "reranked_mrr": 0.0}
    return {"embedder_mrr": round(mrr_at_k(embedded, golds, candidates), 4),
            "reranked_mrr": round(mrr_at_k(reranked, golds, candidates), 4)}


def train_matching(corpus: Path, out: Path, embedder_dir: Path | None = None, max_steps: int = 1000,
                   max_minutes: float = 0.0, batch_size: int = 16, lr: float = 5e-5, seed: int = 0,
                   threads: int = 0, limit: int | None = None, heldout_queries: int = 100,
                   pooling: str = "mean", checkpoint_every: int = 25, freeze_embeddings: bool = True,
                   negative_temperature: float = 0.05,
                   log: Callable[[str], None] | None = None) -> dict:
    """Train the matching cross-encoder from the sentence embedder in `embedder_dir` (default: the embedded
    MiniLM, also the frozen negative miner); resumes from out/ckpt.pt; writes out/model and out/result.json."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if threads:
        torch.set_num_threads(threads)
    if embedder_dir is None:

        embedder_dir = EMBEDDER.source()
    embedder_dir, out = Path(embedder_dir), Path(out)
    tokenizer = AutoTokenizer.from_pretrained(embedder_dir)
    train_rows = list(read_jsonl(corpus / "summary.train.jsonl"))[:limit]
    held_rows = list(read_jsonl(corpus / "summary.heldout.jsonl"))
    random.Random(seed).shuffle(held_rows)
    positions = int(getattr(AutoConfig.from_pretrained(embedder_dir), "max_position_embeddings", 512))
    max_text = min(MAX_TEXT, positions // 4)
    max_code = min(MAX_CODE, positions - max_text - 3)  # [CLS] text [SEP] code [SEP] fits the positions
    data = Encoded(tokenizer, train_rows, max_text, max_code)
    held = Encoded(tokenizer, held_rows[: max(heldout_queries, 1) * 4], max_text, max_code)
    miner = _Frozen(load_sentence_embedder(embedder_dir)).eval()
    for p in miner.parameters():
        p.requires_grad_(False)
    torch.manual_seed(seed)
    encoder = AutoModel.from_pretrained(embedder_dir, dtype=torch.float32, attn_implementation="eager",
                                        add_pooling_layer=False)
    if freeze_embeddings:  # 11.7M of MiniLM's 22.7M parameters: kept as they are (cheaper steps, less to overfit)
        encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    model = MatchingModel(encoder, pooling, max_text, max_code)
    log(f"matching: {len(data)} training pairs, batch {batch_size} positives + {batch_size} mined negatives")
    cfg = TrainConfig(out_dir=str(out), max_steps=max_steps, max_minutes=max_minutes, lr=lr, min_lr=lr / 10,
                      warmup_steps=min(50, max(1, max_steps // 10)), seed=seed, threads=threads,
                      checkpoint_every=checkpoint_every, lr_scale={"head.": 20.0})
    evaluate = (lambda m, step: rerank_mrr(m, miner, held, heldout_queries)) if heldout_queries else None
    batches = matching_batches(data, miner, batch_size, seed, negative_temperature)
    result = train(cfg, model, batches, evaluate=evaluate, log=log)
    final = out / "model"
    if final.exists():
        shutil.rmtree(final)
    tokenizer.save_pretrained(final)
    model.save(final)
    result.update(train_pairs=len(data), batch_size=batch_size, lr=lr, pooling=pooling, seed=seed)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
