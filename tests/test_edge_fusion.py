"""Edge fusion: depth edges of a label map, the per-pixel blend, and the run that uses them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stereo.config import StereoConfig
from stereo.cost.factory import cost_of
from stereo.cost.flat import FLAT_WINDOW, flat_pixels
from stereo.datasets.synthetic import Camera, default_planes, look_at, render
from stereo.edge_fusion import depth_edges, edge_cost_name
from stereo.errors import StereoError
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import MRFConfig, blended
from stereo.pipeline import match_rectified

K = np.array([[130.0, 0, 47.5], [0, 130, 35.5], [0, 0, 1]])


@pytest.fixture(scope="module")
def small_pair():
    """A 96×72 rectified pair of the default planes (a depth edge included)."""
    rotation = look_at(np.zeros(3), np.array([0.0, 0, 1]))
    left = Camera(K, rotation, np.zeros(3), 96, 72)
    right = Camera(K, rotation, np.array([0.3, 0, 0]), 96, 72)
    return render(default_planes(), left)[0], render(default_planes(), right)[0]


def test_depth_edges_mark_both_sides_of_a_jump_dilated_by_the_radius():
    labels = np.zeros((6, 20), int)
    labels[:, 10:] = 6  # a jump of 6 labels between columns 9 and 10
    edges = depth_edges(labels, radius=2)
    expected = np.zeros((6, 20), bool)
    expected[:, 7:13] = True  # columns 9 and 10, then 2 px either side
    np.testing.assert_array_equal(edges, expected)
    np.testing.assert_array_equal(depth_edges(labels, radius=0)[0, 8:12], [0, 1, 1, 0])


def test_jumps_of_at_most_five_labels_are_no_depth_edge():
    labels = np.tile(np.arange(20) // 4 * 5, (5, 1))  # a slanted surface: steps of 5 labels
    assert not depth_edges(labels, radius=4).any()
    labels[2, 5] += 6  # one outlier 6 labels above its row
    assert depth_edges(labels, radius=0).sum() == 5  # itself and its four neighbours


def test_flat_pixels_are_those_whose_window_spreads_less_than_the_threshold():
    """A flat left half (grey 100) beside a checkerboard of 90 / 110 (std 10): pixels whose
    9×9 window lies wholly in the flat half are flat for any threshold > 0, those whose
    window lies in the checkerboard only for thresholds above 10 levels."""
    image = np.full((20, 40), 100, np.uint8)
    checker = (np.indices((20, 20)).sum(axis=0) % 2) * 20 + 90
    image[:, 20:] = checker
    half = FLAT_WINDOW // 2
    flat = flat_pixels(image, 2.0)
    assert flat[:, : 20 - half].all() and not flat[:, 20 - half :].any()
    assert flat_pixels(image, 10.5)[:, 20 + half :].all()
    assert not flat_pixels(image, 0.0).any()  # 0: the rule is off


def test_the_blend_weights_each_pixel_by_its_own_share():
    rng = np.random.default_rng(0)
    learned, handmade = rng.random((2, 4, 3, 5))
    weight = rng.random((3, 5))
    expected = (1 - weight.astype(np.float64)) * learned + weight * handmade
    np.testing.assert_allclose(blended(learned, handmade, weight), expected, rtol=1e-6)
    handmade[1, 0, 0], learned[2, 0, 0] = np.nan, np.nan
    assert np.isnan(blended(learned, handmade, 0.5)[1, 0, 0])
    assert blended(learned, handmade, 0.0)[1, 0, 0] == np.float32(learned[1, 0, 0])
    assert blended(learned, handmade, 1.0)[2, 0, 0] == np.float32(handmade[2, 0, 0])


def test_auto_fuses_census_for_two_channel_networks_on_rectified_pairs_only():
    cfg = StereoConfig(model="2ch-deep", untrained=True)
    network, census = cost_of(cfg), cost_of(replace(cfg, model="census"))
    rows, planes = Sweep.disparities(8, 8, np.arange(4.0)), Sweep(np.ones(1), 8, 8, "depth")
    assert edge_cost_name(cfg, network, rows) == "census"
    assert edge_cost_name(cfg, network, planes) == "none"
    assert edge_cost_name(cfg, census, rows) == "none"
    assert edge_cost_name(replace(cfg, edge_cost="zncc"), census, planes) == "zncc"


@pytest.mark.parametrize(
    "everywhere",
    [{"edge_blend": 1.0}, {"edge_blend": 0.0, "edge_flat_std": 256.0}],
    ids=["full blend", "every window flat"],
)
def test_census_everywhere_gives_the_hand_made_cost_alone(small_pair, everywhere):
    """edge blend 1, or a flat threshold above any window's spread: the volume is census
    everywhere, so the run's disparities are census's."""
    mrf = MRFConfig(smoothness=0.8, iterations=2)  # census's cycles, not the network's 1
    common = dict(n_labels=12, working_size=96, mrf=mrf, untrained=True)
    census = match_rectified(*small_pair, StereoConfig(model="census", **common), (1.0, 12.0))
    fused = match_rectified(
        *small_pair,
        StereoConfig(model="2ch-deep", edge_cost="census", **everywhere, **common),
        (1.0, 12.0),
    )
    both = np.isfinite(census.depth) & np.isfinite(fused.depth)
    assert both.mean() > 0.8
    np.testing.assert_allclose(fused.depth[both], census.depth[both], atol=1e-5)
    assert fused.report["edge_fusion"]["edge_cost"] == "census7"


def test_edge_fusion_marks_the_depth_edges_of_the_scene(small_pair):
    """census fused with ZNCC near its edges (any cost may be asked for explicitly): the
    planes' depth edges are found, and only they."""
    common = dict(model="census", n_labels=12, working_size=96, edge_radius=3)
    fused = match_rectified(*small_pair, StereoConfig(edge_cost="zncc", **common), (1.0, 12.0))
    share = fused.report["edge_fusion"]["edge_share"]
    assert 0.02 < share < 0.6
    assert fused.report["edge_fusion"]["flat_share"] < 0.01  # textured planes: hardly flat
    plain = match_rectified(*small_pair, StereoConfig(**common), (1.0, 12.0))
    assert "edge_fusion" not in plain.report


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"edge_blend": 1.5}, "--edge-blend must lie in"),
        ({"edge_blend": float("nan")}, "--edge-blend must lie in"),
        ({"edge_radius": -1}, "--edge-radius must be 0 or more"),
        ({"edge_flat_std": -1.0}, "--edge-flat-std must be 0 .off. or more"),
        ({"edge_flat_std": float("nan")}, "--edge-flat-std must be 0 .off. or more"),
        ({"edge_cost": "2ch"}, "unknown --edge-cost .2ch.; valid: auto, none, census, zncc"),
    ],
)
def test_impossible_edge_settings_are_refused(settings, message):
    with pytest.raises(StereoError, match=message):
        StereoConfig(**settings)


