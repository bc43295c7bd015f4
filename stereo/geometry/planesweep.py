"""Plane-sweep geometry: depth hypotheses and the homographies they induce.

Hypotheses are fronto-parallel planes ``z = d`` in the reference camera's frame, spaced
uniformly in inverse depth (uniform in disparity for a lateral baseline).
"""

from __future__ import annotations

import numpy as np

from stereo.errors import StereoError
from stereo.geometry.camera import Camera


def inverse_depth_labels(depth_min: float, depth_max: float, n_labels: int) -> np.ndarray:
    """``n_labels`` depths from ``depth_min`` to ``depth_max`` (metres), uniform in 1/depth,
    nearest first."""
    if not (np.isfinite(depth_min) and np.isfinite(depth_max)) or depth_min <= 0:
        raise StereoError(f"depth range {depth_min}–{depth_max} must be positive and finite")
    if depth_min >= depth_max:
        raise StereoError(
            f"depth range min {depth_min} must be below max {depth_max}; "
            "swap them or widen the range"
        )
    if n_labels < 2:
        raise StereoError(f"need at least 2 depth labels, got {n_labels}")
    return 1.0 / np.linspace(1.0 / depth_min, 1.0 / depth_max, n_labels)


def plane_homography(reference: Camera, other: Camera, depth: float) -> np.ndarray:
    """3×3 map from reference pixels to ``other`` pixels for the plane ``z = depth`` of the
    reference camera: ``H = K₂ (R + t nᵀ / d) K₁⁻¹`` with ``R = R₂ᵀ R₁``,
    ``t = R₂ᵀ (C₁ − C₂)``, ``n = (0, 0, 1)``."""
    R = other.R.T @ reference.R
    t = other.R.T @ (reference.C - other.C)
    n = np.array([0.0, 0.0, 1.0])
    return other.K @ (R + np.outer(t, n) / depth) @ np.linalg.inv(reference.K)


def plane_homographies(reference: Camera, other: Camera, depths: np.ndarray) -> np.ndarray:
    """``(L, 3, 3)`` homographies of every depth label."""
    return np.stack([plane_homography(reference, other, d) for d in depths])


def backproject(camera: Camera, xy: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """World points ``(N, 3)`` of pixels ``(N, 2)`` at z-depths ``(N,)`` of ``camera``."""
    rays = np.c_[xy, np.ones(len(xy))] @ np.linalg.inv(camera.K).T
    return (rays * np.asarray(depth)[:, None]) @ camera.R.T + camera.C


def depth_agrees(
    points: np.ndarray,
    camera: Camera,
    depth_map: np.ndarray,
    tolerance: float,
    margin: float = 0.0,
) -> np.ndarray:
    """``(N,)`` bool: whether each world point ``(N, 3)``, projected by ``camera``, lands
    inside ``depth_map`` (``(H, W)`` z-depths of that camera, metres, NaN = none; at least
    ``margin`` pixels in when ``margin > 0``) where the nearest pixel holds its depth within
    ``tolerance`` (relative): the point is what that view sees there, not hidden behind
    something else."""
    seen, z = camera.project(points)
    h, w = depth_map.shape
    with np.errstate(invalid="ignore"):
        col, row = np.rint(seen[:, 0]), np.rint(seen[:, 1])
        inside = (z > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        if margin > 0:
            inside &= (seen[:, 0] >= margin) & (seen[:, 1] >= margin)
            inside &= (seen[:, 0] < w - margin) & (seen[:, 1] < h - margin)
    found = np.full(len(z), np.nan)
    found[inside] = depth_map[row[inside].astype(int), col[inside].astype(int)]
    with np.errstate(invalid="ignore"):
        return np.abs(found - z) <= tolerance * z


def sweep_parallax(reference: Camera, other: Camera, depth_min: float, depth_max: float) -> float:
    """Largest shift, in ``other``'s pixels, between where a reference pixel lands at
    ``depth_min`` and at ``depth_max`` (over a 5 × 5 grid of the reference image, points in
    front of ``other`` only; 0 when none is): how far the sweep moves across its range."""
    xs = np.linspace(0, reference.width - 1, 5)
    ys = np.linspace(0, reference.height - 1, 5)
    xy = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    near, z_near = other.project(backproject(reference, xy, np.full(len(xy), depth_min)))
    far, z_far = other.project(backproject(reference, xy, np.full(len(xy), depth_max)))
    seen = (z_near > 0) & (z_far > 0)
    return float(np.linalg.norm(near - far, axis=1)[seen].max()) if seen.any() else 0.0


def check_sweep_geometry(
    reference: Camera, other: Camera, depth_min: float, depth_max: float, min_parallax: float = 1.0
) -> float:
    """Raise unless the two cameras see the depth range from places far enough apart for a
    plane sweep to tell its depths apart (at least ``min_parallax`` pixels of ``other``).

    Returns:
        The parallax (:func:`sweep_parallax`), pixels.
    """
    baseline = float(np.linalg.norm(reference.C - other.C))
    parallax = sweep_parallax(reference, other, depth_min, depth_max) if baseline > 0 else 0.0
    if parallax < min_parallax:
        raise StereoError(
            f"the cameras are {baseline:.3g} m apart: over the depth range "
            f"{depth_min:g}–{depth_max:g} m a point moves only {parallax:.2f} px in the second "
            "image, so depth cannot be measured; check the camera files (the same camera "
            "twice?) or the depth range"
        )
    return parallax


def point_cloud(
    depth: np.ndarray, camera: Camera, colour: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """World points ``(N, 3)`` and colours ``(N, 3)`` uint8 of every pixel with a depth.

    Args:
        depth: ``(h, w)`` metres, NaN = unknown, in ``camera``'s pixel grid.
        colour: ``(h, w, 3)`` or ``(h, w)`` uint8 image of the same grid.
    """
    ys, xs = np.nonzero(np.isfinite(depth))
    points = backproject(camera, np.stack([xs, ys], axis=1).astype(float), depth[ys, xs])
    rgb = colour[ys, xs] if colour.ndim == 3 else np.repeat(colour[ys, xs, None], 3, axis=1)
    return points, rgb.astype(np.uint8)
