"""The docstring / hover model: an encoder-decoder warm-started from MiniLM, trained code -> docstring summary.

No encoder-decoder weights exist here, so the model is put together the way CodeT5+ reuses off-the-shelf models:
MiniLM-L6 (all-MiniLM-L6-v2, BERT, uncased WordPiece) is the encoder, and the decoder is a second copy of MiniLM's
layers with causal self-attention, new cross-attention and a new LM head tied to its word embeddings (bert2bert,
Rothe et al. 2020). Designs (DESIGNS) differ in what is trained and how deep the decoder is.

The vocabulary is cut to the WordPiece tokens the training corpus uses (plus every ASCII character, so any text
still tokenizes): the two embedding tables are most of the weights, and the exported int8 model must stay small.

Input: the function's code (its docstring removed); BERT's tokenizer lowercases and splits on whitespace and
punctuation, so raw source and CodeXGLUE's space-joined code tokens read the same. Output: the summary sentence,
lowercase, ended by [SEP].
"""
from __future__ import annotations

import json
import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from plusls.common.jsonl import read_jsonl
from plusls.exported.defaults import EMBEDDER

from .loop import TrainConfig, train
from .mining import TOKEN, code_hash
from .teacher import read_labels

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Wordpieces. The encoder reads 384 (a function's signature and most bodies; 96 cut most at the first lines); the
# export declares MAX_SOURCE as max_length, which the runtime applies.
MAX_SOURCE, MAX_TARGET = 384, 48
# Cross-attention and the LM head's transform start from random weights: they learn at NEW_LR_SCALE x the LR.
NEW_PARTS, NEW_LR_SCALE = ("crossattention", "cls.predictions.transform"), 5.0
# Decoding, chosen on a dev slice of the held-out packages (MODEL_CARD.md): never repeat a wordpiece trigram, and
# favour the input's own wordpieces (its identifiers) by a logit bonus. Saved in the model's generation_config.json;
# `plusls export` copies it into the manifest and plusls's runtime applies it (transformers applies the first only).
DECODING = {"no_repeat_ngram_size": 3, "copy_bias": 1.0}


@dataclass(frozen=True)
class Design:
    name: str
    decoder_layers: int  # taken from MiniLM's first layers (MiniLM has 6)
    freeze_encoder: bool
    what: str


DESIGNS = {
    "bert2bert": Design("bert2bert", 6, False,
                        "MiniLM encoder (trained) + 6-layer decoder initialised from MiniLM, new cross-attention"),
    "frozen-encoder": Design("frozen-encoder", 6, True,
                             "MiniLM encoder frozen (CodeT5+-style reuse of a pretrained module as is) + 6-layer "
                             "MiniLM-initialised decoder with new cross-attention; only the decoder trains"),
}


# --- vocabulary ---------------------------------------------------------------------------------------------------

def prune_tokenizer(src_dir: Path, texts: list[str], out_dir: Path, max_vocab: int = 12000,
                    min_count: int = 2) -> list[int]:
    """Write a tokenizer with the WordPiece vocabulary cut to what `texts` use; return the kept old ids in new-id
    order. Specials come first ([PAD]=0 [UNK] [CLS] [SEP] [MASK]); every ASCII character (and its ## form) stays,
    so any text still tokenizes, just into more pieces."""
    from tokenizers import Tokenizer
    from transformers import BertTokenizerFast

    spec = json.loads((src_dir / "tokenizer.json").read_text())
    old_vocab: dict[str, int] = spec["model"]["vocab"]
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.no_padding()
    tok.no_truncation()
    counts: Counter = Counter()
    for i in range(0, len(texts), 2000):
        for enc in tok.encode_batch(texts[i : i + 2000], add_special_tokens=False):
            counts.update(enc.ids)
    ascii_chars = {chr(c) for c in range(33, 127)}
    always = {t for t in old_vocab if t in ascii_chars or (t.startswith("##") and t[2:] in ascii_chars)}
    frequent = [i for i, c in counts.most_common() if c >= min_count]
    keep_set = {old_vocab[t] for t in SPECIALS} | {old_vocab[t] for t in always}
    for i in frequent:
        if len(keep_set) >= max_vocab:
            break
        keep_set.add(i)
    specials = [old_vocab[t] for t in SPECIALS]
    keep = specials + sorted(keep_set - set(specials))
    inverse = {i: t for t, i in old_vocab.items()}
    spec["model"]["vocab"] = {inverse[old]: new for new, old in enumerate(keep)}
    new_id = {inverse[old]: new for new, old in enumerate(keep)}
    for added in spec["added_tokens"]:
        added["id"] = new_id[added["content"]]
    for name, entry in spec["post_processor"]["special_tokens"].items():
        entry["ids"] = [new_id[name]]
    spec["truncation"] = spec["padding"] = None
    spec["decoder"] = spec.get("decoder") or {"type": "WordPiece", "prefix": "##", "cleanup": True}
    fast = BertTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), unk_token="[UNK]",
                             sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                             bos_token="[CLS]", eos_token="[SEP]", model_max_length=MAX_SOURCE,
                             do_lower_case=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return keep