def test_the_memory_check_counts_edge_fusion_where_it_may_run(monkeypatch):
    import stereo.config as config

    plain = config.volume_bytes(64, 100, 200)
    fused = config.volume_bytes(64, 100, 200, edge_fusion=True)
    assert fused - plain == 4 * 100 * 200 * 64 * config.EDGE_FUSION_VOLUMES
    monkeypatch.setattr(config, "available_memory", lambda: (plain + fused) // 2)
    config.check_volume_fits(StereoConfig(n_labels=64), 100, 200, row_search=False)
    config.check_volume_fits(StereoConfig(n_labels=64, edge_cost="none"), 100, 200, True)
    with pytest.raises(StereoError, match=r"need about .* GiB of memory"):
        config.check_volume_fits(StereoConfig(n_labels=64), 100, 200, row_search=True)
    with pytest.raises(StereoError, match="lower --labels or --size"):
        config.check_volume_fits(StereoConfig(edge_cost="census"), 100, 200, row_search=False)


def test_the_report_gives_the_reference_images_edge_fusion_with_the_left_right_check(small_pair):
    """With --lr-check the second image's volume is fused too; the report keeps the
    reference image's figures (as without the check), not the second image's."""
    common = dict(model="census", n_labels=12, working_size=96, edge_radius=3, edge_cost="zncc")
    alone = match_rectified(*small_pair, StereoConfig(**common), (1.0, 12.0))
    checked = match_rectified(*small_pair, StereoConfig(lr_check=True, **common), (1.0, 12.0))
    assert checked.report["edge_fusion"] == alone.report["edge_fusion"]
    mirrored = match_rectified(
        small_pair[1][:, ::-1].copy(),
        small_pair[0][:, ::-1].copy(),
        StereoConfig(**common),
        (1.0, 12.0),
    )
    assert mirrored.report["edge_fusion"] != alone.report["edge_fusion"]  # the check can tell
