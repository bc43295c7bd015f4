"""Resolve a data argument of the command line to a patch set.

Accepted forms:

* ``FILE.npz`` — a compact patch set (``patches``, ``point_ids``);
* a folder with ``info.txt`` and ``patches*.bmp`` — Brown / UBC format;
* a folder of sequence folders with ``.png`` strips — HPatches style;
* ``warped:N[:V]`` — ``N`` points × ``V`` views (default 3) cut from scikit-image's sample
  photographs under random warps (the embedded default, needs no download).

Several sources joined with ``+`` are concatenated (their point ids kept distinct).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stereo.errors import StereoError
from stereo.patchnet.data.brown import read_brown
from stereo.patchnet.data.hpatches import read_hpatches
from stereo.patchnet.data.patchset import PatchSet
from stereo.patchnet.data.warped import warped_patch_set


def load_one(spec: str, seed: int = 0) -> PatchSet:
    """One source (see module docstring)."""
    if spec.startswith("warped:"):
        parts = spec.split(":")[1:]
        try:
            n_points = int(parts[0])
            views = int(parts[1]) if len(parts) > 1 else 3
        except (ValueError, IndexError):
            raise StereoError(f"bad source {spec!r}; write warped:N or warped:N:VIEWS") from None
        return warped_patch_set(n_points, views, seed=seed)
    path = Path(spec)
    if path.suffix == ".npz":
        return PatchSet.load(path)
    if path.is_dir():
        if (path / "info.txt").exists():
            return read_brown(path)
        if any(p.is_dir() for p in path.iterdir()):
            return read_hpatches(path)
        raise StereoError(f"{path} is neither a Brown folder (info.txt) nor an HPatches folder")
    raise StereoError(
        f"patch data {spec!r} not found; give a .npz, a Brown or HPatches folder, or warped:N"
    )


def load_patch_source(spec: str, seed: int = 0) -> PatchSet:
    """One or more sources joined with ``+`` (see module docstring)."""
    sets = [load_one(part, seed + i) for i, part in enumerate(spec.split("+")) if part]
    if not sets:
        raise StereoError("no patch data given")
    if len(sets) == 1:
        return sets[0]
    return joined(sets, {"source": spec})


def joined(sets: Sequence[PatchSet], meta: dict) -> PatchSet:
    """``sets`` as one patch set: patches concatenated, point ids (and ``near_of``) shifted so
    that no two sets share a point, views kept apart when every set has them."""
    patches, ids, nears, views, offset, view_offset = [], [], [], [], 0, 0
    for s in sets:
        patches.append(s.patches)
        shift = offset - int(s.point_ids.min())
        ids.append(s.point_ids + shift)
        near = s.near_of if s.near_of is not None else np.full(len(s), -1, np.int64)
        nears.append(np.where(near >= 0, near + shift, -1))
        offset = int(ids[-1].max()) + 1
        if s.view_ids is not None:  # views of different sources stay apart
            views.append(s.view_ids + view_offset)
            view_offset = int(views[-1].max()) + 1
    near_of = np.concatenate(nears) if any(s.near_of is not None for s in sets) else None
    view_ids = np.concatenate(views) if len(views) == len(sets) else None
    return PatchSet(np.concatenate(patches), np.concatenate(ids), meta, near_of, view_ids)