def _select_rows(embedding: torch.nn.Embedding, keep: list[int]) -> torch.nn.Embedding:
    new = torch.nn.Embedding(len(keep), embedding.embedding_dim, padding_idx=0)
    new.weight.data = embedding.weight.data[keep].clone()
    return new


# --- the model ------------------------------------------------------------------------------------------------------

def build_model(design: Design, minilm_dir: Path, keep: list[int], tokenizer, seed: int = 0):
    """bert2bert from MiniLM's weights with the vocabulary cut to `keep` (old ids in new-id order)."""
    from transformers import BertConfig, BertLMHeadModel, BertModel, EncoderDecoderConfig, EncoderDecoderModel

    torch.manual_seed(seed)
    encoder = BertModel.from_pretrained(minilm_dir, add_pooling_layer=False, attn_implementation="eager")
    dec_config = BertConfig.from_pretrained(minilm_dir, is_decoder=True, add_cross_attention=True,
                                            num_hidden_layers=design.decoder_layers, attn_implementation="eager")
    import transformers

    transformers.logging.set_verbosity_error()  # "newly initialized: crossattention.*, cls.*" is expected
    decoder = BertLMHeadModel.from_pretrained(minilm_dir, config=dec_config)
    transformers.logging.set_verbosity_warning()
    encoder.set_input_embeddings(_select_rows(encoder.get_input_embeddings(), keep))
    encoder.config.vocab_size = len(keep)
    decoder.set_input_embeddings(_select_rows(decoder.get_input_embeddings(), keep))
    head = decoder.cls.predictions
    head.decoder = torch.nn.Linear(dec_config.hidden_size, len(keep))
    head.bias = head.decoder.bias
    torch.nn.init.zeros_(head.bias)
    decoder.config.vocab_size = len(keep)
    decoder.tie_weights()
    config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config)
    config.decoder_start_token_id = tokenizer.cls_token_id
    config.bos_token_id = tokenizer.cls_token_id
    config.eos_token_id = tokenizer.sep_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.vocab_size = len(keep)
    model = EncoderDecoderModel(config=config, encoder=encoder, decoder=decoder)
    model.config.decoder.attn_implementation = "eager"
    if design.freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad = False
    return model


# --- data -----------------------------------------------------------------------------------------------------------

def encode_pairs(tokenizer, rows: list[dict], max_source: int = MAX_SOURCE, max_target: int = MAX_TARGET):
    """(source ids, target ids) per row: [CLS] code [SEP] -> summary [SEP] (the decoder starts from [CLS])."""
    src = tokenizer([r["code"] for r in rows], truncation=True, max_length=max_source)["input_ids"]
    tgt = tokenizer([r["summary"] for r in rows], truncation=True, max_length=max_target + 1)["input_ids"]
    return [(s, t[1:]) for s, t in zip(src, tgt)]


