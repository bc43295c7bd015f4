"""Keypoint patches of synthetic scenes: geometry of the predicted keypoints, matching, data."""

from __future__ import annotations

import numpy as np
import pytest

from stereo.datasets.random_scenes import SceneSpec, ViewPair, render_view
from stereo.datasets.synthetic import TexturedPlane
from stereo.datasets.synthetic_keypoints import (
    KeypointSpec,
    correspondences,
    mapped_keypoints,
    pair_keypoint_patches,
    synthetic_keypoint_patches,
)
from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.patchnet.data.warped import sample_photographs

FOCAL, Z = 200.0, 5.0


def wall_pair(second: Camera) -> ViewPair:
    """A fronto-parallel wall at z = 5 seen by a camera at the origin and by ``second``."""
    texture = sample_photographs(("astronaut",))[0]
    wall = TexturedPlane(
        np.array([-5.0, -4.0, Z]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 10, 8, texture
    )
    cams = (Camera(first_K(), np.eye(3), np.zeros(3), 240, 180), second)
    views = [render_view([wall], cam, 2) for cam in cams]
    return ViewPair((views[0][0], views[1][0]), cams, (views[0][1], views[1][1]), "test")


def first_K(focal: float = FOCAL) -> np.ndarray:
    return np.array([[focal, 0, 119.5], [0, focal, 89.5], [0, 0, 1]])


KEYPOINTS = np.array([[60.0, 50.0, 8.0, 30.0], [150.0, 120.0, 12.0, 300.0]])


def test_a_sideways_camera_moves_keypoints_by_the_disparity_and_keeps_size_and_angle():
    baseline = 0.5  # disparity f·B/z = 20 px, to the left in the second view
    pair = wall_pair(Camera(first_K(), np.eye(3), np.array([baseline, 0, 0]), 240, 180))
    predicted, valid = mapped_keypoints(pair, KEYPOINTS)
    assert valid.all()
    expected = KEYPOINTS.copy()
    expected[:, 0] -= FOCAL * baseline / Z
    expected[:, 3] = (expected[:, 3] + 180) % 360 - 180
    np.testing.assert_allclose(predicted, expected, atol=1e-3)


def test_zoom_and_roll_scale_sizes_and_turn_angles():
    roll, zoom = np.radians(90.0), 1.5
    # camera-to-world rotation about the optical axis by +90°: image axes turn by −90°
    R = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    pair = wall_pair(Camera(first_K(zoom * FOCAL), R, np.zeros(3), 240, 180))
    predicted, valid = mapped_keypoints(pair, KEYPOINTS[:1])
    assert valid.all()
    x, y = KEYPOINTS[0, :2] - (119.5, 89.5)
    # world (x, y) in camera 2 = Rᵀ (x, y): (y, −x), then zoomed about the centre
    np.testing.assert_allclose(predicted[0, :2], (119.5 + zoom * y, 89.5 - zoom * x), atol=1e-3)
    assert predicted[0, 2] == pytest.approx(zoom * KEYPOINTS[0, 2], rel=1e-4)
    assert predicted[0, 3] == pytest.approx(30.0 - 90.0, abs=1e-3)


def test_keypoints_off_the_surface_or_hidden_have_no_prediction():
    pair = wall_pair(Camera(first_K(), np.eye(3), np.array([0.5, 0, 0]), 240, 180))
    depths = pair.depths[0].copy()
    depths[:, :100] = np.nan  # nothing there
    hidden = ViewPair(pair.images, pair.cameras, (depths, pair.depths[1]), "test")
    _, valid = mapped_keypoints(hidden, KEYPOINTS)
    assert valid.tolist() == [False, True]
    closer = pair.depths[1].copy()
    closer[100:140, 120:160] = 2.0  # something in front of the second keypoint
    _, valid = mapped_keypoints(
        ViewPair(pair.images, pair.cameras, (pair.depths[0], closer), ""), KEYPOINTS
    )
    assert valid.tolist() == [True, False]


def test_correspondences_keep_tolerances_wrap_angles_and_are_one_to_one():
    spec = KeypointSpec()
    predicted = np.array(
        [[10.0, 10.0, 10.0, 179.0], [10.5, 10.0, 10.0, 179.0], [50.0, 50, 10, 0], [80, 80, 10, 0]]
    )
    found = np.array(
        [
            [10.2, 10.0, 10.5, -178.0],  # both of the first two: the nearer (0) wins
            [50.0, 50.0, 20.0, 0.0],  # one octave too large
            [80.0, 80.0, 10.0, 40.0],  # turned too far
            [50.0, 51.0, 10.0, 5.0],  # the third's match
        ]
    )
    valid = np.array([True, True, True, True])
    assert correspondences(predicted, valid, found, spec).tolist() == [[0, 0], [2, 3]]
    valid[0] = False
    assert correspondences(predicted, valid, found, spec).tolist() == [[1, 0], [2, 3]]
    assert correspondences(predicted, valid, found[:0], spec).shape == (0, 2)
    any_angle = KeypointSpec(max_angle_deg=180.0)  # the turned one matches too
    assert sorted(correspondences(predicted, valid, found, any_angle).tolist()) == [
        [1, 0],
        [2, 3],
        [3, 2],
    ]


@pytest.mark.parametrize("angle", [-1.0, 181.0, float("nan")])
def test_an_orientation_rule_outside_0_to_180_degrees_is_refused(angle):
    with pytest.raises(StereoError, match="max_angle_deg"):
        KeypointSpec(max_angle_deg=angle)


def test_patches_of_a_correspondence_show_the_same_surface():
    pair = wall_pair(Camera(first_K(), np.eye(3), np.array([0.5, 0, 0]), 240, 180))
    found = pair_keypoint_patches(pair, KeypointSpec())
    first, second = (found[k].reshape(len(found[k]), -1).astype(float) for k in ("first", "second"))
    assert len(first) >= 20

    def zncc(a, b):
        a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-9)

    same, other = zncc(first, second), zncc(first, np.roll(second, 1, axis=0))
    assert np.median(same) > 0.9
    assert np.median(same) > np.median(other) + 0.4


