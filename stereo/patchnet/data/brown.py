"""The Brown / UBC "Multi-view Stereo Correspondence" patch format (Brown, Hua, Winder 2011).

A dataset folder holds:

* ``patches0000.bmp``, ``patches0001.bmp`` … — 1024×1024 greyscale bitmaps, each a 16×16
  grid of 64×64 patches in row-major order (the last sheet may be partly filled);
* ``info.txt`` — one line per patch: ``3D-point-id  unused``;
* ``m50_N_N_0.txt`` — benchmark pairs, one per line:
  ``patchA pointA unused patchB pointB unused unused``.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from stereo.errors import StereoError
from stereo.patchnet.data.patchset import PairSet, PatchSet

SHEET_SIDE = 1024
PATCH = 64
PER_ROW = SHEET_SIDE // PATCH  # 16
PER_SHEET = PER_ROW * PER_ROW  # 256


def _sheet_paths(root: Path) -> list[Path]:
    sheets = sorted(p for p in root.iterdir() if re.fullmatch(r"patches\d+\.bmp", p.name))
    return sheets


def read_sheet(path: Path) -> np.ndarray:
    """One bitmap sheet → ``(256, 64, 64)`` uint8 patches in row-major order."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise StereoError(f"cannot decode bitmap {path}: the file is corrupt or not an image")
    if image.shape != (SHEET_SIDE, SHEET_SIDE):
        raise StereoError(
            f"bitmap {path} is {image.shape[1]}x{image.shape[0]}, a Brown sheet is "
            f"{SHEET_SIDE}x{SHEET_SIDE}"
        )
    grid = image.reshape(PER_ROW, PATCH, PER_ROW, PATCH).transpose(0, 2, 1, 3)
    return grid.reshape(PER_SHEET, PATCH, PATCH)


def read_info(path: Path) -> np.ndarray:
    """``info.txt`` → ``(N,)`` int64 3D point ids."""
    if not path.is_file():
        raise StereoError(f"{path} is missing; a Brown dataset folder needs info.txt")
    try:
        table = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except ValueError as error:
        raise StereoError(f"cannot parse {path}: {error}") from None
    return table[:, 0]


def read_brown(root: str | Path) -> PatchSet:
    """Read a Brown-format folder into a :class:`PatchSet` (``(N, 64, 64)`` uint8)."""
    root = Path(root)
    if not root.is_dir():
        raise StereoError(f"Brown dataset folder {root} does not exist")
    sheets = _sheet_paths(root)
    if not sheets:
        raise StereoError(f"{root} holds no patchesNNNN.bmp sheets")
    point_ids = read_info(root / "info.txt")
    n = point_ids.size
    capacity = len(sheets) * PER_SHEET
    if n > capacity or n <= capacity - PER_SHEET:
        raise StereoError(
            f"{root / 'info.txt'} lists {n} patches but the {len(sheets)} sheets hold "
            f"{capacity - PER_SHEET + 1}–{capacity}; the folder is incomplete or mixed"
        )
    patches = np.concatenate([read_sheet(p) for p in sheets])[:n]
    return PatchSet(patches, point_ids, {"source": str(root), "format": "brown"})


def read_brown_pairs(
    root: str | Path, patchset: PatchSet | None = None, pair_file: str | None = None
) -> PairSet:
    """Read an ``m50_*.txt`` pair file of a Brown folder as a :class:`PairSet`.

    Args:
        root: the dataset folder.
        patchset: the folder already read (read again if None).
        pair_file: file name; the largest ``m50_*.txt`` if None.
    """
    root = Path(root)
    if pair_file is None:
        candidates = sorted(root.glob("m50_*.txt"), key=lambda p: p.stat().st_size)
        if not candidates:
            raise StereoError(f"{root} holds no m50_*.txt pair file")
        path = candidates[-1]
    else:
        path = root / pair_file
    patchset = patchset if patchset is not None else read_brown(root)
    try:
        table = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as error:
        raise StereoError(f"cannot parse pair file {path}: {error}") from None
    if table.shape[1] < 5:
        raise StereoError(f"{path}: expected 7 columns per line, got {table.shape[1]}")
    a, b = table[:, 0], table[:, 3]
    if max(a.max(), b.max()) >= len(patchset):
        raise StereoError(
            f"{path} names patch {max(a.max(), b.max())}, the set has {len(patchset)}"
        )
    labels = (table[:, 1] == table[:, 4]).astype(np.int64)
    return PairSet(patchset.patches[a], patchset.patches[b], labels)


def write_brown(
    root: str | Path,
    patchset: PatchSet,
    pairs: np.ndarray | None = None,
    pair_file: str | None = None,
) -> Path:
    """Write a :class:`PatchSet` as a Brown-format folder.

    Args:
        root: output folder (created).
        patchset: the patches.
        pairs: optional ``(M, 2)`` patch-index pairs written as an ``m50`` file.
        pair_file: its name (default ``m50_M_M_0.txt``).

    Returns:
        The folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n = len(patchset)
    n_sheets = max(1, -(-n // PER_SHEET))
    padded = np.zeros((n_sheets * PER_SHEET, PATCH, PATCH), np.uint8)
    padded[:n] = patchset.patches
    for s in range(n_sheets):
        block = padded[s * PER_SHEET : (s + 1) * PER_SHEET]
        sheet = block.reshape(PER_ROW, PER_ROW, PATCH, PATCH).transpose(0, 2, 1, 3)
        path = root / f"patches{s:04d}.bmp"
        if not cv2.imwrite(str(path), sheet.reshape(SHEET_SIDE, SHEET_SIDE)):
            raise StereoError(f"cannot write {path}")
    np.savetxt(root / "info.txt", np.c_[patchset.point_ids, np.zeros(n, np.int64)], fmt="%d")
    if pairs is not None:
        pairs = np.asarray(pairs, dtype=np.int64)
        ids = patchset.point_ids
        zeros = np.zeros(len(pairs), np.int64)
        table = np.c_[
            pairs[:, 0], ids[pairs[:, 0]], zeros, pairs[:, 1], ids[pairs[:, 1]], zeros, zeros
        ]
        name = pair_file or f"m50_{len(pairs)}_{len(pairs)}_0.txt"
        np.savetxt(root / name, table, fmt="%d")
    return root
