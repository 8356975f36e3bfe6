"""A fused decoder graph for Llama-style models (Llama, Qwen2), written directly with onnxruntime's contrib ops.

optimum's export rebuilds rotary embeddings, grouped-query attention and the causal mask from many small ops in
every layer; at batch 1 those cost about as much as the matrix products they surround (docs/measurements.md).
Here each layer is SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization, the q/k/v/o and MLP MatMuls,
and one GroupQueryAttention with the rotary inside, with the inputs and outputs of optimum's graph (`position_ids`
aside: GroupQueryAttention derives positions from the mask) and `logits_to_keep`. GroupQueryAttention reads the
mask as a length per row, so rows cannot be left-padded: the manifest says `"attention": "fused"` and
causal_lm.py runs prompts of different lengths one after the other.

Weights are written one at a time into the external data file as the graph is built (with `int8`, already
quantized), so a GGUF export never holds more than one fp32 weight (gguf_checkpoint.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ExportError
from .logits import INPUT as KEEP
from .quantize import (TABLE_MIN_ELEMENTS, int8_gather_nodes, int8_gather_shapes, int8_table, matmul_nbits,
                       transposed_gather_nodes, weight_only_note)

ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM")
MS = "com.microsoft"


def can_fuse(config: dict) -> bool:
    """Plain rotary Llama/Qwen2 decoders with heads of a multiple of 16; anything else (rope scaling, sliding
    windows, ...) keeps optimum's graph."""
    window = config.get("use_sliding_window") and config.get("sliding_window")
    heads = int(config.get("num_attention_heads") or 1)
    head_dim = int(config.get("head_dim") or int(config.get("hidden_size", 0)) // heads)
    return (config.get("architectures") or [""])[0] in ARCHITECTURES and not config.get("rope_scaling") \
        and not window and config.get("hidden_act") == "silu" and head_dim % 16 == 0  # GroupQueryAttention's rule


class Weights(Protocol):
    """A checkpoint's weights by Hugging Face name, each fp32 numpy on demand."""

    def __contains__(self, name: str) -> bool: ...

    def tensor(self, name: str) -> np.ndarray: ...


class TorchWeights:
    """A loaded transformers model's weights."""

    def __init__(self, model):
        self.state = model.state_dict()

    def __contains__(self, name: str) -> bool:
        return name in self.state

    def tensor(self, name: str) -> np.ndarray:
        return self.state[name].detach().float().numpy()


class WeightFile:
    """Initializers whose bytes go to `path`.data the moment they are made (small ones stay in the graph), and
    the largest relative error int8 quantization made in any of them."""

    INLINE, ALIGN = 1024, 4096

    def __init__(self, path: Path):
        self.name = path.name + ".data"
        self.file = (path.parent / self.name).open("wb")
        self.inits: list = []
        self.int8_error = 0.0

    def add(self, name: str, array: np.ndarray) -> str:
        from onnx import TensorProto, helper, numpy_helper

        array = np.ascontiguousarray(array)
        if array.nbytes < self.INLINE:
            self.inits.append(numpy_helper.from_array(array, name))
            return name
        offset = -self.file.tell() % self.ALIGN + self.file.tell()
        self.file.seek(offset)
        self.file.write(array.data)
        tensor = TensorProto(name=name, dims=array.shape, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                             data_location=TensorProto.EXTERNAL)
        for key, value in (("location", self.name), ("offset", offset), ("length", array.nbytes)):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
        self.inits.append(tensor)
        return name

    def note_error(self, reference: np.ndarray, approx: np.ndarray) -> None:
        self.int8_error = max(self.int8_error, float(np.linalg.norm(reference - approx) / np.linalg.norm(reference)))


def write_fused(weights: Weights, config: dict, path: Path, int8: bool = False) -> dict:
    """Write the Llama/Qwen2 decoder whose fp32 `weights` (Hugging Face names) and `config` are given as the fused
    graph at `path`, weights beside it in `path`.data. int8: linear layers as MatMulNBits and an untied token
    embedding as int8 blocks, as quantize.quantize_dir would make them. Returns the manifest's quantization note
    and error ({} for fp32)."""
    import onnx
    from onnx import TensorProto, helper

    if not can_fuse(config):
        raise ExportError(f"{config.get('architectures')}: no fused graph for this architecture")
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    layers, eps = int(config["num_hidden_layers"]), float(config.get("rms_norm_eps", 1e-6))
    # Rotary tables for at least 4,096 positions: transformers runs past max_position_embeddings, so must we.
    positions = max(int(config.get("max_position_embeddings", 0)), 4096)
    theta = float(config.get("rope_theta", 10000.0))
    store = WeightFile(path)
    inits, nodes = store.inits, []
    weight = store.add

    def node(op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain or None, **attrs))

    def matmul(x: str, w: np.ndarray, key: str, out: str, name: str) -> None:
        """x @ w ([K, N]), as MatMulNBits when quantizing, named as MatMulNBitsQuantizer names it."""
        if not int8:
            node("MatMul", [x, weight(key, w)], [out], name)
            return
        packed, scales, attrs = matmul_nbits(w)
        cols = min(w.shape[1], 4096)  # a sample of output columns bounds the check's memory
        restored = (packed[:cols].astype(np.float32) - 128) * scales[:cols, :, None]
        store.note_error(w[:, :cols], restored.reshape(cols, -1)[:, :w.shape[0]].T)
        node("MatMulNBits", [x, weight(f"{key}_Q8", packed), weight(f"{key}_scales", scales)], [out], f"{name}_Q8",
             MS, **attrs)

    def linear(x: str, prefix: str, name: str) -> str:
        """x @ W.T (+ b), named /model/.../MatMul as optimum's graph is, so quantization rules read the same."""
        out = f"{name}/MatMul"
        matmul(x, weights.tensor(f"{prefix}.weight").T, f"{prefix}.weight_t", out, out)
        if f"{prefix}.bias" in weights:
            node("Add", [out, weight(f"{prefix}.bias", weights.tensor(f"{prefix}.bias"))], [f"{name}/Add"],
                 f"{name}/Add")
            return f"{name}/Add"
        return out

    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    freqs = np.outer(np.arange(positions, dtype=np.float64), inv_freq)
    weight("cos_cache", np.cos(freqs).astype(np.float32))
    weight("sin_cache", np.sin(freqs).astype(np.float32))
    # Lengths GroupQueryAttention wants: per row (valid tokens - 1), and the total, both int32.
    node("ReduceSum", ["attention_mask", _i64(inits, "/mask/axes", [1])], ["/mask/sum"], "/mask/sum",
         keepdims=0)
    node("Sub", ["/mask/sum", _i64(inits, "/mask/one", [1])], ["/mask/seqlens"], "/mask/seqlens")
    node("Cast", ["/mask/seqlens"], ["seqlens_k"], "/mask/cast", to=TensorProto.INT32)
    node("Shape", ["attention_mask"], ["/mask/shape"], "/mask/shape")
    node("Gather", ["/mask/shape", _i64(inits, "/mask/one_scalar", 1)], ["/mask/total"], "/mask/total", axis=0)
    node("Cast", ["/mask/total"], ["total_sequence_length"], "/mask/total_cast", to=TensorProto.INT32)

    embed, gathered = "model.embed_tokens.weight", "/model/embed_tokens/Gather"
    tied = bool(config.get("tie_word_embeddings")) or "lm_head.weight" not in weights
    table = weights.tensor(embed)
    int8_table_done = int8 and not tied and table.size >= TABLE_MIN_ELEMENTS
    if tied and int8:  # one fp32 copy, transposed, read by both (quantize.share_tied_embedding)
        lm_head = weight(embed + "_transposed", table.T)
        nodes.extend(transposed_gather_nodes(lm_head, "input_ids", gathered, gathered))
    elif int8_table_done:
        q, scales, block = int8_table(table)
        rows = min(len(table), 4096)
        store.note_error(table[:rows], (q[:rows].reshape(rows, -1, block) * scales[:rows]).reshape(rows, -1))
        weight(embed + "_int8", q)
        weight(embed + "_scales", scales)
        inits.extend(int8_gather_shapes(embed, block))
        nodes.extend(int8_gather_nodes(embed, "input_ids", gathered, gathered))
    else:
        node("Gather", [weight(embed, table), "input_ids"], [gathered], gathered)
    if tied and not int8:
        node("Transpose", [embed], ["/lm_head/weight_t"], "/lm_head/Transpose", perm=[1, 0])  # keeps one copy
        lm_head = "/lm_head/weight_t"
    del table
    x, residual = gathered, ""
    for i in range(layers):
        p, n = f"model.layers.{i}", f"/model/layers.{i}"
        x, residual = _norm(node, weight, x, residual, weights.tensor(f"{p}.input_layernorm.weight"),
                            f"{n}/input_layernorm", eps)
        q = linear(x, f"{p}.self_attn.q_proj", f"{n}/self_attn/q_proj")
        k = linear(x, f"{p}.self_attn.k_proj", f"{n}/self_attn/k_proj")
        v = linear(x, f"{p}.self_attn.v_proj", f"{n}/self_attn/v_proj")
        node("GroupQueryAttention",
             [q, k, v, f"past_key_values.{i}.key", f"past_key_values.{i}.value", "seqlens_k", "total_sequence_length",
              "cos_cache", "sin_cache"],
             [f"{n}/attn", f"present.{i}.key", f"present.{i}.value"], f"{n}/self_attn/GroupQueryAttention", MS,
             num_heads=heads, kv_num_heads=kv_heads, scale=float(head_dim ** -0.5), do_rotary=1,
             rotary_interleaved=0)
        o = linear(f"{n}/attn", f"{p}.self_attn.o_proj", f"{n}/self_attn/o_proj")
        x, residual = _norm(node, weight, o, residual, weights.tensor(f"{p}.post_attention_layernorm.weight"),
                            f"{n}/post_attention_layernorm", eps)
        gate = linear(x, f"{p}.mlp.gate_proj", f"{n}/mlp/gate_proj")
        up = linear(x, f"{p}.mlp.up_proj", f"{n}/mlp/up_proj")
        node("Sigmoid", [gate], [f"{n}/mlp/sigmoid"], f"{n}/mlp/sigmoid")
        node("Mul", [gate, f"{n}/mlp/sigmoid"], [f"{n}/mlp/silu"], f"{n}/mlp/silu")
        node("Mul", [f"{n}/mlp/silu", up], [f"{n}/mlp/act"], f"{n}/mlp/act")
        x = linear(f"{n}/mlp/act", f"{p}.mlp.down_proj", f"{n}/mlp/down_proj")
    x, _ = _norm(node, weight, x, residual, weights.tensor("model.norm.weight"), "/model/norm", eps)
    node("Neg", [KEEP], ["/logits_to_keep/start"], "/logits_to_keep/start")
    node("Slice", [x, "/logits_to_keep/start", _i64(inits, "/logits_to_keep/end", [2**62]),
                   _i64(inits, "/logits_to_keep/axis", [1])], ["/logits_to_keep/hidden"], "/logits_to_keep")
    if tied:  # fp32: 8-bit there cost top-1 agreement (quantize.share_tied_embedding)
        node("MatMul", ["/logits_to_keep/hidden", lm_head], ["logits"], "/lm_head/MatMul")
    else:
        matmul("/logits_to_keep/hidden", weights.tensor("lm_head.weight").T, "lm_head.weight_t", "logits",
               "/lm_head/MatMul")
    store.file.close()

    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    inputs = [helper.make_tensor_value_info("input_ids", i64, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", i64, ["batch_size", "total_sequence_length"])]
    outputs = [helper.make_tensor_value_info("logits", f, ["batch_size", "kept", int(config["vocab_size"])])]
    for i in range(layers):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", f,
                                                        ["batch_size", kv_heads, "past_sequence_length", head_dim]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", f,
                                                         ["batch_size", kv_heads, "total_sequence_length", head_dim]))
    inputs.append(helper.make_tensor_value_info(KEEP, i64, [1]))
    graph = helper.make_graph(nodes, "fused_decoder", inputs, outputs, inits)
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]),
                    str(path))
    if not int8:
        return {}
    return {"quantization": weight_only_note(int8_table_done), "int8_max_rel_error": store.int8_error}


def _i64(inits: list, name: str, value) -> str:
    from onnx import numpy_helper

    if not any(t.name == name for t in inits):
        inits.append(numpy_helper.from_array(np.array(value, np.int64), name))
    return name


def _norm(node, weight, x: str, residual: str, gamma: np.ndarray, name: str, eps: float) -> tuple[str, str]:
    """RMSNorm of x (+ residual): (normalized, the new residual stream)."""
    if not residual:
        node("SimplifiedLayerNormalization", [x, weight(f"{name}.weight", gamma)], [f"{name}/out"], name,
             axis=-1, epsilon=eps, stash_type=1)
        return f"{name}/out", x
    node("SkipSimplifiedLayerNormalization", [x, residual, weight(f"{name}.weight", gamma)],
         [f"{name}/out", "", "", f"{name}/sum"], name, MS, epsilon=eps)
    return f"{name}/out", f"{name}/sum"
