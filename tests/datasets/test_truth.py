"""Sparse depth ground truth from tracks checked against the true cameras."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial import cKDTree

from stereo.datasets.calibrated import TRUTH_CONFIG, sparse_truth
from stereo.datasets.cli import cli
from stereo.datasets.synthetic import make_scene
from stereo.evaluation import read_sparse_ground_truth
from stereo.geometry.scene import load_scene


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory):
    return make_scene(3).save(tmp_path_factory.mktemp("rendered"))


def test_truth_depths_equal_the_rendered_depth_maps(rendered_dir):
    scene = load_scene(rendered_dir)
    truth = sparse_truth(scene, progress=False)
    assert set(truth) == {0, 1, 2}
    for view, arrays in truth.items():
        exact = np.load(rendered_dir / "depth" / f"{view:04d}.npy")
        ix, iy = np.rint(arrays["xy"]).astype(int).T
        rel = np.abs(arrays["depth"] - exact[iy, ix]) / exact[iy, ix]
        assert len(rel) > 50
        assert np.median(rel) < 0.005
        # every point was seen in all three views (min_views = 3): ids shared by the views
    ids = [set(a["point_id"]) for a in truth.values()]
    assert ids[0] == ids[1] == ids[2]


def test_truth_agrees_with_the_shared_strecha_ground_truth(shared_data):
    scene = load_scene(shared_data / "strecha" / "fountain-P11")
    cfg = dataclasses.replace(TRUTH_CONFIG, views=(4, 5, 6), max_keypoints=3000)
    ours = sparse_truth(scene, cfg, progress=False)[5]
    shared = read_sparse_ground_truth(
        shared_data / "strecha" / "fountain-P11" / "gt_sparse" / "0005.npz"
    )
    distance, nearest = cKDTree(shared.xy).query(ours["xy"])
    same = distance < 0.5
    assert same.sum() > 100
    rel = np.abs(ours["depth"][same] - shared.depth[nearest[same]]) / shared.depth[nearest[same]]
    assert np.median(rel) < 1e-3
    assert np.percentile(rel, 99) < 0.01


def test_truth_command_writes_gt_sparse_files(rendered_dir, tmp_path):
    result = CliRunner().invoke(cli, ["truth", str(rendered_dir), "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["points_per_view"]
    truth = read_sparse_ground_truth(tmp_path / "t" / "0000.npz")
    assert len(truth.depth) == counts["0000"] > 50
    missing = CliRunner().invoke(cli, ["truth", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert missing.exit_code != 0
    assert "does not exist" in missing.output
