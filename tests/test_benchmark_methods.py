"""The benchmark scripts' method syntax ``NAME[:OPTION]...``."""

from __future__ import annotations

import pytest

from stereo.bench.specs import MethodSpec, parse_method
from stereo.config import StereoConfig


def test_method_options_combine():
    assert parse_method("zncc") == MethodSpec("zncc")
    spec = parse_method("l2net.castle-fixed-s1:wta:flat:bilinear")
    assert spec == MethodSpec("l2net.castle-fixed-s1", "wta", None, False, False)
    assert parse_method("zncc,l2net.castle-fixed:0.4").smoothness == 0.4
    assert parse_method("zncc").precision == "auto"
    assert parse_method("l2net.castle-fixed-s1:float32:1.6").precision == "float32"
    assert not parse_method("zncc:nosub").sublabel and parse_method("zncc").sublabel
    two_channel = parse_method("2ch-deep.x:s3:band2")
    assert (two_channel.score_stride, two_channel.cascade_band) == (3, 2)
    assert two_channel.cascade == "auto" and parse_method("2ch:full").cascade == "none"
    cfg = two_channel.config(n_labels=16)
    assert (cfg.model, cfg.score_stride, cfg.cascade_band, cfg.n_labels) == ("2ch-deep.x", 3, 2, 16)
    assert parse_method("2ch-deep:p2").config().cascade_scale == 0.5
    assert parse_method("2ch-deep:pool2").config().cascade_pool == 2
    assert parse_method("2ch-deep:c2").config().cascade_cycles == 2
    assert parse_method("2ch-deep:cf0").config().cascade_flat_std == 0.0
    assert parse_method("2ch-deep:mrf2").config().mrf.iterations == 2
    assert parse_method("2ch-deep").config().mrf.iterations is None  # the cost's own
    assert parse_method("2ch-deep:ezncc").config().edge_cost == "zncc"
    assert parse_method("2ch-deep:f50").config().cascade_fuse == 0.5
    assert parse_method("2ch-deep:t5").config().cascade_share == 0.05
    assert parse_method("2ch-deep:census:f50").config().cascade == "census"
    assert parse_method("2ch-deep:zncc").config().cascade == "zncc"
    assert parse_method("2ch-deep:zc").config().cascade == "zncc,census"
    assert parse_method("zncc:mt2").config().mrf.threads == 2
    assert parse_method("2ch-deep:ws2").config().window_scale == 2
    assert parse_method("2ch-deep:noedge").config().edge_cost == "none"
    edge = parse_method("2ch-deep:edge:er16:eb30").config()
    assert (edge.edge_cost, edge.edge_radius, edge.edge_blend) == ("census", 16, 0.3)
    assert parse_method("2ch-deep:fs0").config().edge_flat_std == 0.0
    assert parse_method("2ch-deep").config().edge_flat_std == StereoConfig.edge_flat_std
    assert parse_method("census:projective").config().rectification == "projective"
    assert parse_method("census").config().rectification == "auto"


def test_unknown_method_option_exits_with_one_line():
    expected = (
        "not nosub, float32, bfloat16, int8, wta, flat, bilinear, full, zncc, census, zc, edge, "
        "ezncc, noedge, rotation, projective, sN, wsN, bandN, pN, poolN, cN, fN, tN, cfN, erN, "
        "ebN, fsN, mtN, mrfN or a λ"
    )
    with pytest.raises(SystemExit, match=expected):
        parse_method("zncc:fast")
    with pytest.raises(SystemExit, match="option 's' is not"):
        parse_method("2ch:s")
    with pytest.raises(SystemExit, match="p0 is no resize factor"):
        parse_method("2ch:p0")


def test_sgbm_baseline_finds_a_known_shift():
    import cv2
    import numpy as np

    from stereo.bench.middlebury import sgbm_disparity

    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur((rng.random((120, 200)) * 255).astype(np.uint8), (3, 3), 0)
    left, right = texture[:, 40:180], texture[:, 45:185]  # left x matches right x − 5
    disparity = sgbm_disparity(left, right, 0.0, 20.0)
    assert abs(np.nanmedian(disparity[:, 40:]) - 5.0) < 0.25