def test_generated_sets_are_deterministic_and_pair_views():
    scene = SceneSpec(
        width=160, height=120, supersample=1, min_panels=1, max_panels=2, roll_deg=180
    )
    one = synthetic_keypoint_patches(2, seed=3, scene=scene, progress=False)
    two = synthetic_keypoint_patches(2, seed=3, scene=scene, progress=False)
    assert np.array_equal(one.patches, two.patches) and np.array_equal(one.point_ids, two.point_ids)
    assert one.n_points >= 2
    counts = np.bincount(one.point_ids)
    assert (counts == 2).all()  # two patches a point, from the two views of its pair
    for point in range(one.n_points):
        views = one.view_ids[one.point_ids == point]
        assert views[0] // 2 == views[1] // 2 and views[0] != views[1]


def test_no_pair_is_refused():
    with pytest.raises(StereoError, match="at least one view pair"):
        synthetic_keypoint_patches(0)


def test_command_writes_the_set_and_refuses_bad_arguments(tmp_path):
    from click.testing import CliRunner

    from stereo.datasets.cli import cli
    from stereo.patchnet.data.patchset import PatchSet

    out = tmp_path / "kp.npz"
    args = ["synthetic-keypoints", "--pairs", "2", "--width", "160", "--height", "120"]
    result = CliRunner().invoke(cli, [*args, "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scene = SceneSpec(width=160, height=120, roll_deg=180)
    expected = synthetic_keypoint_patches(2, seed=3, scene=scene, progress=False)
    written = PatchSet.load(out)
    assert np.array_equal(written.patches, expected.patches)
    assert f"({expected.n_points} points)" in result.output
    any_angle = tmp_path / "any.npz"
    result = CliRunner().invoke(
        cli, [*args, "--seed", "3", "--max-angle", "180", "--out", str(any_angle)]
    )
    assert result.exit_code == 0, result.output
    loose = synthetic_keypoint_patches(2, seed=3, scene=scene, spec=KeypointSpec(max_angle_deg=180))
    assert np.array_equal(PatchSet.load(any_angle).patches, loose.patches)
    for bad, message in (
        (["--out", str(tmp_path / "kp.txt")], "give a .npz file name"),
        (["--textures", str(tmp_path / "none"), "--out", str(out)], "does not exist"),
        # spawned workers: the folder is read before they start, so still one line
        (["--workers", "2", "--textures", str(tmp_path / "none"), "--out", str(out)], "not exist"),
    ):
        result = CliRunner().invoke(cli, [*args, *bad])
        assert result.exit_code != 0 and message in result.output
        assert "Traceback" not in result.output
