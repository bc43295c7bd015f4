"""Losses for learning to compare patches.

Conventions: ``labels`` are 1 for a matching pair and 0 for a non-matching one (the hinge
loss of DeepCompare maps them to ±1 itself); ``scores`` are higher for more similar pairs;
``distances`` are Euclidean descriptor distances (≥ 0). Every loss returns the mean over the
batch; :func:`per_pair` variants (``reduction="none"``) are what fracking ranks by.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Reduction = Literal["mean", "none"]


def _reduce(loss: Tensor, reduction: Reduction) -> Tensor:
    return loss.mean() if reduction == "mean" else loss


def signed_labels(labels: Tensor) -> Tensor:
    """{0, 1} labels → {−1, +1}."""
    return labels.float() * 2.0 - 1.0


def hinge_loss(
    scores: Tensor,
    labels: Tensor,
    parameters: Iterable[Tensor] | None = None,
    weight_decay: float = 0.0,
    reduction: Reduction = "mean",
) -> Tensor:
    """DeepCompare hinge loss ``max(0, 1 − y·o)`` with ``y = ±1``, plus ``λ/2 · Σ‖w‖²``.

    Args:
        scores: ``(B,)`` network outputs ``o``.
        labels: ``(B,)`` 1 = match, 0 = non-match.
        parameters: weights to decay (the authors' 5e-4 is usually applied by the optimiser
            instead; pass them here to have the term in the reported loss).
        weight_decay: ``λ``.
    """
    loss = F.relu(1.0 - signed_labels(labels) * scores)
    if reduction == "none":
        return loss
    loss = loss.mean()
    if parameters is not None and weight_decay > 0:
        loss = loss + 0.5 * weight_decay * sum((p**2).sum() for p in parameters)
    return loss


def contrastive_loss(
    distances: Tensor, labels: Tensor, margin: float = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    """Contrastive loss (Chopra, Hadsell, LeCun 2005): ``y·d² + (1 − y)·max(0, m − d)²``."""
    y = labels.float()
    loss = y * distances**2 + (1 - y) * F.relu(margin - distances) ** 2
    return _reduce(loss, reduction)


def hinge_embedding_loss(
    distances: Tensor, labels: Tensor, margin: float = 4.0, reduction: Reduction = "mean"
) -> Tensor:
    """DeepDesc hinge embedding: ``d`` for positives, ``max(0, m − d)`` for negatives."""
    y = labels.float()
    loss = y * distances + (1 - y) * F.relu(margin - distances)
    return _reduce(loss, reduction)


def margin_loss(
    distances: Tensor,
    labels: Tensor,
    margin: float = 0.2,
    boundary: float = 1.2,
    reduction: Reduction = "mean",
) -> Tensor:
    """Margin-based loss (Wu et al., ICCV 2017): ``max(0, α + y·(d − β))``, ``y = ±1``.

    Positives are pulled inside ``β − α``, negatives pushed beyond ``β + α``.
    """
    loss = F.relu(margin + signed_labels(labels) * (distances - boundary))
    return _reduce(loss, reduction)


def dbl_loss(
    distances: Tensor, labels: Tensor, margin: float = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    """Distance-based logistic loss: ``p = (1 + e^{−m}) / (1 + e^{d − m})`` is the match
    probability (1 at ``d = 0``), trained with the log loss against ``y``."""
    y = labels.float()
    # log p = softplus(−m) − softplus(d − m); log(1 − p) from p, kept finite at d = 0
    log_p = F.softplus(torch.full_like(distances, -margin)) - F.softplus(distances - margin)
    log_not_p = torch.log1p(-torch.exp(log_p).clamp(max=1.0 - 1e-7))
    loss = -(y * log_p + (1 - y) * log_not_p)
    return _reduce(loss, reduction)


def triplet_loss(
    anchor_positive: Tensor,
    anchor_negative: Tensor,
    margin: float = 1.0,
    reduction: Reduction = "mean",
) -> Tensor:
    """Triplet loss ``max(0, m + d(a, p) − d(a, n))`` from ``(B,)`` distances."""
    return _reduce(F.relu(margin + anchor_positive - anchor_negative), reduction)


def ranking_loss(
    positive_score: Tensor,
    negative_score: Tensor,
    margin: float = 1.0,
    reduction: Reduction = "mean",
) -> Tensor:
    """Margin ranking on scores (higher = more similar): ``max(0, m − s(a, p) + s(a, n))``.

    Unlike the pair losses it fixes no absolute threshold: the match only has to outscore
    the negative — what winner-take-all over depth hypotheses asks of a stereo cost. It is
    the triplet loss with scores in place of minus the distances.
    """
    return triplet_loss(-positive_score, -negative_score, margin, reduction)


# ----- L2-Net (Tian et al., CVPR 2017, §3.4) ---------------------------------------------


def _row_column_softmax_loss(similarity: Tensor) -> Tensor:
    """``−½ (Σᵢ log softmax_col(S)ᵢᵢ + Σᵢ log softmax_row(S)ᵢᵢ)`` of a ``(p, p)`` matrix."""
    column = torch.diagonal(F.log_softmax(similarity, dim=0)).sum()
    row = torch.diagonal(F.log_softmax(similarity, dim=1)).sum()
    return -0.5 * (column + row)


def l2net_e1(desc1: Tensor, desc2: Tensor) -> Tensor:
    """E1, descriptor similarity by relative distance.

    Args:
        desc1, desc2: ``(p, q)`` unit descriptors; row ``i`` of each is a matching pair.

    Returns:
        Scalar: E1 of eq. (5) with ``D = sqrt(2 − 2·Y1ᵀY2)`` and similarities ``exp(2 − d)``
        (summed over the ``p`` points, as in the paper).
    """
    gram = desc2 @ desc1.T  # d_ij = ‖y_i² − y_j¹‖
    distance = torch.sqrt((2.0 - 2.0 * gram).clamp(min=1e-8))
    return _row_column_softmax_loss(2.0 - distance)


def l2net_e2(features1: Tensor, features2: Tensor) -> Tensor:
    """E2, compactness: squared off-diagonal correlations of descriptor dimensions.

    Args:
        features1, features2: ``(p, q)`` outputs of the last batch-norm layer (before unit
            normalisation) for the first and second patches of the ``p`` pairs.

    Returns:
        Scalar: eq. (7), ``½ Σ_s Σ_{i≠j} (r_ij^s)²`` with ``R_s`` the Pearson correlation of
        the ``q`` dimensions over the ``p`` points (eq. 6).
    """
    total = features1.new_zeros(())
    for features in (features1, features2):
        centred = features - features.mean(dim=0, keepdim=True)
        centred = centred / (centred.norm(dim=0, keepdim=True) + 1e-8)
        corr = centred.T @ centred
        off_diagonal = corr - torch.diag(torch.diagonal(corr))
        total = total + (off_diagonal**2).sum()
    return 0.5 * total


def l2net_e3(maps1: Tensor, maps2: Tensor) -> Tensor:
    """E3, discriminative intermediate feature maps (DIF).

    Args:
        maps1, maps2: ``(p, C, h, w)`` or ``(p, n)`` batch-normalised feature maps of the
            first / second patches.

    Returns:
        Scalar: eq. (12) on the inner-product matrix ``G = F1ᵀF2`` of the vectorised maps.
        The inner products are divided by the vector length ``n`` (a mean instead of a sum),
        so that ``exp(g)`` stays finite for any map size; the paper leaves that scale open.
    """
    f1, f2 = maps1.flatten(1), maps2.flatten(1)
    gram = (f1 @ f2.T) / f1.shape[1]
    return _row_column_softmax_loss(gram)


def l2net_loss(
    desc1: Tensor,
    desc2: Tensor,
    first_maps: tuple[list[Tensor], list[Tensor]],
    last_maps: tuple[list[Tensor], list[Tensor]],
) -> Tensor:
    """E1 + E2 + E3 for a batch of ``p`` matching pairs.

    ``first_maps`` / ``last_maps`` hold, for each side, the per-tower outputs of the first and
    the last batch-norm layers; E2 is applied to the last, E3 to the first and the last.
    """
    loss = l2net_e1(desc1, desc2)
    for last1, last2 in zip(*last_maps, strict=True):
        loss = loss + l2net_e2(last1, last2) + l2net_e3(last1, last2)
    for first1, first2 in zip(*first_maps, strict=True):
        loss = loss + l2net_e3(first1, first2)
    return loss
