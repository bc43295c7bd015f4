"""Every loss against a value computed by hand or in float64 on a tiny batch."""

from __future__ import annotations

import math

import numpy as np
import torch

from stereo.patchnet import losses as L

D = torch.tensor([0.5, 1.5, 0.2, 2.0], dtype=torch.float64)
Y = torch.tensor([1, 1, 0, 0])


def test_hinge_loss_hand_values():
    scores = torch.tensor([2.0, 0.5, -0.3, 0.4])
    # y = +1, +1, −1, −1 → max(0, 1 − y·o) = 0, 0.5, 0.7, 1.4
    assert math.isclose(float(L.hinge_loss(scores, Y)), (0 + 0.5 + 0.7 + 1.4) / 4, rel_tol=1e-6)
    w = [torch.tensor([1.0, 2.0]), torch.tensor([3.0])]
    with_decay = L.hinge_loss(scores, Y, parameters=w, weight_decay=0.1)
    assert math.isclose(float(with_decay), 0.65 + 0.05 * 14, rel_tol=1e-6)


def test_contrastive_hand_values():
    # m = 1: 0.25, 2.25, (1 − 0.2)² = 0.64, 0
    assert math.isclose(float(L.contrastive_loss(D, Y, 1.0)), (0.25 + 2.25 + 0.64) / 4)


def test_hinge_embedding_hand_values():
    # m = 1: 0.5, 1.5, 0.8, 0
    assert math.isclose(float(L.hinge_embedding_loss(D, Y, 1.0)), (0.5 + 1.5 + 0.8) / 4)


def test_margin_loss_hand_values():
    # α = 0.2, β = 1.2: pos max(0, α + d − β) = 0, 0.5; neg max(0, α − d + β) = 1.2, 0
    assert math.isclose(float(L.margin_loss(D, Y, 0.2, 1.2)), (0 + 0.5 + 1.2 + 0) / 4)


def test_dbl_float64_reference():
    m = 1.0
    p = (1 + math.exp(-m)) / (1 + np.exp(D.numpy() - m))
    y = Y.numpy()
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert math.isclose(float(L.dbl_loss(D, Y, m)), expected, rel_tol=1e-9)
    assert float(L.dbl_loss(torch.tensor([0.0]), torch.tensor([1]))) < 1e-6  # p = 1 at d = 0


def test_triplet_hand_values():
    ap, an = torch.tensor([0.2, 1.0]), torch.tensor([1.0, 0.5])
    # m = 0.5: max(0, 0.5 + 0.2 − 1) = 0, max(0, 0.5 + 1 − 0.5) = 1
    assert math.isclose(float(L.triplet_loss(ap, an, 0.5)), 0.5)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_l2net_e1_float64_reference():
    rng = np.random.default_rng(0)
    y1, y2 = _unit(rng.normal(size=(5, 8))), _unit(rng.normal(size=(5, 8)))
    p = 5
    d = np.array([[np.linalg.norm(y2[i] - y1[j]) for j in range(p)] for i in range(p)])
    s = np.exp(2 - d)
    sc = s / s.sum(axis=0, keepdims=True)  # columns
    sr = s / s.sum(axis=1, keepdims=True)  # rows
    expected = -0.5 * (np.log(np.diag(sc)).sum() + np.log(np.diag(sr)).sum())
    got = L.l2net_e1(torch.from_numpy(y1), torch.from_numpy(y2))
    assert math.isclose(float(got), expected, rel_tol=1e-9)


def test_l2net_e2_float64_reference():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    expected = 0.0
    for f in (f1, f2):
        r = np.corrcoef(f.T)
        expected += (r[~np.eye(4, dtype=bool)] ** 2).sum()
    got = L.l2net_e2(torch.from_numpy(f1), torch.from_numpy(f2))
    assert math.isclose(float(got), 0.5 * expected, rel_tol=1e-6)  # eps 1e-8 in the norm


def test_l2net_e3_float64_reference():
    rng = np.random.default_rng(2)
    m1, m2 = rng.normal(size=(4, 2, 3, 3)), rng.normal(size=(4, 2, 3, 3))
    g = m1.reshape(4, -1) @ m2.reshape(4, -1).T / 18
    vc = np.exp(g) / np.exp(g).sum(axis=0, keepdims=True)
    vr = np.exp(g) / np.exp(g).sum(axis=1, keepdims=True)
    expected = -0.5 * (np.log(np.diag(vc)).sum() + np.log(np.diag(vr)).sum())
    got = L.l2net_e3(torch.from_numpy(m1), torch.from_numpy(m2))
    assert math.isclose(float(got), expected, rel_tol=1e-9)


def test_l2net_loss_sums_terms():
    rng = np.random.default_rng(3)
    t = lambda *s: torch.from_numpy(rng.normal(size=s))  # noqa: E731
    d1 = torch.nn.functional.normalize(t(4, 6), dim=1)
    d2 = torch.nn.functional.normalize(t(4, 6), dim=1)
    first = ([t(4, 2, 2, 2)], [t(4, 2, 2, 2)])
    last = ([t(4, 6)], [t(4, 6)])
    total = L.l2net_loss(d1, d2, first, last)
    parts = (
        L.l2net_e1(d1, d2)
        + L.l2net_e2(last[0][0], last[1][0])
        + L.l2net_e3(last[0][0], last[1][0])
        + L.l2net_e3(first[0][0], first[1][0])
    )
    assert math.isclose(float(total), float(parts), rel_tol=1e-12)


def test_perfect_matching_gives_lower_e1():
    rng = np.random.default_rng(4)
    y = torch.from_numpy(_unit(rng.normal(size=(6, 16))))
    shuffled = y[torch.tensor([1, 2, 3, 4, 5, 0])]
    assert L.l2net_e1(y, y) < L.l2net_e1(y, shuffled)


def test_ranking_loss_hand_values():
    positive = torch.tensor([2.0, 0.5, -1.0])
    negative = torch.tensor([0.0, 0.0, 1.0])
    # max(0, 1 − s⁺ + s⁻): 0, 0.5, 3
    per_pair = L.ranking_loss(positive, negative, margin=1.0, reduction="none")
    assert torch.allclose(per_pair, torch.tensor([0.0, 0.5, 3.0]))
    assert torch.isclose(L.ranking_loss(positive, negative), torch.tensor(3.5 / 3))
