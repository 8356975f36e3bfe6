"""Token-id rows -> one padded batch (ids, attention mask), as every runtime model feeds its sessions."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, left: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """int64 ids and mask of shape [len(rows), longest row (at least 1)]. Left padding for causal LMs, so every
    row's last token sits in the last column; right padding for encoders."""
    width = max(1, max((len(r) for r in rows), default=1))
    ids = np.full((len(rows), width), pad_id, np.int64)
    mask = np.zeros((len(rows), width), np.int64)
    for i, row in enumerate(rows):
        if not len(row):
            continue
        cols = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, cols] = row
        mask[i, cols] = 1
    return ids, mask
