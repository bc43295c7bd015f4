"""Bad input, each case of issue 14: a one-line error naming the problem and the fix, a
non-zero exit, and an output folder left as it was (absent when it was new)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from stereo.cli import eval_command, match_command
from stereo.datasets.synthetic import SyntheticScene, default_planes, render, write_camera
from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.io.outputs import OutputFolder

FAST = ["--model", "zncc", "--labels", "8", "--size", "120", "--optimizer", "wta"]


def one_line_error(result, expected: str) -> str:
    """Assert a failed command printed one ``Error:`` line holding ``expected``."""
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and expected in errors[0], result.output
    return errors[0]


@pytest.fixture(scope="module")
def sideways_pair(tmp_path_factory):
    """Two cameras 0.4 m apart side by side (same orientation) over the textured planes:
    ``(root, left, right)`` with cameras in ``root/cameras``."""
    K = np.array([[140.0, 0, 79.5], [0, 140, 59.5], [0, 0, 1]])
    cameras = [Camera(K, np.eye(3), np.array([x, 0.0, 0.0]), 160, 120) for x in (-0.2, 0.2)]
    rendered = [render(default_planes(), cam) for cam in cameras]
    scene = SyntheticScene([r[0] for r in rendered], cameras, [r[1] for r in rendered], [])
    root = scene.save(tmp_path_factory.mktemp("sideways"))
    left, right = sorted((root / "images").iterdir())
    return root, left, right


def _camera_file(tmp_path, camera: Camera, name: str):
    path = tmp_path / f"{name}.camera"
    write_camera(path, camera)
    return str(path)


def _match(args, out):
    return CliRunner().invoke(match_command, [*args, *FAST, "--out", str(out)])


def test_good_pair_runs(sideways_pair, tmp_path):
    _, left, right = sideways_pair
    result = _match([str(left), str(right), "--depth-range", "4", "10"], tmp_path / "ok")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout holds only the JSON report
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert report["mode"] == "calibrated"


def _bad_cameras(good: Camera):
    K, R, C = good.K, good.R, good.C
    singular = K.copy()
    singular[1] = singular[0]
    return {
        "inf in K": (Camera(np.where(K == K[0, 0], np.inf, K), R, C, 160, 120), "finite"),
        "NaN in C": (Camera(K, R, np.array([np.nan, 0, 0]), 160, 120), "finite"),
        "negative focal": (Camera(K * [[-1], [1], [1]], R, C, 160, 120), "positive focal"),
        "singular K": (Camera(singular, R, C, 160, 120), "det K > 0"),
        "reflected R": (Camera(K, np.diag([1.0, 1.0, -1.0]), C, 160, 120), "reflection"),
    }


@pytest.mark.parametrize(
    "case", list(_bad_cameras(Camera(np.eye(3), np.eye(3), np.zeros(3), 1, 1)))
)
def test_impossible_cameras_are_refused(sideways_pair, tmp_path, case):
    root, left, right = sideways_pair
    from stereo.geometry.camera import read_camera

    good = read_camera(root / "cameras" / f"{left.name}.camera")
    camera, expected = _bad_cameras(good)[case]
    args = [str(left), str(right), "--left-camera", _camera_file(tmp_path, camera, "bad")]
    args += ["--right-camera", str(root / "cameras" / f"{right.name}.camera")]
    one_line_error(_match([*args, "--depth-range", "4", "10"], tmp_path / "out"), expected)
    assert not (tmp_path / "out").exists()


def test_cameras_that_do_not_fit_the_pair_are_refused(sideways_pair, tmp_path):
    root, left, right = sideways_pair
    cams = {p: str(root / "cameras" / f"{p.name}.camera") for p in (left, right)}
    same = ["--left-camera", cams[left], "--right-camera", cams[left]]
    swapped = ["--left-camera", cams[right], "--right-camera", cams[left]]
    for extra, expected in ((same, "same centre"), (swapped, "swapped")):
        result = _match([str(left), str(right), *extra, "--depth-range", "4", "10"], tmp_path / "o")
        one_line_error(result, expected)
        assert not (tmp_path / "o").exists()


def test_a_baseline_negligible_against_the_range_is_refused(sideways_pair, tmp_path):
    from stereo.geometry.planesweep import check_sweep_geometry

    root, left, _ = sideways_pair
    from stereo.geometry.camera import read_camera

    cam = read_camera(root / "cameras" / f"{left.name}.camera")
    near = Camera(cam.K, cam.R, cam.C + np.array([1e-4, 0, 0]), cam.width, cam.height)
    with pytest.raises(StereoError, match="moves only"):
        check_sweep_geometry(cam, near, 4.0, 10.0)
    assert check_sweep_geometry(cam, near, 0.01, 10.0) > 1.0  # a near plane makes it visible


def test_truncated_and_corrupt_images_are_refused(sideways_pair, tmp_path):
    root, left, right = sideways_pair
    image = cv2.imread(str(left))
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    png = left.read_bytes()
    cases = {
        "trunc.jpg": (jpeg[: len(jpeg) * 3 // 10], "damaged"),
        "trunc.png": (png[: len(png) // 2], "damaged"),
        "text.png": (b"not an image at all", "not an image"),
        "empty.jpg": (b"", "not an image"),
    }
    for name, (data, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        camera = root / "cameras" / f"{left.name}.camera"
        args = [str(path), str(right), "--left-camera", str(camera)]
        args += ["--right-camera", str(root / "cameras" / f"{right.name}.camera")]
        one_line_error(_match(args, tmp_path / "out"), expected)
        assert not (tmp_path / "out").exists()


def test_an_image_too_large_is_refused_from_its_header(tmp_path):
    from stereo.io.images import read_image

    header = bytearray(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())
    header[16:24] = (60000).to_bytes(4, "big") * 2  # IHDR width and height
    header[29:33] = zlib.crc32(bytes(header[12:29])).to_bytes(4, "big")  # its checksum
    path = tmp_path / "huge.png"
    path.write_bytes(bytes(header))
    with pytest.raises(StereoError, match="megapixels"):
        read_image(path)


def test_labels_and_sizes_that_cannot_work(sideways_pair, tmp_path):
    _, left, right = sideways_pair
    pair = [str(left), str(right), "--depth-range", "4", "10"]
    runner = CliRunner()
    for extra, expected in (
        (["--size", "0"], "--size"),
        (["--size", "-5"], "--size"),
        (["--labels", "1"], "--labels"),
        (["--smoothness", "inf"], "--smoothness"),
        (["--smoothness", "nan"], "--smoothness"),
        (["--mrf-iterations", "0"], "--mrf-iterations"),
        (["--device", "cuda"] if not _has_cuda() else ["--device", "cuda:99"], "cuda"),
        (["--device", "tpu7"], "device"),
    ):
        args = [*pair, "--model", "zncc", *extra, "--out", str(tmp_path / "out")]
        one_line_error(runner.invoke(match_command, args), expected)
    assert not (tmp_path / "out").exists()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_a_volume_that_cannot_fit_is_refused_before_allocation(sideways_pair, tmp_path):
    """--labels 4000 at 2000 px would need ~200 GiB: refused, saying how much, at once."""
    _, left, right = sideways_pair
    big = tmp_path / "big"
    big.mkdir()
    for path in (left, right):  # the pair upscaled 12.5x, cameras scaled with it
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(big / path.name), cv2.resize(image, (2000, 1500)))
    from stereo.geometry.camera import read_camera

    cams = [
        read_camera(path.parent.parent / "cameras" / f"{path.name}.camera")
        for path in (left, right)
    ]
    for path, cam in zip((left, right), cams, strict=True):
        write_camera(big / f"{path.name}.camera", cam.scaled(12.5))
    args = [str(big / left.name), str(big / right.name), "--depth-range", "4", "10"]
    args += ["--model", "zncc", "--labels", "4000", "--size", "2000"]
    line = one_line_error(
        CliRunner().invoke(match_command, [*args, "--out", str(tmp_path / "o")]), "GiB"
    )
    assert "--labels" in line and not (tmp_path / "o").exists()


def test_a_volume_without_information_is_refused(tmp_path):
    """A blank pair with valid cameras: no pixel prefers a depth."""
    from stereo.config import StereoConfig
    from stereo.pipeline import match_calibrated

    K = np.array([[140.0, 0, 79.5], [0, 140, 59.5], [0, 0, 1]])
    cams = [Camera(K, np.eye(3), np.array([x, 0.0, 0.0]), 160, 120) for x in (-0.2, 0.2)]
    blank = np.full((120, 160), 128, np.uint8)
    cfg = StereoConfig(model="zncc", n_labels=8, depth_range=(4.0, 10.0), optimizer="wta")
    with pytest.raises(StereoError, match="carries no information"):
        match_calibrated(blank, blank, *cams, cfg)


# ----- outputs: one unit --------------------------------------------------------------


def test_reruns_need_overwrite_and_leave_nothing_stale(sideways_pair, tmp_path):
    _, left, right = sideways_pair
    out = tmp_path / "out"
    calibrated = [str(left), str(right), "--depth-range", "4", "10"]
    assert _match(calibrated, out).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    assert "depth.npy" in before
    one_line_error(_match(calibrated, out), "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == before
    # a rectified run into the same folder replaces it whole: no stale depth.npy
    rectified = [str(left), str(right), "--rectified", "--disparity-range", "0", "20"]
    result = CliRunner().invoke(
        match_command, [*rectified, *FAST, "--out", str(out), "--overwrite"]
    )
    assert result.exit_code == 0, result.output
    after = {p.name for p in out.iterdir()}
    assert "disparity.npy" in after and "depth.npy" not in after and "points.ply" not in after
    assert not list(tmp_path.glob(".*"))  # no staging or old folder left beside it


def test_a_folder_with_foreign_files_is_never_overwritten(sideways_pair, tmp_path):
    _, left, right = sideways_pair
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    args = [str(left), str(right), "--depth-range", "4", "10", *FAST, "--out", str(out)]
    one_line_error(CliRunner().invoke(match_command, [*args, "--overwrite"]), "did not write")
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_a_second_run_into_a_claimed_folder_is_refused(sideways_pair, tmp_path):
    _, left, right = sideways_pair
    out = tmp_path / "out"
    with OutputFolder(out):  # another run (this process) holds the folder
        command = [sys.executable, "-c", "from stereo.cli import main; main()"]
        args = [str(left), str(right), "--depth-range", "4", "10", *FAST, "--out", str(out)]
        child = subprocess.run([*command, *args], capture_output=True, text=True)
    assert child.returncode == 1 and "another run" in child.stderr, child.stderr
    assert "Traceback" not in child.stderr and not out.exists()


def test_a_stale_claim_of_a_killed_run_is_taken_over(tmp_path):
    out = tmp_path / "out"
    staging = tmp_path / ".out.stereo-writing"
    staging.mkdir()
    (staging / "owner.pid").write_text("999999999")  # no such process
    (staging / "depth.npy").write_bytes(b"half")
    with OutputFolder(out) as folder:
        (folder.staging / "report.json").write_text("{}")
        folder.commit()
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert not staging.exists()


def test_sigterm_leaves_nothing_half_written(tmp_path):
    """SIGTERM in the middle of writing: the staging folder is removed, --out never appears."""
    code = (
        "import os, signal\n"
        "from stereo.errors import exit_on_sigterm\n"
        "from stereo.io.outputs import OutputFolder\n"
        "exit_on_sigterm()\n"
        f"with OutputFolder({str(tmp_path / 'out')!r}) as f:\n"
        "    (f.staging / 'depth.npy').write_bytes(bytes(1000))\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    f.commit()\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert child.returncode == 143 and "Traceback" not in child.stderr, child.stderr
    assert "SIGTERM" in child.stderr and not list(tmp_path.iterdir())


def test_a_full_disk_is_one_line_and_writes_nothing(sideways_pair, tmp_path, monkeypatch):
    import errno

    _, left, right = sideways_pair

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("stereo.io.outputs.write_ply", full)
    out = tmp_path / "out"
    one_line_error(_match([str(left), str(right), "--depth-range", "4", "10"], out), "space")
    assert not list(tmp_path.iterdir())


def test_report_json_stays_valid_json():
    from stereo.io.jsonfile import dumps

    text = dumps({"a": float("nan"), "b": [np.float32(np.inf), 1.5], "c": np.int64(3)})
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": 3}
    assert "NaN" not in text and "Infinity" not in text


# ----- stereo-eval ---------------------------------------------------------------------


@pytest.fixture()
def sparse_truth(tmp_path):
    xy = np.array([[10.0, 10.0], [150.0, 100.0], [80.0, 60.0]])
    path = tmp_path / "gt.npz"
    np.savez(path, xy=xy, depth=np.array([5.0, 6.0, 7.0]))
    return path, xy


def test_eval_refuses_maps_it_cannot_score(tmp_path, sparse_truth):
    gt, xy = sparse_truth
    full = np.full((120, 160), 6.0, np.float32)
    np.save(tmp_path / "full.npy", full)
    np.save(tmp_path / "small.npy", full[::2, ::2])
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "bad.pfm").write_bytes(b"Pf\nten twenty\n-1\n")
    (tmp_path / "short.pfm").write_bytes(b"Pf\n4 4\n-1\n" + bytes(8))
    (tmp_path / "empty.npz").write_bytes(b"")
    np.savez(tmp_path / "nan.npz", xy=xy, depth=np.array([5.0, np.nan, 7.0]))
    np.savez(tmp_path / "none.npz", xy=np.zeros((0, 2)), depth=np.zeros(0))
    np.save(tmp_path / "disp.npy", np.full((120, 160), 12.5, np.float32))
    runner = CliRunner()
    cases = [
        (["small.npy", "--gt-sparse", str(gt)], "not in the truth's pixel grid"),
        (["objects.npy", "--gt-sparse", str(gt)], "does not hold numbers"),
        (["corrupt.npy", "--gt-sparse", str(gt)], "not a numeric .npy"),
        (["bad.pfm", "--gt-sparse", str(gt)], "PFM header is malformed"),
        (["short.pfm", "--gt-sparse", str(gt)], "truncated"),
        (["full.npy", "--gt-sparse", "nan.npz"], "non-finite"),
        (["full.npy", "--gt-sparse", "none.npz"], "N ≥ 1"),
        (["full.npy", "--gt-sparse", "empty.npz"], "cannot read ground truth"),
        (["full.npy", "--gt-disparity", "disp.npy", "--scale", "0"], "--scale"),
        (["full.npy", "--gt-depth", "small.npy"], "compare maps of the same image"),
    ]
    for args, expected in cases:
        named = [str(tmp_path / a) if a.endswith((".npy", ".pfm", ".npz")) else a for a in args]
        one_line_error(runner.invoke(eval_command, named), expected)


def test_eval_reads_disparity_truth_in_every_format(tmp_path):
    truth = np.full((30, 40), 12.5, np.float32)
    truth[0] = np.inf
    estimate = truth.copy()
    estimate[5:10] = 16.0  # 5 rows of 29 known are 3.5 px off
    np.save(tmp_path / "est.npy", estimate)
    np.save(tmp_path / "gt.npy", truth)
    with (tmp_path / "gt.pfm").open("wb") as f:
        f.write(b"Pf\n40 30\n-1\n")
        f.write(np.flipud(truth).astype("<f4").tobytes())
    png = np.where(np.isfinite(truth), truth * 256, 0).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "gt.png"), png)
    runner = CliRunner()
    for name, scale in (("gt.npy", "1"), ("gt.pfm", "1"), ("gt.png", "256")):
        args = [str(tmp_path / "est.npy"), "--gt-disparity", str(tmp_path / name)]
        result = runner.invoke(eval_command, [*args, "--scale", scale])
        assert result.exit_code == 0, (name, result.output)
        scores = json.loads(result.output)
        assert scores["bad2"] == pytest.approx(5 / 29) and scores["n_pixels"] == 29 * 40, name


def test_eval_refuses_a_disparity_result_scored_as_depth(sideways_pair, tmp_path):
    _, left, right = sideways_pair
    out = tmp_path / "out"
    rectified = [str(left), str(right), "--rectified", "--disparity-range", "0", "20"]
    assert _match(rectified, out).exit_code == 0
    np.save(tmp_path / "gt.npy", np.full((120, 160), 6.0, np.float32))
    args = [str(out / "disparity.npy"), "--gt-depth", str(tmp_path / "gt.npy")]
    one_line_error(CliRunner().invoke(eval_command, args), "--gt-disparity")


# ----- patch files and training --------------------------------------------------------


def test_pair_files_with_impossible_labels(tmp_path):
    from stereo.patchnet.data.patchset import PairSet

    a = np.zeros((2, 64, 64), np.uint8)
    for label, expected in (
        (np.array([1, 0.5]), "1 (same 3D point) or 0"),
        (np.array(["1", "0"]), "numbers"),
        (np.array([1, np.nan]), "1 (same 3D point) or 0"),
    ):
        np.savez(tmp_path / "p.npz", a=a, b=a, label=label)
        with pytest.raises(StereoError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            PairSet.load(tmp_path / "p.npz")
    np.savez(tmp_path / "p.npz", a=a[:0], b=a[:0], label=np.zeros(0))
    with pytest.raises(StereoError, match="no pairs"):
        PairSet.load(tmp_path / "p.npz")


def test_training_refuses_zero_steps_and_tiny_data(tmp_path):
    from stereo.patchnet.cli import cli

    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", "siam-l2", "--data", "warped:20:2", "--out", str(out)]
    one_line_error(runner.invoke(cli, [*args, "--steps", "0"]), "at least 1 step")
    assert not list(out.glob("*.pt")) and not list(out.glob("*.json"))
    one_line_error(runner.invoke(cli, [*args, "--device", "cuda:7"]), "cuda")


def test_swapped_or_foreign_cameras_of_a_real_pair_are_refused(shared_data):
    """fountain 0005/0006 at 768 px: its own cameras pass the fit check; swapped, or those of
    other views, leave too few matches on their epipolar lines."""
    from stereo.geometry.matches import camera_matches, check_cameras_fit, working_pair
    from stereo.geometry.scene import load_scene

    scene = load_scene(shared_data / "strecha" / "fountain-P11")
    images = [scene.image(5), scene.image(6)]
    true = [scene.cameras[5], scene.cameras[6]]
    foreign = [scene.cameras[3], scene.cameras[5]]
    for cameras, fits in ((true, True), (true[::-1], False), (foreign, False)):
        (a, b), (ca, cb) = working_pair(images, list(cameras), 768)
        matches = camera_matches(a, b, ca, cb)
        if fits:
            check_cameras_fit(matches)
        else:
            with pytest.raises(StereoError, match="do not fit the images"):
                check_cameras_fit(matches)


@pytest.mark.parametrize(
    ("content", "suffix", "expected"),
    [
        ("n_labels = 'many'\n", ".toml", "n_labels must be int"),
        ("[mrf]\nlambda = 1\n", ".toml", "unknown setting"),
        ("depth_range = [1, 2, 3]\n", ".toml", "two numbers"),
        ("model = \n", ".toml", "cannot be parsed"),
        ('{"config": {"sublabel": "yes"}}', ".json", "sublabel must be bool"),
        ("[1, 2]", ".json", "no table of settings"),
        ("n_labels = 1\n", ".toml", "--labels must lie in"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, content, suffix, expected):
    path = tmp_path / f"run{suffix}"
    path.write_text(content)
    result = CliRunner().invoke(match_command, ["--demo", "--config", str(path)])
    assert result.exit_code != 0
    assert expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
