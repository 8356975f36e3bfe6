"""Encoder-decoder generation: the encoder runs once, the merged decoder steps with its past key/values."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .generation import (CancelToken, Generation, GenerationConfig, RowDecoder, StopWatch, adjust_logits, choose_tokens,
                         resolve_config)
from .model_files import ModelFiles
from .padding import pad_batch
from .sessions import RuntimeOptions
from .special_tokens import stop_ids


class Seq2SeqLM:
    def __init__(self, directory: str | Path, options: RuntimeOptions | None = None, verify: bool = True):
        self.files = ModelFiles(directory, "seq2seq", options, verify)
        self.manifest = self.files.manifest
        self.tokenizer = self.files.tokenizer
        self.encoder = self.files.sessions["encoder"]
        self.decoder = self.files.sessions["decoder"]
        inputs = {i.name: i for i in self.decoder.get_inputs()}
        self.past_names = [n for n in inputs if n.startswith("past_key_values.")]
        self.present_names = ["present" + n[len("past_key_values") :] for n in self.past_names]
        shape = inputs[self.past_names[0]].shape  # [batch, heads, len, head_dim]
        self.heads, self.head_dim = int(shape[1]), int(shape[3])
        self.start_id = int(self.manifest.config["decoder_start_token_id"])
        self.stop_ids = stop_ids(self.manifest.special_tokens, self.tokenizer)
        pad = self.manifest.token_id("pad")
        self.pad_id = pad if pad is not None else 0
        self.tokenizer.enable_truncation(self.manifest.max_length)  # cuts before the closing </s> is added
        # Decoding settings the model was evaluated with (repetition control, copy bias): used where a config leaves
        # them None.
        self.generation_defaults = dict(self.manifest.config.get("generation") or {})
        self.special_ids = {i for n in ("pad", "unk", "bos", "eos", "sep", "cls", "mask")
                            if (i := self.manifest.token_id(n)) is not None}

    @property
    def providers(self) -> list[str]:
        return self.files.providers

    def encode_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encs = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        return pad_batch(encs, self.pad_id)

    def generate(
        self, texts: str | Sequence[str], config: GenerationConfig | None = None, cancel: CancelToken | None = None
    ) -> list[Generation]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        config = resolve_config(config or GenerationConfig(), self.generation_defaults)
        watch = StopWatch(config, cancel)
        if not texts:
            return []
        ids, mask = self.encode_batch(texts)
        rows = [RowDecoder(self.tokenizer, int(m.sum()), config, self.stop_ids) for m in mask]
        if config.max_new_tokens <= 0:
            return [r.result(0.0, "length") for r in rows]
        if reason := watch.interrupted():
            return [r.result(watch.elapsed(), reason) for r in rows]
        hidden = self.encoder.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        batch = len(texts)
        feed = {
            "encoder_attention_mask": mask,
            "encoder_hidden_states": hidden,
            "input_ids": np.full((batch, 1), self.start_id, np.int64),
            "use_cache_branch": np.array([False]),
        }
        for name in self.past_names:  # the first step computes the cross-attention keys itself
            feed[name] = np.zeros((batch, self.heads, 0, self.head_dim), np.float32)
        rng = np.random.default_rng(config.seed)
        # copy_bias favours every token of the row's input but the special ones (tried on the dev slice: keeping only
        # identifier words scored lower)
        copy_ids = [np.array(sorted({int(t) for t in row[m == 1]} - self.special_ids), np.int64)
                    for row, m in zip(ids, mask)] if config.copy_bias else None
        reason = None
        while True:
            outs = self.decoder.run(["logits", *self.present_names], feed)
            logits = adjust_logits(outs[0][:, -1, :], [r.ids for r in rows], config, copy_ids)
            tokens = choose_tokens(logits, config, rng)
            for row, token in zip(rows, tokens):
                row.push(int(token), watch.elapsed())
            if all(r.done for r in rows) or (reason := watch.interrupted()):
                break
            for name, value in zip(self.past_names, outs[1:]):
                # Cross-attention key/values come from the first step and stay as they are.
                if ".decoder." in name or not feed["use_cache_branch"][0]:
                    feed[name] = value
            feed["use_cache_branch"] = np.array([True])
            feed["input_ids"] = np.where([r.done for r in rows], self.pad_id, tokens)[:, None].astype(np.int64)
        total = watch.elapsed()
        return [r.result(total, reason) for r in rows]
