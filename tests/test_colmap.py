"""COLMAP sparse models as camera input: a model written from known cameras (COLMAP's text
format, and pycolmap's binary copy of it) gives back the same cameras and the same depth map
as the Strecha camera files; a distortion model, a missing image or folder are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from stereo.cli import match_command
from stereo.config import StereoConfig
from stereo.datasets.synthetic import make_scene, write_camera
from stereo.errors import StereoError
from stereo.geometry.camera import Camera, read_camera
from stereo.geometry.colmap import read_colmap_pair
from stereo.geometry.matches import percentile_depth_range
from stereo.run import run_match

pycolmap = pytest.importorskip("pycolmap", reason="pycolmap is not installed ([colmap] extra)")


def write_colmap_text(
    folder: Path, names: list[str], cameras: list[Camera], points: np.ndarray, model="PINHOLE"
) -> Path:
    """A COLMAP text model of ``cameras`` (one PINHOLE camera each; COLMAP's pixel centres at
    +½) and world ``points`` ``(N, 3)`` seen by every image."""
    folder.mkdir(parents=True, exist_ok=True)
    camera_lines, image_lines = [], []
    for i, (name, camera) in enumerate(zip(names, cameras, strict=True), start=1):
        K = camera.K
        params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]
        if model == "SIMPLE_RADIAL":
            params = [K[0, 0], K[0, 2] + 0.5, K[1, 2] + 0.5, 0.01]
        text = " ".join(f"{v:.17g}" for v in params)
        camera_lines.append(f"{i} {model} {camera.width} {camera.height} {text}")
        rotation = Rotation.from_matrix(camera.R.T)  # world to camera, made orthonormal
        qx, qy, qz, qw = rotation.as_quat()
        t = -rotation.as_matrix() @ camera.C  # COLMAP's translation of the centre C
        pose = " ".join(f"{v:.17g}" for v in (qw, qx, qy, qz, *t))
        pixels, _ = camera.project(points)
        observations = " ".join(f"{x:.6f} {y:.6f} {j + 1}" for j, (x, y) in enumerate(pixels))
        image_lines += [f"{i} {pose} {i} {name}", observations]
    point_lines = [
        f"{j + 1} {x:.17g} {y:.17g} {z:.17g} 128 128 128 0.5 "
        + " ".join(f"{i} {j}" for i in range(1, len(names) + 1))
        for j, (x, y, z) in enumerate(points)
    ]
    for kind, lines in (("cameras", camera_lines), ("images", image_lines)):
        (folder / f"{kind}.txt").write_text("\n".join(lines) + "\n")
    (folder / "points3D.txt").write_text("\n".join(point_lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    """The embedded demo scene saved in the Strecha layout, plus its COLMAP model (text and
    binary) with 200 surface points of the reference view."""
    scene = make_scene(2, width=160, height=120, baseline=0.6)
    root = scene.save(tmp_path_factory.mktemp("scene"))
    rng = np.random.default_rng(0)
    v, u = rng.integers(5, 115, 200), rng.integers(5, 155, 200)
    depth = scene.depths[0][v, u]
    rays = np.c_[u, v, np.ones_like(u)] @ np.linalg.inv(scene.cameras[0].K).T
    points = (rays * depth[:, None]) @ scene.cameras[0].R.T + scene.cameras[0].C
    names = ["0000.png", "0001.png"]
    cameras = [read_camera(root / "cameras" / f"{name}.camera") for name in names]  # same digits
    text = write_colmap_text(root / "sparse_text", names, cameras, points)
    binary = root / "sparse_bin"
    binary.mkdir()
    pycolmap.Reconstruction(str(text)).write_binary(str(binary))
    return scene, root, text, binary, depth


@pytest.mark.parametrize("model_kind", ["text", "binary"])
def test_cameras_and_depth_range_come_back_from_the_model(scene_files, model_kind):
    scene, root, text, binary, depth = scene_files
    folder = text if model_kind == "text" else binary
    pair = read_colmap_pair(folder, root / "images" / "0000.png", "0001.png")
    for got, want in zip(pair.cameras, scene.cameras, strict=True):
        np.testing.assert_allclose(got.K, want.K, atol=1e-8)
        np.testing.assert_allclose(got.R, want.R, atol=1e-8)
        np.testing.assert_allclose(got.C, want.C, atol=1e-8)
        assert (got.width, got.height) == (want.width, want.height)
    assert pair.n_points == 200
    np.testing.assert_allclose(pair.depth_range, percentile_depth_range(depth), rtol=1e-9)


def test_colmap_cameras_give_the_same_depth_as_the_camera_files(scene_files, tmp_path):
    _, root, text, _, _ = scene_files
    config = StereoConfig(model="zncc", n_labels=8, optimizer="wta", working_size=96)
    left, right = root / "images" / "0000.png", root / "images" / "0001.png"
    from_points = run_match(left, right, config, tmp_path / "points", progress=False, colmap=text)
    assert from_points["cameras"] == f"COLMAP model {text}"
    assert from_points["mode"] == "calibrated" and str(text) in from_points["mode_reason"]
    assert from_points["depth_range_from"].startswith("COLMAP: 200 3D points")
    # the same cameras as Strecha files, to every digit (the quaternion's re-orthonormalised
    # rotation differs from the 9-decimal files by ~1e-9, enough to flip float32 near-ties)
    files = [str(tmp_path / "l.camera"), str(tmp_path / "r.camera")]
    cameras = read_colmap_pair(text, left.name, right.name).cameras
    for file, camera in zip(files, cameras, strict=True):
        write_camera(file, camera, number_format=".17g")
    fixed = StereoConfig(**{**config.__dict__, "depth_range": (4.0, 9.0)})
    run_match(left, right, fixed, tmp_path / "files", *files, progress=False)
    run_match(left, right, fixed, tmp_path / "colmap", progress=False, colmap=text)
    a = np.load(tmp_path / "files" / "depth.npy")
    b = np.load(tmp_path / "colmap" / "depth.npy")
    np.testing.assert_array_equal(b, a)
    assert np.isfinite(a).mean() > 0.5


def test_a_strecha_scene_through_colmap_keeps_its_true_cameras(shared_data, tmp_path):
    """fountain-P11's true cameras and its points seen by views 0 and 1 as a COLMAP model."""
    scene = shared_data / "strecha" / "fountain-P11"
    names = ["0000.jpg", "0001.jpg"]
    cameras = [read_camera(scene / "cameras" / f"{name}.camera") for name in names]
    points = np.load(scene / "points3d.npz")
    seen = [set(points["obs_point"][points["obs_image"] == i]) for i in (0, 1)]
    both = np.array(sorted(seen[0] & seen[1]))
    folder = write_colmap_text(tmp_path / "sparse", names, cameras, points["X"][both])
    pair = read_colmap_pair(folder, *names)
    for got, want in zip(pair.cameras, cameras, strict=True):  # the files' R: orthonormal to 1e-5
        seen_points = points["X"][both]
        shift = np.linalg.norm(got.project(seen_points)[0] - want.project(seen_points)[0], axis=1)
        assert np.max(shift) < 0.05  # pixels of 1536 x 1024
        np.testing.assert_allclose(got.C, want.C, atol=1e-12)
    depths = cameras[0].to_camera(points["X"][both])[:, 2]
    assert pair.n_points == len(both) > 1000
    # the files' rotation is orthonormal to ~1e-5 only: depths agree to 1e-6
    np.testing.assert_allclose(pair.depth_range, percentile_depth_range(depths), rtol=1e-6)


