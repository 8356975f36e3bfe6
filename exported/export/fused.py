"""A fused decoder graph for Llama-style models (Llama, Qwen2), written directly with onnxruntime's contrib ops.

optimum's export rebuilds rotary embeddings, grouped-query attention and the causal mask from many small ops in
every layer; at batch 1 those cost about as much as the matrix products they surround (docs/measurements.md).
Here each layer is SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization, the q/k/v/o and MLP MatMuls,
and one GroupQueryAttention with the rotary inside, with the inputs and outputs of optimum's graph (`position_ids`
aside: GroupQueryAttention derives positions from the mask) and `logits_to_keep`. GroupQueryAttention reads the
mask as a length per row, so rows cannot be left-padded: the manifest says `"attention": "fused"` and
causal_lm.py runs prompts of different lengths one after the other."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ExportError
from .logits import INPUT as KEEP

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


def write_fused(model, config: dict, path: Path) -> None:
    """Write `model` (a transformers Llama/Qwen2 causal LM, fp32) as the fused graph at `path` (weights beside it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not can_fuse(config):
        raise ExportError(f"{config.get('architectures')}: no fused graph for this architecture")
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    layers, eps = int(config["num_hidden_layers"]), float(config.get("rms_norm_eps", 1e-6))
    # Rotary tables for at least 4,096 positions: transformers runs past max_position_embeddings, so must we.
    positions = max(int(config.get("max_position_embeddings", 0)), 4096)
    theta = float(config.get("rope_theta", 10000.0))
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    inits, nodes = [], []

    def weight(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain or None, **attrs))

    def linear(x: str, prefix: str, name: str) -> str:
        """x @ W.T (+ b), named /model/.../MatMul as optimum's graph is, so quantization rules read the same."""
        out = f"{name}/MatMul"
        node("MatMul", [x, weight(f"{prefix}.weight_t", state[f"{prefix}.weight"].T)], [out], out)
        if f"{prefix}.bias" in state:
            node("Add", [out, weight(f"{prefix}.bias", state[f"{prefix}.bias"])], [f"{name}/Add"], f"{name}/Add")
            return f"{name}/Add"
        return out

    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    freqs = np.outer(np.arange(positions, dtype=np.float64), inv_freq)
    weight("cos_cache", np.cos(freqs))
    weight("sin_cache", np.sin(freqs))
    # Lengths GroupQueryAttention wants: per row (valid tokens - 1), and the total, both int32.
    node("ReduceSum", ["attention_mask", _i64(inits, "/mask/axes", [1])], ["/mask/sum"], "/mask/sum",
         keepdims=0)
    node("Sub", ["/mask/sum", _i64(inits, "/mask/one", [1])], ["/mask/seqlens"], "/mask/seqlens")
    node("Cast", ["/mask/seqlens"], ["seqlens_k"], "/mask/cast", to=TensorProto.INT32)
    node("Shape", ["attention_mask"], ["/mask/shape"], "/mask/shape")
    node("Gather", ["/mask/shape", _i64(inits, "/mask/one_scalar", 1)], ["/mask/total"], "/mask/total", axis=0)
    node("Cast", ["/mask/total"], ["total_sequence_length"], "/mask/total_cast", to=TensorProto.INT32)

    embed = "model.embed_tokens.weight"
    node("Gather", [weight(embed, state[embed]), "input_ids"], ["/model/embed_tokens/Gather"],
         "/model/embed_tokens/Gather")
    x, residual = "/model/embed_tokens/Gather", ""
    for i in range(layers):
        p, n = f"model.layers.{i}", f"/model/layers.{i}"
        x, residual = _norm(node, weight, x, residual, state[f"{p}.input_layernorm.weight"], f"{n}/input_layernorm",
                            eps)
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
        x, residual = _norm(node, weight, o, residual, state[f"{p}.post_attention_layernorm.weight"],
                            f"{n}/post_attention_layernorm", eps)
        gate = linear(x, f"{p}.mlp.gate_proj", f"{n}/mlp/gate_proj")
        up = linear(x, f"{p}.mlp.up_proj", f"{n}/mlp/up_proj")
        node("Sigmoid", [gate], [f"{n}/mlp/sigmoid"], f"{n}/mlp/sigmoid")
        node("Mul", [gate, f"{n}/mlp/sigmoid"], [f"{n}/mlp/silu"], f"{n}/mlp/silu")
        node("Mul", [f"{n}/mlp/silu", up], [f"{n}/mlp/act"], f"{n}/mlp/act")
        x = linear(f"{n}/mlp/act", f"{p}.mlp.down_proj", f"{n}/mlp/down_proj")
    x, _ = _norm(node, weight, x, residual, state["model.norm.weight"], "/model/norm", eps)
    node("Neg", [KEEP], ["/logits_to_keep/start"], "/logits_to_keep/start")
    node("Slice", [x, "/logits_to_keep/start", _i64(inits, "/logits_to_keep/end", [2**62]),
                   _i64(inits, "/logits_to_keep/axis", [1])], ["/logits_to_keep/hidden"], "/logits_to_keep")
    if getattr(model.config, "tie_word_embeddings", False):  # as optimum writes it: quantize.share_tied_embedding
        node("Transpose", [embed], ["/lm_head/weight_t"], "/lm_head/Transpose", perm=[1, 0])  # keeps one copy
        lm_head = "/lm_head/weight_t"
    else:
        lm_head = weight("lm_head.weight_t", state["lm_head.weight"].T)
    node("MatMul", ["/logits_to_keep/hidden", lm_head], ["logits"], "/lm_head/MatMul")

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
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    onnx.save_model(onnx_model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=1024)


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
