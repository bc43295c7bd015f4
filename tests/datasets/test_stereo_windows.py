"""Synthetic stereo training data: random scenes and windows cut as the plane sweep cuts them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stereo.datasets.random_scenes import (
    RIGS,
    SceneSpec,
    ViewPair,
    random_rig,
    random_view_pair,
    render_view,
    texture_pool,
)
from stereo.datasets.stereo_windows import (
    WindowSpec,
    cut,
    drawn_points,
    near_miss_depths,
    other_surface_depths,
    pair_windows,
    sweep_depths,
    synthetic_stereo_windows,
    visible_points,
    window_grids,
    window_offsets,
)
from stereo.datasets.synthetic import TexturedPlane
from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import backproject
from stereo.patchnet.data.warped import sample_photographs

SMALL = SceneSpec(width=96, height=64, supersample=1, min_panels=1, max_panels=2)


def zncc_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ZNCC of corresponding windows ``(N, h, w)``."""
    a = a.reshape(len(a), -1).astype(float)
    b = b.reshape(len(b), -1).astype(float)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def wall_pair(baseline: float = 0.3, rotate: float = 0.0) -> ViewPair:
    """A fronto-parallel textured wall 5 units away seen by a reference at the origin and a
    second camera ``baseline`` to its right turned by ``rotate`` radians; no photometric
    change."""
    texture = sample_photographs(("astronaut",))[0]
    wall = TexturedPlane(
        np.array([-4.0, -3.0, 5.0]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 8, 6, texture
    )
    K = np.array([[150.0, 0, 79.5], [0, 150.0, 59.5], [0, 0, 1]])
    c, s = np.cos(rotate), np.sin(rotate)
    R2 = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    cams = (
        Camera(K, np.eye(3), np.zeros(3), 160, 120),
        Camera(K, R2, np.array([baseline, 0, 0]), 160, 120),
    )
    views = [render_view([wall], cam, 2) for cam in cams]
    return ViewPair((views[0][0], views[1][0]), cams, (views[0][1], views[1][1]), "rectified")


def test_match_window_is_the_reference_window_and_near_misses_are_not():
    pair = wall_pair(baseline=1.0)
    spec = WindowSpec(points_per_pair=40, n_labels=8)  # a label: 1.3 px on the wall
    windows = pair_windows(pair, np.random.default_rng(0), spec)
    assert windows["reference"].shape == (40, 64, 64)
    match = zncc_rows(windows["reference"], windows["match"])
    assert match.min() > 0.97  # the same surface, resampled (bilinear) in the other view
    near = zncc_rows(windows["reference"][windows["near_point"]], windows["near"])
    assert near.mean() < match.mean() - 0.05
    # every window is a 32-px window replicated 2× (what l2net's half-resolution form sees)
    assert np.array_equal(windows["match"][:, ::2, ::2].repeat(2, 1).repeat(2, 2), windows["match"])


def test_window_grid_centre_is_the_true_projection_and_warps_agree_on_a_wall():
    pair = wall_pair(baseline=0.5, rotate=0.1)
    reference, other = pair.cameras
    xy = np.array([[40, 30], [120, 90]])
    depth = np.array([5.0, 5.0])
    truth, _ = other.project(backproject(reference, xy.astype(float), depth))
    for warp in ("prewarp", "label"):
        grids = window_grids(xy, depth, reference, other, 5.0, WindowSpec(warp=warp))
        # the window centred half a pixel up-left of p: its pixel (16, 16) is p itself
        np.testing.assert_allclose(grids[:, 16, 16], truth, atol=1e-9)
    # a pre-warp by the wall's own plane and the per-label warp are one and the same map
    pre = window_grids(xy, depth, reference, other, 5.0, WindowSpec(warp="prewarp"))
    label = window_grids(xy, depth, reference, other, 5.0, WindowSpec(warp="label"))
    np.testing.assert_allclose(pre, label, atol=1e-9)


def test_near_misses_move_the_window_at_least_the_minimum():
    pair = wall_pair(baseline=1.0)
    _reference, _other = pair.cameras
    spec = WindowSpec(points_per_pair=30, n_labels=8, min_near_shift=2.0)
    xy, _z = visible_points(pair, 17)
    assert len(xy) > 30
    windows = pair_windows(pair, np.random.default_rng(1), spec)
    assert len(windows["near"]) == 2 * 30
    # on a fronto-parallel wall a label is one disparity step (1.3 px): near misses are 2..6
    # labels off, so the near window is no copy of the match
    near = zncc_rows(windows["match"][windows["near_point"]], windows["near"])
    assert near.max() < 0.999
    assert np.all(np.unique(windows["near_point"], return_counts=True)[1] == spec.near_per_point)


@pytest.mark.parametrize("near_step", [1.0, 0.5])
def test_near_misses_lie_at_multiples_of_the_near_step(near_step):
    pair = wall_pair(baseline=1.0)
    spec = WindowSpec(n_labels=16, near_step=near_step, near_per_point=4, min_near_shift=0.3)
    xy, z = visible_points(pair, 17)
    labels = sweep_depths(pair.depths[0], spec.n_labels)
    point, depth = near_miss_depths(np.random.default_rng(0), xy, z, labels, *pair.cameras, spec)
    step = (1 / labels[0] - 1 / labels[-1]) / (len(labels) - 1)
    offsets = (1 / depth - 1 / z[point]) / step  # labels off the truth
    np.testing.assert_allclose(offsets / near_step, np.round(offsets / near_step), atol=1e-6)
    assert np.abs(offsets).min() >= near_step - 1e-6 and np.abs(offsets).max() <= 6 + 1e-6
    halves = np.abs(offsets - np.round(offsets)) > 0.25
    assert halves.any() == (near_step == 0.5)


def test_occluded_points_are_not_drawn():
    texture = sample_photographs(("camera",))[0]
    wall = TexturedPlane(
        np.array([-4.0, -3.0, 6.0]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 8, 6, texture
    )
    post = TexturedPlane(
        np.array([-0.2, -3.0, 3.0]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 0.4, 6, texture
    )
    pair = wall_pair()
    views = [render_view([wall, post], cam, 1) for cam in pair.cameras]
    pair = ViewPair((views[0][0], views[1][0]), pair.cameras, (views[0][1], views[1][1]), "r")
    xy, z = visible_points(pair, 17)
    reference, other = pair.cameras
    seen, z_other = other.project(backproject(reference, xy.astype(float), z))
    rows, cols = np.rint(seen[:, 1]).astype(int), np.rint(seen[:, 0]).astype(int)
    np.testing.assert_allclose(pair.depths[1][rows, cols], z_other, rtol=0.011)
    # wall points hidden behind the post in the second view exist and were dropped
    ys, xs = np.nonzero(pair.depths[0] > 5.5)
    all_seen, all_z = other.project(
        backproject(reference, np.c_[xs, ys].astype(float), pair.depths[0][ys, xs])
    )
    inside = (all_seen[:, 0] > 17) & (all_seen[:, 0] < 143) & (ys > 17) & (ys < 103)
    hidden = inside & (
        pair.depths[1][
            np.rint(all_seen[:, 1]).astype(int).clip(0, 119),
            np.rint(all_seen[:, 0]).astype(int).clip(0, 159),
        ]
        < 0.9 * all_z
    )
    assert hidden.sum() > 50
    drawn = {(int(x), int(y)) for x, y in xy}
    assert not any((int(x), int(y)) in drawn for x, y in zip(xs[hidden], ys[hidden], strict=True))


def test_random_view_pairs_are_deterministic_and_geometric():
    pool = texture_pool()
    a = random_view_pair((3, 1), pool, SMALL)
    b = random_view_pair((3, 1), pool, SMALL)
    assert a.rig == b.rig
    for x, y in zip(a.images, b.images, strict=True):
        np.testing.assert_array_equal(x, y)
    assert np.isfinite(a.depths[0]).mean() > 0.9  # the back wall fills the view
    assert np.nanmin(a.depths[0]) > 0
    c = random_view_pair((3, 2), pool, SMALL)
    assert not np.array_equal(a.images[0], c.images[0])


def test_faint_textures_and_thin_bars_change_only_the_scenes_that_ask():
    from stereo.datasets.random_scenes import THIN_ASPECT, faint, random_planes

    texture = np.array([[0, 100, 200]], np.uint8)
    np.testing.assert_array_equal(faint(texture, 0.1), [[90, 100, 110]])
    pool = texture_pool()
    # shares of 0 draw nothing more from the generator: the older sets stay bit for bit
    plain = random_planes(np.random.default_rng(9), pool, 80.0, SMALL)
    unasked = random_planes(
        np.random.default_rng(9), pool, 80.0, replace(SMALL, faint_share=0.0, thin_share=0.0)
    )
    for a, b in zip(plain, unasked, strict=True):
        np.testing.assert_array_equal(a.texture, b.texture)
    hard = replace(SMALL, faint_share=1.0, thin_share=1.0, min_panels=4, max_panels=4)
    wall, *panels = random_planes(np.random.default_rng(9), pool, 80.0, hard)
    assert float(wall.texture.std()) < 0.26 * float(plain[0].texture.std()) + 1
    for panel in panels[-4:]:
        ratio = max(panel.width, panel.height) / min(panel.width, panel.height)
        assert THIN_ASPECT[0] - 1e-9 <= ratio <= THIN_ASPECT[1] + 1e-9


@pytest.mark.parametrize("kind", RIGS)
def test_rigs_see_the_target(kind):
    rng = np.random.default_rng(0)
    reference, other = random_rig(rng, kind, SMALL, 6.0)
    # the point the rig is built around lies in front of both cameras, inside both images
    target = backproject(reference, np.array([[47.5, 31.5]]), np.array([6.0]))
    xy, z = other.project(target)
    assert z[0] > 0
    assert np.linalg.norm(reference.C - other.C) > 0
    if kind == "rectified":
        np.testing.assert_allclose(reference.R, other.R)
        assert abs(xy[0, 1] - 31.5) < 1e-6  # rows stay aligned


def test_synthetic_set_is_deterministic_with_workers_and_links_near_misses():
    spec = WindowSpec(points_per_pair=8)
    one = synthetic_stereo_windows(2, seed=5, scene=SMALL, windows=spec, progress=False)
    two = synthetic_stereo_windows(2, seed=5, scene=SMALL, windows=spec, workers=2, progress=False)
    np.testing.assert_array_equal(one.patches, two.patches)
    np.testing.assert_array_equal(one.near_of, two.near_of)
    true = one.near_of < 0
    ids, counts = np.unique(one.point_ids[true], return_counts=True)
    assert np.all(counts == 2)  # reference window + match
    assert np.isin(one.near_of[~true], ids).all()
    # a near miss is cut in its point's match view (odd view ids), never the reference view
    assert np.all(one.view_ids[~true] % 2 == 1)


def test_bad_specs_are_refused():
    with pytest.raises(StereoError, match="unknown rig"):
        SceneSpec(rigs=("sideways",))
    with pytest.raises(StereoError, match=r"faint_share must lie in \[0, 1\], not 1.5"):
        SceneSpec(faint_share=1.5)
    with pytest.raises(StereoError, match=r"relief_share must lie in \[0, 1\], not -0.1"):
        SceneSpec(relief_share=-0.1)
    for angle in (3.0, 90.0):  # uniform(3, max) needs max > 3; 90: the views would not overlap
        with pytest.raises(StereoError, match=r"max_convergence_deg must lie in \(3, 90\)"):
            SceneSpec(max_convergence_deg=angle)
    with pytest.raises(StereoError, match="must divide 64"):
        WindowSpec(window=24)
    with pytest.raises(StereoError, match="near_step 0 must lie in"):
        WindowSpec(near_step=0)
    with pytest.raises(StereoError, match="unknown warp"):
        WindowSpec(warp="affine")
    with pytest.raises(StereoError, match=r"edge_share must lie in \[0, 1\], not 1.5"):
        WindowSpec(edge_share=1.5)


def test_synthetic_command_writes_calibrated_scenes_with_exact_depth(tmp_path):
    from click.testing import CliRunner

    from stereo.datasets.cli import cli
    from stereo.geometry.scene import load_scene

    result = CliRunner().invoke(
        cli, ["synthetic", "--pairs", "1", "--seed", "4", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    scene = load_scene(tmp_path / "pair-0000")
    depth = np.load(tmp_path / "pair-0000" / "depth" / "0000.npy")
    pair = random_view_pair((4, 0), texture_pool())
    np.testing.assert_array_equal(scene.image(0), pair.images[0])
    np.testing.assert_allclose(depth, pair.depths[0], rtol=1e-6)  # float32 on disk
    np.testing.assert_allclose(scene.cameras[1].K, pair.cameras[1].K, rtol=1e-8)
    rough = CliRunner().invoke(
        cli,
        ["synthetic", "--pairs", "1", "--seed", "4", "--relief", "1", "--out", str(tmp_path / "r")],
    )
    assert rough.exit_code == 0, rough.output
    relief = random_view_pair((4, 0), texture_pool(), SceneSpec(relief_share=1.0))
    np.testing.assert_array_equal(
        load_scene(tmp_path / "r" / "pair-0000").image(0), relief.images[0]
    )
    assert not np.array_equal(relief.images[0], pair.images[0])
    wrong = CliRunner().invoke(cli, ["synthetic", "--relief", "2", "--out", str(tmp_path / "w")])
    assert wrong.exit_code != 0 and "--relief" in wrong.output


def test_synthetic_scenes_cut_as_keypoint_patches_match_across_views(tmp_path):
    """The synthetic sources as keypoint patches (the patch benchmark's form): `stereo-dataset
    build` on the scenes `synthetic` writes; the two patches of a point look alike."""
    from click.testing import CliRunner

    from stereo.datasets.cli import cli
    from stereo.patchnet.data.patchset import PatchSet

    runner = CliRunner()
    made = runner.invoke(cli, ["synthetic", "--pairs", "2", "--out", str(tmp_path / "scenes")])
    assert made.exit_code == 0, made.output
    scenes = sorted(str(p) for p in (tmp_path / "scenes").iterdir())
    built = runner.invoke(cli, ["build", *scenes, "--out", str(tmp_path / "patches")])
    assert built.exit_code == 0, built.output
    data = PatchSet.load(tmp_path / "patches" / "pair-0001.npz")
    assert data.n_points >= 20
    order = np.argsort(data.point_ids, kind="stable")
    a, b = data.patches[order[0::2]].astype(float), data.patches[order[1::2]].astype(float)
    assert np.array_equal(data.point_ids[order[0::2]], data.point_ids[order[1::2]])

    def zncc(x, y):
        x = (x - x.mean((1, 2), keepdims=True)) / (x.std((1, 2), keepdims=True) + 1e-6)
        y = (y - y.mean((1, 2), keepdims=True)) / (y.std((1, 2), keepdims=True) + 1e-6)
        return (x * y).mean((1, 2))

    same, other = zncc(a, b), zncc(a, np.roll(b, 1, axis=0))
    assert np.median(same) > 0.8 and np.median(other) < 0.5  # measured: 0.95, 0.24


def test_cut_of_more_windows_than_one_remap_takes_equals_cutting_each_alone():
    """600 windows of 64 px are 38,400 map rows (OpenCV's remap takes < 32,768): the chunked
    cut equals cutting every window on its own, and no window gives an empty stack."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (200, 300), dtype=np.uint8)
    corners = rng.uniform(0, 230, (600, 1, 1, 2))
    grids = corners + window_offsets(64) * rng.uniform(0.5, 1.0, (600, 1, 1, 1))
    together = cut(image, grids, 1)
    alone = np.stack([cut(image, grids[i : i + 1], 1)[0] for i in range(0, 600, 37)])
    assert together.shape == (600, 64, 64)
    assert np.array_equal(together[::37], alone)
    assert cut(image, grids[:0], 2).shape == (0, 128, 128)


def test_enlarged_windows_are_what_a_window_scale_of_two_reads():
    """A 32-px window cut with 64 samples (``enlarged``) equals the 64×64 pixels of the
    image enlarged 2× (as ``--window-scale 2`` enlarges it) around the reference pixel's
    first enlarged pixel, to the rounding of uint8."""
    import cv2
    import torch

    from stereo.cost.two_channel import enlarge

    rng = np.random.default_rng(5)
    image = cv2.GaussianBlur((rng.random((60, 60)) * 255).astype(np.uint8), (3, 3), 0)
    assert np.array_equal(window_offsets(32, 32), window_offsets(32))
    spec = WindowSpec(window=32, warp="label", enlarged=True)
    assert (spec.samples, spec.patch_scale) == (64, 1)
    x, y = 27, 31
    window = cut(image, np.array([x, y]) + window_offsets(32, 64)[None], 1, cv2.INTER_CUBIC)[0]
    big = enlarge(torch.from_numpy(image).float()[None, None], 2)[0, 0].numpy()
    expected = big[2 * y - 32 : 2 * y + 32, 2 * x - 32 : 2 * x + 32]
    assert np.abs(window.astype(float) - expected).max() <= 1.0


def test_other_surface_is_the_far_side_of_a_depth_edge_within_the_window():
    depth = np.full((40, 80), 10.0)
    depth[:, :40] = 2.0  # a near surface on the left, a wall 10 units away on the right
    labels = np.array([2.0, 4.0, 10.0])  # label step 0.2 in inverse depth
    spec = WindowSpec(window=16, near_labels=1)
    xy = np.array([[35, 20], [10, 20], [44, 20], [70, 20]])
    far = other_surface_depths(depth, xy, labels, spec)
    np.testing.assert_allclose(far[[0, 2]], [10.0, 2.0])  # within 8 px of the edge
    assert np.isnan(far[[1, 3]]).all()  # the window holds one surface only
    # an edge of fewer than near_labels label steps is no edge
    assert np.isnan(other_surface_depths(depth, xy, labels, replace(spec, near_labels=3))).all()


def test_edge_points_are_drawn_in_their_share_and_get_the_other_surface_as_negative():
    edge = np.r_[np.ones(30, bool), np.zeros(70, bool)]
    spec = WindowSpec(points_per_pair=20, edge_share=0.75)
    take = drawn_points(np.random.default_rng(0), edge, spec)
    assert len(take) == 20 and len(set(take.tolist())) == 20
    assert edge[take].sum() >= 15  # 15 drawn among the edges, the rest anywhere
    pair = random_view_pair(3, texture_pool(), replace(SMALL, min_panels=3, max_panels=4))
    plain = WindowSpec(window=16, warp="label", points_per_pair=40)
    windows = pair_windows(pair, np.random.default_rng(1), plain)
    edged = pair_windows(pair, np.random.default_rng(1), replace(plain, edge_share=1.0))
    counts = np.bincount(edged["near_point"], minlength=len(edged["reference"]))
    assert counts.max() == plain.near_per_point + 1  # an edge point's extra negative
    assert len(edged["near"]) > len(windows["near"])


def relief_wall(relief: np.ndarray) -> tuple[TexturedPlane, Camera]:
    """A fronto-parallel 8 × 6 wall 5 units away with ``relief`` (heights along +z, away
    from the camera at the origin) and that camera."""
    texture = sample_photographs(("astronaut",))[0]
    wall = TexturedPlane(
        np.array([-4.0, -3.0, 5.0]),
        np.array([1.0, 0, 0]),
        np.array([0, 1.0, 0]),
        8,
        6,
        texture,
        relief.astype(np.float32),
    )
    K = np.array([[150.0, 0, 79.5], [0, 150.0, 59.5], [0, 0, 1]])
    return wall, Camera(K, np.eye(3), np.zeros(3), 160, 120)


def test_relief_moves_the_surface_along_the_normal():
    from stereo.datasets.synthetic import render

    wall, camera = relief_wall(np.full((4, 4), 0.3))
    _, depth = render([wall], camera)
    np.testing.assert_allclose(depth, 5.3, atol=1e-6)  # a raised wall: everywhere 0.3 farther
    step = np.zeros((6, 8))
    step[:, 4:] = -0.5  # the right half 0.5 nearer, ramping (bilinear) over s = 24/7 … 32/7
    wall, camera = relief_wall(step)
    _, depth = render([wall], camera)
    np.testing.assert_allclose(depth[:, :62], 5.0, atol=1e-6)  # x = 79.5 + 30·(s − 4) …
    np.testing.assert_allclose(depth[:, 99:], 4.5, atol=1e-6)  # … and 79.5 + 150·(s − 4) / 4.5


def test_every_relief_hit_lies_on_the_surface():
    from stereo.datasets.random_scenes import random_relief
    from stereo.datasets.synthetic import render

    relief = random_relief(np.random.default_rng(4), (8.0, 6.0), 5.0)
    assert 0 < np.abs(relief).max() <= 0.08 * 5.0 + 1e-6
    wall, camera = relief_wall(relief)
    _, depth = render([wall], camera)
    ys, xs = np.nonzero(np.isfinite(depth))
    points = backproject(camera, np.c_[xs, ys].astype(float), depth[ys, xs])
    s, r = points[:, 0] + 4.0, points[:, 1] + 3.0
    from scipy.ndimage import map_coordinates

    gh, gw = relief.shape
    on_grid = map_coordinates(relief.astype(float), [r / 6 * (gh - 1), s / 8 * (gw - 1)], order=1)
    # off by at most a secant step's error; where a step's side is hit, the surface is the side
    off = np.abs(points[:, 2] - 5.0 - on_grid)
    assert np.median(off) < 1e-3 and np.mean(off < 0.01) > 0.95


def test_relief_is_drawn_only_when_asked_and_keeps_views_consistent():
    from stereo.datasets.random_scenes import random_planes

    pool = texture_pool()
    plain = random_planes(np.random.default_rng(9), pool, 80.0, SMALL)
    assert all(plane.relief is None for plane in plain)
    unasked = random_planes(np.random.default_rng(9), pool, 80.0, replace(SMALL, relief_share=0))
    for a, b in zip(plain, unasked, strict=True):
        np.testing.assert_array_equal(a.texture, b.texture)
    rough = random_planes(np.random.default_rng(9), pool, 80.0, replace(SMALL, relief_share=1))
    assert all(plane.relief is not None for plane in rough)
    pair = random_view_pair((3, 1), pool, replace(SMALL, relief_share=1.0, supersample=1))
    _, z = visible_points(pair, margin=4)
    # the second view's own render agrees with most of the reference's relief points
    assert len(z) > 0.5 * np.isfinite(pair.depths[0]).sum()


def test_relief_validation_pairs_are_their_own_seeded_set():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from synthetic_calibrated import RELIEF_SEED, RELIEF_SPEC, SEED

    assert RELIEF_SEED != SEED and RELIEF_SPEC.relief_share > 0
    from stereo.datasets.random_scenes import random_planes

    # scenes drawn with the benchmark's relief spec carry relief (a camera of focal 800 px)
    planes = random_planes(
        np.random.default_rng((RELIEF_SEED, 0)), texture_pool(), 800.0, RELIEF_SPEC
    )
    assert any(plane.relief is not None for plane in planes)