def token_batches(pairs: list[tuple[list[int], list[int]]], max_tokens: int, seed: int, epoch: int,
                  max_rows: int = 64) -> list[list[int]]:
    """Index batches of similar source length, each at most `max_tokens` padded source tokens, in seeded order."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches = []
    pool = 100 * max_rows
    for i in range(0, len(order), pool):  # sort by length inside pools: little padding, still random
        chunk = sorted(order[i : i + pool], key=lambda j: len(pairs[j][0]))
        batch: list[int] = []
        for j in chunk:
            width = max([len(pairs[k][0]) for k in batch] + [len(pairs[j][0])])
            if batch and (width * (len(batch) + 1) > max_tokens or len(batch) >= max_rows):
                batches.append(batch)
                batch = []
            batch.append(j)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate(pairs, idx: list[int], pad: int) -> tuple[dict[str, torch.Tensor], int]:
    src = [pairs[i][0] for i in idx]
    tgt = [pairs[i][1] for i in idx]
    ws, wt = max(map(len, src)), max(map(len, tgt))
    ids = torch.full((len(idx), ws), pad, dtype=torch.long)
    mask = torch.zeros((len(idx), ws), dtype=torch.long)
    labels = torch.full((len(idx), wt), -100, dtype=torch.long)
    for r, (s, t) in enumerate(zip(src, tgt)):
        ids[r, : len(s)] = torch.tensor(s)
        mask[r, : len(s)] = 1
        labels[r, : len(t)] = torch.tensor(t)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}, sum(map(len, src)) + sum(map(len, tgt))


class BatchSchedule:
    """batch_at(step): epochs of seeded token batches, so the batch of a step never depends on the run's history."""

    def __init__(self, pairs, max_tokens: int, seed: int, pad: int):
        self.pairs, self.max_tokens, self.seed, self.pad = pairs, max_tokens, seed, pad
        self.epochs: dict[int, list[list[int]]] = {}

    def epoch(self, e: int) -> list[list[int]]:
        if e not in self.epochs:
            self.epochs = {e: token_batches(self.pairs, self.max_tokens, self.seed, e)}
        return self.epochs[e]

    def __call__(self, step: int):
        per_epoch = len(self.epoch(0))
        return collate(self.pairs, self.epoch(step // per_epoch)[step % per_epoch], self.pad)


def heldout_loss(model, pairs, pad: int, max_tokens: int = 4096) -> float:
    """Mean token cross-entropy on held-out pairs (teacher-forced)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for idx in token_batches(pairs, max_tokens, 0, 0):
            inputs, _ = collate(pairs, idx, pad)
            n = int((inputs["labels"] != -100).sum())
            total += float(model(**inputs).loss) * n
            count += n
    return total / max(1, count)


# --- the run --------------------------------------------------------------------------------------------------------

def train_docstring(corpus: Path, out: Path, design: str | Design = "bert2bert", minilm_dir: Path | None = None,
                    max_steps: int = 1000, max_minutes: float = 0.0, max_tokens: int = 4096, lr: float = 2e-4,
                    seed: int = 0, threads: int = 0, max_vocab: int = 12000, limit: int | None = None,
                    heldout_limit: int = 400, init_from: Path | None = None, labels: Path | None = None,
                    log: Callable[[str], None] | None = None) -> dict:
    """Build (or resume) `design` in out/, train it on corpus/summary.train.jsonl, save out/model (HF format).
    init_from: a previous run's folder: continue from its trained model (and its vocabulary) on a new schedule.
    labels: a teacher's summaries (training.teacher.label): each labelled function is also a pair with the
    teacher's summary as target (sequence-level distillation, mixed with the human docstrings)."""
    import shutil

    from transformers import AutoTokenizer, EncoderDecoderModel

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    design = design if isinstance(design, Design) else DESIGNS[design]
    if minilm_dir is None:

        minilm_dir = EMBEDDER.source()
    out.mkdir(parents=True, exist_ok=True)
    train_rows = list(read_jsonl(corpus / "summary.train.jsonl"))[:limit]
    human = len(train_rows)
    if labels is not None:
        taught = read_labels(labels)
        train_rows += [{**r, "summary": taught[h]} for r in train_rows[:human]
                       if taught.get(h := code_hash(r["code"]))]
    held_rows = list(read_jsonl(corpus / "summary.heldout.jsonl"))
    random.Random(seed).shuffle(held_rows)
    held_rows = held_rows[:heldout_limit]
    tok_dir = out / "tokenizer"
    keep_file = out / "vocab_keep.json"
    if init_from is not None and not keep_file.exists():
        shutil.copytree(Path(init_from) / "tokenizer", tok_dir, dirs_exist_ok=True)
        shutil.copy(Path(init_from) / "vocab_keep.json", keep_file)
    if not keep_file.exists():  # the vocabulary comes from training text only
        keep = prune_tokenizer(Path(minilm_dir), [t for r in train_rows for t in (r["code"], r["summary"])],
                               tok_dir, max_vocab=max_vocab)
        keep_file.write_text(json.dumps(keep))
    keep = json.loads(keep_file.read_text())
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    if init_from is not None:
        model = EncoderDecoderModel.from_pretrained(Path(init_from) / "model", attn_implementation="eager")
        for p in model.encoder.parameters():
            p.requires_grad = not design.freeze_encoder
    else:
        model = build_model(design, Path(minilm_dir), keep, tokenizer, seed)
    pairs = encode_pairs(tokenizer, train_rows)
    held = encode_pairs(tokenizer, held_rows)
    log(f"{design.name}: {len(pairs)} training pairs ({len(pairs) - human} from the teacher), {len(held)} held-out, "
        f"vocabulary {len(keep)}")
    cfg = TrainConfig(out_dir=str(out), max_steps=max_steps, max_minutes=max_minutes, lr=lr, min_lr=lr / 10,
                      warmup_steps=min(100, max_steps // 10), seed=seed, threads=threads, checkpoint_every=50,
                      lr_scale={} if init_from else {k: NEW_LR_SCALE for k in NEW_PARTS})
    result = train(cfg, model, BatchSchedule(pairs, max_tokens, seed, tokenizer.pad_token_id),
                   evaluate=lambda m, step: {"heldout_loss": round(heldout_loss(m, held, tokenizer.pad_token_id),
                                                                   4)}, log=log)
    final = out / "model"
    for key, value in DECODING.items():
        setattr(model.generation_config, key, value)
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    result.update(design=asdict(design), init_from=str(init_from) if init_from else None, train_pairs=len(pairs),
                  teacher_pairs=len(pairs) - human, labels=str(labels) if labels else None, max_source=MAX_SOURCE,
                  vocab=len(keep), max_tokens_per_batch=max_tokens, lr=lr, seed=seed,
                  parameters=sum(p.numel() for p in model.parameters()))
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def write_summarize_set(rows: list[dict], path: Path) -> Path:
    """Held-out pairs in the layout `plusls eval summarize` reads (CodeXGLUE: code_tokens, docstring_tokens)."""

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps({"func_name": r.get("name", ""), "code_tokens": TOKEN.findall(r["code"]),
                                "docstring_tokens": TOKEN.findall(r["summary"])}) + "\n")
    return path
