"""pass@k with the unbiased estimator of Chen et al. 2021 (Codex paper)."""
from __future__ import annotations

from typing import Iterable

DEFAULT_KS = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples drawn from n (c of them correct) is correct: 1 - C(n-c,k)/C(n,k).

    Computed as a running product, which stays exact-ish where the binomials would overflow.
    """
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n and 0 <= c <= n (n={n}, c={c})")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def mean_pass_at_k(counts: Iterable[tuple[int, int]], ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """Average pass@k over problems, for each k that every problem has enough samples for.

    `counts` holds (n samples, c correct) per problem.
    """
    counts = list(counts)
    if not counts:
        return {}
    n_min = min(n for n, _ in counts)
    return {f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in counts) / len(counts) for k in ks if k <= n_min}
