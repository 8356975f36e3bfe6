"""Loading a model directory: every way it can be missing or corrupt gives a clear error."""
from __future__ import annotations

import json
import shutil

import pytest

from plusls.exported import CausalLM, Embedder, ModelDirError, RuntimeOptions, Seq2SeqLM


@pytest.fixture
def model_copy(exported, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(exported["llama"], dst)
    return dst


def test_missing_directory(tmp_path):
    with pytest.raises(ModelDirError, match="does not exist.*plusls export"):
        CausalLM(tmp_path / "nowhere")


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ModelDirError, match="no manifest.json"):
        CausalLM(tmp_path)


def test_corrupt_onnx_file(model_copy):
    data = bytearray((model_copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match=r"model.onnx is corrupt \(sha256"):
        CausalLM(model_copy)


def test_missing_tokenizer(model_copy):
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelDirError, match="incomplete: tokenizer.json is missing"):
        CausalLM(model_copy)


def test_truncated_manifest(model_copy):
    path = model_copy / "manifest.json"
    path.write_text(path.read_text()[:50])
    with pytest.raises(ModelDirError, match="manifest.json is corrupt"):
        CausalLM(model_copy)


def test_manifest_without_onnx_entry(model_copy):
    path = model_copy / "manifest.json"
    m = json.loads(path.read_text())
    del m["files"]["model.onnx"]
    path.write_text(json.dumps(m))
    with pytest.raises(ModelDirError, match="does not list model.onnx"):
        CausalLM(model_copy)


def test_wrong_kind(exported):
    with pytest.raises(ModelDirError, match="holds a causal-lm model, not a embedding"):
        Embedder(exported["llama"])
    with pytest.raises(ModelDirError, match="holds a embedding model, not a seq2seq"):
        Seq2SeqLM(exported["bert"])


def test_providers_reported_and_unavailable_provider_refused(exported):
    assert CausalLM(exported["llama"]).providers[0] == "CPUExecutionProvider"
    with pytest.raises(ModelDirError, match="none of the requested providers"):
        CausalLM(exported["llama"], RuntimeOptions(providers=("NoSuchExecutionProvider",)))


def test_a_load_hashes_only_files_changed_since_their_last_check(model_copy, monkeypatch):
    """Loads check size + mtime against the last full sha256 check; doctor (verify="full") still hashes all."""
    import os

    from plusls.exported import manifest as manifest_module

    hashed = []
    real = manifest_module.sha256_file
    monkeypatch.setattr(manifest_module, "sha256_file", lambda p, *a: hashed.append(p.name) or real(p, *a))
    CausalLM(model_copy)  # the export recorded its stamps: nothing to hash
    assert hashed == []
    onnx = max(model_copy.glob("model.onnx*"), key=lambda p: p.stat().st_size)  # the weights (graph or beside it)
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    st = onnx.stat()
    onnx.write_bytes(bytes(data))
    os.utime(onnx, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: a load cannot tell
    CausalLM(model_copy)
    assert hashed == []
    with pytest.raises(ModelDirError, match=f"{onnx.name} is corrupt"):
        manifest_module.read_manifest(model_copy, verify="full")
    onnx.touch()  # a changed mtime is hashed at the next load, and the corruption found
    with pytest.raises(ModelDirError, match=f"{onnx.name} is corrupt"):
        CausalLM(model_copy)
    assert onnx.name in hashed
