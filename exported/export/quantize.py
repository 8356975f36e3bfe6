"""int8 dynamic quantization of an exported model directory's ONNX files (weights int8, activations at run time)."""
from __future__ import annotations

import os
from pathlib import Path

from ..manifest import ONNX_FILES, Manifest


def quantize_dir(work: Path, manifest: Manifest) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in ONNX_FILES[manifest.kind].values():
        src = work / name
        tmp = work / f"{name}.int8"
        quantize_dynamic(src, tmp, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
        os.replace(tmp, src)
        data = work / f"{name}_data"
        if data.exists():
            data.unlink()
    manifest.quantization = "int8-dynamic (MatMul/Gemm weights, per-channel)"
