"""Scoring depth and disparity maps against ground truth.

* :func:`depth_correctness` — correctness@τ: the share of ground-truth points whose depth
  error is at most ``τ × (depth range of the reference view's ground truth)``; a point
  without an estimate (NaN, or outside the map) counts as wrong. Reported over all points and
  over those that project inside the second image (the Strecha protocol of
  ``../shared/data/README.md``).
* :func:`disparity_errors` — Middlebury bad-1, bad-2 and mean absolute error on known pixels.
* Readers: dense depth (``.npy``, ``.pfm``), Middlebury disparity images with their scale,
  Strecha sparse ground truth (``gt_sparse/NNNN.npz``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import backproject

TAUS = (0.01, 0.02, 0.05)


@dataclass
class SparseDepth:
    """Ground-truth depths of points of a reference view: ``xy`` ``(N, 2)`` pixels,
    ``depth`` ``(N,)`` metres (z in the reference camera)."""

    xy: np.ndarray
    depth: np.ndarray


def read_pfm(path: Path) -> np.ndarray:
    """A single-channel PFM image as float32 ``(H, W)`` (top row first)."""
    with path.open("rb") as f:
        header = f.readline().strip()
        if header != b"Pf":
            raise StereoError(f"{path} is not a single-channel PFM file (header {header!r})")
        width, height = (int(v) for v in f.readline().split())
        scale = float(f.readline())
        data = np.fromfile(f, dtype="<f4" if scale < 0 else ">f4", count=width * height)
    if data.size != width * height:
        raise StereoError(f"{path} is truncated")
    return np.flipud(data.reshape(height, width)).astype(np.float32)


def read_depth_map(path: str | Path) -> np.ndarray:
    """A dense depth or disparity map from ``.npy`` or ``.pfm`` (NaN / inf = unknown)."""
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"map {path} does not exist")
    if path.suffix == ".npy":
        data = np.load(path)
    elif path.suffix == ".pfm":
        data = read_pfm(path)
    else:
        raise StereoError(f"{path}: unsupported map format (use .npy or .pfm)")
    if data.ndim != 2:
        raise StereoError(f"{path} holds an array of shape {data.shape}, expected (H, W)")
    data = data.astype(np.float32)
    data[~np.isfinite(data)] = np.nan
    return data


def read_middlebury_disparity(path: str | Path, scale: float) -> np.ndarray:
    """A Middlebury ground-truth disparity image (``disp × scale``, 0 = unknown) in pixels,
    NaN where unknown."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise StereoError(f"cannot read disparity image {path}")
    disparity = image.astype(np.float32) / scale
    disparity[image == 0] = np.nan
    return disparity


def read_sparse_ground_truth(path: str | Path) -> SparseDepth:
    """Strecha sparse ground truth ``gt_sparse/NNNN.npz`` (arrays ``xy``, ``depth``)."""
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"ground truth {path} does not exist")
    with np.load(path) as data:
        if "xy" not in data or "depth" not in data:
            raise StereoError(f"{path} lacks the arrays xy and depth")
        return SparseDepth(data["xy"].astype(np.float64), data["depth"].astype(np.float64))


def sample_map(depth_map: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Values of ``depth_map`` at the nearest pixel of each ``xy`` (NaN outside)."""
    h, w = depth_map.shape
    ix, iy = np.rint(xy[:, 0]).astype(int), np.rint(xy[:, 1]).astype(int)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    out = np.full(len(xy), np.nan)
    out[inside] = depth_map[iy[inside], ix[inside]]
    return out


def depth_correctness(
    depth_map: np.ndarray,
    truth: SparseDepth,
    in_view: np.ndarray | None = None,
    taus: tuple[float, ...] = TAUS,
) -> dict[str, float]:
    """correctness@τ of a depth map ``(H, W)`` against sparse ground truth.

    Args:
        in_view: ``(N,)`` bool, the points that project inside the second image; adds the
            ``*_in_view`` figures.

    Returns:
        ``{"correct@0.01": …, …, "coverage": share of points with an estimate, "n_points"}``
        and, with ``in_view``, the same suffixed ``_in_view``.
    """
    estimate = sample_map(depth_map, truth.xy)
    depth_range = float(truth.depth.max() - truth.depth.min())
    error = np.abs(estimate - truth.depth)
    ok = np.isfinite(error)
    out: dict[str, float] = {
        "n_points": int(truth.depth.size),
        "depth_range": depth_range,
        "coverage": float(ok.mean()),
    }
    masks = {"": np.ones(len(error), bool)}
    if in_view is not None:
        masks["_in_view"] = np.asarray(in_view, bool)
        out["n_points_in_view"] = int(masks["_in_view"].sum())
    for suffix, mask in masks.items():
        for tau in taus:
            good = ok & (error <= tau * depth_range)
            out[f"correct@{tau:g}{suffix}"] = float(good[mask].mean()) if mask.any() else 0.0
    return out


def in_second_view(reference: Camera, other: Camera, truth: SparseDepth) -> np.ndarray:
    """Which ground-truth points project inside the second image (and in front of it)."""
    X = backproject(reference, truth.xy, truth.depth)
    xy, z = other.project(X)
    return (
        (z > 0)
        & (xy[:, 0] >= 0)
        & (xy[:, 0] <= other.width - 1)
        & (xy[:, 1] >= 0)
        & (xy[:, 1] <= other.height - 1)
    )


def dense_truth(depth_map: np.ndarray, step: int = 1) -> SparseDepth:
    """A dense ground-truth map as :class:`SparseDepth` (every ``step``-th known pixel)."""
    ys, xs = np.nonzero(np.isfinite(depth_map))
    keep = slice(None, None, step)
    return SparseDepth(
        np.stack([xs[keep], ys[keep]], axis=1).astype(float),
        depth_map[ys[keep], xs[keep]].astype(float),
    )


def disparity_errors(disparity: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Middlebury figures on pixels with known truth: bad-1 and bad-2 (share with error > 1
    and > 2 px; a missing estimate counts as bad), mean absolute error over estimated ones."""
    if disparity.shape != truth.shape:
        raise StereoError(
            f"disparity map {disparity.shape} and truth {truth.shape} differ in "
            "size; compare maps of the same image"
        )
    known = np.isfinite(truth)
    error = np.abs(disparity - truth)[known]
    have = np.isfinite(error)
    return {
        "bad1": float(np.mean(~have | (error > 1))),
        "bad2": float(np.mean(~have | (error > 2))),
        "mae": float(error[have].mean()) if have.any() else float("nan"),
        "coverage": float(have.mean()),
        "n_pixels": int(known.sum()),
    }