def test_middlebury_script_checks_every_pair_before_running(tmp_path):
    """A bad pair spec after a good one stops the script before the first pair runs: one
    line, nothing written."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "middlebury.py"
    out = tmp_path / "table"
    pairs = ["castle-P19:0:1", "fountain-P11:5:1"]
    command = [sys.executable, str(script), "--pairs", *pairs, "--out", str(out)]
    child = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert child.returncode != 0
    assert child.stderr.strip() == (
        "error: pair 'fountain-P11:5:1': validation pairs come from castle-P19 only"
    )
    command[command.index("fountain-P11:5:1")] = "synthetic:x"
    child = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert child.returncode != 0
    assert child.stderr.strip() == (
        "error: pair 'synthetic:x': synthetic validation pairs are synthetic:i, i ≥ 0"
    )
    assert not list(tmp_path.iterdir())


def test_middlebury_script_asks_for_castles_truth_before_running(tmp_path):
    """castle-P19 ships no sparse truth: a run with a castle pair stops at once, naming the
    command that makes it, and finds it once made."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from middlebury import check_truth

    data, made = tmp_path / "data", tmp_path / "truth"
    (data / "castle-P19").mkdir(parents=True)
    check_truth(["synthetic:0", "tsukuba"], data, made)  # no castle pair: nothing needed
    with pytest.raises(SystemExit) as stop:
        check_truth(["synthetic:0", "castle-P19:0:1"], data, made)
    assert str(stop.value) == (
        f"error: castle-P19 has no ground truth; make it with `stereo-dataset truth "
        f"{data / 'castle-P19'} --out {made / 'castle-P19'}`"
    )
    (made / "castle-P19").mkdir(parents=True)
    check_truth(["castle-P19:0:1"], data, made)


def test_uncalibrated_script_checks_pairs_and_methods_before_running(tmp_path):
    """A benchmark pair (not castle-P19) or an unknown method option stops the uncalibrated
    benchmark before any pair runs: one line, nothing written."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "uncalibrated.py"
    out = tmp_path / "table"
    base = [sys.executable, str(script), "--out", str(out), "--methods", "census"]
    child = subprocess.run(
        [*base, "--pairs", "castle-P19:0:1", "fountain-P11:5:1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode != 0
    assert child.stderr.strip() == (
        "error: pair 'fountain-P11:5:1': the uncalibrated pairs come from castle-P19 only"
    )
    child = subprocess.run(
        [*base, "census:sideways", "--pairs", "castle-P19:0:1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode != 0 and child.stderr.strip().startswith(
        "error: method 'census:sideways': option 'sideways' is not"
    )
    assert not list(tmp_path.iterdir())


def test_patch_table_refuses_a_split_that_tests_on_a_training_scene(tmp_path):
    """A split whose test scene the training set contains, or an unknown training set,
    stops the patch benchmark before any split runs: one line, nothing written."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "patches.py"
    base = [sys.executable, str(script), "--out", str(tmp_path / "table"), "--splits"]
    good = "castle+synthetic-keypoints:fountain-P11"
    for bad, message in (
        ("castle+synthetic-keypoints:castle-P19", "castle+synthetic-keypoints trained on"),
        ("brown:fountain-P11", "bad split 'brown:fountain-P11'"),
    ):
        child = subprocess.run([*base, good, bad], capture_output=True, text=True, timeout=120)
        assert child.returncode != 0 and message in child.stderr
        assert len(child.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_patch_table_cards_of_tagged_shipped_weights_get_their_heldout_fpr95(tmp_path, monkeypatch):
    """--update-cards finds tagged shipped weights (models/FAMILY.TRAIN.TAG.pt) as the table
    does, and writes each test scene's FPR95 and the pair files; weights under runs/ and
    baselines are left alone."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import patches

    (tmp_path / "models").mkdir()
    for name in ("l2net.castle-keypoints.hard", "l2net.castle-keypoints"):
        (tmp_path / "models" / f"{name}.pt").write_bytes(b"")
        (tmp_path / "models" / f"{name}.json").write_text(json.dumps({"model": "l2net"}))
    monkeypatch.setattr(patches, "ROOT", tmp_path)
    results = {
        "castle-keypoints:fountain-P11": {"fpr95": {"l2net.hard": 0.1234, "sift": 1.7}},
        "castle-keypoints:Herz-Jesu-P8": {"fpr95": {"l2net.hard": 0.4, "l2net": 0.9}},
    }
    patches.update_cards(results, "datasets/patches")
    tagged = json.loads((tmp_path / "models" / "l2net.castle-keypoints.hard.json").read_text())
    assert tagged["heldout_fpr95_percent"] == {"fountain-P11": 0.123, "Herz-Jesu-P8": 0.4}
    assert "datasets/patches" in tagged["heldout_protocol"]
    plain = json.loads((tmp_path / "models" / "l2net.castle-keypoints.json").read_text())
    assert plain["heldout_fpr95_percent"] == {"Herz-Jesu-P8": 0.9}


def test_oxford_cards_get_the_mean_map_of_complete_rows(tmp_path):
    """--update-cards writes a model's per-sequence and mean mAP (the mean over steps, then
    over sequences) and SIFT's of the same results; a model missing a sequence is left out."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from oxford_map import update_cards

    row = lambda values: {"map": dict(zip("23456", values, strict=True))}  # noqa: E731
    summary = {
        "results": {
            "bark": {"net": row([1.0, 0.8, 0.6, 0.4, 0.2]), "sift": row([0.5] * 5)},
            "ubc": {"net": row([0.5] * 5), "sift": row([0.7] * 5), "partial": row([1.0] * 5)},
        }
    }
    for name in ("net", "partial"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"model": "l2net"}))
    update_cards(summary, tmp_path / "table", models=tmp_path)
    card = json.loads((tmp_path / "net.json").read_text())["oxford_map"]
    assert card["per_sequence"] == {"bark": 0.6, "ubc": 0.5}
    assert card["mean"] == 0.55 and card["sift_mean_same_results"] == 0.6
    assert "oxford_map" not in json.loads((tmp_path / "partial.json").read_text())


