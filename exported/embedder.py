"""Sentence/code embeddings from an exported encoder whose graph already pools and L2-normalises."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .model_files import ModelFiles
from .padding import pad_batch
from .sessions import RuntimeOptions, make_session


class Embedder:
    def __init__(self, directory: str | Path, options: RuntimeOptions | None = None, verify: bool = True):
        self.files = ModelFiles(directory, "embedding", options, verify)
        self.manifest = self.files.manifest
        self.tokenizer = self.files.tokenizer
        self.session = self.files.sessions["encoder"]
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.workers = self._workers()
        self.dim = int(self.manifest.config["dim"])
        self.max_length = self.manifest.max_length
        pad = self.manifest.token_id("pad")
        self.pad_id = pad if pad is not None else 0
        self.tokenizer_lock = threading.Lock()

    def _workers(self) -> list:
        """Sessions that take batches in parallel, each on one thread (only on CPU, when threads are not fixed)."""
        opts = self.files.options
        n = opts.parallel_sessions or (os.cpu_count() or 1)
        if self.files.on_cuda or opts.intra_op_threads or n < 2:
            return [self.session]
        single = replace(opts, intra_op_threads=1, inter_op_threads=1)
        path = self.files.directory / self.manifest.onnx_file("encoder")
        return [make_session(path, single) for _ in range(n)]

    def run_ids(self, rows: Sequence[Sequence[int]], session=None) -> np.ndarray:
        """Token-id rows (special tokens included) as one padded batch through the encoder: [len(rows), dim]."""
        ids, mask = pad_batch(rows, self.pad_id)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        return (session or self.session).run(["embedding"], feed)[0]

    @property
    def providers(self) -> list[str]:
        return self.files.providers

    def embed(
        self,
        texts: Sequence[str],
        batch_size: int = 8,
        max_length: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """[len(texts), dim] float32, unit length. Texts longer than max_length tokens are truncated.

        Texts are sorted by token length before batching so each batch pads little (the order of the
        result is the order of `texts`)."""
        limit = min(max_length or self.max_length, self.max_length)
        # The tokenizer truncates before adding special tokens, so a cut input still ends the way the model expects.
        with self.tokenizer_lock:  # the Rust tokenizer refuses concurrent use (a query while indexing)
            self.tokenizer.enable_truncation(limit)
            encs = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        out = np.zeros((len(encs), self.dim), np.float32)
        order = np.argsort([len(e) for e in encs], kind="stable")
        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]

        def run(session, idx: np.ndarray) -> None:
            out[idx] = self.run_ids([encs[i] for i in idx], session)
            if progress:
                progress(len(idx))

        if len(self.workers) == 1 or len(batches) == 1:
            for idx in batches:
                run(self.session, idx)
            return out
        # Worker k takes batches k, k+n, ...: onnxruntime releases the GIL while it runs.
        n = len(self.workers)
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda k: [run(self.workers[k], idx) for idx in batches[k::n]], range(n)))
        return out
