"""The evaluator on hand-made maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from stereo.errors import StereoError
from stereo.evaluation import (
    SparseDepth,
    dense_truth,
    depth_correctness,
    disparity_errors,
    read_depth_map,
    read_pfm,
)


def test_depth_correctness_hand_case():
    truth = SparseDepth(
        np.array([[0, 0], [1, 0], [2, 0], [3, 0], [9, 9]], float),
        np.array([10.0, 12.0, 14.0, 20.0, 15.0]),
    )  # range 10 m
    estimate = np.full((4, 4), np.nan, np.float32)
    estimate[0] = [10.05, 12.15, 14.6, np.nan]  # errors 0.05, 0.15, 0.6, missing
    out = depth_correctness(estimate, truth, in_view=np.array([1, 1, 0, 0, 1], bool))
    # τ·range = 0.1, 0.2, 0.5 m; the fifth point lies outside the map: wrong
    assert out["correct@0.01"] == pytest.approx(1 / 5)
    assert out["correct@0.02"] == pytest.approx(2 / 5)
    assert out["correct@0.05"] == pytest.approx(2 / 5)
    assert out["correct@0.05_in_view"] == pytest.approx(2 / 3)
    assert out["coverage"] == pytest.approx(3 / 5) and out["depth_range"] == 10.0


def test_dense_truth_and_perfect_map():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    depth[1, 1] = np.nan
    truth = dense_truth(depth)
    assert len(truth.depth) == 11
    assert depth_correctness(depth, truth)["correct@0.01"] == 1.0


def test_disparity_errors_hand_case():
    truth = np.array([[1.0, 2.0, np.nan, 4.0]])
    estimate = np.array([[1.5, 4.5, 7.0, np.nan]])
    out = disparity_errors(estimate, truth)
    # known: 3 pixels; errors 0.5, 2.5, missing
    assert out["bad1"] == pytest.approx(2 / 3) and out["bad2"] == pytest.approx(2 / 3)
    assert out["mae"] == pytest.approx(1.5) and out["n_pixels"] == 3
    with pytest.raises(StereoError, match="differ in size"):
        disparity_errors(estimate[:, :2], truth)


def test_map_readers(tmp_path):
    data = np.array([[1.0, np.inf], [3.0, 4.0]], np.float32)
    np.save(tmp_path / "d.npy", data)
    loaded = read_depth_map(tmp_path / "d.npy")
    assert np.isnan(loaded[0, 1]) and loaded[1, 0] == 3.0
    with (tmp_path / "d.pfm").open("wb") as f:  # PFM rows run bottom to top
        f.write(b"Pf\n2 2\n-1.0\n")
        f.write(np.flipud(data).astype("<f4").tobytes())
    np.testing.assert_array_equal(read_pfm(tmp_path / "d.pfm"), data)
    with pytest.raises(StereoError, match="does not exist"):
        read_depth_map(tmp_path / "none.npy")
