"""Search reranking by the completion model: how likely it finds the user's query as the search that would lead
to each candidate, log p(query | code), asked in chat form (unsupervised passage reranking, Sachan et al. 2022).
No training: an instruct code model knows how people describe code. Search fuses this ranking with its own
(indexer.search), since alone it is worse than the index's; together they rank better (docs/measurements.md)."""
from __future__ import annotations

import time
from typing import Callable, Sequence

SYSTEM = "You write the web search query a Python developer would type to find a function."
MAX_CODE_CHARS = 800  # the start of a chunk says what it does; the rest costs time

# (messages, answer) -> log p(answer | messages)
AnswerScorer = Callable[[list[dict[str, str]], str], float]


def query_messages(code: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"```python\n{code[:MAX_CODE_CHARS]}\n```"}]


class QueryLikelihood:
    """A search reranker (indexer.search.Reranker) over a chat model's answer scores. `budget_s`: score the first
    codes for at most about this long (each takes one pass of the model); the rest keep the index's order."""

    def __init__(self, scorer: AnswerScorer, budget_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.scorer, self.budget_s, self.clock = scorer, budget_s, clock

    def score(self, text: str, codes: Sequence[str]) -> list[float]:
        """log p(query | code) for the first codes, as many as the budget allows (at least one)."""
        start, out = self.clock(), []
        for code in codes:
            if out and self.budget_s is not None and self.clock() - start > self.budget_s:
                break
            out.append(self.scorer(query_messages(code), text))
        return out
