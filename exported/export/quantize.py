"""int8 quantization of an exported model directory's ONNX files; the method depends on the kind:

- Generators (causal-lm, seq2seq): weight-only MatMulNBits (8-bit blocks of 32, accuracy_level 4 = int8 compute),
  large tables that are only gathered (an untied token embedding) in int8 blocks, the weights beside the graph.
  onnxruntime's quantize_dynamic (per-tensor uint8 activations) destroys Llama-style models, whose activations
  carry outliers (down_proj inputs); one row at a time, a decode step is weight streaming, which 8-bit halves.
- Encoders (embedding): quantize_dynamic with reduce_range (keeps the u8s8 kernels of CPUs without VNNI from
  saturating): batches of many tokens are compute-bound, where MatMulNBits is slower than fp32.
The figures behind both choices: docs/measurements.md (runtime speed; indexing throughput), bench/runtime_speed.py
and bench/embed_ceiling.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..manifest import ONNX_FILES, Manifest

BITS, BLOCK, ACCURACY_LEVEL = 8, 32, 4
TABLE_MIN_ELEMENTS = 1 << 20  # smaller gathered tables stay fp32


def quantize_dir(work: Path, manifest: Manifest) -> None:
    if manifest.kind in ("embedding", "matching"):  # encoders: compute-bound batches
        _quantize_dynamic(work, manifest)
        return
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    tables: list[str] = []
    for name in ONNX_FILES[manifest.kind].values():
        path = work / name
        model = onnx.load(str(path))
        gemm_to_matmul(model.graph)
        keep_fp32 = share_tied_embedding(model.graph)
        tables += int8_embeddings(model.graph)
        quantizer = MatMulNBitsQuantizer(model, block_size=BLOCK, is_symmetric=True, bits=BITS,
                                         accuracy_level=ACCURACY_LEVEL, nodes_to_exclude=keep_fp32)
        quantizer.process()
        if not any(_count(g, "MatMulNBits") for g in _graphs(quantizer.model.model.graph)):
            raise ExportError(f"{name} has no MatMul weights to quantize; export it without --int8")
        _save(quantizer.model, work, name)
    manifest.quantization = weight_only_note(bool(tables))


def weight_only_note(tables: bool) -> str:
    """The manifest's account of a generator's int8 weights."""
    return (f"int8 weight-only (MatMulNBits, {BITS}-bit blocks of {BLOCK}, accuracy_level {ACCURACY_LEVEL})"
            + (f"; gathered tables int8 in blocks of {BLOCK}" if tables else ""))


def _save(model, work: Path, name: str) -> None:
    """Write the quantized `name` in place of the fp32 one, its weights beside it in `name`.data, and drop the old
    external weights (optimum's `name`_data). onnxruntime memory-maps external weights and lets go of them once
    MatMulNBits has repacked them; from inside the .onnx file both copies stay in memory (docs/measurements.md).
    It also keeps a 1.5B's weights clear of protobuf's 2 GB limit."""
    staging = work / f".{name}.int8"
    staging.mkdir()
    model.save_model_to_file(str(staging / name), use_external_data_format=True)  # weights: staging/name.data
    for old in (work / f"{name}_data", work / f"{name}.data"):
        old.unlink(missing_ok=True)
    for f in staging.iterdir():
        f.replace(work / f.name)
    staging.rmdir()


def _quantize_dynamic(work: Path, manifest: Manifest) -> None:
    """The matching model (the reranker, meant to ship inside the package) also stores its word embeddings in int8
    (Gather): MiniLM's 30522 x 384 table is 47 of its 57 MB otherwise (23 MB with it)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = ["MatMul", "Gemm", "Gather"] if manifest.kind == "matching" else ["MatMul", "Gemm"]
    for name in ONNX_FILES[manifest.kind].values():
        tmp = work / f"{name}.int8"
        quantize_dynamic(work / name, tmp, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=ops)
        tmp.replace(work / name)
    manifest.quantization = (f"int8 dynamic ({'/'.join(ops)} weights per channel, reduce_range; activations at run "
                             "time)")


def share_tied_embedding(graph) -> list[str]:
    """Tied input embedding and lm_head (SmolLM2): Gather(W, ids) and MatMul(h, Transpose(W)). onnxruntime folds
    the Transpose into a second fp32 copy at load (113 MB for SmolLM2); instead store W transposed once and read
    the embedding from it: Gather(W_T, ids, axis=1) -> [H, B, S] -> Transpose -> [B, S, H] (exact). Returns the
    lm_head MatMul names, which stay fp32: 8-bit there cost top-1 agreement (SmolLM2 0.87 vs 0.91) and its
    fp32-compute kernel is ~7x slower."""
    from onnx import helper, numpy_helper

    inits, ranks, consumers = _index(graph)
    kept: list[str] = []
    for tr in [n for n in graph.node if n.op_type == "Transpose" and n.input[0] in inits]:
        perm = next((list(helper.get_attribute_value(a)) for a in tr.attribute if a.name == "perm"), [1, 0])
        weight = tr.input[0]
        users = consumers.get(weight, [])
        gathers = [n for n in users if n.op_type == "Gather" and n.input[0] == weight and ranks.get(n.input[1]) == 2
                   and all(helper.get_attribute_value(a) == 0 for a in n.attribute if a.name == "axis")]
        matmuls = consumers.get(tr.output[0], [])
        if perm != [1, 0] or len(users) != len(gathers) + 1 or not gathers or not matmuls or any(
                m.op_type != "MatMul" or m.input[1] != tr.output[0] for m in matmuls):
            continue
        name = weight + "_transposed"
        w = numpy_helper.to_array(inits[weight])
        graph.initializer.remove(inits[weight])
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.T), name))
        for m in matmuls:
            m.input[1] = name
            kept.append(m.name)
        graph.node.remove(tr)
        for g in gathers:
            at = list(graph.node).index(g)
            graph.node.remove(g)
            for offset, node in enumerate(transposed_gather_nodes(name, g.input[1], g.output[0], g.name)):
                graph.node.insert(at + offset, node)
    return kept


