"""plusls export: every architecture, its manifest, parity, int8, and the errors a user can hit."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers as tf
from conftest import CAUSAL, KIND

from plusls.exported import CausalLM, Embedder, ExportError, GenerationConfig, Seq2SeqLM, read_manifest
from plusls.exported.export import export_model
from plusls.exported.manifest import sha256_file


@pytest.mark.parametrize("arch", list(KIND))
def test_manifest_describes_the_export(arch, exported):
    m = read_manifest(exported[arch])
    assert m.kind == KIND[arch]
    assert (exported[arch] / "tokenizer.json").is_file()
    for name, digest in m.files.items():
        assert sha256_file(exported[arch] / name) == digest
    assert m.parity["fp32_max_abs_diff"] <= 1e-4
    assert m.opset >= 14 and m.max_length > 0 and m.quantization is None
    assert m.special_tokens["eos" if arch != "bert" else "sep"]["id"] >= 0


def test_fim_tokens_are_read_from_the_tokenizer(exported):
    fim = read_manifest(exported["gpt2"]).fim
    assert {k: v["token"] for k, v in fim.items()} == {
        "prefix": "<fim_prefix>", "suffix": "<fim_suffix>", "middle": "<fim_middle>"}
    assert read_manifest(exported["llama"]).fim is None  # no FIM tokens: none invented


@pytest.mark.parametrize("arch", CAUSAL)
def test_causal_logits_match_pytorch(arch, checkpoints, exported):
    hf = tf.AutoModelForCausalLM.from_pretrained(checkpoints[arch]).eval()
    lm = CausalLM(exported[arch])
    ids = np.array([lm.encode("def read_file(path):\n    with open(path) as f:")])
    mask = np.ones_like(ids)
    pos = np.arange(ids.shape[1])[None]
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(ids)).logits.numpy()
    got, _ = lm.forward(ids, mask, pos, lm.empty_past(1))
    assert np.abs(ref - got).max() <= 1e-4


@pytest.mark.parametrize("arch", ["t5"])
def test_seq2seq_encoder_matches_pytorch(arch, checkpoints, exported):
    hf = tf.AutoModelForSeq2SeqLM.from_pretrained(checkpoints[arch]).eval()
    lm = Seq2SeqLM(exported[arch])
    ids, mask = lm.encode_batch(["def add(a, b):\n    return a + b"])
    with torch.no_grad():
        ref = hf.get_encoder()(input_ids=torch.from_numpy(ids)).last_hidden_state.numpy()
    got = lm.encoder.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(ref - got).max() <= 1e-4


@pytest.mark.parametrize("arch", ["bert", "codet5p-embedding"])
def test_embeddings_are_unit_vectors_matching_pytorch(arch, checkpoints, exported):
    from plusls.exported.export import _embedding_module

    config = json.loads((checkpoints[arch] / "config.json").read_text())
    model = _embedding_module(checkpoints[arch], config)[0]
    emb = Embedder(exported[arch])
    text = "def add(a, b): return a + b"
    ids = np.array([emb.tokenizer.encode(text).ids])
    args = [torch.from_numpy(ids), torch.ones(ids.shape, dtype=torch.long)]
    if arch == "bert":
        args.append(torch.zeros(ids.shape, dtype=torch.long))
    with torch.no_grad():
        ref = model(*args).numpy()
    got = emb.embed([text])
    assert got.shape == (1, emb.dim)
    assert np.abs(ref - got).max() <= 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "t5", "codet5p-embedding"])
def test_int8_export_quantizes_weights_and_keeps_quality(arch, checkpoints, exported, tmp_path, quiet):
    import onnx

    from plusls.exported.export.quantize import _graphs

    m = export_model(checkpoints[arch], KIND[arch], tmp_path / "q", int8=True, log=quiet)
    assert m.quantization.startswith("int8")
    assert m.parity.get("int8_top1_agreement", m.parity.get("int8_min_cosine")) >= 0.9
    fp32 = read_manifest(exported[arch])
    for name in m.files:
        if name.endswith(".onnx"):  # GPT-2's Gemm layers are quantized too
            graph = onnx.load(str(tmp_path / "q" / name)).graph
            ops = {n.op_type for g in _graphs(graph) for n in g.node}  # If branches included
            assert ("MatMulInteger" if KIND[arch] == "embedding" else "MatMulNBits") in ops
            assert m.files[name] != fp32.files[name]
    runtime = {"causal-lm": CausalLM, "seq2seq": Seq2SeqLM}.get(KIND[arch])
    if runtime:
        out = runtime(tmp_path / "q").generate("def add(a, b):")[0]
        ref = runtime(exported[arch]).generate("def add(a, b):")[0]
        assert out.token_ids[:1] == ref.token_ids[:1] != []  # the int8 model makes the fp32 model's first choice
    else:
        ref = Embedder(exported[arch]).embed(["def add(a, b):"])
        assert float((Embedder(tmp_path / "q").embed(["def add(a, b):"]) * ref).sum()) >= 0.9  # cosine


def test_int8_that_loses_quality_is_refused(checkpoints, tmp_path, monkeypatch, quiet):
    import plusls.exported.export as ex

    monkeypatch.setattr(ex.parity, "top1_agreement", lambda ref, q: 0.5)
    with pytest.raises(ExportError, match="int8 loses too much quality.*0.500.*without --int8"):
        export_model(checkpoints["llama"], "causal-lm", tmp_path / "q", int8=True, log=quiet)
    assert not (tmp_path / "q").exists()


def test_missing_source_is_a_clear_error(tmp_path, quiet):
    with pytest.raises(ExportError, match="does not exist.*never downloads"):
        export_model(tmp_path / "nope", "causal-lm", tmp_path / "out", log=quiet)
    with pytest.raises(ExportError, match="does not exist"):
        export_model("Salesforce/codegen-350M-mono", "causal-lm", tmp_path / "out", log=quiet)


def test_incomplete_source_names_what_is_missing(checkpoints, tmp_path, quiet):
    src = tmp_path / "partial"
    src.mkdir()
    (src / "config.json").write_text((checkpoints["llama"] / "config.json").read_text())
    with pytest.raises(ExportError, match=r"missing weights .*tokenizer files"):
        export_model(src, "causal-lm", tmp_path / "out", log=quiet)
    assert not (tmp_path / "out").exists()


def test_failed_parity_writes_nothing(checkpoints, tmp_path, monkeypatch, quiet):
    import plusls.exported.export as ex

    monkeypatch.setattr(ex, "PARITY_LIMIT", 0.0)  # any difference at all now counts as a failure
    monkeypatch.setattr(ex, "FUSED_PARITY_LIMIT", 0.0)
    monkeypatch.setattr(ex.parity, "causal_logits", lambda *a: (np.zeros((2, 3)), np.full((2, 3), 0.5)))
    with pytest.raises(ExportError, match="parity check failed.*0.5"):
        export_model(checkpoints["gpt2"], "causal-lm", tmp_path / "out", log=quiet)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial directory left behind


def test_existing_output_needs_force(checkpoints, exported, tmp_path, quiet):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(ExportError, match="--force"):
        export_model(checkpoints["gpt2"], "causal-lm", out, log=quiet)
    assert (out / "keep.txt").read_text() == "user data"
    export_model(checkpoints["gpt2"], "causal-lm", out, force=True, log=quiet)
    assert not (out / "keep.txt").exists() and read_manifest(out).kind == "causal-lm"


def test_tied_embedding_is_stored_once_and_reads_the_same(checkpoints, tmp_path, quiet):
    """SmolLM2 ties its input embedding to lm_head: int8 export keeps one (transposed) copy, with exact outputs."""
    import onnx
    import onnxruntime as ort
    import transformers as tf

    from plusls.exported.export.quantize import share_tied_embedding

    model = tf.AutoModelForCausalLM.from_pretrained(checkpoints["llama"])
    model.config.tie_word_embeddings = True
    model.tie_weights()
    src = tmp_path / "tied"
    model.save_pretrained(src)
    tf.AutoTokenizer.from_pretrained(checkpoints["llama"]).save_pretrained(src)
    export_model(src, "causal-lm", tmp_path / "fp32", log=quiet)

    graph = onnx.load(str(tmp_path / "fp32" / "model.onnx"))
    kept = share_tied_embedding(graph.graph)
    assert kept  # the lm_head MatMul, left in fp32
    shared = tmp_path / "shared.onnx"
    onnx.save(graph, str(shared))
    vocab = model.config.vocab_size
    big = [i for i in graph.graph.initializer if vocab in i.dims]
    assert len(big) == 1 and big[0].name.endswith("_transposed")

    ids = np.array([[5, 17, 42, 7]], np.int64)
    before = ort.InferenceSession(str(tmp_path / "fp32" / "model.onnx"), providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(str(shared), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "logits_to_keep": np.array([4])}
    for i in before.get_inputs():
        if i.name.startswith("past_key_values"):
            feed[i.name] = np.zeros((1, int(i.shape[1]), 0, int(i.shape[3])), np.float32)
    np.testing.assert_array_equal(before.run(["logits"], feed)[0], after.run(["logits"], feed)[0])

    q = export_model(src, "causal-lm", tmp_path / "q", int8=True, log=quiet)
    assert q.parity["int8_top1_agreement"] >= 0.9
    assert CausalLM(tmp_path / "q").generate("def add(a, b):")[0].finish_reason in ("eos", "length")


def test_gathered_embedding_is_stored_in_int8_and_reads_nearly_the_same(exported, tmp_path):
    """An untied token embedding (Qwen2.5-Coder's: 545 MB in fp32) is only gathered: int8 blocks plus scales,
    dequantized after the lookup; logits stay within the rounding of those blocks, next tokens unchanged."""
    import onnx
    import onnxruntime as ort

    from plusls.exported.export.quantize import int8_embeddings

    graph = onnx.load(str(exported["llama"] / "model.onnx"))
    table = next(i for i in graph.graph.initializer if "embed" in i.name)
    assert int8_embeddings(graph.graph) == []  # a tiny table is left alone by default
    assert int8_embeddings(graph.graph, min_elements=0) == [table.name]
    stored = {i.name: i.data_type for i in graph.graph.initializer}
    assert table.name not in stored and stored[table.name + "_int8"] == onnx.TensorProto.INT8
    small = tmp_path / "int8_embedding.onnx"
    onnx.save(graph, str(small))

    ids = np.array([[5, 17, 42, 7, 99, 3]], np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "logits_to_keep": np.array([6])}
    before = ort.InferenceSession(str(exported["llama"] / "model.onnx"), providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(str(small), providers=["CPUExecutionProvider"])
    for i in before.get_inputs():
        if i.name.startswith("past_key_values"):
            feed[i.name] = np.zeros((1, int(i.shape[1]), 0, int(i.shape[3])), np.float32)
    ref, got = before.run(["logits"], feed)[0], after.run(["logits"], feed)[0]
    assert 0 < np.abs(ref - got).max() < 0.05 * np.abs(ref).max()
    assert (ref.argmax(-1) == got.argmax(-1)).all()


def test_int8_weights_live_beside_the_graph(checkpoints, tmp_path, quiet):
    """A generator's int8 weights go to model.onnx.data (memory-mapped, released after repacking; a 1.5B's pass
    protobuf's 2 GB limit); the runtime reads them as it reads the same graph stored in one file."""
    import onnx

    q = export_model(checkpoints["llama"], "causal-lm", tmp_path / "q", int8=True, log=quiet)
    assert set(q.files) == {"model.onnx", "model.onnx.data", "tokenizer.json"}
    graph = onnx.load(str(tmp_path / "q" / "model.onnx"), load_external_data=False).graph
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer)
    one = tmp_path / "one"
    one.mkdir()
    onnx.save(onnx.load(str(tmp_path / "q" / "model.onnx")), str(one / "model.onnx"))
    (one / "tokenizer.json").write_bytes((tmp_path / "q" / "tokenizer.json").read_bytes())
    lm = CausalLM(tmp_path / "q")
    ids = np.array([[5, 17, 42, 7]], np.int64)
    feed = (ids, np.ones_like(ids), np.arange(4)[None], lm.empty_past(1))
    import onnxruntime as ort

    single = ort.InferenceSession(str(one / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in single.get_inputs()]
    inputs = dict(zip(["input_ids", "attention_mask", "position_ids"], feed[:3]), logits_to_keep=np.array([4]))
    inputs = {n: v for n, v in inputs.items() if n in names}  # a fused graph takes no position_ids
    inputs.update({n: p for n, p in zip([n for n in names if n.startswith("past")], feed[3])})
    np.testing.assert_array_equal(lm.forward(*feed)[0], single.run(["logits"], inputs)[0])


@pytest.mark.parametrize("arch", CAUSAL)
def test_logits_only_for_the_positions_asked_for(arch, exported):
    """The export's logits_to_keep input: a prefill asks for its last row only, draft verification for a few;
    those rows equal the same rows of the full logits, and generation is unchanged (the other tests compare it with
    transformers)."""
    lm = CausalLM(exported[arch])
    assert lm.keeps_logits
    ids = np.array([lm.encode("def add(a, b):\n    return a + b\n")], np.int64)
    mask, pos = np.ones_like(ids), np.arange(ids.shape[1])[None]
    full, _ = lm.forward(ids, mask, pos, lm.empty_past(1))
    last, _ = lm.forward(ids, mask, pos, lm.empty_past(1), keep=1)
    three, _ = lm.forward(ids, mask, pos, lm.empty_past(1), keep=3)
    assert full.shape[1] == ids.shape[1] and last.shape[1] == 1 and three.shape[1] == 3
    np.testing.assert_allclose(last[:, 0], full[:, -1], atol=1e-5)
    np.testing.assert_allclose(three, full[:, -3:], atol=1e-5)


def test_llama_and_qwen2_export_the_fused_graph_and_generate_as_transformers(checkpoints, exported):
    """Llama/Qwen2 get the fused graph (one GroupQueryAttention per layer); prompts of different lengths, which it
    cannot left-pad, still come out as transformers' greedy continuation of each."""
    import onnx

    assert "attention" not in read_manifest(exported["gpt2"]).config  # other architectures: optimum's graph
    for arch in ("llama", "qwen2"):
        assert read_manifest(exported[arch]).config["attention"] == "fused"
        nodes = onnx.load(str(exported[arch] / "model.onnx"), load_external_data=False).graph.node
        assert sum(n.op_type == "GroupQueryAttention" for n in nodes) == 2 and len(nodes) < 60
        hf = tf.AutoModelForCausalLM.from_pretrained(checkpoints[arch]).eval()
        lm = CausalLM(exported[arch])
        prompts = ["def read_file(path):\n    with open(path) as f:", "x = 1"]
        ours = lm.generate(prompts, GenerationConfig(max_new_tokens=8))
        for prompt, got in zip(prompts, ours):
            ids = lm.encode(prompt)
            with torch.no_grad():  # transformers' greedy, step by step over the whole sequence
                for _ in range(len(got.token_ids)):
                    ids.append(int(hf(torch.tensor([ids])).logits[0, -1].argmax()))
            assert got.token_ids and got.token_ids == ids[-len(got.token_ids):], arch
