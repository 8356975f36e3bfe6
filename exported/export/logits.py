"""Causal LM graphs that compute logits only for the positions asked for.

optimum's export computes logits at every position of the input: for a 512-token prompt and Qwen2.5-Coder's
151,936-word vocabulary that is ~70 GFLOPs of lm_head work of which plain completion reads one row. A Slice before
lm_head, driven by a new input `logits_to_keep` (how many trailing positions), lets the runtime ask for 1 in plain
prefill and for the draft's length when it verifies drafts; feeding the sequence length gives the old outputs."""
from __future__ import annotations

from pathlib import Path

from ..errors import ExportError

INPUT = "logits_to_keep"


def keep_last_logits(path: Path) -> None:
    """Rewrite `path` (its weights, external or not, stay where they are) with the `logits_to_keep` input."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    if any(i.name == INPUT for i in graph.input):
        return
    producers = {out: n for n in graph.node for out in n.output}
    producer = producers.get("logits")
    while producer is not None and producer.op_type in ("Cast", "Add"):  # CodeGen: Cast(Add(bias, MatMul))
        producer = next((producers[i] for i in producer.input if i in producers), None)
    if producer is None or producer.op_type not in ("MatMul", "Gemm"):
        raise ExportError(f"{path.name}: no lm_head MatMul produces `logits`; cannot keep only the last positions")
    hidden = producer.input[0]
    graph.input.append(helper.make_tensor_value_info(INPUT, TensorProto.INT64, [1]))
    graph.node.extend([
        helper.make_node("Neg", [INPUT], ["/logits_to_keep/start"]),
        helper.make_node("Constant", [], ["/logits_to_keep/end"],
                         value=helper.make_tensor("end", TensorProto.INT64, [1], [2**62])),
        helper.make_node("Constant", [], ["/logits_to_keep/axis"],
                         value=helper.make_tensor("axis", TensorProto.INT64, [1], [1])),
        helper.make_node("Slice", [hidden, "/logits_to_keep/start", "/logits_to_keep/end", "/logits_to_keep/axis"],
                         ["/logits_to_keep/hidden"]),
    ])
    producer.input[0] = "/logits_to_keep/hidden"
    # Topological order: the new nodes must come before lm_head.
    nodes = list(graph.node)
    at = nodes.index(producer)
    new = nodes[-4:]
    del graph.node[:]
    graph.node.extend(nodes[:at] + new + nodes[at:-4])
    onnx.save(model, str(path))
