"""Plane-sweep homographies against direct back-projection and projection."""

from __future__ import annotations

import numpy as np
import pytest

from stereo.datasets.synthetic import look_at
from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import (
    backproject,
    depth_agrees,
    inverse_depth_labels,
    plane_homographies,
    plane_homography,
)

K1 = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
K2 = np.array([[550.0, 0, 300], [0, 560, 250], [0, 0, 1]])


def _pair():
    c1 = Camera(K1, look_at(np.array([0.0, 0, 0]), np.array([0.5, 0.2, 7])), np.zeros(3), 640, 480)
    centre = np.array([1.2, -0.3, 0.4])
    c2 = Camera(K2, look_at(centre, np.array([0.0, 0, 7])), centre, 640, 480)
    return c1, c2


@pytest.mark.parametrize("depth", [2.0, 5.5, 40.0])
def test_homography_equals_backproject_then_project(depth):
    c1, c2 = _pair()
    rng = np.random.default_rng(0)
    xy = rng.uniform([0, 0], [640, 480], (100, 2))
    X = backproject(c1, xy, np.full(100, depth))
    np.testing.assert_allclose(c1.to_camera(X)[:, 2], depth)  # on the plane z = depth
    expected, _ = c2.project(X)
    h = np.c_[xy, np.ones(100)] @ plane_homography(c1, c2, depth).T
    np.testing.assert_allclose(h[:, :2] / h[:, 2:], expected, atol=1e-8)


def test_identity_for_the_reference_itself_and_stack_shape():
    c1, c2 = _pair()
    np.testing.assert_allclose(plane_homography(c1, c1, 3.0), np.eye(3), atol=1e-12)
    assert plane_homographies(c1, c2, np.array([2.0, 3.0, 4.0])).shape == (3, 3, 3)


def test_inverse_depth_labels():
    d = inverse_depth_labels(2.0, 10.0, 5)
    np.testing.assert_allclose(d[[0, -1]], [2.0, 10.0])
    np.testing.assert_allclose(np.diff(1 / d), np.full(4, (0.1 - 0.5) / 4))
    with pytest.raises(StereoError, match="must be below max"):
        inverse_depth_labels(5.0, 5.0, 10)
    with pytest.raises(StereoError, match="positive"):
        inverse_depth_labels(-1.0, 5.0, 10)


def test_grid_projection_equals_pointwise_projection_behind_the_camera_too():
    """The sweep's grid form of a homography gives what projecting each pixel's
    homogeneous vector gives (float64 reference), −10⁶ where the points fall behind."""
    from stereo.geometry.sweep import project_grid, project_points

    H = np.array([[1.02, 0.03, -4.0], [-0.01, 0.97, 2.5], [-2e-3, 1e-3, 0.5]])
    ys, xs = np.arange(300, dtype=float), np.arange(400, dtype=float)
    gx, gy = np.meshgrid(xs, ys)
    expected = project_points(H, np.stack([gx, gy], axis=-1))
    got = project_grid(H, ys, xs)
    w = H[2, 0] * gx + H[2, 1] * gy + H[2, 2]
    behind, horizon = w < -1e-12, np.abs(w) <= 1e-12  # on the horizon: either way off-image
    assert behind.any() and (w > 0).any() and horizon.any()
    assert (got[behind] == -1e6).all()
    np.testing.assert_allclose(got[~horizon], expected[~horizon], rtol=1e-6, atol=1e-4)


def test_depth_agrees_sees_the_surface_not_points_before_it_or_outside():
    c2 = _pair()[1]
    wall = np.full((480, 640), 7.0)  # c2's z-depth map of a wall square to its axis at 7 m
    xy = np.array([[320.0, 240.0], [100.0, 50.0], [600.0, 400.0]])
    on_wall = backproject(c2, xy, np.full(3, 7.0))
    assert depth_agrees(on_wall, c2, wall, 0.01).all()
    in_front = backproject(c2, xy, np.full(3, 6.0))  # 1 m before the surface
    assert not depth_agrees(in_front, c2, wall, 0.01).any()
    assert depth_agrees(in_front, c2, wall, 0.2).all()  # 6 vs 7 m: within 20 %
    assert not depth_agrees(on_wall, c2, np.full((480, 640), np.nan), 0.01).any()
    # 50 px from the border: the first point is inside, the others closer to the border
    assert depth_agrees(on_wall, c2, wall, 0.01, margin=60).tolist() == [True, False, False]
    behind = backproject(c2, xy, np.full(3, -7.0))
    assert not depth_agrees(behind, c2, -wall, 0.01).any()