def transposed_gather_nodes(table_t: str, ids: str, out: str, name: str) -> list:
    """Rows of a [H, V] table stored transposed: Gather(W_T, ids, axis=1) -> [H, B, S] -> Transpose -> [B, S, H]."""
    from onnx import helper

    return [helper.make_node("Gather", [table_t, ids], [out + "/hidden_first"], name=name, axis=1),
            helper.make_node("Transpose", [out + "/hidden_first"], [out], perm=[1, 2, 0],
                             name=name + "/to_batch_first")]


def int8_embeddings(graph, min_elements: int = TABLE_MIN_ELEMENTS) -> list[str]:
    """Large tables that are only gathered (the token embedding, when lm_head has its own weights): stored as int8
    with one fp32 scale per block of BLOCK values, dequantized after the Gather, so only the looked-up rows are
    ever float (Qwen2.5-Coder-0.5B's 151,936 x 896 table: a quarter of its fp32 size). onnxruntime's
    GatherBlockQuantized takes 4 bits only, and the GGUF stores this table in 5 (Q5_0). Returns the tables
    rewritten."""
    from onnx import TensorProto, helper, numpy_helper

    inits, ranks, consumers = _index(graph)
    done: list[str] = []
    for name, init in list(inits.items()):
        users = consumers.get(name, [])
        dims = list(init.dims)
        if (len(dims) != 2 or dims[0] * dims[1] < min_elements or init.data_type != TensorProto.FLOAT or not users
                or any(n.op_type != "Gather" or n.input[0] != name or ranks.get(n.input[1]) != 2
                       or any(helper.get_attribute_value(a) != 0 for a in n.attribute if a.name == "axis")
                       for n in users)):
            continue
        q, scales, block = int8_table(numpy_helper.to_array(init))
        graph.initializer.remove(init)
        graph.initializer.extend([numpy_helper.from_array(q, name + "_int8"),
                                  numpy_helper.from_array(scales, name + "_scales")])
        graph.initializer.extend(int8_gather_shapes(name, block))
        for g in users:
            at = list(graph.node).index(g)
            graph.node.remove(g)
            for offset, node in enumerate(int8_gather_nodes(name, g.input[1], g.output[0], g.name or g.output[0])):
                graph.node.insert(at + offset, node)
        done.append(name)
    return done


