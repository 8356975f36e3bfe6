"""Causal LM generation over an exported decoder with KV cache (optimum's text-generation-with-past layout)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from plusls.common.chat import frame_chat, frame_of
from plusls.common.errors import PluslsError

from .generation import (CancelToken, Generation, GenerationConfig, RowDecoder, StopWatch, adjust_logits, choose_tokens,
                         resolve_config, token_logprobs)
from .kv_buffers import KVBuffers
from .model_files import ModelFiles
from .padding import pad_batch
from .sessions import RuntimeOptions
from .special_tokens import stop_ids

Past = list  # list of np.ndarray or ort.OrtValue, in the session's past_key_values input order
Cache = Past | KVBuffers


class CausalLM:
    def __init__(self, directory: str | Path, options: RuntimeOptions | None = None, verify: bool = True):
        self.files = ModelFiles(directory, "causal-lm", options, verify)
        self.manifest = self.files.manifest
        self.tokenizer = self.files.tokenizer
        self.session = self.files.sessions["decoder"]
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.past_names = [n for n in inputs if n.startswith("past_key_values.")]
        self.present_names = ["present" + n[len("past_key_values") :] for n in self.past_names]
        self.output_names = ["logits", *self.present_names]
        shape = inputs[self.past_names[0]].shape  # [batch, kv_heads, past_len, head_dim]
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])
        # The exported graph's key/value dtype (fp16 exports take fp16 caches), not an assumed fp32.
        self.kv_dtype = np.float16 if inputs[self.past_names[0]].type == "tensor(float16)" else np.float32
        self.has_position_ids = "position_ids" in inputs
        self.keeps_logits = "logits_to_keep" in inputs  # newer exports: logits only where asked (older: every row)
        # A fused graph (export/fused.py) reads the mask as lengths: rows must not be left-padded.
        self.fused = self.manifest.config.get("attention") == "fused"
        self.stop_ids = stop_ids(self.manifest.special_tokens, self.tokenizer)
        pad = self.manifest.token_id("pad")
        self.pad_id = pad if pad is not None else (self.manifest.token_id("eos") or 0)
        # An empty prompt (an empty file) starts from BOS, or the end-of-text token that separates documents.
        start = self.manifest.token_id("bos")
        self.start_ids = [start if start is not None else self.pad_id]
        self.device = "cuda" if self.files.on_cuda else "cpu"
        self._scored: tuple[list[int], Past] = ([], [])  # answer_logprob's last text and its key/values
        self._scored_lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        return self.files.providers

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def empty_past(self, batch: int) -> Past:
        return [np.zeros((batch, self.kv_heads, 0, self.head_dim), self.kv_dtype) for _ in self.past_names]

    def new_cache(self) -> Cache:
        """A batch-1 cache for step-by-step use: for a fused graph, buffers its GroupQueryAttention writes in place
        (not for fp32 on CUDA, where that op, fp16-only there, falls back to the CPU); else an empty past."""
        if not self.fused or (self.device == "cuda" and self.kv_dtype != np.float16):
            return self.empty_past(1)
        return KVBuffers(len(self.past_names), self.kv_heads, self.head_dim, self.kv_dtype, self.device,
                         limit=self.manifest.max_length or None)

    def forward(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray, past: Cache,
        keep: int | None = None,
    ) -> tuple[np.ndarray, Cache]:
        """One decoder call: logits [batch, positions, vocab] and the new past (present) key/values. `keep`: logits
        for only the last `keep` positions (all when None); an older export without that input returns all.
        With KVBuffers, the mask's length is the cache's: positions beyond what it covers are overwritten."""
        feed: dict[str, object] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.has_position_ids:
            feed["position_ids"] = position_ids
        if self.keeps_logits:
            feed["logits_to_keep"] = np.array([keep or input_ids.shape[1]], np.int64)
        if isinstance(past, KVBuffers):
            total = attention_mask.shape[1]
            past.reserve(total, total - input_ids.shape[1])
            feed.update(zip(self.past_names, past.values))
            return self._run_bound(feed, past.values)[0], past
        feed.update(zip(self.past_names, past))
        if not self.files.io_binding:
            outs = self.session.run(self.output_names, feed)
            return outs[0], outs[1:]
        return self._run_bound(feed, None)

    def _run_bound(self, feed: dict[str, object], presents: list[ort.OrtValue] | None) -> tuple[np.ndarray, Past]:
        """IO binding: key/values stay where they are (on the device, or written into `presents`, the buffers
        bound as past too); only logits come back to the host."""
        binding = self.session.io_binding()
        for name, value in feed.items():
            if isinstance(value, ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.bind_output("logits", "cpu")
        for i, name in enumerate(self.present_names):
            if presents:
                binding.bind_ortvalue_output(name, presents[i])
            else:
                binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        outs = binding.get_outputs()
        return outs[0].numpy(), list(outs[1:])

    def answer_logprob(self, messages: list[dict[str, str]], answer: str) -> float:
        """log p(answer | the conversation, framed by the model's own chat template), summed over the answer's
        tokens, in one pass; the start it shares with the previous call's text (a reranker's system turn) is not
        run again."""
        frame = frame_of(self.manifest.config)
        if frame is None:
            raise PluslsError(f"{self.files.directory} has no chat template: it cannot score answers")
        context, text = self.encode(frame_chat(frame, messages)), self.encode(answer)
        if not text:
            return 0.0
        limit = self.manifest.max_length or len(context) + len(text)
        if len(text) >= limit:
            raise PluslsError(f"an answer of {len(text)} tokens is longer than {self.files.directory} reads")
        ids = (context + text)[-limit:]  # past the model's positions: the context's end
        with self._scored_lock:
            last_ids, last_past = self._scored
            keep = min(common_prefix(last_ids, ids), len(ids) - len(text) - 1)
            past = [first_positions(p, keep) for p in last_past] if keep else self.empty_past(1)
            logits, present = self.forward(np.asarray([ids[keep:]], np.int64), np.ones((1, len(ids)), np.int64),
                                           np.arange(keep, len(ids))[None], past, keep=len(text) + 1)
            self._scored = (ids, present)
        return float(token_logprobs(logits[0, -len(text) - 1 : -1], text).sum())

    def generate(
        self, prompts: str | Sequence[str], config: GenerationConfig | None = None, cancel: CancelToken | None = None
    ) -> list[Generation]:
        """Complete each prompt; prompts of different lengths run as one left-padded batch."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        return self.generate_ids([self.encode(p) for p in prompts], config, cancel)

    def generate_ids(
        self, prompts: Sequence[Sequence[int]], config: GenerationConfig | None = None, cancel: CancelToken | None = None
    ) -> list[Generation]:
        # Repetition control only where the caller asks for it: completions keep the plain greedy the server's
        # prefix-reuse loop reproduces token for token.
        config = resolve_config(config or GenerationConfig(), None)
        watch = StopWatch(config, cancel)
        rows = [RowDecoder(self.tokenizer, len(p), config, self.stop_ids) for p in prompts]
        if config.max_new_tokens <= 0 or not prompts:
            return [r.result(0.0, "length") for r in rows]
        if reason := watch.interrupted():
            return [r.result(watch.elapsed(), reason) for r in rows]
        if self.fused and len({len(p) or 1 for p in prompts}) > 1:  # no left padding: one row at a time
            return [self.generate_ids([p], config, cancel)[0] for p in prompts]
        prompts = [list(p) or self.start_ids for p in prompts]
        ids, mask = pad_batch(prompts, self.pad_id, left=True)
        positions = np.maximum(mask.cumsum(axis=1) - 1, 0)
        rng = np.random.default_rng(config.seed)
        logits, past = self.forward(ids, mask, positions, self.empty_past(len(prompts)), keep=1)
        reason = None
        while True:
            tokens = choose_tokens(adjust_logits(logits[:, -1, :], [r.ids for r in rows], config), config, rng)
            lps = token_logprobs(logits[:, -1, :], tokens) if config.logprobs else [None] * len(rows)
            for row, token, lp in zip(rows, tokens, lps):
                row.push(int(token), watch.elapsed(), lp)
            if all(r.done for r in rows) or (reason := watch.interrupted()):
                break
            tokens = np.where([r.done for r in rows], self.pad_id, tokens)
            mask = np.concatenate([mask, np.ones((len(rows), 1), np.int64)], axis=1)
            positions = positions[:, -1:] + 1
            logits, past = self.forward(tokens[:, None].astype(np.int64), mask, positions, past)
        total = watch.elapsed()
        return [r.result(total, reason) for r in rows]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many first tokens two sequences share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if len(diff) else n


def first_positions(value, n: int) -> np.ndarray:
    """A key/value array's first `n` positions ([batch, heads, positions, dim]), on the host (an OrtValue on a
    device is copied back)."""
    arr = value if isinstance(value, np.ndarray) else value.numpy()
    return arr if arr.shape[2] == n else np.ascontiguousarray(arr[:, :, :n, :])
