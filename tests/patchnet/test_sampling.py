"""Samplers, mining and augmentation on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stereo.errors import StereoError
from stereo.patchnet.sampling import (
    PointIndex,
    ProgressiveSampler,
    augment_pairs,
    dihedral,
    fracking_select,
    near_triplets,
    random_pairs,
    semi_hard_negatives,
)

IDS = np.array([7, 7, 7, 3, 3, 9, 5, 5, 5, 5])


def test_positive_and_negative_pairs():
    index, rng = PointIndex(IDS), np.random.default_rng(0)
    pos = index.positive_pairs(500, rng)
    assert (IDS[pos[:, 0]] == IDS[pos[:, 1]]).all() and (pos[:, 0] != pos[:, 1]).all()
    assert 9 not in set(IDS[pos[:, 0]])  # point 9 has a single patch
    neg = index.negative_pairs(500, rng)
    assert (IDS[neg[:, 0]] != IDS[neg[:, 1]]).all()
    pairs, labels = random_pairs(index, 64, rng)
    assert labels.sum() == 32
    assert ((IDS[pairs[:, 0]] == IDS[pairs[:, 1]]) == labels.astype(bool)).all()


def test_point_index_errors():
    with pytest.raises(StereoError, match="two patches"):
        PointIndex(np.array([1, 2, 3]))
    with pytest.raises(StereoError, match="one 3D point"):
        PointIndex(np.array([4, 4, 4]))


def test_fracking_keeps_hardest_of_each_label():
    losses = torch.tensor([0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.7])
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 0])
    chosen = fracking_select(losses, labels, keep_positive=2, keep_negative=2)
    assert sorted(chosen.tolist()) == [1, 2, 4, 6]


def test_semi_hard_negatives_hand_case():
    # 1-D descriptors: anchors at 0, 10, 20; positives at 1, 10.5, 23
    anchor = torch.tensor([[0.0], [10.0], [20.0]])
    positive = torch.tensor([[1.0], [10.5], [23.0]])
    # anchor 0: d(a,p) = 1; others 10.5, 23 → none within 1 + m = 15? 10.5 is: semi-hard → 1
    # anchor 1: d(a,p) = 0.5; others 9, 13 → none < 0.5 + 5 → closest farther: index 0
    # anchor 2: d(a,p) = 3; others 19, 9.5 → 9.5 < 3 + 15 → semi-hard, closest → 1
    assert semi_hard_negatives(anchor, positive, 15.0)[0] == 1
    assert semi_hard_negatives(anchor, positive, 5.0)[1] == 0
    assert semi_hard_negatives(anchor, positive, 15.0)[2] == 1


def test_progressive_sampler_visits_all_points_with_distinct_points_per_batch():
    ids = np.repeat(np.arange(40), 2)
    sampler = ProgressiveSampler(PointIndex(ids), p1=8, p2=4, seed=0)
    seen = set()
    for _ in range(5):  # 5 × 8 sequential = one epoch over 40 points
        batch = sampler.next_batch()
        points = ids[batch[:, 0]]
        assert (points == ids[batch[:, 1]]).all() and len(set(points)) == 12
        seen |= set(points[:8])
    assert seen == set(range(40))


def test_dihedral_group_and_identical_pair_augmentation():
    x = torch.arange(9).reshape(1, 3, 3)
    images = {tuple(dihedral(x, t).flatten().tolist()) for t in range(8)}
    assert len(images) == 8
    a = torch.randint(0, 255, (50, 1, 8, 8))
    b = a.clone()
    aa, bb = augment_pairs(a, b, np.random.default_rng(0))
    assert torch.equal(aa, bb) and not torch.equal(aa, a)
    for i in range(50):  # each output is one dihedral transform of its input
        assert any(torch.equal(dihedral(a[i], t), aa[i]) for t in range(8))


def test_near_negative_pairs_pair_a_point_with_its_own_near_misses():
    # points 0..3 with two patches each; patches 8..11 are near misses of points 0, 0, 2, 3
    # (ids 10..13, points of their own); 12 misses point 99, which is absent: never drawn
    point_ids = np.r_[np.repeat(np.arange(4), 2), 10, 11, 12, 13, 14]
    near_of = np.r_[np.full(8, -1), 0, 0, 2, 3, 99]
    index = PointIndex(point_ids, near_of)
    rng = np.random.default_rng(0)
    pairs = index.near_negative_pairs(500, rng)
    assert set(pairs[:, 1]) == {8, 9, 10, 11}
    np.testing.assert_array_equal(point_ids[pairs[:, 0]], near_of[pairs[:, 1]])
    mixed = index.mixed_negative_pairs(100, rng, near_fraction=0.25)
    assert np.isin(mixed[:25, 1], [8, 9, 10, 11]).all()
    assert (point_ids[mixed[:, 0]] != point_ids[mixed[:, 1]]).all()  # all are negatives
    pairs, labels = random_pairs(index, 64, rng, near_fraction=0.5)
    assert labels.sum() == 32 and np.isin(pairs[32:48, 1], [8, 9, 10, 11]).all()
    with pytest.raises(StereoError, match="near-miss"):
        PointIndex(point_ids[:8]).near_negative_pairs(4, rng)


def test_near_triplets_anchor_positive_and_negative():
    point_ids = np.r_[np.repeat(np.arange(4), 2), 10, 11, 12, 13]
    near_of = np.r_[np.full(8, -1), 0, 0, 2, 3]
    index = PointIndex(point_ids, near_of)
    triplets = near_triplets(index, 40, np.random.default_rng(0), near_fraction=0.5)
    a, p, n = triplets.T
    assert (point_ids[a] == point_ids[p]).all() and (a != p).all()
    np.testing.assert_array_equal(near_of[n[:20]], point_ids[a[:20]])  # near misses of a
    assert (point_ids[n[20:]] != point_ids[a[20:]]).all()


def test_near_misses_face_patches_of_other_views():
    # points 0..2 seen in views 0, 1, 2; near misses 9..11 of point 0 in view 1, of point 1
    # in view 2, of point 2 in view 0
    point_ids = np.r_[np.repeat(np.arange(3), 3), 20, 21, 22]
    views = np.r_[np.tile([0, 1, 2], 3), 1, 2, 0]
    near_of = np.r_[np.full(9, -1), 0, 1, 2]
    index = PointIndex(point_ids, near_of, views)
    rng = np.random.default_rng(0)
    pairs = index.near_negative_pairs(200, rng)
    np.testing.assert_array_equal(point_ids[pairs[:, 0]], near_of[pairs[:, 1]])
    assert (views[pairs[:, 0]] != views[pairs[:, 1]]).all()
    a, p, n = near_triplets(index, 100, rng, near_fraction=1.0).T
    assert (point_ids[a] == point_ids[p]).all() and (near_of[n] == point_ids[a]).all()
    assert (views[p] == views[n]).all() and (views[a] != views[n]).all()