def int8_table(w: np.ndarray, rows: int = 1 << 14) -> tuple[np.ndarray, np.ndarray, int]:
    """A [rows, columns] fp32 table as int8 with one fp32 scale per block of BLOCK values: (values, scales
    [rows, blocks, 1], block). Done a slice of rows at a time, so only the table itself is ever whole in fp32."""
    block = BLOCK if w.shape[1] % BLOCK == 0 else w.shape[1]
    q = np.empty(w.shape, np.int8)
    scales = np.empty((w.shape[0], w.shape[1] // block, 1), np.float32)
    for start in range(0, w.shape[0], rows):
        blocks = w[start:start + rows].reshape(-1, w.shape[1] // block, block)
        s = np.abs(blocks).max(axis=-1, keepdims=True) / 127.0
        s[s == 0] = 1.0
        q[start:start + rows] = np.clip(np.rint(blocks / s), -127, 127).reshape(-1, w.shape[1])
        scales[start:start + rows] = s
    return q, scales, block


def int8_gather_shapes(name: str, block: int) -> list:
    """The two shape constants int8_gather_nodes reshapes with."""
    from onnx import TensorProto, helper

    return [helper.make_tensor(name + "_blocked", TensorProto.INT64, [4], [0, 0, -1, block]),
            helper.make_tensor(name + "_rows", TensorProto.INT64, [3], [0, 0, -1])]


def int8_gather_nodes(name: str, ids: str, out: str, prefix: str) -> list:
    """Gather rows of the int8 table `name`_int8 and their scales, and dequantize only those rows into `out`."""
    from onnx import TensorProto, helper

    p = prefix
    return [
        helper.make_node("Gather", [name + "_int8", ids], [p + "/q"], name=p + "/q"),
        helper.make_node("Cast", [p + "/q"], [p + "/qf"], to=TensorProto.FLOAT, name=p + "/cast"),
        helper.make_node("Reshape", [p + "/qf", name + "_blocked"], [p + "/blocks"], name=p + "/blocks"),
        helper.make_node("Gather", [name + "_scales", ids], [p + "/scales"], name=p + "/scales"),
        helper.make_node("Mul", [p + "/blocks", p + "/scales"], [p + "/scaled"], name=p + "/mul"),
        helper.make_node("Reshape", [p + "/scaled", name + "_rows"], [out], name=p + "/rows"),
    ]


def matmul_nbits(w_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """A [K, N] weight as MatMulNBits wants it (symmetric BITS-bit blocks of BLOCK along K): (packed [N, blocks,
    BLOCK], scales [N, blocks], the node's attributes). The quantizer's own kernel, one weight at a time, so a
    streamed export and MatMulNBitsQuantizer write the same bytes."""
    from onnxruntime.capi._pybind_state import quantize_matmul_8bits  # what MatMulNBitsQuantizer calls

    k, n = w_t.shape
    blocks = (k + BLOCK - 1) // BLOCK
    w_t = np.ascontiguousarray(np.pad(w_t, ((0, blocks * BLOCK - k), (0, 0))) if k % BLOCK else w_t, np.float32)
    packed = np.zeros((n, blocks, BLOCK), np.uint8)
    scales = np.zeros((n, blocks), np.float32)
    quantize_matmul_8bits(packed, w_t, scales, np.zeros((n, blocks), np.uint8), BLOCK, n, k, True)
    return packed, scales, {"K": k, "N": n, "bits": BITS, "block_size": BLOCK, "accuracy_level": ACCURACY_LEVEL}


def _index(graph) -> tuple[dict, dict, dict[str, list]]:
    """The graph's initializers by name, its inputs' ranks, and each value's consuming nodes."""
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return ({i.name: i for i in graph.initializer}, {i.name: len(i.type.tensor_type.shape.dim) for i in graph.input},
            consumers)


def gemm_to_matmul(graph) -> None:
    """Rewrite Gemm(A, W, C) with a constant W as MatMul + Add (GPT-2's Conv1D exports as Gemm), so the
    MatMulNBits quantizer, which only reads MatMul, sees those weights too."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in graph.initializer}
    nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type != "Gemm" or not plain or node.input[1] not in inits:
            nodes.append(node)
            continue
        if attrs.get("transB", 0):
            w = inits[node.input[1]]
            w.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(w).T), w.name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = node.output[0] + "/matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", node.input[:2], [product], name=node.name + "/MatMul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], node.output, name=node.name + "/Add"))
    del graph.node[:]
    graph.node.extend(nodes)


def _graphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _graphs(attr.g)


def _count(graph, op: str) -> int:
    return sum(n.op_type == op for n in graph.node)
