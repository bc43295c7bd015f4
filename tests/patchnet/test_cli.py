"""The ``stereo-patches`` command line: JSON output, one-line errors."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from stereo.patchnet.cli import cli
from stereo.patchnet.data import PairSet, make_pairs, read_brown


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_score_with_baselines_prints_json(tmp_path, warped_small):
    pairs = make_pairs(warped_small, 200, seed=0).save(tmp_path / "pairs.npz")
    result = _invoke(
        "score",
        "--pairs",
        pairs,
        "--model",
        "siam-l2",
        "--untrained",
        "--baseline",
        "sift",
        "--baseline",
        "ncc",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for block in (report, report["baselines"]["sift"], report["baselines"]["ncc"]):
        assert {"fpr95", "roc_auc", "pr_auc", "n_pairs"} <= set(block)
        assert block["n_pairs"] == 200 and 0 <= block["fpr95"] <= 1
    # the SIFT figure is the library's
    from stereo.patchnet.baselines import sift_scores
    from stereo.patchnet.metrics import fpr95

    loaded = PairSet.load(pairs)
    expected = fpr95(sift_scores(loaded.a, loaded.b), loaded.label)
    assert report["baselines"]["sift"]["fpr95"] == expected


def test_train_then_score_the_weights(tmp_path):
    out = tmp_path / "run"
    result = _invoke(
        "train",
        "siam-l2",
        "--data",
        "warped:150:3",
        "--recipe",
        "contrastive",
        "--steps",
        "12",
        "--set",
        "batch_size=16",
        "--set",
        "log_every=4",
        "--set",
        "val_pairs=60",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    weights = json.loads(result.output[result.output.index("{") :])["weights"]
    pairs = make_pairs(read_or_make(), 100).save(tmp_path / "p.npz")
    scored = _invoke("score", "--pairs", pairs, "--model", weights)
    assert scored.exit_code == 0 and json.loads(scored.output)["model"] == "siam-l2"
    assert (out / "log.jsonl").read_text().count('"loss"') == 3


def read_or_make():
    from stereo.patchnet.data.warped import warped_patch_set

    return warped_patch_set(60, 2, seed=9)


def test_make_pairs_and_convert(tmp_path):
    result = _invoke(
        "make-pairs", "--data", "warped:50:3", "--n", "80", "--out", tmp_path / "p.npz"
    )
    assert result.exit_code == 0 and PairSet.load(tmp_path / "p.npz").label.sum() == 40
    result = _invoke(
        "convert", "--data", "warped:50:3", "--out", tmp_path / "brown", "--pairs", "30"
    )
    assert result.exit_code == 0
    back = read_brown(tmp_path / "brown")
    assert len(back) == 150 and len(list((tmp_path / "brown").glob("m50_*.txt"))) == 1
    result = _invoke("convert", "--data", tmp_path / "brown", "--out", tmp_path / "c.npz")
    assert result.exit_code == 0
    assert np.array_equal(np.load(tmp_path / "c.npz")["patches"], back.patches)


def test_errors_are_one_line(tmp_path):
    cases = [
        ("score", "--pairs", tmp_path / "none.npz", "--model", "2ch"),
        ("score", "--pairs", tmp_path / "none.npz"),
        (
            "train",
            "2ch",
            "--data",
            "warped:40",
            "--recipe",
            "triplet",
            "--steps",
            "2",
            "--out",
            tmp_path / "x",
        ),
        ("train", "2ch", "--data", "warped:40", "--set", "lr", "--out", tmp_path / "y"),
    ]
    for args in cases:
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code != 0
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines[-1].startswith("Error:"), result.output
        assert "Traceback" not in result.output
    bad = CliRunner().invoke(
        cli, ["score", "--pairs", "x.npz", "--model", "2ch", "--baseline", "surf"]
    )
    assert bad.exit_code == 2 and "sift" in bad.output  # click lists the valid choices


def test_models_lists_every_registry_name():
    result = _invoke("models")
    assert result.exit_code == 0
    for name in ("2ch", "2ch-deep", "siam-2stream-l2", "cnn3", "l2net", "cs-l2net"):
        assert f"\n{name} " in "\n" + result.output
