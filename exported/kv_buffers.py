"""Key/value buffers that a fused graph's GroupQueryAttention reads and writes in place.

Bound as both a layer's past input and its present output (one OrtValue each), the cache is never copied from one
step to the next, and on CUDA it stays on the device. The valid length is the attention mask's, so rewinding after a
rejected draft, or to a prompt's common prefix, costs nothing: the next step overwrites what lies beyond it. A
prompt that outgrows the buffers doubles them, copying the valid part once. A prompt that starts as another cached
one does copies that start (`copy_prefix`).
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

MIN_CAPACITY = 512  # positions allocated at first (12 MB for Qwen2.5-Coder-0.5B in fp32)


class KVBuffers:
    def __init__(self, layers: int, kv_heads: int, head_dim: int, dtype, device: str = "cpu",
                 capacity: int | None = None, limit: int | None = None):
        self.layers, self.kv_heads, self.head_dim, self.dtype, self.device = layers, kv_heads, head_dim, dtype, device
        self.limit = limit  # the model's context: doubling stops there
        self.capacity = 0
        self.values: list[ort.OrtValue] = []
        self._host: list[np.ndarray] = []  # on the CPU: the arrays `values` use, written through for copies
        self._grow(capacity or MIN_CAPACITY, 0)

    def reserve(self, total: int, valid: int) -> None:
        """Room for `total` positions, keeping the first `valid` ones."""
        if total > self.capacity:
            doubled = min(2 * self.capacity, self.limit) if self.limit else 2 * self.capacity
            self._grow(max(total, doubled), valid)

    def _grow(self, capacity: int, valid: int) -> None:
        arrays = [np.zeros((1, self.kv_heads, capacity, self.head_dim), self.dtype) for _ in range(self.layers)]
        for array, value in zip(arrays, self.values if valid else []):
            array[:, :, :valid] = value.numpy()[:, :, :valid]
        # On the CPU an OrtValue uses (and keeps alive) the numpy array's memory; on CUDA it is copied over once.
        self.values = [ort.OrtValue.ortvalue_from_numpy(a, self.device, 0) for a in arrays]
        self._host = arrays if self.device == "cpu" else []
        self.capacity = capacity

    def copy_prefix(self, other: "KVBuffers", length: int) -> None:
        """Hold `other`'s first `length` positions (for a prompt that starts as other's does): one copy per layer
        instead of running those tokens again."""
        self.reserve(length, 0)
        for i, (mine, theirs) in enumerate(zip(self.values, other.values)):
            if self._host and other._host:
                self._host[i][:, :, :length] = other._host[i][:, :, :length]
            else:  # on a device: through the host
                full = mine.numpy()
                full[:, :, :length] = theirs.numpy()[:, :, :length]
                mine.update_inplace(full)