def test_patch_splits_train_on_the_scene_alone_or_joined_with_synthetic_pairs(
    tmp_path, monkeypatch
):
    """patch_splits' training data: the scene's patches and their file as the card's data
    without synthetic pairs; with them, the generated points joined after the scene's (views
    kept apart), textured from the scene's own images folder."""
    import sys
    from pathlib import Path

    import cv2
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import patch_splits

    from stereo.datasets.random_scenes import SceneSpec
    from stereo.patchnet.data.patchset import PatchSet

    root = tmp_path / "root"
    scene_file = root / "datasets" / "patches" / "scene-P1.npz"
    scene_file.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 255, (4, 64, 64), dtype=np.uint8)
    PatchSet(patches, np.array([0, 0, 1, 1]), {}, view_ids=np.array([0, 1, 0, 1])).save(scene_file)
    images = tmp_path / "shared" / "strecha" / "scene-P1" / "images"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "0000.png"), rng.integers(0, 255, (200, 300), dtype=np.uint8))
    folder = scene_file.parent
    monkeypatch.setattr(patch_splits, "SHARED", tmp_path / "shared")
    small = SceneSpec(width=160, height=120, supersample=1, min_panels=1, max_panels=2)
    monkeypatch.setattr(patch_splits, "KEYPOINT_SCENE", small)

    data, description = patch_splits.training_patches("scene-P1", 0, data_dir=folder)
    assert np.array_equal(data.patches, patches)
    assert description == str(scene_file.resolve())  # outside the repository: as given
    data, description = patch_splits.training_patches("scene-P1", 2, data_dir=folder)
    assert np.array_equal(data.patches[:4], patches) and data.n_points > 2
    assert set(data.view_ids[4:]).isdisjoint({0, 1})
    assert description.endswith("+ 2 synthetic keypoint pairs textured from scene-P1")
    any_angle = patch_splits.KeypointSpec(max_angle_deg=180.0)
    wider, description = patch_splits.training_patches("scene-P1", 2, any_angle, folder)
    assert wider.n_points >= data.n_points  # every match of the 25-degree rule and more
    wide_views = patch_splits.replace(small, max_convergence_deg=60.0)
    _, wide = patch_splits.training_patches("scene-P1", 2, None, folder, wide_views)
    assert wide.endswith("(convergent views up to 60 degrees apart)")
    assert description.endswith("(orientations within 180 degrees)")


def test_patch_failures_count_misses_by_view_gap_and_refuse_a_foreign_pair_file(tmp_path):
    """patch_failures: misses at the threshold per view-gap bin on a hand case; a pair file
    not drawn from its patch set with the given seed is refused by name."""
    import sys
    from pathlib import Path

    import numpy as np
    import pytest

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import patch_failures

    from stereo.errors import StereoError
    from stereo.patchnet.data.patchset import PatchSet, make_pairs

    scores = np.array([5.0, 1.0, 4.0, 0.5, 3.0, 9.0])
    labels = np.array([1, 1, 1, 1, 1, 0])
    gaps = np.array([1, 1, 2, 2, 12, 0])
    rows = patch_failures.missed_by_gap(scores, labels, gaps, threshold=2.0)
    by_gap = {row["gap"]: (row["n"], row["missed"]) for row in rows}
    assert by_gap["1"] == (2, 0.5) and by_gap["2"] == (2, 0.5) and by_gap["11-18"] == (1, 0.0)
    assert by_gap["3"][0] == 0 and np.isnan(by_gap["3"][1])

    rng = np.random.default_rng(0)
    patches = rng.integers(0, 255, (6, 64, 64), dtype=np.uint8)
    points, views = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 3, 1, 2, 0, 4])
    PatchSet(patches, points, {}, view_ids=views).save(tmp_path / "s.npz")
    pairs = make_pairs(PatchSet(patches, points, {}, view_ids=views), 6, seed=1)
    found = patch_failures.pair_view_gaps(tmp_path, "s", pairs, seed=1)
    assert sorted(found[pairs.label == 1].tolist()) == [1, 3, 4]  # 0-3, 1-2, 0-4
    with pytest.raises(StereoError, match="not drawn from its patch set with seed 2"):
        patch_failures.pair_view_gaps(tmp_path, "s", pairs, seed=2)
    PatchSet(patches, points, {}).save(tmp_path / "no-views.npz")
    with pytest.raises(StereoError, match="holds no view ids"):
        patch_failures.pair_view_gaps(tmp_path, "no-views", pairs, seed=1)


