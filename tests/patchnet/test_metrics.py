"""Metrics on hand-made score sets with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stereo.errors import StereoError
from stereo.patchnet import metrics as M


def test_fpr95_hand_case():
    # 20 positives scoring 1..20, 10 negatives; 95 % recall needs 19 positives → threshold 2
    pos = np.arange(1, 21, dtype=float)
    neg = np.array([0.5, 1.5, 2.0, 2.5, 3, 10, -1, -2, 0, 1.9])
    scores, labels = np.r_[pos, neg], np.r_[np.ones(20), np.zeros(10)]
    # negatives ≥ 2: 2.0, 2.5, 3, 10 → 4 of 10
    assert M.fpr95(scores, labels) == pytest.approx(0.4)
    # threshold 1: negatives 1.5, 1.9, 2.0, 2.5, 3, 10 → 6 of 10
    assert M.fpr_at_recall(scores, labels, 1.0) == pytest.approx(0.6)
    assert M.recall_threshold(scores, labels) == 2.0
    assert M.recall_threshold(scores, labels, 1.0) == 1.0


def test_fpr95_perfect_and_worst():
    labels = np.r_[np.ones(50), np.zeros(50)]
    assert M.fpr95(np.r_[np.ones(50), np.zeros(50)], labels) == 0.0
    assert M.fpr95(np.r_[np.zeros(50), np.ones(50)], labels) == 1.0


def test_roc_auc_with_ties():
    scores = np.array([3, 2, 2, 1], float)
    labels = np.array([1, 1, 0, 0])
    # pairs (pos, neg): (3,2) 1, (3,1) 1, (2,2) ½, (2,1) 1 → 3.5 / 4
    assert M.roc_auc(scores, labels) == pytest.approx(0.875)


def test_pr_auc_average_precision_hand_case():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([1, 0, 1, 0, 1])
    # precision at each positive: 1/1, 2/3, 3/5
    assert M.pr_auc(scores, labels) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_pr_auc_ties_enter_together():
    scores = np.array([1.0, 1.0, 0.0])
    labels = np.array([1, 0, 1])
    # tie group {pos, neg} accepted together: precision ½ for the first positive; then 2/3
    assert M.pr_auc(scores, labels) == pytest.approx((0.5 + 2 / 3) / 2)


def test_cmc_and_rank():
    pos = np.array([5.0, 1.0, 3.0])
    neg = np.array([[1, 2, 3], [2, 3, 4], [3, 1, 0]], float)
    ranks = M.rank_of_positive(pos, neg)
    assert ranks.tolist() == [1, 4, 2]  # a tie with a negative counts against the positive
    assert M.cmc(pos, neg, max_rank=4).tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1.0])


def test_mean_average_precision():
    q1 = (np.array([3.0, 2, 1]), np.array([1, 0, 0]))  # AP 1
    q2 = (np.array([3.0, 2, 1]), np.array([0, 0, 1]))  # AP 1/3
    assert M.mean_average_precision([q1[0], q2[0]], [q1[1], q2[1]]) == pytest.approx(2 / 3)


def test_one_vs_many_protocol():
    rng = np.random.default_rng(0)
    pos = rng.normal(2.0, 1.0, 200)
    neg = rng.normal(0.0, 1.0, (200, 1000))
    out = M.one_vs_many_metrics(pos, neg)
    assert out["n_negatives_per_query"] == 1000
    # ROC AUC of N(2,1) vs N(0,1) is Φ(2/√2) ≈ 0.9214
    assert out["roc_auc"] == pytest.approx(0.5 * (1 + math.erf(1.0)), abs=0.02)
    assert 0 < out["pr_auc"] < out["roc_auc"]
    assert out["cmc1"] <= out["cmc5"] <= out["cmc10"]


def test_pair_metrics_and_bad_input():
    out = M.pair_metrics(np.array([2.0, 1.0, 0.0, -1.0]), np.array([1, 1, 0, 0]))
    assert out == {"fpr95": 0.0, "roc_auc": 1.0, "pr_auc": 1.0, "n_pairs": 4, "n_positive": 2}
    with pytest.raises(StereoError, match="NaN"):
        M.fpr95(np.array([np.nan, 1.0]), np.array([1, 0]))
    with pytest.raises(StereoError, match="both"):
        M.roc_auc(np.array([1.0, 2.0]), np.array([1, 1]))
