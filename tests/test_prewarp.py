"""Descriptor costs on plane sweeps describe the second image pre-warped by the middle plane."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stereo.cost.descriptor import DescriptorCost
from stereo.cost.handmade import HandMadeDescriptorCost
from stereo.datasets.synthetic import TexturedPlane, make_scene, render
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import inverse_depth_labels, plane_homography
from stereo.geometry.sweep import Prewarp, Sweep
from stereo.patchnet.models import build_model


class PixelValueCost(HandMadeDescriptorCost):
    """The grey value as a 1-D descriptor: costs are |I₁(x) − I₂(H x)|."""

    def __init__(self) -> None:
        super().__init__("pixel")

    def features(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32))[None]


@pytest.fixture(scope="module")
def wide_pair():
    scene = make_scene(3, width=160, height=120, baseline=0.9)
    depths = inverse_depth_labels(4.5, 9.5, 16)
    sweep = Sweep.planes(scene.cameras[0], scene.cameras[2], depths)
    return scene.images[0], scene.images[2], sweep


def test_canvas_maps_back_to_the_second_image(wide_pair):
    _, other, sweep = wide_pair
    prewarp = Prewarp.for_sweep(sweep, other.shape)
    assert prewarp is not None and prewarp.depth == sweep.labels[8]
    rng = np.random.default_rng(0)
    canvas_xy = rng.uniform(0, [prewarp.width - 1, prewarp.height - 1], (50, 2))
    p = np.c_[canvas_xy, np.ones(50)] @ prewarp.to_other.T
    other_xy = (p[:, :2] / p[:, 2:]).astype(np.float32)
    np.testing.assert_allclose(prewarp.canvas_coordinates(other_xy), canvas_xy, atol=1e-3)
    # the canvas shows the second image where the homography lands inside it
    canvas = prewarp.image(other)
    assert canvas.shape == (prewarp.height, prewarp.width)
    checked = 0
    for u, v in rng.integers(0, [prewarp.width, prewarp.height], (200, 2)):
        p = prewarp.to_other @ np.array([u, v, 1.0])
        x, y = p[0] / p[2], p[1] / p[2]
        if not (0 <= x < other.shape[1] - 1 and 0 <= y < other.shape[0] - 1):
            continue
        x0, y0 = int(x), int(y)
        fx, fy = x - x0, y - y0
        cell = other[y0 : y0 + 2, x0 : x0 + 2].astype(float)
        expected = (
            cell[0, 0] * (1 - fx) * (1 - fy)
            + cell[0, 1] * fx * (1 - fy)
            + cell[1, 0] * (1 - fx) * fy
            + cell[1, 1] * fx * fy
        )
        assert abs(float(canvas[v, u]) - expected) <= 1.0
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("planes", [1, 3])
def test_prewarp_changes_only_the_resampling_of_per_pixel_features(wide_pair, planes):
    """With a per-pixel descriptor on smooth images, the pre-warped volume equals the direct
    one up to the second bilinear interpolation (and the canvas' uint8 rounding), and is NaN
    at exactly the same hypotheses."""
    reference, other, sweep = wide_pair
    reference, other = (cv2.GaussianBlur(im, (0, 0), 2.0) for im in (reference, other))
    cost = PixelValueCost()
    cost.prewarp = False
    direct = cost.volume(reference, other, sweep)
    cost.prewarp, cost.prewarp_planes = True, planes
    warped = cost.volume(reference, other, sweep)
    runs = np.array_split(sweep.labels, planes)
    assert cost.info["prewarp_depths_m"] == [round(r[len(r) // 2], 4) for r in runs]
    assert np.array_equal(np.isfinite(direct), np.isfinite(warped))
    ok = np.isfinite(direct)
    assert ok.mean() > 0.5
    error = np.abs(direct[ok] - warped[ok])
    assert np.median(error) < 0.5 and np.percentile(error, 99) < 4.0  # grey levels


def test_rectified_sweeps_are_not_prewarped():
    sweep = Sweep.disparities(40, 50, np.arange(4.0))
    assert Prewarp.for_sweep(sweep, (40, 50)) is None


def test_prewarp_undoes_the_perspective_of_a_slanted_view():
    """A single fronto-parallel plane seen from a camera turned 35° away: after the pre-warp
    by a plane at its depth, the canvas matches the reference pixel for pixel, and an
    untrained descriptor's cost picks that plane almost everywhere."""
    texture = make_scene(1, 80, 60).images[0]
    texture = cv2.resize(texture, (320, 240), interpolation=cv2.INTER_CUBIC)
    plane = TexturedPlane(
        np.array([-4.0, -3.0, 6.0]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 8, 6, texture
    )
    K = np.array([[130.0, 0, 79.5], [0, 130, 59.5], [0, 0, 1]])
    ref = Camera(K, np.eye(3), np.zeros(3), 160, 120)
    angle = np.deg2rad(35)
    centre = np.array([6.0 * np.sin(angle), 0, 6.0 - 6.0 * np.cos(angle)])
    R = np.array([[np.cos(angle), 0, -np.sin(angle)], [0, 1, 0], [np.sin(angle), 0, np.cos(angle)]])
    other = Camera(K, R, centre, 160, 120)
    image_ref, depth_ref = render([plane], ref)
    image_other, _ = render([plane], other)
    assert np.nanmax(np.abs(depth_ref - 6.0)) < 1e-9
    depths = inverse_depth_labels(5.0, 7.2, 17)
    depths[8] = 6.0  # the middle plane is the true one
    sweep = Sweep.planes(ref, other, depths)
    prewarp = Prewarp.for_sweep(sweep, image_other.shape)
    assert prewarp is not None
    canvas = prewarp.image(image_other).astype(float)
    # canvas pixel (u, v) is reference pixel (u + x0, v + y0)
    shift = np.linalg.inv(plane_homography(ref, other, 6.0)) @ prewarp.to_other
    np.testing.assert_allclose(shift[:2, :2], np.eye(2), atol=1e-9)
    x0, y0 = round(float(shift[0, 2])), round(float(shift[1, 2]))
    ys, xs = np.mgrid[20:100, 30:130]
    seen = canvas[ys - y0, xs - x0]
    assert np.median(np.abs(seen - image_ref[ys, xs])) < 3  # grey levels
    torch.manual_seed(0)
    cost = DescriptorCost(build_model("l2net").eval())
    volume = cost.volume(image_ref, image_other, sweep)
    best = np.nanargmin(np.where(np.isfinite(volume), volume, np.inf), axis=0)[20:100, 30:130]
    assert (np.abs(best - 8) <= 1).mean() > 0.8


def test_prewarp_planes_must_be_positive():
    from stereo.cost.factory import make_cost
    from stereo.errors import StereoError

    with pytest.raises(StereoError, match="pre-warp planes must be at least 1"):
        make_cost("dsift", prewarp_planes=0)
