"""Rectified and uncalibrated pairs: disparity search, rectification from matches, errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from stereo.cli import match_command
from stereo.config import StereoConfig
from stereo.datasets.synthetic import Camera, default_planes, look_at, render
from stereo.errors import StereoError
from stereo.evaluation import disparity_errors
from stereo.geometry.planesweep import backproject
from stereo.geometry.rectify import (
    RECTIFIED_F,
    apply_homography,
    consistent_disparities,
    rectify_uncalibrated,
    sampson_errors,
    shifted_onto_canvas,
)
from stereo.pipeline import match_rectified, match_uncalibrated

K = np.array([[260.0, 0, 119.5], [0, 260, 89.5], [0, 0, 1]])
R = look_at(np.zeros(3), np.array([0.0, 0, 1]))


@pytest.fixture(scope="module")
def rectified_pair():
    """Two cameras with equal orientation 0.4 m apart along x: rectified by construction;
    the true disparity is f·B / Z."""
    planes = default_planes()
    left = Camera(K, R, np.array([0.0, 0, 0]), 240, 180)
    right = Camera(K, R, np.array([0.4, 0, 0]), 240, 180)
    (im_l, depth), (im_r, _) = render(planes, left), render(planes, right)
    return im_l, im_r, 260.0 * 0.4 / depth


def test_rectified_pair_disparity(rectified_pair):
    im_l, im_r, truth = rectified_pair
    result = match_rectified(
        im_l, im_r, StereoConfig(model="census", n_labels=40, working_size=240)
    )
    assert result.kind == "disparity"
    lo, hi = result.report["disparity_range_px"]
    assert lo < np.nanmin(truth) + 1 and hi > np.nanmax(truth) - 1
    errors = disparity_errors(result.depth, truth)
    assert errors["bad2"] < 0.25 and errors["mae"] < 1.5


@pytest.fixture(scope="module")
def convergent_pair():
    """Two cameras 0.7 m apart, both looking at a point 6.5 m ahead (turned toward each
    other): grey images, and true matches ``(x1, x2)`` on a grid of left pixels."""
    planes = default_planes()
    target = np.array([0.0, 0.0, 6.5])
    left = Camera(K, look_at(np.zeros(3), target), np.zeros(3), 240, 180)
    centre = np.array([0.7, 0.05, 0.1])
    right = Camera(K, look_at(centre, target), centre, 240, 180)
    (im_l, depth), (im_r, _) = render(planes, left), render(planes, right)
    ys, xs = np.mgrid[10:170:8, 10:230:8]
    x1 = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)
    x2, _ = right.project(backproject(left, x1, depth[ys.ravel(), xs.ravel()]))
    return im_l, im_r, x1, x2


def test_uncalibrated_rectification_aligns_true_correspondences(convergent_pair):
    im_l, im_r, x1, x2 = convergent_pair
    rect = rectify_uncalibrated(im_l, im_r)
    r1 = apply_homography(np.array(rect["H1"]), x1)
    r2 = apply_homography(np.array(rect["H2"]), x2)
    assert np.median(np.abs(r1[:, 1] - r2[:, 1])) < 0.5  # rows agree after rectification
    assert rect["inliers"] >= 30 and rect["row_residual_px"] < 0.5
    lo, hi = rect["disparity_range_px"]
    disparity = r1[:, 0] - r2[:, 0]
    assert lo <= np.percentile(disparity, 2) and np.percentile(disparity, 98) <= hi


def test_uncalibrated_rectification_keeps_the_left_image_whole_and_unstretched(convergent_pair):
    im_l, im_r, _, _ = convergent_pair
    rect = rectify_uncalibrated(im_l, im_r)
    width, height = rect["size"]
    corners = np.array([[0, 0], [240, 0], [240, 180], [0, 180]], float)
    for H in (rect["H1"], rect["H2"]):
        warped = apply_homography(np.array(H), corners)
        sides = np.linalg.norm(warped - np.roll(warped, -1, axis=0), axis=1)
        assert np.all(sides / np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1) > 0.8)
        assert np.all(sides / np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1) < 1.25)
    warped_left = apply_homography(np.array(rect["H1"]), corners)
    assert warped_left.min() > -1e-6
    assert np.all(warped_left.max(axis=0) <= np.array([width, height]) + 1e-6)


def test_uncalibrated_pair_disparities_match_the_truth(convergent_pair):
    im_l, im_r, x1, x2 = convergent_pair
    result = match_uncalibrated(im_l, im_r, StereoConfig(model="census", n_labels=48))
    H1, H2 = np.array(result.rectification["H1"]), np.array(result.rectification["H2"])
    r1, r2 = apply_homography(H1, x1), apply_homography(H2, x2)
    cols, rows = np.rint(r1).astype(int).T
    found = result.depth[rows, cols]
    assert np.mean(np.abs(found - (r1[:, 0] - r2[:, 0])) <= 2) > 0.8
    outside = cv2.warpPerspective(np.ones_like(im_l), H1, tuple(result.rectification["size"])) == 0
    assert outside.any() and np.isnan(result.depth[outside]).all()
    # the same disparities on the input left image's grid
    assert result.disparity_left.shape == im_l.shape
    on_input = result.disparity_left[x1[:, 1].astype(int), x1[:, 0].astype(int)]
    assert np.mean(np.abs(on_input - (r1[:, 0] - r2[:, 0])) <= 2) > 0.8


def test_cli_matches_an_uncalibrated_pair_and_writes_both_grids(tmp_path):
    planes = default_planes()
    target = np.array([0.0, 0.0, 6.5])
    left = Camera(K, look_at(np.zeros(3), target), np.zeros(3), 240, 180)
    centre = np.array([0.7, 0.2, 0.1])  # higher and pitched down: rows not aligned
    right = Camera(K, look_at(centre, target + np.array([0, 0.6, 0])), centre, 240, 180)
    im_l, im_r = render(planes, left)[0], render(planes, right)[0]
    cv2.imwrite(str(tmp_path / "l.png"), im_l)
    cv2.imwrite(str(tmp_path / "r.png"), im_r)
    out = tmp_path / "out"
    args = [str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--model", "census"]
    result = CliRunner().invoke(match_command, [*args, "--labels", "24", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "uncalibrated" and report["rectification"]["method"] == "rotation"
    rect = json.loads((out / "rectification.json").read_text())
    width, height = rect["size"]
    assert np.load(out / "disparity.npy").shape == (height, width)
    assert np.load(out / "disparity_left.npy").shape == im_l.shape
    assert (out / "disparity_left.png").is_file()


def test_sampson_error_of_a_rectified_pair_is_the_row_gap_over_root_two():
    x1 = np.array([[10.0, 5.0], [40.0, 20.0]])
    x2 = np.array([[3.0, 8.0], [70.0, 20.0]])
    np.testing.assert_allclose(sampson_errors(RECTIFIED_F, x1, x2), [-3 / np.sqrt(2), 0.0])


def test_disparities_that_disagree_with_their_neighbours_are_dropped():
    ys, xs = np.mgrid[0:100:10, 0:100:10]
    xy = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)
    disparities = np.full(len(xy), 12.0)
    disparities[37] = 250.0  # a match onto repeated structure along its epipolar line
    kept = consistent_disparities(xy, disparities, long_side=768)
    assert len(kept) == len(xy) - 1 and np.all(kept == 12.0)


def test_forward_motion_cannot_be_rectified():
    planes = default_planes()
    target = np.array([0.0, 0.0, 6.5])
    left = Camera(K, look_at(np.zeros(3), target), np.zeros(3), 240, 180)
    centre = np.array([0.1, 0.0, 1.0])
    right = Camera(K, look_at(centre, target + np.array([0.1, 0, 0])), centre, 240, 180)
    with pytest.raises(StereoError, match="epipole lies inside the image"):
        rectify_uncalibrated(render(planes, left)[0], render(planes, right)[0])


def test_cli_detects_rectified_pairs_and_refuses_mismatched_sizes(tmp_path, rectified_pair):
    im_l, im_r, _ = rectified_pair
    cv2.imwrite(str(tmp_path / "l.png"), im_l)
    cv2.imwrite(str(tmp_path / "r.png"), im_r)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        match_command,
        [
            str(tmp_path / "l.png"),
            str(tmp_path / "r.png"),
            "--model",
            "zncc",
            "--labels",
            "24",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "rectified" and (out / "disparity.npy").is_file()
    assert report["mode_reason"].startswith("no cameras; the ")  # detected, and it says so
    assert "SIFT matches are row-aligned (median |dy| 0." in report["mode_reason"]
    assert not (out / "depth.npy").exists()
    cv2.imwrite(str(tmp_path / "small.png"), im_r[:100])
    bad = CliRunner().invoke(
        match_command, [str(tmp_path / "l.png"), str(tmp_path / "small.png"), "--out", str(out)]
    )
    assert bad.exit_code != 0 and "differ in size" in bad.output


def test_disparity_left_right_check(rectified_pair):
    from stereo.pipeline import disparity_left_right_consistent

    left = np.full((4, 10), 3.0)
    right = np.full((4, 10), 3.0)
    keep = disparity_left_right_consistent(left, right, 1.0, 0.5)
    assert not keep[:, :3].any() and keep[:, 3:].all()  # x − 3 leaves the image for x < 3
    right[:, 5] = 6.0  # the right pixel 5 disagrees: left pixel 8 is rejected
    keep = disparity_left_right_consistent(left, right, 1.0, 0.5)
    assert not keep[:, 8].any() and keep[:, 7].all()
    im_l, im_r, truth = rectified_pair
    cfg = StereoConfig(model="census", n_labels=40, working_size=240, lr_check=True)
    result = match_rectified(im_l, im_r, cfg)
    assert 0 < result.report["lr_rejected_fraction"] < 0.5
    kept = np.isfinite(result.depth)
    assert np.mean(np.abs(result.depth - truth)[kept] <= 2) > 0.85


@pytest.mark.parametrize("cost", ["dsift", "daisy"])
def test_descriptor_baselines_find_the_disparity(rectified_pair, cost):
    im_l, im_r, truth = rectified_pair
    cfg = StereoConfig(model=cost, n_labels=40, working_size=240)
    errors = disparity_errors(match_rectified(im_l, im_r, cfg).depth, truth)
    assert errors["bad2"] < 0.25 and errors["mae"] < 1.5


def test_auto_rectification_falls_back_to_projective_when_rotations_leave_rows_apart(
    convergent_pair, monkeypatch
):
    from stereo.geometry import rectify

    im_l, im_r, _, _ = convergent_pair
    tilted = np.array([[1.0, 0, 0], [0.05, 1, 0], [0, 0, 1]])  # rows drift 5 px per 100 px
    monkeypatch.setitem(rectify.HOMOGRAPHIES, "rotation", lambda *_: (tilted, np.eye(3)))
    rect = rectify_uncalibrated(im_l, im_r, "auto")
    assert rect["method"] == "projective" and rect["row_residual_px"] < 1.5
    with pytest.raises(StereoError, match=r"disagree by \d+\.\d px across rows"):
        rectify_uncalibrated(im_l, im_r, "rotation")


def test_a_rectification_that_would_blow_the_image_up_is_refused():
    matches = np.array([[10.0, 10.0], [100.0, 50.0]])
    steep = np.array([[1.0, 0, 0], [0, 1, 0], [-0.0038, 0, 1]])  # x = 240 → about 2,700
    with pytest.raises(StereoError, match="stretch the left image more than 3×"):
        shifted_onto_canvas(steep, np.eye(3), matches, matches, 240, 180)
    seen_left_of = matches - np.array([5.0, 0.0])  # disparity 5 px
    H1, H2, size = shifted_onto_canvas(np.eye(3), np.eye(3), matches, seen_left_of, 240, 180)
    assert size == (240, 180) and np.allclose(H1, np.eye(3))
    assert np.allclose(apply_homography(H2, seen_left_of), matches)  # median disparity 0
