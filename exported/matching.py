"""Text-code matching scores from an exported cross-encoder (kind "matching"): the search reranker. No torch here.

The graph takes "[CLS] text [SEP] code [SEP]" (input_ids, attention_mask, token_type_ids: 0 for the text, 1 for
the code) and returns one logit per pair; higher means the code answers the text. Text and code are truncated to
the lengths the model was trained with (manifest config max_text / max_code)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .model_files import ModelFiles
from .padding import pad_batch
from .sessions import RuntimeOptions


def pair_ids(cls_id: int, sep_id: int, text: list[int], code: list[int]) -> tuple[list[int], list[int]]:
    """[CLS] text [SEP] code [SEP] from ids without special tokens; token types 0 then 1 (training builds its pairs
    with this too, so the runtime reads them as they were trained)."""
    return [cls_id, *text, sep_id, *code, sep_id], [0] * (len(text) + 2) + [1] * (len(code) + 1)


class Matcher:
    def __init__(self, directory: str | Path, options: RuntimeOptions | None = None, verify: bool = True):
        self.files = ModelFiles(directory, "matching", options, verify)
        self.manifest = self.files.manifest
        self.directory = self.files.directory
        self.tokenizer = self.files.tokenizer
        self.session = self.files.sessions["encoder"]
        self.input_names = {i.name for i in self.session.get_inputs()}
        cfg = self.manifest.config
        self.max_text, self.max_code = int(cfg.get("max_text", 32)), int(cfg.get("max_code", 128))
        self.cls_id, self.sep_id = self.manifest.token_id("cls"), self.manifest.token_id("sep")
        pad = self.manifest.token_id("pad")
        self.pad_id = pad if pad is not None else 0
        self._lock = threading.Lock()  # the Rust tokenizer refuses concurrent use

    @property
    def providers(self) -> list[str]:
        return self.files.providers

    def _ids(self, texts: Sequence[str], limit: int) -> list[list[int]]:
        with self._lock:
            encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids[:limit] for e in encs]

    def pairs(self, text: str, codes: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """(input ids, token types) of "[CLS] text [SEP] code [SEP]" for each code."""
        t = self._ids([text], self.max_text)[0]
        return [pair_ids(self.cls_id, self.sep_id, t, c) for c in self._ids(codes, self.max_code)]

    def run(self, rows: list[tuple[list[int], list[int]]]) -> np.ndarray:
        ids, mask = pad_batch([s for s, _ in rows], self.pad_id)
        types, _ = pad_batch([t for _, t in rows], 0)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = types
        return self.session.run(["logits"], feed)[0].reshape(len(rows))

    def score(self, text: str, codes: Sequence[str], batch_size: int = 8) -> np.ndarray:
        """[len(codes)] float32 match logits of `text` against each code (batched by length: little padding)."""
        rows = self.pairs(text, codes)
        out = np.zeros(len(rows), np.float32)
        order = np.argsort([len(ids) for ids, _ in rows], kind="stable")
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            out[idx] = self.run([rows[i] for i in idx])
        return out
