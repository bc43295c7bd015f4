"""Multi-view fusion of depth maps: exact depths agree, wrong depths are dropped, and the
fused views feed the stereo window cutter."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from stereo.datasets.cli import cli
from stereo.datasets.fusion import agreeing_views, fused_depths, real_view_pair, truth_agreement
from stereo.datasets.stereo_windows import WindowSpec, pair_windows, real_stereo_windows
from stereo.datasets.synthetic import make_scene
from stereo.errors import StereoError


@pytest.fixture(scope="module")
def scene():
    return make_scene(4, width=160, height=120, baseline=0.4)


def test_exact_depths_agree_and_a_wrong_patch_is_dropped(scene):
    """Rendered depths: over 90 % of a middle view's pixels are confirmed by at least two of
    the other three (the rest lie outside their images); a block pushed 5 % deeper is
    confirmed by none and dropped, the rest kept."""
    depths = [d.copy() for d in scene.depths]
    exact = agreeing_views(depths, scene.cameras, 1)
    has_depth = np.isfinite(depths[1])
    assert np.mean(exact[has_depth] >= 2) > 0.9
    depths[1][40:70, 60:100] *= 1.05
    fused = fused_depths(depths, scene.cameras, min_views=3)[1]
    assert np.isnan(fused[40:70, 60:100]).all()
    outside = has_depth.copy()
    outside[40:70, 60:100] = False
    assert np.isfinite(fused[outside]).mean() > 0.9
    kept = np.isfinite(fused)
    np.testing.assert_array_equal(fused[kept], depths[1][kept].astype(np.float32))


def test_truth_agreement_counts_points_on_kept_pixels():
    """Three truth points at full resolution (factor 0.5): one on a kept pixel with the same
    depth, one 1.5 % off, one on a dropped pixel."""
    fused = np.full((10, 10), np.nan, np.float32)
    fused[2, 3] = 10.0
    fused[4, 4] = 20.3
    xy = np.array([[6.5, 4.5], [8.5, 8.5], [15.5, 15.5]])  # → (3, 2), (4, 4), (7.5, 7.5)
    agreement = truth_agreement(fused, 0.5, xy, np.array([10.0, 20.0, 5.0]))
    assert agreement["truth_points"] == 3 and agreement["on_fused_pixels"] == 2
    assert agreement["within_1pct"] == 0.5 and agreement["within_2pct"] == 1.0


@pytest.mark.parametrize(("min_views", "tolerance"), [(1, 0.01), (5, 0.01), (3, 0.0), (3, 1.5)])
def test_impossible_fusion_settings_are_refused(scene, min_views, tolerance):
    with pytest.raises(StereoError, match=r"min-views|tolerance"):
        fused_depths(scene.depths, scene.cameras, min_views, tolerance)


def test_dense_truth_command_writes_fused_views_the_window_cutter_reads(tmp_path):
    """A rendered three-view scene matched view by view with ZNCC: fused maps written, most
    kept depths within 2 % of the rendered truth, and two fused views cut into windows."""
    scene3 = make_scene(3, width=192, height=128, baseline=0.5)
    scene_dir = scene3.save(tmp_path / "scene")
    out = tmp_path / "dense"
    args = ["dense-truth", str(scene_dir), "--out", str(out), "--size", "192"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    stems = sorted(summary["views"])
    assert len(stems) == 3 and all(v["kept"] > 0 for v in summary["views"].values())
    with np.load(out / f"{stems[0]}.npz") as view:
        fused = view["depth"]
    kept = np.isfinite(fused) & np.isfinite(scene3.depths[0])
    error = np.abs(fused[kept] - scene3.depths[0][kept]) / scene3.depths[0][kept]
    assert kept.sum() > 0.3 * fused.size and np.mean(error < 0.02) > 0.9
    pair = real_view_pair(out, stems[0], stems[1])
    windows = pair_windows(pair, np.random.default_rng(0), WindowSpec(points_per_pair=16))
    assert len(windows["reference"]) == 16 and windows["match"].shape == (16, 64, 64)
    patchset = real_stereo_windows(out, offsets=(1, 2), windows=WindowSpec(points_per_pair=16))
    assert sorted(np.unique(patchset.view_ids)) == list(range(6))  # three pairs: 0-1, 0-2, 1-2
    true = patchset.near_of < 0
    assert true.sum() == 2 * 3 * 16 and (~true).sum() == 2 * 3 * 16  # two near misses a point
    both_ways = real_stereo_windows(
        out, offsets=(-1, 1), windows=WindowSpec(points_per_pair=16), views=[0, 1]
    )
    assert sorted(np.unique(both_ways.view_ids)) == list(range(4))  # 0-1 and 1-0, not view 2
    assert np.array_equal(both_ways.patches[:16], patchset.patches[:16])  # pair 0 is 0-1 again
    with pytest.raises(StereoError, match="not \\[3\\]"):
        real_stereo_windows(out, views=[0, 3])
