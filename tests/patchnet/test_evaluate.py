"""Descriptor benchmarks: cached-descriptor scoring equals direct scoring; known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stereo.patchnet.baselines import ncc_scores, sift_scores
from stereo.patchnet.data import PatchSet
from stereo.patchnet.evaluate import one_vs_many, score_index_pairs
from stereo.patchnet.models import build_model


@pytest.mark.parametrize("name", ["siam", "pseudo-siam", "siam-l2", "cnn3", "2ch"])
def test_index_pair_scores_equal_direct_scores(warped_small, name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, len(warped_small), (40, 2))
    pairs[:10, 1] = pairs[:10, 0]  # repeated patches share cached descriptors
    got = score_index_pairs(model, warped_small.patches, pairs, batch_size=16)
    a = torch.from_numpy(warped_small.patches[pairs[:, 0]])
    b = torch.from_numpy(warped_small.patches[pairs[:, 1]])
    with torch.no_grad():
        expected = model.score(a, b).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_baseline_index_pairs(warped_small):
    pairs = np.random.default_rng(1).integers(0, len(warped_small), (30, 2))
    p = warped_small.patches
    np.testing.assert_allclose(
        score_index_pairs("sift", p, pairs), sift_scores(p[pairs[:, 0]], p[pairs[:, 1]]), rtol=1e-5
    )
    np.testing.assert_allclose(
        score_index_pairs("ncc", p, pairs, batch_size=7), ncc_scores(p[pairs[:, 0]], p[pairs[:, 1]])
    )


def test_one_vs_many_known_answer():
    # every point's two patches are identical, points differ: raw-l2 ranks each match first
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (60, 64, 64), dtype=np.uint8)
    patchset = PatchSet(np.repeat(base, 2, axis=0), np.repeat(np.arange(60), 2))
    out = one_vs_many("raw-l2", patchset, n_queries=50, n_negatives=30, seed=0)
    assert out["cmc1"] == 1.0 and out["pr_auc"] == 1.0 and out["roc_auc"] == 1.0
    assert out["n_queries"] == 50 and out["n_negatives_per_query"] == 30


def test_one_vs_many_sift_beats_chance(warped_small):
    out = one_vs_many("sift", warped_small, n_queries=100, n_negatives=100, seed=0)
    assert out["roc_auc"] > 0.8 and out["cmc1"] > 0.3
