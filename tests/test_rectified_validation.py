"""Rectified validation pairs cut from a calibrated scene (``stereo.bench.rectified``)."""

from __future__ import annotations

import numpy as np

from stereo.bench.rectified import (
    rectification,
    rectified_truth,
    second_view_right,
    synthetic_rectified_pair,
    truth_map,
)
from stereo.bench.strecha import ProtocolPair
from stereo.evaluation import SparseDepth
from stereo.geometry.camera import Camera


def rig(second_centre: np.ndarray, second_rotation: np.ndarray) -> ProtocolPair:
    """A 320×240 pair: reference at the origin looking along +z, truth points at 4–9 m."""
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    reference = Camera(K, np.eye(3), np.zeros(3), 320, 240)
    other = Camera(K, second_rotation, second_centre, 320, 240)
    rng = np.random.default_rng(0)
    xy = rng.uniform([20, 20], [300, 220], (50, 2))
    depth = rng.uniform(4.0, 9.0, 50)
    image = np.zeros((240, 320), np.uint8)
    return ProtocolPair(
        image, image, reference, other, SparseDepth(xy, depth), np.ones(50, bool), (3.0, 10.0)
    )


def rotation_y(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def test_parallel_rig_disparity_is_focal_times_baseline_over_depth():
    pair = rig(np.array([0.5, 0.0, 0.0]), np.eye(3))
    R1, _, P1, P2 = rectification(pair.reference_camera, pair.other_camera)
    xy, disparity = rectified_truth(pair, R1, P1, P2)
    np.testing.assert_allclose(disparity, P1[0, 0] * 0.5 / pair.truth.depth, rtol=1e-9)
    assert np.all(disparity > 0)  # the second camera lies to the right
    assert xy.shape == (50, 2)


def test_convergent_rig_disparity_follows_rectified_depth():
    centre = np.array([1.0, 0.05, 0.2])
    pair = rig(centre, rotation_y(-8.0))
    R1, _, P1, P2 = rectification(pair.reference_camera, pair.other_camera)
    _, disparity = rectified_truth(pair, R1, P1, P2)
    rays = np.c_[pair.truth.xy, np.ones(50)] @ np.linalg.inv(pair.reference_camera.K).T
    rectified_depth = ((rays * pair.truth.depth[:, None]) @ R1.T)[:, 2]
    expected = P1[0, 0] * np.linalg.norm(centre) / rectified_depth
    np.testing.assert_allclose(disparity, expected, rtol=1e-9)


def test_a_second_view_on_the_left_is_mirrored():
    left = np.arange(12, dtype=np.uint8).reshape(3, 4)
    right = left + 100
    xy, disparity = np.array([[1.0, 2.0]]), np.array([-3.0])
    out_left, out_right, out_xy, out_disparity = second_view_right(left, right, xy, disparity)
    np.testing.assert_array_equal(out_left, left[:, ::-1])
    np.testing.assert_array_equal(out_right, right[:, ::-1])
    np.testing.assert_array_equal(out_xy, [[2.0, 2.0]])
    np.testing.assert_array_equal(out_disparity, [3.0])
    assert second_view_right(left, right, xy, -disparity)[2] is xy


def test_truth_map_holds_points_at_their_nearest_pixel_only():
    xy = np.array([[1.4, 0.6], [3.0, 2.0], [9.0, 1.0], [0.0, 0.0], [2.0, 1.0]])
    # third outside, fourth not positive, fifth matched left of the second image
    disparity = np.array([1.0, 2.5, 4.0, -1.0, 2.5])
    out = truth_map(xy, disparity, (3, 4))
    assert out[1, 1] == 1.0 and out[2, 3] == 2.5
    assert np.isfinite(out).sum() == 2


def window_zncc(left: np.ndarray, right: np.ndarray, truth: np.ndarray, shift: int) -> float:
    """Median ZNCC of 9×9 windows at 300 truth pixels and their match moved ``shift`` px."""
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(np.isfinite(truth))
    scores = []
    for k in rng.choice(len(rows), 300, replace=False):
        y, x = rows[k], cols[k]
        xr = round(float(x - truth[y, x])) + shift
        if 4 <= y < truth.shape[0] - 4 and 4 <= min(x, xr) and max(x, xr) < truth.shape[1] - 4:
            a = left[y - 4 : y + 5, x - 4 : x + 5].astype(float).ravel()
            b = right[y - 4 : y + 5, xr - 4 : xr + 5].astype(float).ravel()
            a, b = a - a.mean(), b - b.mean()
            scores.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
    return float(np.median(scores))


def test_synthetic_validation_pair_truth_is_where_the_right_image_matches():
    left, right, truth = synthetic_rectified_pair(0)
    assert left.shape == right.shape == truth.shape == (256, 384)
    assert np.isfinite(truth).mean() > 0.8 and np.nanmin(truth) > 0
    columns = np.arange(truth.shape[1])[None, :]
    assert np.all((columns - truth)[np.isfinite(truth)] >= 0)  # every match inside the image
    at_truth = window_zncc(left, right, truth, 0)
    assert at_truth > 0.8 and at_truth > window_zncc(left, right, truth, 3) + 0.3
    again = synthetic_rectified_pair(0)
    np.testing.assert_array_equal(again[0], left)  # one index, one scene
