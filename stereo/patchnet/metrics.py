"""Descriptor / patch-matching metrics on score sets (higher score = more similar).

All functions take NumPy arrays: ``scores`` ``(N,)`` float and ``labels`` ``(N,)`` with 1 for
matching and 0 for non-matching pairs. Ties are handled exactly: pairs with equal scores are
accepted or rejected together, never in an arbitrary order.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from stereo.errors import StereoError


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise StereoError(f"{scores.size} scores but {labels.size} labels; pass one per pair")
    if not np.all(np.isfinite(scores)):
        raise StereoError("scores contain NaN or infinity; check the model's weights")
    if labels.all() or not labels.any():
        raise StereoError("the metrics need both matching and non-matching pairs")
    return scores, labels


def _threshold(scores: np.ndarray, labels: np.ndarray, recall: float) -> float:
    """:func:`recall_threshold` of arrays already passed through :func:`_check`."""
    positives = np.sort(scores[labels])[::-1]
    k = int(np.ceil(recall * positives.size - 1e-9))
    return float(positives[max(k, 1) - 1])


def recall_threshold(scores: np.ndarray, labels: np.ndarray, recall: float = 0.95) -> float:
    """The loosest score threshold that reaches ``recall`` (Brown protocol): the score of the
    ``⌈recall·P⌉``-th best positive; every pair scoring at least that is accepted."""
    return _threshold(*_check(scores, labels), recall)


def fpr_at_recall(scores: np.ndarray, labels: np.ndarray, recall: float = 0.95) -> float:
    """False-positive rate at :func:`recall_threshold` — a fraction in [0, 1] (multiply by
    100 for the tables)."""
    scores, labels = _check(scores, labels)
    return float(np.mean(scores[~labels] >= _threshold(scores, labels, recall)))


def fpr95(scores: np.ndarray, labels: np.ndarray) -> float:
    """False-positive rate at 95 % recall, as a fraction."""
    return fpr_at_recall(scores, labels, 0.95)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a random positive > a random negative), ties ½
    (scikit-learn's ``roc_auc_score``, the reference implementation)."""
    scores, labels = _check(scores, labels)
    return float(roc_auc_score(labels, scores))


def pr_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve, as average precision: the mean over positives
    of the precision at the threshold that first accepts them, tied pairs entering together
    (scikit-learn's ``average_precision_score``)."""
    scores, labels = _check(scores, labels)
    return float(average_precision_score(labels, scores))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of one ranked list (one query); same definition as :func:`pr_auc`."""
    return pr_auc(scores, labels)


def mean_average_precision(query_scores: list[np.ndarray], query_labels: list[np.ndarray]) -> float:
    """mAP: :func:`average_precision` averaged over queries (each with ≥ 1 positive)."""
    if len(query_scores) == 0:
        raise StereoError("mean average precision needs at least one query")
    return float(
        np.mean([average_precision(s, y) for s, y in zip(query_scores, query_labels, strict=True)])
    )


def rank_of_positive(positive_scores: np.ndarray, negative_scores: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of each query's positive among its negatives, ties counted against it.

    Args:
        positive_scores: ``(Q,)`` score of each query's true match.
        negative_scores: ``(Q, M)`` scores of its ``M`` non-matches.

    Returns:
        ``(Q,)`` int ranks in ``1 … M + 1``.
    """
    pos = np.asarray(positive_scores, dtype=np.float64)[:, None]
    return 1 + np.sum(np.asarray(negative_scores, dtype=np.float64) >= pos, axis=1)


def cmc(
    positive_scores: np.ndarray, negative_scores: np.ndarray, max_rank: int = 100
) -> np.ndarray:
    """Cumulative match curve: ``cmc[k − 1]`` = share of queries whose positive ranks ≤ k."""
    ranks = rank_of_positive(positive_scores, negative_scores)
    return np.array([np.mean(ranks <= k) for k in range(1, max_rank + 1)])


def pair_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The pair-file metrics: ``fpr95`` (fraction), ``roc_auc``, ``pr_auc``, ``n_pairs``."""
    scores, labels = _check(scores, labels)
    return {
        "fpr95": fpr95(scores, labels),
        "roc_auc": roc_auc(scores, labels),
        "pr_auc": pr_auc(scores, labels),
        "n_pairs": int(scores.size),
        "n_positive": int(labels.sum()),
    }


def one_vs_many_metrics(
    positive_scores: np.ndarray, negative_scores: np.ndarray
) -> dict[str, float]:
    """DeepDesc protocol: each query has one positive and ``M`` (1,000) negatives; PR AUC and
    ROC AUC over the pooled score set, CMC@1/5/10 and the area under the CMC up to rank 100
    (normalised to [0, 1])."""
    positive_scores = np.asarray(positive_scores, dtype=np.float64)
    negative_scores = np.asarray(negative_scores, dtype=np.float64)
    pooled = np.concatenate([positive_scores, negative_scores.ravel()])
    labels = np.r_[np.ones(positive_scores.size), np.zeros(negative_scores.size)]
    curve = cmc(positive_scores, negative_scores, max_rank=min(100, negative_scores.shape[1] + 1))
    return {
        "pr_auc": pr_auc(pooled, labels),
        "roc_auc": roc_auc(pooled, labels),
        "cmc1": float(curve[0]),
        "cmc5": float(curve[min(4, curve.size - 1)]),
        "cmc10": float(curve[min(9, curve.size - 1)]),
        "cmc_auc": float(curve.mean()),
        "n_queries": int(positive_scores.size),
        "n_negatives_per_query": int(negative_scores.shape[1]),
    }
