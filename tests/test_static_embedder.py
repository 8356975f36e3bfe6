"""The static first-pass embedder distilled from the real all-MiniLM-L6-v2: it ranks by meaning, coarsely."""
from __future__ import annotations

import numpy as np
import pytest

from plusls.common.paths import default_models_dir
from plusls.exported import Embedder
from plusls.exported.defaults import EMBEDDER, ensure_default
from plusls.exported.static_embedder import StaticEmbedder, static_for

CODES = {
    "read": "def read_text(path):\n    with open(path, encoding='utf-8') as f:\n        return f.read()\n",
    "median": "def median(values):\n    s = sorted(values)\n    n = len(s)\n"
              "    return (s[n // 2] + s[~(n // 2)]) / 2\n",
    "url": "def fetch_json(url):\n    response = requests.get(url, timeout=5)\n    return response.json()\n",
}


@pytest.fixture(scope="module")
def static(tmp_path_factory) -> StaticEmbedder:
    teacher = Embedder(ensure_default(EMBEDDER, default_models_dir()))
    return static_for(teacher, "minilm-test", tmp_path_factory.mktemp("static"), log=lambda m: None)


@pytest.mark.parametrize("query, want", [("load the contents of a file as a string", "read"),
                                         ("middle value of a list of numbers", "median"),
                                         ("download data from a web api", "url")])
def test_each_query_ranks_its_function_first(static, query, want):
    names = list(CODES)
    scores = static.embed(list(CODES.values())) @ static.embed([query])[0]
    assert names[int(np.argmax(scores))] == want


def test_vectors_are_unit_length_and_an_empty_text_is_zero(static):
    v = static.embed(["def f(): pass", ""])
    assert v.shape == (2, static.dim) and abs(np.linalg.norm(v[0]) - 1) < 1e-5 and not v[1].any()
    again = StaticEmbedder(static.directory)  # the distilled files load alone
    assert np.allclose(again.embed(["def f(): pass"]), v[:1])
