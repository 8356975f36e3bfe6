"""pass@k, BLEU, ROUGE-L, exact match, MRR and recall: each against values worked out by hand."""
from __future__ import annotations

import math
from math import comb

import pytest

from plusls.common.metrics import (
    bleu_tokens,
    corpus_smoothed_bleu4,
    diagonal_mrr,
    edit_similarity,
    exact_match,
    exact_match_stripped,
    mrr_at_k,
    recall_at_k,
    rouge_l,
    smoothed_bleu4,
)
from plusls.evaluation.passk import mean_pass_at_k, pass_at_k


def test_pass_at_k_hand_values():
    assert pass_at_k(5, 2, 1) == pytest.approx(2 / 5)  # pass@1 is the share of correct samples
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 1, 3) == pytest.approx(1 - 1 / 4)  # 1 - C(3,3)/C(4,3)
    assert pass_at_k(5, 4, 2) == 1.0  # fewer wrong samples than k: always a correct one
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    for n in range(1, 25):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_pass_at_k_stays_finite_where_binomials_overflow_floats():
    assert pass_at_k(2000, 3, 100) == pytest.approx(1 - comb(1997, 100) / comb(2000, 100))


def test_mean_pass_at_k_reports_only_the_ks_every_problem_supports():
    assert mean_pass_at_k([(5, 2), (5, 0)]) == {"pass@1": pytest.approx(0.2)}
    both = mean_pass_at_k([(10, 1), (12, 12)], ks=(1, 10))
    assert both == {"pass@1": pytest.approx((0.1 + 1) / 2), "pass@10": pytest.approx((1.0 + 1) / 2)}
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_bleu_tokens_follow_codexglue():
    # CodeXGLUE's NIST step splits on '_' as well as on punctuation; case is folded.
    assert bleu_tokens("Get_User name, (v2).") == ["get", "_", "user", "name", ",", "(", "v2", ")", "."]


def test_smoothed_bleu4_hand_worked():
    ref, hyp = "returns the sum of two numbers", "return the sum of numbers"
    # unigrams 4/5 (not smoothed); bigrams (2+1)/(4+1); trigrams (1+1)/(3+1); 4-grams (0+1)/(2+1);
    # brevity: exp(1 - (6+1)/(5+1)).
    expected = (4 / 5 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25 * math.exp(1 - 7 / 6)
    assert smoothed_bleu4(ref, hyp) == pytest.approx(expected, rel=1e-12)
    assert smoothed_bleu4(ref, ref) == pytest.approx(1.0)
    # CodeXGLUE's quirk, kept on purpose: an empty prediction scores exp(-len(reference)), not 0.
    assert smoothed_bleu4("a b c", "") == pytest.approx(math.exp(-3))
    assert corpus_smoothed_bleu4([ref, ref], [hyp, ref]) == pytest.approx(100 * (expected + 1) / 2)


def test_smoothed_bleu4_equals_sacrebleu_add_one_when_the_prediction_is_not_shorter():
    sacrebleu = pytest.importorskip("sacrebleu")
    # sacrebleu's add-k smoothing is Lin & Och's; only its brevity penalty differs, and only for short outputs.
    bleu = sacrebleu.metrics.BLEU(smooth_method="add-k", smooth_value=1, tokenize="none", effective_order=False)
    pairs = [("returns the sum of two numbers", "return the sum of the two numbers please"),
             ("Save model to a pickle located at path", "save the model to a pickle file at the path"),
             ("CNN from Nature paper .", "cnn from the nature paper")]
    for ref, hyp in pairs:
        theirs = bleu.sentence_score(" ".join(bleu_tokens(hyp)), [" ".join(bleu_tokens(ref))]).score / 100
        assert smoothed_bleu4(ref, hyp) == pytest.approx(theirs, rel=1e-9)


def test_rouge_l_hand_worked():
    # LCS "the sum of numbers" = 4; precision 4/5, recall 4/6 -> F1 = 8/11.
    assert rouge_l("returns the sum of two numbers", "return the sum of numbers") == pytest.approx(8 / 11)
    assert rouge_l("a b", "c d") == 0.0 and rouge_l("a b c", "a b c") == 1.0


def test_exact_match_ignores_trailing_space_but_not_indentation():
    assert exact_match("    x = 1\n", "    x = 1   \n\n")
    assert not exact_match("    x = 1\n", "x = 1\n")
    assert exact_match_stripped("    x = 1\n", "x = 1\n")  # as Qwen's harness scores the published figures
    assert exact_match_stripped("    if a:\n        b()\n", "if a:\n\n  b()")
    assert not exact_match_stripped("    x = 1\n", "    x = 2\n") and not exact_match_stripped("x\n", "")


def test_mrr_and_recall_hand_worked():
    rankings = [[3, 1, 2], [5, 6, 7], [9, 8]]
    golds = [1, 7, 4]  # ranks 2, 3, absent
    assert mrr_at_k(rankings, golds, k=10) == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert mrr_at_k(rankings, golds, k=2) == pytest.approx((1 / 2) / 3)  # rank 3 falls outside the top 2
    assert [recall_at_k(rankings, golds, k) for k in (1, 2, 3)] == pytest.approx([0, 1 / 3, 2 / 3])
    with pytest.raises(ValueError):
        mrr_at_k([[1]], [1, 2])


def test_mrr_with_several_right_answers_counts_the_first_found():
    assert mrr_at_k([[4, 2, 3]], [{3, 2}], k=10) == pytest.approx(1 / 2)


def test_diagonal_mrr_ranks_each_row_against_its_own_column():
    sims = [[0.9, 0.1, 0.0],  # own column first: rank 1
            [0.8, 0.5, 0.7],  # two candidates above: rank 3
            [0.2, 0.3, 0.3]]  # a tie with its own column: rank 1
    assert diagonal_mrr(sims) == pytest.approx((1 + 1 / 3 + 1) / 3)


def test_edit_similarity_hand_worked():
    assert edit_similarity("return x", "return x") == 1.0
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "abc") == 0.0
    assert edit_similarity("", "") == 1.0
