"""The shipped weights travel with the package: the manifest agrees with models/, a damaged
shipped file is refused by name, and a built wheel runs the demo in a fresh environment
from another folder (no repository on the path)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from setuptools import find_packages

from stereo.config import DEFAULT_MODEL
from stereo.errors import StereoError
from stereo.patchnet.manifest import manifest_problems, read_manifest, write_manifest
from stereo.patchnet.weights import load_model, load_weights_file, models_dir

ROOT = Path(__file__).resolve().parents[1]


def test_manifest_lists_every_shipped_file_with_its_sha256():
    assert manifest_problems(models_dir()) == []
    listed = read_manifest(models_dir())
    assert sorted(listed) == sorted(p.name for p in models_dir().glob("*.pt"))
    stereo_table = json.loads((models_dir() / "stereo_defaults.json").read_text())
    for family, file in stereo_table.items():
        assert listed[file]["task"] == "stereo" and listed[file]["family"] == family
        assert isinstance(listed[file]["window"], int)
    for family, file in json.loads((models_dir() / "defaults.json").read_text()).items():
        assert listed[file]["family"] == family


def _shipped_copy(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the models folder, used as the shipped folder."""
    folder = tmp_path / "models"
    shutil.copytree(models_dir(), folder)
    monkeypatch.setenv("STEREO_MODELS_DIR", str(folder))
    return folder


def test_a_swapped_shipped_file_is_refused_by_its_manifest(tmp_path, monkeypatch):
    folder = _shipped_copy(tmp_path, monkeypatch)
    file = json.loads((folder / "stereo_defaults.json").read_text())["l2net"]
    model = load_weights_file(folder / file)
    with torch.no_grad():
        next(iter(model.parameters())).mul_(1.01)  # a valid archive with other weights
    torch.save({"model": "l2net", "state_dict": model.state_dict(), "format": 1}, folder / file)
    with pytest.raises(StereoError, match="do not match the manifest"):
        load_model(file[: -len(".pt")])
    write_manifest(folder)  # retrained on purpose: the new manifest accepts it
    assert load_model(file[: -len(".pt")]).name == "l2net"


def test_a_file_outside_the_shipped_folder_is_not_checked(tmp_path):
    file = next(models_dir().glob("l2net.*.pt"))
    copy = tmp_path / file.name
    shutil.copy(file, copy)
    assert load_weights_file(copy).name == "l2net"
    assert load_weights_file(str(copy)).name == "l2net"  # a path given as text loads too


def test_pyproject_lists_every_package_of_the_tree():
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("packages = [", 1)[1].split("]", 1)[0]
    listed = {line.strip().strip('",') for line in block.split("\n") if line.strip()}
    assert listed == {*find_packages(str(ROOT), include=["stereo*"]), "stereo.shipped"}


def _fresh_environment(tmp_path: Path) -> tuple[Path, Path]:
    """A new venv (its python, its site-packages) whose only extra path is this
    environment's site-packages (the dependencies), without this environment's editable
    install of the project."""
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, Path(site)


@pytest.mark.skipif(sys.platform == "win32", reason="venv layout of POSIX systems")
def test_the_wheel_runs_the_demo_from_another_folder(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("stereo", "models"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q"]
    wheels = tmp_path / "wheels"
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)]
    subprocess.run(build, check=True, capture_output=True)
    wheel = next(wheels.glob("stereo-*.whl"))
    python, site = _fresh_environment(tmp_path)
    subprocess.run([*pip, "install", "--no-deps", "--target", site, str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(python), "-c", "from stereo.patchnet.weights import models_dir; print(models_dir())"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        check=True,
    ).stdout.strip()
    assert Path(where) == site / "stereo" / "shipped"
    fast = ["--demo", "--labels", "8", "--size", "96", "--optimizer", "wta", "--quiet"]
    run = subprocess.run(
        [str(python), "-c", "from stereo.cli import main; main()", *fast, "--out", "result"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads((elsewhere / "result" / "report.json").read_text())
    assert report["config"]["model"] == DEFAULT_MODEL
    assert (elsewhere / "result" / "depth.npy").is_file()


def test_manifest_command_checks_and_rewrites(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from stereo.patchnet.cli import cli

    folder = _shipped_copy(tmp_path, monkeypatch)
    ok = CliRunner().invoke(cli, ["manifest"])
    assert ok.exit_code == 0 and "match manifest.json" in ok.output
    (folder / "extra.pt").write_bytes((folder / "l2net.castle-fixed-s1.pt").read_bytes())
    bad = CliRunner().invoke(cli, ["manifest"])
    assert bad.exit_code != 0 and "extra.pt: not in the manifest" in bad.output
    assert CliRunner().invoke(cli, ["manifest", "--write"]).exit_code == 0
    assert "extra.pt" in read_manifest(folder)
