"""Exporting a GGUF file without torch: one weight at a time, the same model transformers reads from the file."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from plusls.exported import CausalLM, read_manifest
from plusls.exported.export import export_model
from plusls.exported.export.quantize import quantize_dir

# (architecture, tied): Qwen2 with its own lm_head, Llama (q/k rows interleaved in GGUF) reading lm_head from the
# token embedding.
CASES = [("qwen2", False), ("llama", True)]


@pytest.fixture(scope="module")
def ggufs(checkpoints, tmp_path_factory) -> dict:
    from tiny_models import build_gguf

    root = tmp_path_factory.mktemp("gguf")
    return {arch: build_gguf(checkpoints[arch], root / f"{arch}.gguf", tied=tied) for arch, tied in CASES}


def _initializers(directory) -> dict[str, np.ndarray]:
    model = onnx.load(str(directory / "model.onnx"))
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


@pytest.mark.parametrize("arch", [a for a, _ in CASES])
@pytest.mark.parametrize("int8", [False, True])
def test_gguf_export_matches_transformers_reading_the_same_file(arch, int8, ggufs, tmp_path, quiet):
    m = export_model(ggufs[arch], "causal-lm", tmp_path / "out", int8=int8, parity=True, log=quiet)
    if int8:
        assert m.parity["int8_top1_agreement"] >= 0.9 and 0 < m.parity["int8_max_rel_error"] < 0.02
        assert m.quantization.startswith("int8 weight-only")
    else:
        assert m.parity["fp32_max_abs_diff"] <= 1e-4 and m.quantization is None
    assert m.config["attention"] == "fused" and "GGUF, read one weight at a time" in m.source
    assert m.special_tokens["eos"]["token"] == "<|endoftext|>"


@pytest.mark.parametrize("arch", [a for a, _ in CASES])
def test_streamed_int8_is_what_quantizing_the_fp32_export_gives(arch, ggufs, tmp_path, quiet):
    streamed = tmp_path / "streamed"
    export_model(ggufs[arch], "causal-lm", streamed, int8=True, log=quiet)
    fp32 = tmp_path / "fp32"
    manifest = export_model(ggufs[arch], "causal-lm", fp32, log=quiet)
    quantize_dir(fp32, manifest)
    a, b = _initializers(streamed), _initializers(fp32)
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name].reshape(-1), b[name].reshape(-1)), name
    assert manifest.quantization == read_manifest(streamed).quantization


def test_gguf_export_needs_neither_torch_nor_transformers(ggufs, tmp_path, quiet, monkeypatch):
    """The serving install exports the default models itself: with torch and transformers unimportable the export
    still writes a model that completes, tokenizing as plusls's transformers path does for the same file."""
    out = tmp_path / "no-torch"
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "optimum"):
                    raise ImportError(f"{{name}} is blocked in this test")
        sys.meta_path.insert(0, Block())
        from plusls.exported.export import export_model
        export_model({str(ggufs["qwen2"])!r}, "causal-lm", {str(out)!r}, int8=True, log=lambda s: None)
        assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    # The same file through transformers: another tokenizer than the streamed export reads sends it there.
    from plusls.exported.export import gguf_checkpoint

    monkeypatch.setattr(gguf_checkpoint.GGUFCheckpoint, "tokenizer_supported", lambda self: False)
    via_transformers = export_model(ggufs["qwen2"], "causal-lm", tmp_path / "hf", log=quiet)
    assert "dequantized to fp32" in via_transformers.source
    streamed, reference = CausalLM(out), CausalLM(tmp_path / "hf")
    for text in ("def read_file(path):\n    return open(path).read()\n", "<|fim_prefix|>x = 1<|fim_suffix|>\n"
                 "<|fim_middle|>", "  \t\r\n é 日本 12345 'll <|im_end|>"):
        assert streamed.encode(text) == reference.encode(text)
    manifest = read_manifest(out)
    assert manifest.special_tokens["stop"] == via_transformers.special_tokens["stop"]
    assert manifest.fim == via_transformers.fim
    prompt = "def add(a, b):"
    assert streamed.generate(prompt)[0].token_ids[:4] == reference.generate(prompt)[0].token_ids[:4]  # int8 vs fp32


def test_int8_that_loses_too_much_is_refused_and_nothing_written(ggufs, tmp_path, quiet, monkeypatch):
    from plusls.exported import ExportError
    from plusls.exported import export

    monkeypatch.setattr(export, "INT8_MAX_REL_ERROR", 0.001)  # below what 8-bit blocks of 32 make
    with pytest.raises(ExportError, match="relative error .* > 0.001; export without --int8"):
        export_model(ggufs["qwen2"], "causal-lm", tmp_path / "out", int8=True, log=quiet)
    assert not (tmp_path / "out").exists() and not any(tmp_path.iterdir())
