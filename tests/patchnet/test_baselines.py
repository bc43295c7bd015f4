"""Hand-crafted baselines on cases with known answers."""

from __future__ import annotations

import numpy as np

from stereo.patchnet.baselines import ncc_scores, raw_l2_scores, sift_descriptors, sift_scores


def test_ncc_known_values():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 200, (3, 64, 64), dtype=np.uint8)
    flipped = (255 - a).astype(np.uint8)
    brighter = np.clip(a.astype(int) * 1 + 30, 0, 255).astype(np.uint8)
    np.testing.assert_allclose(ncc_scores(a, a), 1.0)
    np.testing.assert_allclose(ncc_scores(a, flipped), -1.0)
    np.testing.assert_allclose(ncc_scores(a, brighter), 1.0)
    flat = np.full((1, 64, 64), 9, np.uint8)
    assert ncc_scores(flat, a[:1])[0] == 0.0


def test_raw_l2_known_value():
    a = np.zeros((1, 64, 64), np.uint8)
    b = np.full((1, 64, 64), 2, np.uint8)
    assert raw_l2_scores(a, b)[0] == -2 * 64.0


def test_sift_identical_and_shifted():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (4, 64, 64), dtype=np.uint8)
    desc = sift_descriptors(a)
    assert desc.shape == (4, 128) and (desc.sum(axis=1) > 0).all()
    np.testing.assert_allclose(sift_scores(a, a), 0.0)
    assert (sift_scores(a, a[::-1])[[0, 3]] < -50).all()
