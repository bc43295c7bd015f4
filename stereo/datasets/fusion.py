"""Dense real depth: per-view depth maps of a calibrated scene kept where several views agree.

Each view's depth map (from its own stereo pair) is checked against every other view's: the
3D point of a pixel, projected into view ``j``, must land where ``j``'s map holds that depth
within ``tolerance`` (relative). A depth is kept where at least ``min_views`` views, itself
included, agree — the geometric test of multi-view-stereo fusion. What survives gives dense
real correspondences (every kept pixel and its position in each agreeing view), far beyond the
sparse SIFT tracks of ``stereo-dataset truth``; :func:`real_view_pair` turns two fused views
into the :class:`~stereo.datasets.random_scenes.ViewPair` the stereo window cutter reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from stereo.config import StereoConfig
from stereo.datasets.random_scenes import ViewPair
from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import backproject, depth_agrees
from stereo.geometry.scene import Scene

#: views (the pixel's own included) whose depth maps must agree for a depth to be kept
MIN_VIEWS = 3
#: relative depth difference under which two views agree (1 %)
TOLERANCE = 0.01


def agreeing_views(
    depths: Sequence[np.ndarray],
    cameras: Sequence[Camera],
    view: int,
    tolerance: float = TOLERANCE,
) -> np.ndarray:
    """``(H, W)`` int: for each pixel of ``depths[view]`` with a depth, how many other views'
    depth maps hold its 3D point at their nearest pixel within ``tolerance`` of the depth it
    projects to (0 where the pixel has no depth).

    Args:
        depths: z-depth map of every view, metres (NaN: none), in its camera's pixel grid.
        cameras: the cameras of those grids.
    """
    depth = depths[view]
    ys, xs = np.nonzero(np.isfinite(depth) & (depth > 0))
    points = backproject(cameras[view], np.c_[xs, ys].astype(np.float64), depth[ys, xs])
    count = np.zeros(depth.shape, np.int32)
    for other, (other_depth, camera) in enumerate(zip(depths, cameras, strict=True)):
        if other == view:
            continue
        count[ys, xs] += depth_agrees(points, camera, other_depth, tolerance)
    return count


def fused_depths(
    depths: Sequence[np.ndarray],
    cameras: Sequence[Camera],
    min_views: int = MIN_VIEWS,
    tolerance: float = TOLERANCE,
) -> list[np.ndarray]:
    """Every view's depth map kept only where at least ``min_views`` views agree
    (:func:`agreeing_views` + 1 for the view itself); NaN elsewhere. float32 maps."""
    if len(depths) != len(cameras) or len(depths) < 2:
        raise StereoError("fusion needs a depth map and a camera per view, at least two views")
    if not 2 <= min_views <= len(depths):
        raise StereoError(f"--min-views must lie in [2, {len(depths)}], not {min_views}")
    if not 0 < tolerance < 1:
        raise StereoError(f"--tolerance must lie in (0, 1), not {tolerance}")
    fused = []
    for view, depth in enumerate(depths):
        keep = agreeing_views(depths, cameras, view, tolerance) + 1 >= min_views
        fused.append(np.where(keep, depth, np.nan).astype(np.float32))
    return fused


def truth_agreement(
    fused: np.ndarray, factor: float, truth_xy: np.ndarray, truth_depth: np.ndarray
) -> dict[str, float]:
    """How a fused map agrees with a view's sparse truth: the truth points (full-resolution
    pixels ``(N, 2)``, depths ``(N,)``) that land on a fused pixel (the map is the image
    resized by ``factor``: ``x' = factor · (x + ½) − ½``), their share within 1 % and 2 % of
    the truth's depth, and the median relative error."""
    xy = factor * (truth_xy + 0.5) - 0.5
    col, row = np.rint(xy[:, 0]).astype(int), np.rint(xy[:, 1]).astype(int)
    h, w = fused.shape
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    found = np.full(len(truth_depth), np.nan)
    found[inside] = fused[row[inside], col[inside]]
    covered = np.isfinite(found)
    error = np.abs(found[covered] - truth_depth[covered]) / truth_depth[covered]
    return {
        "truth_points": len(truth_depth),
        "on_fused_pixels": int(covered.sum()),
        "within_1pct": float(np.mean(error <= 0.01)) if covered.any() else float("nan"),
        "within_2pct": float(np.mean(error <= 0.02)) if covered.any() else float("nan"),
        "median_relative_error": float(np.median(error)) if covered.any() else float("nan"),
    }


def real_view_pair(folder: str | Path, reference: str, other: str) -> ViewPair:
    """Two fused views written by ``stereo-dataset dense-truth`` (``folder/STEM.npz``) as a
    :class:`ViewPair`: the working images, their cameras and fused depths (NaN: not kept)."""
    views = []
    for stem in (reference, other):
        path = Path(folder) / f"{stem}.npz"
        if not path.is_file():
            raise StereoError(f"{path} is missing; make it with `stereo-dataset dense-truth`")
        with np.load(path) as data:
            image, depth = data["image"], data["depth"]
            camera = Camera(data["K"], data["R"], data["C"], image.shape[1], image.shape[0])
        views.append((image, camera, depth))
    (a, ca, da), (b, cb, db) = views
    return ViewPair((a, b), (ca, cb), (da, db), rig=f"real {reference}-{other}")


def neighbour(view: int, n_views: int) -> int:
    """The view a view is matched with for its own depth map: the next one (the last view:
    the one before)."""
    return view + 1 if view + 1 < n_views else view - 1


def scene_depth_maps(
    scene: Scene, config: StereoConfig, progress: Callable[[str], None] | None = None
) -> list[tuple[np.ndarray, Camera, np.ndarray]]:
    """Each view's depth map from its pair with :func:`neighbour` (``match_calibrated`` with
    ``config``; the depth range found as for any calibrated pair): ``(depth, camera, image)``
    at the working resolution, one per view."""
    from stereo.pipeline import match_calibrated

    maps = []
    for view in range(len(scene.names)):
        other = neighbour(view, len(scene.names))
        result = match_calibrated(
            scene.image(view), scene.image(other), scene.cameras[view], scene.cameras[other], config
        )
        assert result.camera_working is not None
        maps.append((result.depth_working, result.camera_working, result.reference_working))
        if progress is not None:
            progress(f"{scene.names[view]} with {scene.names[other]}")
    return maps
