"""A search reranker named on the command line: "completer" (the default completion model's likelihood of the query,
query_likelihood.py), or an exported model directory: a causal LM with a chat template scores the same way, a
"matching" export is a text-code cross-encoder."""
from __future__ import annotations

from pathlib import Path

from plusls.common.chat import frame_of
from plusls.common.errors import PluslsError
from plusls.common.paths import default_models_dir
from plusls.exported.causal_lm import CausalLM
from plusls.exported.defaults import COMPLETER, ensure_default
from plusls.exported.manifest import read_manifest
from plusls.exported.matching import Matcher

from .query_likelihood import QueryLikelihood
from .search import Reranker

COMPLETER_NAME = "completer"


def load_reranker(spec: str) -> Reranker:
    directory = ensure_default(COMPLETER, default_models_dir()) if spec == COMPLETER_NAME else Path(spec)
    manifest = read_manifest(directory, verify=False)  # which kind; loading it verifies it
    if manifest.kind == "matching":
        return Matcher(directory)
    if manifest.kind != "causal-lm" or frame_of(manifest.config) is None:
        raise PluslsError(f"{directory} cannot rerank: pass {COMPLETER_NAME!r}, an instruct causal LM's export "
                          "(one with a chat template) or a matching export (plusls export --kind matching)")
    return QueryLikelihood(CausalLM(directory).answer_logprob)
