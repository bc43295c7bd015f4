"""stereo-batch: pairs from a CSV as tasks on a local two-worker Ray instance, one result
folder per pair equal to stereo-match's, a summary with the failures, finished pairs skipped
on a rerun; bad pairs files refused in one line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from stereo.batch import read_pairs
from stereo.cli import batch_command, match_command
from stereo.datasets.synthetic import make_scene
from stereo.errors import StereoError

FAST = ["--model", "zncc", "--labels", "8", "--size", "96", "--optimizer", "wta"]


@pytest.fixture(scope="module")
def scene_root(tmp_path_factory):
    return make_scene(3, width=160, height=120).save(tmp_path_factory.mktemp("batch"))


def _write_csv(path, rows):
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["left", "right", "name"])
        writer.writerows(rows)
    return path


def test_batch_on_two_ray_workers_matches_each_pair_and_lists_failures(scene_root, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (the [distributed] extra)")
    good = [
        [str(scene_root / "images" / "0000.png"), "images/0001.png", ""],
        ["images/0001.png", "images/0002.png", "second"],
    ]
    pairs = _write_csv(scene_root / "pairs.csv", [*good, ["images/0000.png", "gone.png", "bad"]])
    out = tmp_path / "out"
    first = CliRunner().invoke(
        batch_command, [str(pairs), "--out", str(out), *FAST, "--workers", "2"]
    )
    assert first.exit_code == 1 and "1 pair(s) failed (bad)" in first.output
    assert "Traceback" not in first.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    rows = {row["pair"]: row for row in summary["pairs"]}
    assert list(rows) == ["0000-0001", "second", "bad"]  # the CSV's order
    assert "gone.png does not exist" in rows["bad"]["error"]
    assert 0.5 < rows["second"]["coverage"] <= 1 and rows["second"]["model"] == "zncc9"
    assert not (out / "bad").exists()  # nothing half-written
    images = [str(scene_root / "images" / f"000{i}.png") for i in (1, 2)]
    single_out = ["--out", str(tmp_path / "single"), "--quiet"]
    single = CliRunner().invoke(match_command, [*images, *FAST, *single_out])
    assert single.exit_code == 0, single.output
    np.testing.assert_array_equal(
        np.load(out / "second" / "depth.npy"), np.load(tmp_path / "single" / "depth.npy")
    )
    again = CliRunner().invoke(
        batch_command, [str(_write_csv(scene_root / "good.csv", good)), "--out", str(out), *FAST]
    )
    assert again.exit_code == 0, again.output
    counts = json.loads((out / "summary.json").read_text())["counts"]
    assert counts == {"done": 0, "skipped": 2, "failed": 0}
    with (out / "summary.csv").open() as stream:
        assert [r["status"] for r in csv.DictReader(stream)] == ["skipped", "skipped"]


def test_bad_pairs_files_are_refused_in_one_line(tmp_path):
    with pytest.raises(StereoError, match="does not exist"):
        read_pairs(tmp_path / "none.csv", tmp_path)
    (tmp_path / "header.csv").write_text("a,b\nx.png,y.png\n")
    with pytest.raises(StereoError, match="columns left,right"):
        read_pairs(tmp_path / "header.csv", tmp_path)
    (tmp_path / "short.csv").write_text("left,right\nx.png,\n")
    with pytest.raises(StereoError, match="line 2 of the pairs file lacks"):
        read_pairs(tmp_path / "short.csv", tmp_path)
    (tmp_path / "twice.csv").write_text("left,right,name\na.png,b.png,p\nc.png,d.png,p\n")
    with pytest.raises(StereoError, match="names several pairs p"):
        read_pairs(tmp_path / "twice.csv", tmp_path)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00left")
    with pytest.raises(StereoError, match="not a CSV file"):
        read_pairs(tmp_path / "binary.csv", tmp_path)
    tasks = read_pairs(_write_csv(tmp_path / "ok.csv", [["a b.png", "/abs/c.png", ""]]), tmp_path)
    assert tasks[0].name == "a_b-c" and tasks[0].left == tmp_path / "a b.png"
    assert str(tasks[0].right) == "/abs/c.png" and tasks[0].out_dir == tmp_path / "a_b-c"
