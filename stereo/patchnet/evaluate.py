"""Descriptor benchmarks on patch sets: score index pairs with a network or a baseline, and
the DeepDesc one-positive-against-many-negatives protocol.

A *method* is a :class:`PatchNet` or a baseline name (``"sift"``, ``"ncc"``, ``"raw-l2"``).
Descriptor methods (descriptor networks, SIFT) describe each distinct patch once; 2-channel
networks must see every pair.
"""

from __future__ import annotations

import numpy as np
import torch

from stereo.errors import StereoError
from stereo.patchnet.baselines import BASELINES, sift_descriptors
from stereo.patchnet.data.patchset import PatchSet
from stereo.patchnet.metrics import one_vs_many_metrics
from stereo.patchnet.models import DescriptorNet, PatchNet
from stereo.patchnet.sampling import PointIndex

Method = PatchNet | str


@torch.no_grad()
def describe(
    model: DescriptorNet, patches: np.ndarray, side: int = 0, batch_size: int = 512
) -> torch.Tensor:
    """Descriptors ``(N, D)`` of ``(N, 64, 64)`` uint8 patches (CPU tensor)."""
    model.eval()
    kwargs = {"side": side} if side else {}
    out = [
        model.describe(torch.from_numpy(patches[s : s + batch_size]), **kwargs).float().cpu()
        for s in range(0, len(patches), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, model.descriptor_size)


@torch.no_grad()
def score_index_pairs(
    method: Method, patches: np.ndarray, pairs: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Scores ``(M,)`` float64 of ``patches[pairs[:, 0]]`` against ``patches[pairs[:, 1]]``.

    Args:
        method: a network, or a baseline name.
        patches: ``(N, 64, 64)`` uint8.
        pairs: ``(M, 2)`` indices into ``patches``.
    """
    pairs = np.asarray(pairs, dtype=np.int64)
    if isinstance(method, str):
        if method not in BASELINES:
            raise StereoError(f"unknown baseline {method!r}; valid: {', '.join(BASELINES)}")
        if method == "sift":
            used, inverse = np.unique(pairs, return_inverse=True)
            desc = sift_descriptors(patches[used])[inverse.reshape(pairs.shape)]
            return -np.linalg.norm(desc[:, 0] - desc[:, 1], axis=1).astype(np.float64)
        fn = BASELINES[method]
        return np.concatenate(
            [
                fn(patches[pairs[s : s + batch_size, 0]], patches[pairs[s : s + batch_size, 1]])
                for s in range(0, len(pairs), batch_size)
            ]
        )
    method.eval()
    if isinstance(method, DescriptorNet):
        used_a, inv_a = np.unique(pairs[:, 0], return_inverse=True)
        used_b, inv_b = np.unique(pairs[:, 1], return_inverse=True)
        da = describe(method, patches[used_a], 0, batch_size)
        db = describe(method, patches[used_b], 1 if method.name == "pseudo-siam" else 0, batch_size)
        device = next(method.parameters()).device
        scores = []
        for s in range(0, len(pairs), 4 * batch_size):
            ia = torch.as_tensor(inv_a[s : s + 4 * batch_size])
            ib = torch.as_tensor(inv_b[s : s + 4 * batch_size])
            scores.append(method.compare(da[ia].to(device), db[ib].to(device)).float().cpu())
        return torch.cat(scores).double().numpy()
    out = []
    for s in range(0, len(pairs), batch_size):
        a = torch.from_numpy(patches[pairs[s : s + batch_size, 0]])
        b = torch.from_numpy(patches[pairs[s : s + batch_size, 1]])
        out.append(method.score(a, b).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def one_vs_many(
    method: Method,
    patchset: PatchSet,
    n_queries: int = 1000,
    n_negatives: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """The DeepDesc protocol: for ``n_queries`` points, two patches of the point (query and
    true match) and ``n_negatives`` patches of other points; PR AUC and ROC AUC over the
    pooled scores, and the CMC of the true match's rank.

    Returns:
        :func:`~stereo.patchnet.metrics.one_vs_many_metrics` of the scores.
    """
    index = PointIndex(patchset.point_ids)
    rng = np.random.default_rng(seed)
    n_queries = min(n_queries, index.matchable.size)
    groups = rng.choice(index.matchable, n_queries, replace=False)
    query_pos = index.two_patches_of(groups, rng)
    negatives = rng.integers(0, len(patchset), (n_queries, n_negatives))
    ids = patchset.point_ids
    same = ids[negatives] == ids[query_pos[:, :1]]
    while same.any():
        negatives[same] = rng.integers(0, len(patchset), int(same.sum()))
        same = ids[negatives] == ids[query_pos[:, :1]]
    neg_pairs = np.stack([np.repeat(query_pos[:, 0], n_negatives), negatives.ravel()], axis=1)
    positive_scores = score_index_pairs(method, patchset.patches, query_pos)
    negative_scores = score_index_pairs(method, patchset.patches, neg_pairs)
    return one_vs_many_metrics(positive_scores, negative_scores.reshape(n_queries, n_negatives))
