"""Every metric plusls reports, in one place: CodeXGLUE's smoothed BLEU-4, ROUGE-L, exact match, edit similarity,
MRR@k and recall@k. Training, refresh, evaluation and the benchmarks all read them from here."""
from __future__ import annotations

import math
import re
import sys
import xml.sax.saxutils
from collections import Counter
from typing import Hashable, Sequence

import numpy as np

# CodeXGLUE code-to-text's evaluator (bleu.py) first splits words from punctuation, then applies the NIST
# mteval-v11a normalisation. Its punctuation class spans ranges that include '_', so identifiers split too.
_WORDS = re.compile(r"[\w]+|[^\s\w]")
_NIST = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]
_TINY = sys.float_info.min  # CodeXGLUE adds it inside each log, so 0/0 counts as a precision of 1


def bleu_tokens(text: str) -> list[str]:
    """Tokens exactly as CodeXGLUE's code-to-text BLEU sees them."""
    s = " ".join(_WORDS.findall(text.strip().lower()))
    s = s.replace("<skipped>", "")
    s = re.sub(r"-\n", "", s).replace("\n", " ")
    s = xml.sax.saxutils.unescape(s, {"&quot;": '"'})
    s = f" {s} ".lower()
    for pattern, replacement in _NIST:
        s = pattern.sub(replacement, s)
    return s.split()


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def smoothed_bleu4(reference: str, hypothesis: str) -> float:
    """Sentence BLEU-4 in [0, 1] as CodeXGLUE computes it.

    Lin & Och (2004) add-one smoothing on 2- to 4-gram precisions (not unigrams), and a brevity penalty of
    exp(min(0, 1 - (ref_len + 1) / (hyp_len + 1))).
    """
    ref, hyp = bleu_tokens(reference), bleu_tokens(hypothesis)
    log_precision = 0.0
    for n in range(1, 5):
        ref_counts, hyp_counts = _ngrams(ref, n), _ngrams(hyp, n)
        correct = sum(min(count, ref_counts[g]) for g, count in hyp_counts.items())
        guess = max(len(hyp) - n + 1, 0)
        add = 1 if n > 1 else 0
        log_precision += math.log(correct + add + _TINY) - math.log(guess + add + _TINY)
    brevity = min(0.0, 1 - (len(ref) + 1) / (len(hyp) + 1))
    return math.exp(log_precision / 4 + brevity)


def corpus_smoothed_bleu4(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """CodeXGLUE's reported figure: the mean sentence score, times 100."""
    _same_length(references, hypotheses)
    return 100.0 * sum(map(smoothed_bleu4, references, hypotheses)) / len(references)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, 1):
            prev_diag, row[j] = row[j], prev_diag + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(reference: str, hypothesis: str) -> float:
    """ROUGE-L F1 in [0, 1] (longest common subsequence; beta = 1) over the BLEU tokens."""
    ref, hyp = bleu_tokens(reference), bleu_tokens(hypothesis)
    lcs = _lcs(ref, hyp)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l_recall(reference: str, hypothesis: str) -> float:
    """How much of the reference, in order, the hypothesis says (ROUGE-L recall, in [0, 1])."""
    ref = bleu_tokens(reference)
    return _lcs(ref, bleu_tokens(hypothesis)) / len(ref) if ref else 0.0


def corpus_rouge_l(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    _same_length(references, hypotheses)
    return 100.0 * sum(map(rouge_l, references, hypotheses)) / len(references)


def corpus_rouge_l_recall(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    _same_length(references, hypotheses)
    return 100.0 * sum(map(rouge_l_recall, references, hypotheses)) / len(references)


def edit_similarity(reference: str, hypothesis: str) -> float:
    """1 - Levenshtein distance / the longer length, on characters (1.0: identical; as in code completion papers)."""
    if not reference and not hypothesis:
        return 1.0
    previous = list(range(len(hypothesis) + 1))
    for i, a in enumerate(reference, 1):
        current = [i]
        for j, b in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return 1.0 - previous[-1] / max(len(reference), len(hypothesis))


def normalize_code(text: str) -> str:
    """Code compared line by line: trailing spaces and blank lines at either end ignored, indentation kept."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def exact_match(reference: str, hypothesis: str) -> bool:
    return normalize_code(reference) == normalize_code(hypothesis)


def exact_match_stripped(reference: str, hypothesis: str) -> bool:
    """Exact match with each line's indentation ignored, as Qwen2.5-Coder's HumanEval-FIM harness scores a line
    (both sides stripped): the figure its published exact matches are given in."""
    def lines(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip()]
    return lines(reference) == lines(hypothesis)


def first_rank(ranked: Sequence[Hashable], gold: Hashable | set) -> int | None:
    """1-based rank of `gold` in `ranked` (of any of them, for a set of equally right items), None if absent."""
    for i, item in enumerate(ranked, 1):
        if item in gold if isinstance(gold, (set, frozenset)) else item == gold:
            return i
    return None


def mrr_at_k(rankings: Sequence[Sequence[Hashable]], golds: Sequence[Hashable | set], k: int = 10) -> float:
    """Mean reciprocal rank of each query's gold item, counting 0 when it is not in the top k."""
    _same_length(rankings, golds)
    total = 0.0
    for ranked, gold in zip(rankings, golds):
        rank = first_rank(ranked[:k], gold)
        total += 1.0 / rank if rank else 0.0
    return total / len(golds)


def diagonal_mrr(similarities: np.ndarray) -> float:
    """MRR when query i's gold item is candidate i (in-domain retrieval: each text's own code among all codes);
    ties rank the gold first."""
    sims = np.asarray(similarities, dtype=np.float64)
    ranks = (sims > np.diag(sims)[:, None]).sum(axis=1) + 1
    return float((1.0 / ranks).mean())


def recall_at_k(rankings: Sequence[Sequence[Hashable]], golds: Sequence[Hashable], k: int) -> float:
    """Share of queries whose gold item is in the top k."""
    _same_length(rankings, golds)
    return sum(gold in ranked[:k] for ranked, gold in zip(rankings, golds)) / len(golds)


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b) or not a:
        raise ValueError(f"need as many references as hypotheses, and at least one (got {len(a)} and {len(b)})")
