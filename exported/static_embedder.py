"""A static embedder distilled from an exported encoder, the way model2vec distils one: each vocabulary token goes
through the encoder alone, once; a text's vector is then the mean of its tokens' vectors, each weighted by how rare
the token is in code (SIF weights from token counts over the Python standard library, which every machine has).

It embeds thousands of texts a second on one core and needs no ONNX session, so a new workspace is searchable by
meaning within seconds; it ranks far worse than the encoder (docs/measurements.md), which re-embeds every chunk
behind it."""
from __future__ import annotations

import json
import os
import random
import shutil
import sysconfig
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from tokenizers import Tokenizer

from .embedder import Embedder

SIF_A = 1e-3  # the SIF constant: chosen on CoSQA dev among 1e-5..3e-2
COUNT_CHARS = 2_000_000  # standard-library source read for token counts (8 MB ranked the same)
MAX_TOKENS = 512  # a chunk is windowed well below this; a longer text is cut
FORMAT = 2  # 2: float16 vectors


class StaticEmbedder:
    def __init__(self, directory: str | Path):
        self.directory = directory = Path(directory)
        self.vectors = np.load(directory / "vectors.npy")
        self.dim = int(self.vectors.shape[1])
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def embed(self, texts: Sequence[str], batch_size: int = 0, max_length: int | None = None,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """[len(texts), dim] float32, unit length (zero for a text with no tokens)."""
        out = np.zeros((len(texts), self.dim), np.float32)
        for n, enc in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            ids = enc.ids[: max_length or MAX_TOKENS]
            if ids:
                out[n] = self.vectors[ids].mean(0, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-9)
        if progress:
            progress(len(texts))
        return out


def static_for(embedder: Embedder, model_id: str, home: Path, log: Callable[[str], None] = print) -> StaticEmbedder:
    """The static embedder distilled from `embedder` (whose index id is `model_id`), distilled once under `home`."""
    folder = home / f"{model_id.replace('/', '_').replace('@', '-')}-v{FORMAT}"
    if not (folder / "static.json").is_file():
        log(f"distilling a static first-pass embedder from {model_id} (once, a few seconds)")
        distill(embedder, model_id, folder)
    return StaticEmbedder(folder)


def distill(embedder: Embedder, teacher_id: str, out: Path, batch: int = 1024) -> None:
    tokenizer = embedder.tokenizer
    size = tokenizer.get_vocab_size()
    cls, sep = embedder.manifest.token_id("cls"), embedder.manifest.token_id("sep")
    vectors = np.zeros((size, embedder.dim), np.float32)
    for start in range(0, size, batch):
        rows = [[t for t in (cls, i, sep) if t is not None] for i in range(start, min(size, start + batch))]
        vectors[start : start + len(rows)] = embedder.run_ids(rows)
    counts = np.zeros(size, np.float64)
    with embedder.tokenizer_lock:
        tokenizer.no_truncation()
        for enc in tokenizer.encode_batch(list(_stdlib_sample()), add_special_tokens=False):
            counts += np.bincount(enc.ids, minlength=size)
    p = counts / max(counts.sum(), 1.0)
    vectors *= (SIF_A / (SIF_A + p)).astype(np.float32)[:, None]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "vectors.npy", vectors.astype(np.float16))  # half the server's memory; rankings unchanged
    tokenizer.save(str(tmp / "tokenizer.json"))
    (tmp / "static.json").write_text(json.dumps({"teacher": teacher_id, "format": FORMAT, "sif_a": SIF_A,
                                                 "counted_tokens": int(counts.sum())}, indent=2) + "\n")
    try:
        tmp.rename(out)
    except OSError:  # another process distilled it first
        shutil.rmtree(tmp, ignore_errors=True)


def _stdlib_sample() -> Iterator[str]:
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))
    random.Random(0).shuffle(files)
    read = 0
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        yield text
        read += len(text)
        if read >= COUNT_CHARS:
            return
