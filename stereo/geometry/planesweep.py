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
