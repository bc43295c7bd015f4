"""The manifest of the shipped weights: one entry per file in ``models/`` with its family,
task, working window, training data, smoothness weight and sha256, checked whenever a shipped
file is loaded (a damaged or swapped file is refused by name).

``stereo-patches manifest`` checks the folder against its manifest; ``--write`` makes the
manifest again after weights were added or retrained (``benchmarks/train_models.py`` does it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from stereo.errors import StereoError
from stereo.io.files import atomic_path
from stereo.io.jsonfile import dumps

MANIFEST_NAME = "manifest.json"
#: training sets of keypoint patches (scale- and orientation-normalised); every other set
#: holds windows cut as the stereo matcher compares them
KEYPOINT_SETS = (
    "castle+oxford",
    "castle-keypoints",
    "castle+synthetic-keypoints",
    "castle+synthetic-keypoints-any-angle",
)
#: side of every shipped network's input, in network pixels
NETWORK_INPUT = 64


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        raise StereoError(f"{path} is not valid JSON; restore it from the package") from None
    return value if isinstance(value, dict) else {}


def manifest_entry(weights: Path, smoothness: dict[str, float]) -> dict[str, Any]:
    """The manifest entry of one weights file, from its model card and the smoothness table.

    ``window``: the side of the image window the network compares, in pixels of the working
    image for stereo weights (network input / ``input_scale``), or ``"keypoint"`` for patches
    normalised by a keypoint's scale and orientation.
    """
    card = _read_json(weights.with_suffix(".json"))
    train_set = str(card.get("data", "?")).split(":")[0]
    task = str(card.get("task") or ("patch" if train_set in KEYPOINT_SETS else "stereo"))
    scale = float(card.get("input_scale", 1.0))
    window: int | str = round(NETWORK_INPUT / scale) if task == "stereo" else "keypoint"
    return {
        "family": str(card.get("model", "?")),
        "task": task,
        "window": window,
        "train_set": train_set,
        "smoothness": smoothness.get(weights.stem),
        "bytes": weights.stat().st_size,
        "sha256": sha256_of(weights),
    }


def build_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of every ``*.pt`` file in ``folder`` (file name → :func:`manifest_entry`)."""
    smoothness = _read_json(folder / "smoothness.json").get("smoothness", {})
    return {
        "about": "shipped weights: family, task (stereo windows or keypoint patches), working "
        "window (px), training set, graph-cut smoothness weight, size and sha256; made by "
        "`stereo-patches manifest --write`, checked when a file is loaded",
        "files": {p.name: manifest_entry(p, smoothness) for p in sorted(folder.glob("*.pt"))},
    }


def write_manifest(folder: Path) -> Path:
    """Write ``folder/manifest.json`` afresh; returns its path."""
    path = folder / MANIFEST_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(dumps(build_manifest(folder)) + "\n")
    return path


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """File name → entry of ``folder``'s manifest (``{}`` when it has none)."""
    files = _read_json(folder / MANIFEST_NAME).get("files", {})
    return files if isinstance(files, dict) else {}


def check_against_manifest(path: Path, folder: Path) -> None:
    """Refuse ``path`` (a file of ``folder``) when the manifest lists it with another sha256.
    Files outside ``folder``, or that it does not list, are not checked."""
    try:
        inside = path.resolve().parent == folder.resolve()
    except OSError:
        return
    entry = read_manifest(folder).get(path.name) if inside else None
    if not entry:
        return
    actual = sha256_of(path)
    if actual != entry.get("sha256"):
        raise StereoError(
            f"shipped weights {path} do not match the manifest (sha256 {actual[:12]}… instead "
            f"of {str(entry.get('sha256'))[:12]}…); reinstall the package or run "
            "`stereo-patches manifest --write` after retraining"
        )


def manifest_problems(folder: Path) -> list[str]:
    """What is wrong between ``folder``'s weights and its manifest (empty: all agree)."""
    listed, actual = read_manifest(folder), build_manifest(folder)["files"]
    problems = [f"{name}: not in the manifest" for name in actual if name not in listed]
    problems += [f"{name}: listed but missing" for name in listed if name not in actual]
    for name in sorted(set(listed) & set(actual)):
        changed = [k for k, v in actual[name].items() if listed[name].get(k) != v]
        if changed:
            problems.append(f"{name}: {', '.join(changed)} differ")
    return problems
