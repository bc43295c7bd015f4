"""Camera geometry against direct computation; camera files; scene loading errors."""

from __future__ import annotations

import numpy as np
import pytest

from stereo.datasets.synthetic import look_at, write_camera
from stereo.errors import StereoError
from stereo.geometry.camera import (
    Camera,
    epipolar_distance,
    fundamental_matrix,
    read_camera,
    triangulate,
)
from stereo.geometry.scene import load_scene

K = np.array([[500.0, 0, 319.5], [0, 510.0, 239.5], [0, 0, 1]])


def _cameras():
    c1 = Camera(K, look_at(np.array([0.0, 0, 0]), np.array([0.2, 0, 6])), np.zeros(3), 640, 480)
    c2 = Camera(
        K,
        look_at(np.array([1.0, 0.2, 0.1]), np.array([0, 0, 6])),
        np.array([1.0, 0.2, 0.1]),
        640,
        480,
    )
    return c1, c2


def _points(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform([-2, -1.5, 4], [2, 1.5, 9], (n, 3))


def test_projection_matches_matrix_form():
    cam, _ = _cameras()
    X = _points()
    xy, depth = cam.project(X)
    h = np.c_[X, np.ones(len(X))] @ cam.P.T
    np.testing.assert_allclose(xy, h[:, :2] / h[:, 2:], atol=1e-9)
    np.testing.assert_allclose(depth, h[:, 2], rtol=1e-12)  # K's last row is (0, 0, 1)


def test_fundamental_matrix_annihilates_true_correspondences():
    c1, c2 = _cameras()
    X = _points()
    x1, x2 = c1.project(X)[0], c2.project(X)[0]
    assert epipolar_distance(fundamental_matrix(c1, c2), x1, x2).max() < 1e-6
    assert epipolar_distance(fundamental_matrix(c1, c2), x1, x2[::-1]).max() > 1.0


def test_triangulation_recovers_points():
    c1, c2 = _cameras()
    X = _points()
    obs = np.stack([c1.project(X)[0], c2.project(X)[0]], axis=1)
    P = np.broadcast_to(np.stack([c1.P, c2.P]), (len(X), 2, 3, 4))
    np.testing.assert_allclose(triangulate(P, obs), X, atol=1e-8)


def test_scaled_camera_matches_resized_pixel_grid():
    cam, _ = _cameras()
    X = _points()
    half = cam.scaled(0.5)
    assert (half.width, half.height) == (320, 240)
    # pixel centres at integers: x' = 0.5 (x + 0.5) − 0.5
    np.testing.assert_allclose(half.project(X)[0], 0.5 * (cam.project(X)[0] + 0.5) - 0.5, atol=1e-9)


def test_camera_file_round_trip_and_errors(tmp_path):
    cam, _ = _cameras()
    write_camera(tmp_path / "a.png.camera", cam)
    back = read_camera(tmp_path / "a.png.camera")
    np.testing.assert_allclose(back.P, cam.P, atol=1e-6)
    lines = (tmp_path / "a.png.camera").read_text().splitlines()
    (tmp_path / "short.camera").write_text("\n".join(lines[:8]))
    with pytest.raises(StereoError, match="has 8 rows, expected 9"):
        read_camera(tmp_path / "short.camera")
    (tmp_path / "bad.camera").write_text("\n".join([*lines[:7], "x y z", *lines[8:]]))
    with pytest.raises(StereoError, match="does not parse"):
        read_camera(tmp_path / "bad.camera")
    with pytest.raises(StereoError, match="does not exist"):
        read_camera(tmp_path / "none.camera")


def test_real_strecha_camera_projects_its_sparse_ground_truth(shared_data):
    scene = shared_data / "strecha" / "fountain-P11"
    cam = read_camera(scene / "cameras" / "0005.jpg.camera")
    pts = np.load(scene / "points3d.npz")
    gt = np.load(scene / "gt_sparse" / "0005.npz")
    xy, depth = cam.project(pts["X"][gt["point_id"]])
    assert np.median(np.linalg.norm(xy - gt["xy"], axis=1)) < 1.0
    np.testing.assert_allclose(depth, gt["depth"], rtol=1e-4)


def test_scene_errors(tmp_path):
    import cv2

    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "0000.png"), np.zeros((48, 64), np.uint8))
    with pytest.raises(StereoError, match=r"no camera file for 0000\.png"):
        load_scene(tmp_path)
    (tmp_path / "cameras").mkdir()
    cam, _ = _cameras()
    write_camera(tmp_path / "cameras" / "0000.png.camera", cam)
    scene = load_scene(tmp_path)
    with pytest.raises(StereoError, match="is 64x48 but its camera"):
        scene.image(0)
    with pytest.raises(StereoError, match="does not exist"):
        load_scene(tmp_path / "missing")