def test_patch_splits_keep_each_runs_checkpoint_apart_and_resume_it(
    tmp_path, warped_small, monkeypatch
):
    """patch_splits: a run trains in SCENE/MODEL.TAG/ and its weights and card are copied to
    SCENE/ where patches.py finds them; --resume continues that run's checkpoint."""
    import json
    import sys
    from pathlib import Path

    import pytest
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import patch_splits

    data = tmp_path / "patches"
    data.mkdir()
    warped_small.save(data / "scene-P1.npz")
    short = {
        "batch_size": "32",
        "points_sequential": "16",
        "points_random": "16",
        "log_every": "2",
        "val_pairs": "100",
        "near_negatives": "0",
    }
    calls = []
    real_train = patch_splits.train

    def recorded_train(*args, **kwargs):
        calls.append((args[3], kwargs["resume"]))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(patch_splits, "train", recorded_train)
    plan = patch_splits.SplitPlan("stereo", 2, short, "t", data=data)
    out = tmp_path / "splits"
    (out / "scene-P1").mkdir(parents=True)
    patch_splits.train_scene("scene-P1", ["l2net"], out, plan)
    run = patch_splits.run_folder(out, "scene-P1", "l2net", "t")
    assert run == out / "scene-P1" / "l2net.t"
    first = torch.load(run / "checkpoint.pt", weights_only=True)
    assert first["step"] == 2
    resumed = patch_splits.SplitPlan("stereo", 4, short, "t", data=data, resume=True)
    patch_splits.train_scene("scene-P1", ["l2net"], out, resumed)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4
    card = json.loads((out / "scene-P1" / "l2net.t.scene-P1.json").read_text())
    assert card["steps"] == 4 and (out / "scene-P1" / "l2net.t.scene-P1.pt").is_file()
    assert calls == [(run, False), (run, True)]
    carried = card["train_seconds"] - card["wall_time_s"]  # the first run's seconds
    assert carried == pytest.approx(first["train_seconds"], abs=0.15)
    assert (out / "scene-P1.t.log").read_text().count("scene-P1: l2net done") == 2


def test_synthetic_calibrated_table_means_and_refusals(tmp_path):
    """The held-out calibrated benchmark: its table's means are those of the rows, and a
    negative pair index or an unknown method option stops it before any pair runs."""
    import subprocess
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(benchmarks))
    from synthetic_calibrated import write_table

    def row(a: float, b: float, c: float) -> dict:
        scores = {"correct@0.01": a, "correct@0.02": b, "correct@0.05": c}
        return scores | {"rig": "forward", "seconds": 1}

    summary = {
        "date": "today",
        "hardware": "cpu",
        "labels": 8,
        "results": {"0": {"zncc": row(0.2, 0.4, 0.6)}, "1": {"zncc": row(0.4, 0.6, 0.9)}},
    }
    table = tmp_path / "table.md"
    write_table(summary, table)
    assert "| zncc | 0.300 | 0.500 | 0.750 |" in table.read_text()
    assert "with relief" not in table.read_text()
    write_table(summary | {"relief": True}, table)
    assert "768×512 renders with relief (`--relief`)" in table.read_text()
    script = str(benchmarks / "synthetic_calibrated.py")
    out = tmp_path / "run"
    for arguments, message in (
        (["--pairs", "0", "-1"], "error: pairs are scene indices 0, 1, 2 …"),
        (["--methods", "zncc:bogus"], "error: method 'zncc:bogus': option 'bogus' is not"),
    ):
        command = [sys.executable, script, *arguments, "--out", str(out)]
        child = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert child.returncode != 0 and child.stderr.strip().startswith(message)
    assert not list(tmp_path.glob("run*"))  # nothing written


def test_truth_range_and_the_methods_a_table_averages():
    import numpy as np

    from stereo.bench.results import common_methods
    from stereo.bench.strecha import truth_range

    low, high = truth_range(np.array([[2.0, np.nan], [4.2, 3.0]]))
    assert (low, high) == pytest.approx((2.0 / 1.05, 4.2 * 1.05))
    results = {"a": {"zncc": {}, "census": {}, "net": {}}, "b": {"net": {}, "zncc": {}}}
    assert common_methods(results) == ["zncc", "net"]  # the first pair's order
    assert common_methods({}) == []
