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

import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import backproject
from stereo.io.images import image_size

TAUS = (0.01, 0.02, 0.05)
MAX_MAP_PIXELS = 400_000_000  # larger PFM headers are refused before reading


@dataclass
class SparseDepth:
    """Ground-truth depths of points of a reference view: ``xy`` ``(N, 2)`` pixels,
    ``depth`` ``(N,)`` metres (z in the reference camera)."""

    xy: np.ndarray
    depth: np.ndarray


def read_pfm(path: Path) -> np.ndarray:
    """A single-channel PFM image as float32 ``(H, W)`` (top row first).

    Kept here: ``cv2.imread`` reads PFM too but returns None for a damaged file without
    saying why; this reader names the bad header or the truncation and bounds the size."""
    try:
        with path.open("rb") as f:
            header = f.readline().strip()
            if header != b"Pf":
                raise StereoError(
                    f"{path} is not a single-channel PFM file (header {header[:8]!r}, "
                    "expected b'Pf')"
                )
            width, height = (int(v) for v in f.readline().split())
            scale = float(f.readline())
            if width < 1 or height < 1 or width * height > MAX_MAP_PIXELS or scale == 0:
                raise ValueError("bad size or scale")
            data = np.fromfile(f, dtype="<f4" if scale < 0 else ">f4", count=width * height)
    except (ValueError, OSError):
        raise StereoError(
            f"{path}: the PFM header is malformed (needs 'Pf', 'WIDTH HEIGHT', a non-zero "
            "scale); re-export the file"
        ) from None
    if data.size != width * height:
        raise StereoError(f"{path} is truncated: {data.size} of {width * height} values")
    return np.flipud(data.reshape(height, width)).astype(np.float32)


