"""Fuzz: every command on generated malformed inputs.

Each case puts one malformed file (corrupt, truncated, empty, wrong type, wrong shape,
NaN/inf, huge, a pickle that would run code) in one input slot of one command whose other
inputs are valid, and asserts: no traceback, a non-zero exit, one ``Error:`` line, no output
written, and the pickle's payload never ran. The huge inputs also run in a child process
whose peak memory is checked. The number of cases is printed in the README.
"""

from __future__ import annotations

import json
import pickle
import resource
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stereo.cli import eval_command, match_command
from stereo.datasets.cli import cli as dataset_cli
from stereo.datasets.synthetic import make_scene, write_camera
from stereo.patchnet.cli import cli as patches_cli

MARKER = "payload-ran"


class Payload:
    """Unpickling runs ``open(marker, "w")``: the file appears if any reader ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ----- malformed files: name → writer(path of the valid file, dir) → malformed path -----


def _bytes(name: str, data: bytes) -> Callable[[Path, Path], Path]:
    def make(valid: Path, folder: Path) -> Path:
        path = folder / f"{name}{valid.suffix}"
        path.write_bytes(data)
        return path

    return make


def _truncated(fraction: float) -> Callable[[Path, Path], Path]:
    def make(valid: Path, folder: Path) -> Path:
        data = valid.read_bytes()
        path = folder / f"trunc{int(100 * fraction)}{valid.suffix}"
        path.write_bytes(data[: int(len(data) * fraction)])
        return path

    return make


def _flipped(valid: Path, folder: Path) -> Path:
    data = bytearray(valid.read_bytes())
    rng = np.random.default_rng(len(data))
    for i in rng.integers(len(data) // 4, len(data), 64):
        data[i] ^= 0xFF
    path = folder / f"flipped{valid.suffix}"
    path.write_bytes(bytes(data))
    return path


def _directory(valid: Path, folder: Path) -> Path:
    path = folder / f"adir{valid.suffix}"
    path.mkdir()
    return path


def _pickled(valid: Path, folder: Path) -> Path:
    path = folder / f"pickle{valid.suffix}"
    payload = Payload(folder / MARKER)
    if valid.suffix == ".pt":
        torch.save({"model": "siam-l2", "state_dict": {}, "step": 1, "x": payload}, path)
    elif valid.suffix == ".npy":
        np.save(path, np.array([payload], dtype=object), allow_pickle=True)
    elif valid.suffix == ".npz":
        arrays = {k: np.array([payload], dtype=object) for k in _npz_keys(valid)}
        np.savez(path, **arrays)
    else:
        path.write_bytes(pickle.dumps(payload))
    return path


def _npz_keys(valid: Path) -> list[str]:
    with np.load(valid) as data:
        return list(data.files)


def _npz_variant(change: str) -> Callable[[Path, Path], Path]:
    """The valid ``.npz`` with every array NaN-filled / reshaped / emptied / stringified."""

    def make(valid: Path, folder: Path) -> Path:
        with np.load(valid) as data:
            arrays = {k: data[k] for k in data.files if k != "meta"}
        out = {}
        for key, array in arrays.items():
            if change == "nan":
                out[key] = np.full(array.shape, np.nan)
            elif change == "shape":
                out[key] = array.reshape(-1)[: max(1, array.size // 3)]
            elif change == "empty":
                out[key] = array[:0]
            elif change == "strings":
                out[key] = np.full(array.shape[:1], "x")
            elif change == "missing":
                continue
        path = folder / f"{change}.npz"
        np.savez(path, **out)
        return path

    return make


def _npy_variant(change: str) -> Callable[[Path, Path], Path]:
    def make(valid: Path, folder: Path) -> Path:
        array = np.load(valid)
        variants = {
            "nan": np.full(array.shape, np.nan, np.float32),
            "inf": np.full(array.shape, np.inf, np.float32),
            "3d": np.stack([array, array]),
            "1d": array.ravel(),
            "strings": np.full(array.shape, "a"),
            "halfsize": array[::2, ::2],
        }
        path = folder / f"{change}.npy"
        np.save(path, variants[change])
        return path

    return make


def _huge_png(valid: Path, folder: Path) -> Path:
    data = bytearray(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())
    data[16:24] = (60000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path = folder / "huge.png"
    path.write_bytes(bytes(data))
    return path


def _huge_npy(valid: Path, folder: Path) -> Path:
    """A header claiming 100000 × 100000 float64 (80 GB) with no data behind it."""
    path = folder / "huge.npy"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"
    header += " " * (117 - len(header)) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    return path


def _camera_text(text: str) -> Callable[[Path, Path], Path]:
    return _bytes("cam_" + str(abs(hash(text)) % 10**6), text.encode())


FILE_FAULTS: dict[str, Callable[[Path, Path], Path]] = {
    "empty": _bytes("empty", b""),
    "random": _bytes("random", np.random.default_rng(0).bytes(3000)),
    "text": _bytes("text", b"hello, this is not the file you want\n"),
    "truncated": _truncated(0.4),
    "truncated-tiny": _truncated(0.02),
    "flipped": _flipped,
    "directory": _directory,
    "pickle": _pickled,
}
IMAGE_FAULTS = {**FILE_FAULTS, "huge": _huge_png}
# raw .npy data carries no checksum: flipped bytes make other numbers, not a bad file
NPY_FAULTS = {
    **{k: v for k, v in FILE_FAULTS.items() if k != "flipped"},
    "huge": _huge_npy,
    **{f"npy-{c}": _npy_variant(c) for c in ("nan", "inf", "3d", "1d", "strings", "halfsize")},
}
# an estimate may be unknown everywhere (it then scores 0): NaN/inf maps are valid there
ESTIMATE_FAULTS = {k: v for k, v in NPY_FAULTS.items() if k not in ("npy-nan", "npy-inf")}
NPZ_FAULTS = {
    **FILE_FAULTS,
    **{f"npz-{c}": _npz_variant(c) for c in ("nan", "shape", "empty", "strings", "missing")},
}
CAMERA_FAULTS = {
    **FILE_FAULTS,
    "nan": _camera_text("nan 0 1\n0 1 1\n0 0 1\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n0 0 0\n200 150\n"),
    "inf": _camera_text("inf 0 9\n0 inf 9\n0 0 1\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n0 0 0\n200 150\n"),
    "words": _camera_text("a b c\n" * 9),
    "rows": _camera_text("1 0 0\n0 1 0\n0 0 1\n"),
    "not-rotation": _camera_text(
        "100 0 9\n0 100 9\n0 0 1\n0 0 0\n2 0 0\n0 1 0\n0 0 1\n0 0 0\n200 150\n"
    ),
    "huge-numbers": _camera_text(
        "1e308 0 9\n0 1e308 9\n0 0 1\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n1e308 0 0\n200 150\n"
    ),
    "zero-size": _camera_text("100 0 9\n0 100 9\n0 0 1\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n0 0 0\n0 0\n"),
}


# ----- valid inputs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Path]:
    """One valid file of each kind the commands read."""
    from stereo.patchnet.data.warped import warped_patch_set
    from stereo.patchnet.models import build_model
    from stereo.patchnet.weights import save_weights

    root = tmp_path_factory.mktemp("valid")
    scene = make_scene(2, width=160, height=120, baseline=0.5)
    scene_root = scene.save(root / "scene")
    left, right = sorted((scene_root / "images").iterdir())
    patches = warped_patch_set(30, 2, seed=0)
    patches.save(root / "patches.npz")
    from stereo.patchnet.data.patchset import make_pairs

    make_pairs(patches, 40, 0).save(root / "pairs.npz")
    np.save(root / "depth.npy", scene.depths[0].astype(np.float32))
    np.savez(root / "gt.npz", xy=np.array([[5.0, 5.0], [100.0, 80.0]]), depth=np.array([6.0, 7.0]))
    cv2.imwrite(str(root / "disp.png"), np.full((120, 160), 160, np.uint16))
    save_weights(build_model("siam-l2"), root / "w.pt", {})
    (root / "w.json").unlink()
    return {
        "left": left,
        "right": right,
        "camera": scene_root / "cameras" / f"{left.name}.camera",
        "right_camera": scene_root / "cameras" / f"{right.name}.camera",
        "scene": scene_root,
        "patches": root / "patches.npz",
        "pairs": root / "pairs.npz",
        "depth": root / "depth.npy",
        "gt": root / "gt.npz",
        "disp": root / "disp.png",
        "weights": root / "w.pt",
    }


# ----- commands with one slot each: (command, args with {BAD} and {OUT}, valid key, faults) -


def _commands() -> dict[str, tuple]:
    fast = ["--model", "zncc", "--labels", "6", "--size", "100", "--optimizer", "wta"]
    cams = ["--right-camera", "{right_camera}", "--depth-range", "4", "10"]
    short_run = ["--steps", "2", "--out", "{OUT}"]
    return {
        "match-left": (match_command, ["{BAD}", "{right}", *cams, *fast], "left", IMAGE_FAULTS),
        "match-camera": (
            match_command,
            ["{left}", "{right}", "--left-camera", "{BAD}", *cams, *fast],
            "camera",
            CAMERA_FAULTS,
        ),
        "match-weights": (
            match_command,
            ["{left}", "{right}", "--left-camera", "{camera}", *cams, "--model", "{BAD}"],
            "weights",
            FILE_FAULTS,
        ),
        "eval-estimate": (
            eval_command,
            ["{BAD}", "--gt-depth", "{depth}"],
            "depth",
            ESTIMATE_FAULTS,
        ),
        "eval-gt-depth": (eval_command, ["{depth}", "--gt-depth", "{BAD}"], "depth", NPY_FAULTS),
        "eval-gt-sparse": (eval_command, ["{depth}", "--gt-sparse", "{BAD}"], "gt", NPZ_FAULTS),
        "eval-gt-disparity": (
            eval_command,
            ["{depth}", "--gt-disparity", "{BAD}", "--scale", "16"],
            "disp",
            IMAGE_FAULTS,
        ),
        "patches-score": (
            patches_cli,
            ["score", "--pairs", "{BAD}", "--baseline", "ncc"],
            "pairs",
            NPZ_FAULTS,
        ),
        "patches-score-model": (
            patches_cli,
            ["score", "--pairs", "{pairs}", "--model", "{BAD}"],
            "weights",
            FILE_FAULTS,
        ),
        "patches-train": (
            patches_cli,
            ["train", "siam-l2", "--data", "{BAD}", *short_run],
            "patches",
            NPZ_FAULTS,
        ),
        "patches-train-init": (
            patches_cli,
            ["train", "siam-l2", "--data", "{patches}", "--init", "{BAD}", *short_run],
            "weights",
            FILE_FAULTS,
        ),
        "patches-make-pairs": (
            patches_cli,
            ["make-pairs", "--data", "{BAD}", "--n", "10", "--out", "{OUT}/p.npz"],
            "patches",
            NPZ_FAULTS,
        ),
        "dataset-build-camera": (
            dataset_cli,
            ["build", "{BAD}", "--normalise", "fixed", "--pairs", "10", "--out", "{OUT}"],
            "scene/camera",
            CAMERA_FAULTS,
        ),
        "dataset-build-image": (
            dataset_cli,
            ["build", "{BAD}", "--normalise", "fixed", "--pairs", "10", "--out", "{OUT}"],
            "scene/left",
            IMAGE_FAULTS,
        ),
        "dataset-truth-camera": (
            dataset_cli,
            ["truth", "{BAD}", "--out", "{OUT}"],
            "scene/camera",
            CAMERA_FAULTS,
        ),
        "dataset-merge": (
            dataset_cli,
            ["merge", "{OUT}/m.npz", "{patches}", "{BAD}"],
            "patches",
            NPZ_FAULTS,
        ),
    }


def _cases() -> list[tuple[str, str]]:
    return [(command, fault) for command, spec in _commands().items() for fault in spec[3]]


CASES = _cases()


def _scene_with(valid: dict[str, Path], key: str, fault, folder: Path) -> Path:
    """A copy of the valid scene whose ``key`` file (``camera`` or ``left``) is malformed."""
    scene = folder / "scene"
    shutil.copytree(valid["scene"], scene)
    target = scene / valid[key].relative_to(valid["scene"])
    bad = fault(valid[key], folder)
    target.unlink()
    shutil.move(bad, target)
    return scene


def _fill(args: list[str], values: dict[str, str]) -> list[str]:
    return [arg.format(**values) for arg in args]


@pytest.mark.parametrize(("command", "fault"), CASES, ids=[f"{c}:{f}" for c, f in CASES])
def test_malformed_input_is_refused_cleanly(valid, tmp_path, command, fault):
    cli, args, valid_key, faults = _commands()[command]
    if valid_key.startswith("scene/"):  # a copy of the scene with one file replaced
        bad = _scene_with(valid, valid_key.split("/")[1], faults[fault], tmp_path)
    else:
        bad = faults[fault](valid[valid_key], tmp_path)
    out = tmp_path / "out"
    values = {k: str(v) for k, v in valid.items()} | {"BAD": str(bad), "OUT": str(out)}
    filled = _fill(args, values)
    if cli is match_command:
        filled += ["--out", str(out)]
    result = CliRunner().invoke(cli, filled)
    assert result.exit_code not in (0, None), f"{command}:{fault} was accepted: {result.output}"
    assert isinstance(result.exception, SystemExit), f"{command}:{fault}: {result.exception!r}"
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert not (tmp_path / MARKER).exists(), f"{command}:{fault} ran code from a file"
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not [p for p in written if p.suffix in (".npy", ".npz", ".png", ".pt", ".ply")]
    assert not list(tmp_path.glob(".*stereo-writing")), "a half-written staging folder"


def test_huge_inputs_are_refused_in_bounded_memory(valid, tmp_path):
    """A 60000² PNG, an 80-GB .npy header and --labels 4096 at 4000 px, in one child
    process: each refused with one line, and the child's peak memory stays under 1.5 GB."""
    huge_png = _huge_png(valid["left"], tmp_path)
    huge_npy = _huge_npy(valid["depth"], tmp_path)
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((3000, 4000), np.uint8))
    camera = tmp_path / "big.png.camera"
    K = np.array([[3000.0, 0, 1999.5], [0, 3000, 1499.5], [0, 0, 1]])
    from stereo.geometry.camera import Camera

    write_camera(camera, Camera(K, np.eye(3), np.zeros(3), 4000, 3000))
    other = tmp_path / "big2.png"
    cv2.imwrite(str(other), np.zeros((3000, 4000), np.uint8))
    moved = Camera(K, np.eye(3), np.array([1.0, 0, 0]), 4000, 3000)
    write_camera(tmp_path / "big2.png.camera", moved)
    many_labels = ["--depth-range", "4", "10", "--labels", "4096", "--size", "4000"]
    runs = [
        ["match_command", [str(huge_png), str(valid["right"]), "--out", str(tmp_path / "a")]],
        ["eval_command", [str(huge_npy), "--gt-depth", str(valid["depth"])]],
        ["match_command", [str(big), str(other), *many_labels, "--out", str(tmp_path / "b")]],
    ]
    code = (
        "import json, resource, sys\n"
        "from click.testing import CliRunner\n"
        "import stereo.cli\n"
        "out = []\n"
        "for target, args in json.loads(sys.argv[1]):\n"
        "    command = getattr(stereo.cli, target)\n"
        "    r = CliRunner().invoke(command, args)\n"
        "    out.append([r.exit_code, r.output, repr(r.exception)])\n"
        # VmHWM: this program's own peak; ru_maxrss also keeps the parent's at the fork (Linux
        # carries it across exec), so a large pytest process would count as the child's
        "from pathlib import Path\n"
        "status = Path('/proc/self/status')\n"
        "lines = status.read_text().splitlines() if status.exists() else []\n"
        "hwm = [l for l in lines if l.startswith('VmHWM')]\n"
        "peak = int(hwm[0].split()[1]) * 1024 if hwm else "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(json.dumps({'runs': out, 'peak': peak}))\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, json.dumps(runs)], capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.splitlines()[-1])
    for (exit_code, output, exception), expected in zip(
        report["runs"], ("megapixels", "claims", "GiB"), strict=True
    ):
        assert exit_code == 1 and "SystemExit" in exception, output
        assert output.startswith("Error:") and expected in output, output
    assert report["peak"] < 1.5 * 2**30, f"peak memory {report['peak'] / 2**30:.2f} GiB"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


def test_fuzz_case_count_is_in_the_readme():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"{len(CASES)} malformed inputs" in readme, len(CASES)