def test_bad_colmap_input_is_refused_in_one_line(scene_files, tmp_path):
    scene, root, text, _, _ = scene_files
    with pytest.raises(StereoError, match="not a COLMAP sparse model: no cameras"):
        read_colmap_pair(tmp_path, "0000.png", "0001.png")
    with pytest.raises(StereoError, match="does not exist"):
        read_colmap_pair(tmp_path / "nowhere", "0000.png", "0001.png")
    with pytest.raises(StereoError, match=r"no image named 'other\.png'"):
        read_colmap_pair(text, "0000.png", "other.png")
    names, cameras = ["0000.png", "0001.png"], scene.cameras
    radial = write_colmap_text(
        tmp_path / "radial", names, cameras, np.zeros((0, 3)), "SIMPLE_RADIAL"
    )
    with pytest.raises(
        StereoError, match=r"SIMPLE_RADIAL, with lens distortion.*image_undistorter"
    ):
        read_colmap_pair(radial, *names)
    left, right = str(root / "images" / "0000.png"), str(root / "images" / "0001.png")
    result = CliRunner().invoke(
        match_command,
        [left, right, "--colmap", str(text), "--rectified", "--out", str(tmp_path / "o")],
    )
    assert result.exit_code != 0
    assert "--colmap gives both cameras" in result.output
    assert "Traceback" not in result.output