def read_npy(path: Path, max_values: int = MAX_MAP_PIXELS) -> np.ndarray:
    """A numeric ``.npy`` array, read without pickles (an object array is refused) and only
    after its header shows a size under ``max_values`` that the file really holds."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
            header_end = f.tell()
        count = int(np.prod(shape, dtype=np.int64))
        if dtype.kind not in "biuf":
            raise StereoError(f"{path} does not hold numbers (dtype {dtype}); save a float map")
        if count > max_values:
            raise StereoError(
                f"{path} claims {count:,} values, above the limit of {max_values:,}; "
                "it is not a depth or disparity map"
            )
        if path.stat().st_size < header_end + count * dtype.itemsize:
            raise StereoError(f"{path} is truncated: shorter than its header's {shape}")
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError):
        raise StereoError(
            f"cannot read {path}: not a numeric .npy array (corrupt, truncated, or holding "
            "Python objects)"
        ) from None


def read_depth_map(path: str | Path) -> np.ndarray:
    """A dense depth or disparity map from ``.npy`` or ``.pfm`` (NaN / inf = unknown)."""
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"map {path} does not exist")
    if path.suffix == ".npy":
        data = read_npy(path)
    elif path.suffix == ".pfm":
        data = read_pfm(path)
    else:
        raise StereoError(f"{path}: unsupported map format (use .npy or .pfm)")
    if data.ndim != 2 or data.size == 0:
        raise StereoError(f"{path} holds an array of shape {data.shape}, expected (H, W)")
    data = data.astype(np.float32)
    data[~np.isfinite(data)] = np.nan
    return data


def read_disparity_truth(path: str | Path, scale: float = 1.0) -> np.ndarray:
    """Ground-truth disparity in pixels, NaN where unknown: a float map (``.npy``, ``.pfm``:
    non-finite = unknown) or an integer image (PNG/PGM: stored ``disp × scale``, 0 = unknown,
    as Middlebury's and KITTI's), divided by ``scale``."""
    if not (np.isfinite(scale) and scale > 0):
        raise StereoError(f"--scale must be a positive number, not {scale}")
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"disparity truth {path} does not exist")
    if path.suffix in (".npy", ".pfm"):
        disparity = read_depth_map(path) / np.float32(scale)
    else:
        disparity = read_middlebury_disparity(path, scale)
    if not np.isfinite(disparity).any():
        raise StereoError(f"disparity truth {path} has no known pixel")
    return disparity


def read_middlebury_disparity(path: str | Path, scale: float) -> np.ndarray:
    """A Middlebury ground-truth disparity image (``disp × scale``, 0 = unknown) in pixels,
    NaN where unknown."""
    image_size(Path(path))  # refuses what is not an image, or too large, from its header
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None:
        raise StereoError(f"cannot read disparity image {path}")
    if image.ndim != 2:
        raise StereoError(f"disparity image {path} has {image.shape[2]} channels, expected one")
    disparity = image.astype(np.float32) / scale
    disparity[image == 0] = np.nan
    return disparity


def read_sparse_ground_truth(path: str | Path) -> SparseDepth:
    """Strecha sparse ground truth ``gt_sparse/NNNN.npz``: ``xy`` ``(N, 2)`` pixels and
    ``depth`` ``(N,)`` metres, finite and positive, N ≥ 1."""
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"ground truth {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "xy" not in data or "depth" not in data:
                raise StereoError(f"{path} lacks the arrays xy and depth")
            xy, depth = data["xy"].astype(np.float64), data["depth"].astype(np.float64)
    except (ValueError, OSError, EOFError, TypeError, zipfile.BadZipFile):
        raise StereoError(
            f"cannot read ground truth {path}: not an .npz of numeric arrays xy, depth"
        ) from None
    if xy.ndim != 2 or xy.shape[1] != 2 or depth.shape != (len(xy),) or not len(xy):
        raise StereoError(
            f"{path}: xy must be (N, 2) and depth (N,) with N ≥ 1, not {xy.shape} and {depth.shape}"
        )
    bad = int((~np.isfinite(xy).all(axis=1) | ~np.isfinite(depth) | (depth <= 0)).sum())
    if bad:
        raise StereoError(
            f"{path}: {bad} of {len(depth)} points have a non-finite position or a depth "
            "that is not positive; remove them from the truth file"
        )
    return SparseDepth(xy, depth)


def check_truth_fits(
    estimate: np.ndarray, truth: SparseDepth, image_size: tuple[int, int] | None = None
) -> None:
    """Raise unless the estimate lies in the truth's pixel grid: every truth point inside
    the map, and (given the reference camera's ``(width, height)``) the map that size."""
    h, w = estimate.shape
    if image_size is not None and (w, h) != tuple(image_size):
        raise StereoError(
            f"the estimate is {w}x{h} but the reference image is {image_size[0]}x"
            f"{image_size[1]}; score a map of the image's pixel grid (stereo-match's "
            "depth.npy is one)"
        )
    reach = truth.xy.max(axis=0)
    if reach[0] > w - 0.5 or reach[1] > h - 0.5 or truth.xy.min() < -0.5:
        raise StereoError(
            f"ground-truth points reach pixel ({reach[0]:.0f}, {reach[1]:.0f}) but the estimate "
            f"is {w}x{h}: it is not in the truth's pixel grid (a working-resolution map?); "
            "resize it to the image"
        )


def dense_depth_truth(path: str | Path, estimate: np.ndarray) -> SparseDepth:
    """A dense depth truth map (``.npy``/``.pfm``, metres) of the estimate's size."""
    depth = read_depth_map(path)
    if depth.shape != estimate.shape:
        raise StereoError(
            f"the estimate is {estimate.shape[1]}x{estimate.shape[0]} but the truth {path} is "
            f"{depth.shape[1]}x{depth.shape[0]}; compare maps of the same image"
        )
    if np.nanmin(depth, initial=np.inf) <= 0:
        raise StereoError(
            f"depth truth {path} holds values ≤ 0: not metric depth (a disparity map? use "
            "--gt-disparity)"
        )
    truth = dense_truth(depth)
    if not truth.depth.size:
        raise StereoError(f"depth truth {path} has no known pixel")
    return truth


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
