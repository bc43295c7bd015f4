"""End-to-end stereo on rendered scenes with exact depth, a real crop, and the command line."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from stereo.cli import eval_command, match_command
from stereo.config import StereoConfig
from stereo.datasets.synthetic import Camera, default_planes, look_at, make_scene, render
from stereo.evaluation import dense_truth, depth_correctness, in_second_view
from stereo.geometry.matches import camera_matches, estimate_depth_range
from stereo.pipeline import match_calibrated


@pytest.fixture(scope="module")
def small_scene():
    return make_scene(2, width=200, height=150, baseline=0.5)


def test_zncc_graph_cut_recovers_depth_and_lowers_energy(small_scene):
    sc = small_scene
    cfg = StereoConfig(model="zncc", n_labels=24, working_size=200)
    result = match_calibrated(sc.images[0], sc.images[1], sc.cameras[0], sc.cameras[1], cfg)
    truth = dense_truth(sc.depths[0], step=3)
    metrics = depth_correctness(result.depth, truth)
    wta = match_calibrated(
        sc.images[0],
        sc.images[1],
        sc.cameras[0],
        sc.cameras[1],
        StereoConfig(model="zncc", n_labels=24, working_size=200, optimizer="wta"),
    )
    wta_metrics = depth_correctness(wta.depth, truth)
    assert metrics["correct@0.05"] > 0.6  # chance with 24 labels is about 0.1
    assert metrics["correct@0.05"] > wta_metrics["correct@0.05"] + 0.03
    assert result.report["energy_final"] < result.report["energy_wta"]
    assert result.depth.shape == (150, 200) and result.volume.shape == (24, 150, 200)


def test_left_right_check_on_exact_depth_maps(small_scene):
    from stereo.pipeline import depth_left_right_consistent

    sc = small_scene
    depth0, depth1 = sc.depths[0].astype(float), sc.depths[1].astype(float)
    keep = depth_left_right_consistent(depth0, depth1, sc.cameras[0], sc.cameras[1], 0.005)
    visible = in_second_view(sc.cameras[0], sc.cameras[1], dense_truth(sc.depths[0], step=1))
    assert keep.mean() > 0.8 * visible.mean()  # exact maps agree wherever both views see
    wrong = depth0.copy()
    wrong[40:80, 60:120] *= 1.3  # a block 30 % too far fails the check
    bad = depth_left_right_consistent(wrong, depth1, sc.cameras[0], sc.cameras[1], 0.005)
    assert bad[40:80, 60:120].mean() < 0.05 and bad[100:, :].mean() > 0.5 * keep[100:, :].mean()


def test_left_right_check_end_to_end(small_scene):
    sc = small_scene
    cfg = StereoConfig(model="zncc", n_labels=24, working_size=200, lr_check=True)
    result = match_calibrated(sc.images[0], sc.images[1], sc.cameras[0], sc.cameras[1], cfg)
    plain = match_calibrated(
        sc.images[0],
        sc.images[1],
        sc.cameras[0],
        sc.cameras[1],
        StereoConfig(model="zncc", n_labels=24, working_size=200),
    )
    rejected = result.report["lr_rejected_fraction"]
    assert 0 < rejected < 0.5 and "lr_check" in result.report["seconds"]
    assert np.isnan(result.depth).mean() > np.isnan(plain.depth).mean()
    kept = np.isfinite(result.depth)
    error = np.abs(result.depth - sc.depths[0]) / (sc.depths[0].max() - sc.depths[0].min())
    plain_error = np.abs(plain.depth - sc.depths[0]) / (sc.depths[0].max() - sc.depths[0].min())
    assert np.nanmean(error[kept] <= 0.05) >= np.nanmean(
        plain_error[np.isfinite(plain.depth)] <= 0.05
    )


def test_depth_range_estimate_brackets_the_truth(small_scene):
    sc = small_scene
    matches = camera_matches(sc.images[0], sc.images[1], sc.cameras[0], sc.cameras[1])
    lo, hi, n = estimate_depth_range(matches)
    assert n >= 20
    true = sc.depths[0]
    assert lo < np.nanpercentile(true, 5) and hi > np.nanpercentile(true, 95)
    assert hi / lo < 4


def test_forward_motion_with_the_epipole_inside_the_image():
    # the second camera moves 1 m toward the scene: its epipole is near the image centre,
    # where rectification breaks down; the plane sweep needs no rectification
    planes = default_planes()
    K = np.array([[180.0, 0, 99.5], [0, 180, 74.5], [0, 0, 1]])
    target = np.array([0.0, 0.0, 6.5])
    ref = Camera(K, look_at(np.zeros(3), target), np.zeros(3), 200, 150)
    centre = np.array([0.15, 0.05, 1.2])
    other = Camera(K, look_at(centre, target + np.array([0.15, 0.05, 0])), centre, 200, 150)
    epipole, _ = ref.project(other.C[None])
    assert 0 < epipole[0, 0] < 200 and 0 < epipole[0, 1] < 150
    (img_ref, depth_ref), (img_other, _) = render(planes, ref), render(planes, other)
    cfg = StereoConfig(model="zncc", n_labels=32, working_size=200, depth_range=(4.0, 10.0))
    result = match_calibrated(img_ref, img_other, ref, other, cfg)
    truth = dense_truth(depth_ref, step=2)
    in_view = in_second_view(ref, other, truth)
    metrics = depth_correctness(result.depth, truth, in_view)
    # a third of the reference leaves the second view when moving forward; over the points
    # the second camera sees, the sweep is right for most (chance: about 0.1)
    assert 0.5 < in_view.mean() < 0.9
    assert metrics["correct@0.05_in_view"] > 0.65


def test_learned_cost_runs_end_to_end(small_scene):
    sc = small_scene
    cfg = StereoConfig(
        model="siam-l2",
        n_labels=8,
        working_size=96,
        untrained=True,
        depth_range=(4.0, 10.0),
        sublabel=False,
    )
    result = match_calibrated(sc.images[0], sc.images[1], sc.cameras[0], sc.cameras[1], cfg)
    assert result.depth.shape == (150, 200)
    assert result.report["cost"] == "siam-l2"
    assert np.isin(
        result.depth_working[np.isfinite(result.depth_working)], result.depths.astype(np.float32)
    ).all()
    refined = match_calibrated(
        sc.images[0], sc.images[1], sc.cameras[0], sc.cameras[1], replace(cfg, sublabel=True)
    )
    # refinement stays within half a label step (in inverse depth) of the chosen label
    step = (1 / result.depths[0] - 1 / result.depths[-1]) / 7
    known = np.isfinite(refined.depth_working)
    chosen = refined.depths[refined.labels][known]
    shift = np.abs(1 / refined.depth_working[known] - 1 / chosen)
    assert shift.max() <= 0.5 * step + 1e-6 and shift.max() > 0


def test_real_crop_of_fountain(shared_data):
    from stereo.evaluation import in_second_view, read_sparse_ground_truth
    from stereo.geometry.scene import load_scene

    scene = load_scene(shared_data / "strecha" / "fountain-P11")
    cfg = StereoConfig(model="zncc", n_labels=32, working_size=256)
    result = match_calibrated(
        scene.image(5), scene.image(6), scene.cameras[5], scene.cameras[6], cfg
    )
    truth = read_sparse_ground_truth(
        shared_data / "strecha" / "fountain-P11" / "gt_sparse" / "0005.npz"
    )
    in_view = in_second_view(scene.cameras[5], scene.cameras[6], truth)
    metrics = depth_correctness(result.depth, truth, in_view)
    assert metrics["correct@0.05_in_view"] > 0.5


def _write_pair(tmp_path, sc):
    root = sc.save(tmp_path / "scene")
    return sorted((root / "images").iterdir())


def test_cli_writes_every_output_and_evaluates(tmp_path, small_scene):
    left, right = _write_pair(tmp_path, small_scene)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        match_command,
        [
            str(left),
            str(right),
            "--model",
            "census",
            "--labels",
            "16",
            "--size",
            "200",
            "--mrf-cold-start",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("depth.npy", "depth.png", "cost_confidence.png", "report.json", "points.ply"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    for key in (
        "model",
        "n_labels",
        "depth_range_m",
        "working_size",
        "device",
        "seconds",
        "energy_wta",
        "energy_final",
    ):
        assert key in report
    assert report["mrf"]["warm_start"] is False and report["energy_final"] < report["energy_wta"]
    header = (out / "points.ply").read_bytes()[:200].decode("ascii", "replace")
    assert header.startswith("ply") and "element vertex" in header
    depth = np.load(out / "depth.npy")
    assert depth.shape == (150, 200) and depth.dtype == np.float32
    np.save(tmp_path / "gt.npy", small_scene.depths[0].astype(np.float32))
    scored = CliRunner().invoke(
        eval_command, [str(out / "depth.npy"), "--gt-depth", str(tmp_path / "gt.npy")]
    )
    assert scored.exit_code == 0 and json.loads(scored.output)["correct@0.05"] > 0.6
    assert not list(out.glob(".writing-*"))


def test_cli_bad_input_gives_one_line_errors(tmp_path, small_scene):
    left, right = _write_pair(tmp_path, small_scene)
    bad_camera = tmp_path / "bad.camera"
    bad_camera.write_text("1 2 3\n")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = {
        "does not exist": [str(tmp_path / "none.png"), str(right), "--model", "zncc"],
        "has 1 rows": [str(left), str(right), "--left-camera", str(bad_camera)],
        "must be below max": [str(left), str(right), "--depth-range", "5", "3", "--model", "zncc"],
        "unknown model": [str(left), str(right), "--model", "3ch"],
        "cannot write to output folder": [str(left), str(right), "--out", str(blocker / "x")],
        "but not for": [str(tmp_path / "lonely.png"), str(right)],
    }
    import cv2

    cv2.imwrite(str(tmp_path / "lonely.png"), np.zeros((150, 200), np.uint8))
    for expected, args in cases.items():
        out = tmp_path / f"out-{len(expected)}"
        result = CliRunner().invoke(
            match_command,
            [*args, "--labels", "4", "--size", "64"]
            + ([] if "--out" in args else ["--out", str(out)]),
        )
        assert result.exit_code != 0, expected
        last = [line for line in result.output.splitlines() if line.strip()][-1]
        assert last.startswith("Error:") and expected in last, result.output
        assert "Traceback" not in result.output
        if out.exists():
            assert not any(
                p.name.endswith((".npy", ".png", ".json", ".ply")) for p in out.iterdir()
            ), expected


def test_family_names_mean_stereo_weights(tmp_path, monkeypatch):
    """``--model FAMILY`` loads the family's stereo weights; a family without them is refused
    with the name of its keypoint-patch weights (never silently the wrong kind). The refusal
    is checked on a copy of the weights folder whose stereo table lacks l2net."""
    import shutil
    from pathlib import Path

    from stereo.cost.factory import make_cost, stereo_weights_name
    from stereo.errors import StereoError
    from stereo.patchnet.weights import TASK_TABLES, default_weights_table, models_dir

    stereo = default_weights_table("stereo")
    assert stereo_weights_name("l2net") == Path(stereo["l2net"]).stem
    assert stereo_weights_name("zncc") == "zncc"  # not a family: unchanged
    assert stereo_weights_name("l2net.castle+oxford") == "l2net.castle+oxford"
    patch_file = default_weights_table("patch")["l2net"]
    for name in (patch_file, TASK_TABLES["patch"], "manifest.json"):
        shutil.copy(models_dir() / name, tmp_path / name)
    without = {k: v for k, v in stereo.items() if k != "l2net"}
    (tmp_path / TASK_TABLES["stereo"]).write_text(json.dumps(without))
    monkeypatch.setenv("STEREO_MODELS_DIR", str(tmp_path))
    refusal = r"no stereo weights ship for 'l2net'.*l2net\.castle\+oxford"
    with pytest.raises(StereoError, match=refusal):
        make_cost("l2net")
    assert make_cost("l2net", untrained=True).name == "l2net"  # random weights: timing only


def test_every_setting_is_an_option_and_report_config_round_trips(tmp_path):
    """The CLI is built from the configuration's declarations, and a run's report.json holds
    the whole configuration, which ``--config`` reads back to the same value."""
    from dataclasses import asdict

    from stereo.config import config_from_dict, read_config_file
    from stereo.mrf.graphcut import MRFConfig
    from stereo.settings import cli_fields

    flags = {opt for p in match_command.params for opt in (*p.opts, *p.secondary_opts)}
    for cls in (StereoConfig, MRFConfig):
        for _, spec in cli_fields(cls):
            assert spec.flag in flags and (spec.negative is None or spec.negative in flags)
    cfg = StereoConfig(
        model="zncc", n_labels=12, depth_range=(2.0, 9.0), mrf=MRFConfig(smoothness=0.3)
    )
    assert config_from_dict(asdict(cfg)) == cfg
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"config": asdict(cfg), "cost": "zncc9"}))
    assert read_config_file(report) == cfg
    toml = tmp_path / "run.toml"
    toml.write_text('model = "census"\nn_labels = 20\n[mrf]\ntruncation = 2\n')
    assert read_config_file(toml) == StereoConfig(
        model="census", n_labels=20, mrf=MRFConfig(truncation=2)
    )


def test_config_file_reruns_with_overrides(tmp_path):
    runner = CliRunner()
    fast = ["--demo", "--model", "zncc", "--labels", "8", "--size", "96", "--optimizer", "wta"]
    first = runner.invoke(match_command, [*fast, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    again = runner.invoke(
        match_command,
        [
            "--demo",
            "--config",
            str(tmp_path / "a" / "report.json"),
            "--labels",
            "6",
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert again.exit_code == 0, again.output
    a = json.loads((tmp_path / "a" / "report.json").read_text())["config"]
    b = json.loads((tmp_path / "b" / "report.json").read_text())["config"]
    assert b == {**a, "n_labels": 6}  # the file's settings, the given option on top


def test_progress_lines_per_stage_and_quiet(tmp_path):
    """Off a terminal every stage ends with one line on stderr; --quiet silences them; stdout
    stays the JSON report; --version and -h answer."""
    import subprocess
    import sys

    fast = ["--demo", "--model", "zncc", "--labels", "8", "--size", "96", "--optimizer", "wta"]
    command = [sys.executable, "-c", "from stereo.cli import main; main()"]
    run = subprocess.run(
        [*command, *fast, "--out", str(tmp_path / "a")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    stages = [line.split(":")[1].strip() for line in run.stderr.splitlines() if line.endswith(" s")]
    assert stages[:4] == ["geometry", "cost volume", "mrf", "writing"]
    quiet = subprocess.run(
        [*command, *fast, "--quiet", "--out", str(tmp_path / "b")], capture_output=True, text=True
    )
    assert quiet.returncode == 0 and "stereo-match:" not in quiet.stderr
    version = subprocess.run([*command, "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("stereo-match ")
    assert "Usage:" in subprocess.run([*command, "-h"], capture_output=True, text=True).stdout


def test_demo_keeps_its_scene_and_is_scored_again_to_the_same_figures(tmp_path):
    fast = ["--demo", "--model", "zncc", "--labels", "8", "--size", "96", "--optimizer", "wta"]
    out = tmp_path / "demo"
    demo = CliRunner().invoke(match_command, [*fast, "--quiet", "--out", str(out)])
    assert demo.exit_code == 0, demo.output
    printed = {
        line.split(":")[0].strip(): float(line.split(":")[1])
        for line in demo.output.splitlines()
        if line.strip().startswith("correct@")
    }
    assert sorted(p.name for p in (out / "inputs").iterdir()) == ["cameras", "depth", "images"]
    scored = CliRunner().invoke(
        eval_command, [str(out / "depth.npy"), "--gt-depth", str(out / "inputs/depth/0000.npy")]
    )
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.output)
    for key, value in printed.items():
        assert metrics[key] == pytest.approx(value, abs=5e-4)  # printed to 3 decimals
    again = CliRunner().invoke(match_command, [*fast, "--quiet", "--overwrite", "--out", str(out)])
    assert again.exit_code == 0, again.output  # a demo result with inputs/ may be replaced


def test_help_lists_every_option_once_in_its_section():
    text = CliRunner().invoke(match_command, ["-h"]).output
    titles = ["Input and output:", "Matching cost:", "Hypotheses:", "Optimisation and refinement:"]
    where = [text.index(title) for title in [*titles, "Run:"]]
    assert where == sorted(where)
    for param in match_command.params:
        for flag in param.opts:
            if flag.startswith("--"):
                assert text.count(f"{flag} ") + text.count(f"{flag}/") >= 1, flag
    assert where[1] < text.index("--score-stride") < where[2]
    assert where[3] < text.index("--smoothness") < where[4]
