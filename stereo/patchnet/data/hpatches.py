"""HPatches-style patch sheets (Balntas et al., CVPR 2017).

A dataset folder holds one sub-folder per sequence (``i_*`` illumination, ``v_*``
viewpoint); each has images ``ref.png``, ``e1.png`` … ``t5.png``, each a vertical strip of
``N`` square patches (65×65 in HPatches). Row ``i`` of every image of a sequence shows the
same 3D point. Patches are resampled to 64×64 (area filter) for the Brown-convention models.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from stereo.errors import StereoError
from stereo.patchnet.data.patchset import PATCH_SIZE, PatchSet


def read_strip(path: Path) -> np.ndarray:
    """One patch strip → ``(N, S, S)`` uint8 (``S`` = the strip's width)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise StereoError(f"cannot decode patch sheet {path}: corrupt or not an image")
    h, w = image.shape
    if h % w:
        raise StereoError(f"{path} is {w}x{h}: height is not a multiple of the patch width")
    return image.reshape(h // w, w, w)


def read_hpatches(root: str | Path, sequences: list[str] | None = None) -> PatchSet:
    """Read HPatches-style sequences into a :class:`PatchSet` of 64×64 patches.

    Args:
        root: folder of sequence folders.
        sequences: names to read (default: all).

    Returns:
        Patches of every image of every sequence; the point id of row ``i`` of sequence ``s``
        is unique across sequences. ``meta["sequence"]`` lists the sequence names.
    """
    root = Path(root)
    if not root.is_dir():
        raise StereoError(f"HPatches folder {root} does not exist")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if sequences is not None:
        folders = [root / s for s in sequences]
    patches, point_ids, names = [], [], []
    next_id = 0
    for folder in folders:
        strips = sorted(folder.glob("*.png"))
        if not strips:
            raise StereoError(f"sequence {folder} holds no .png patch sheets")
        data = [read_strip(p) for p in strips]
        n = data[0].shape[0]
        for path, strip in zip(strips, data, strict=True):
            if strip.shape[0] != n:
                raise StereoError(f"{path} has {strip.shape[0]} patches, {strips[0]} has {n}")
            if strip.shape[1] != PATCH_SIZE:
                strip = np.stack(
                    [
                        cv2.resize(p, (PATCH_SIZE, PATCH_SIZE), interpolation=cv2.INTER_AREA)
                        for p in strip
                    ]
                )
            patches.append(strip)
            point_ids.append(next_id + np.arange(n))
        names.append(folder.name)
        next_id += n
    if not patches:
        raise StereoError(f"{root} holds no sequence folders")
    return PatchSet(
        np.concatenate(patches),
        np.concatenate(point_ids),
        {"source": str(root), "format": "hpatches", "sequence": names},
    )
