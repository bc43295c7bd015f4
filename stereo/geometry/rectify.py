"""Rectification of an uncalibrated pair from its matches (Hartley's method, OpenCV)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from stereo.errors import StereoError
from stereo.geometry.matches import sift_matches


def rectify_uncalibrated(
    left: np.ndarray, right: np.ndarray, min_inliers: int = 30
) -> dict[str, Any]:
    """Epipolar geometry from SIFT matches (RANSAC) and rectifying homographies.

    Returns:
        ``{"F", "H1", "H2" (3×3 lists), "inliers", "epipole_left"}``; raises when the
        matches are too few or the epipole lies inside the left image (the camera moves
        toward the scene: no useful rectification exists).
    """
    x1, x2 = sift_matches(left, right)
    if len(x1) < min_inliers:
        raise StereoError(
            f"only {len(x1)} matches between the images: too few to estimate "
            "their geometry; give cameras, or check that they overlap"
        )
    F, mask = cv2.findFundamentalMat(x1, x2, cv2.FM_RANSAC, 1.0, 0.999)
    if F is None or F.shape != (3, 3) or mask is None or int(mask.sum()) < min_inliers:
        found = 0 if mask is None else int(mask.sum())
        raise StereoError(
            f"only {found} matches agree on an epipolar geometry: too few; "
            "give cameras, or check that the images overlap"
        )
    inl = mask.ravel().astype(bool)
    h, w = left.shape
    _, vt = np.linalg.svd(F)[1:]  # right null vector of F: the left epipole
    e = vt[-1]
    epipole = e[:2] / e[2] if abs(e[2]) > 1e-12 else np.array([np.inf, np.inf])
    margin = 0.1 * max(h, w)
    if (-margin <= epipole[0] <= w + margin) and (-margin <= epipole[1] <= h + margin):
        raise StereoError(
            f"the epipole lies inside the image (at {epipole[0]:.0f}, "
            f"{epipole[1]:.0f}): the camera moves toward the scene and the pair "
            "cannot be rectified; give cameras to use the plane sweep"
        )
    ok, H1, H2 = cv2.stereoRectifyUncalibrated(x1[inl], x2[inl], F, (w, h))
    if not ok:
        raise StereoError("OpenCV could not rectify the pair; give cameras instead")
    return {
        "F": F.tolist(),
        "H1": H1.tolist(),
        "H2": H2.tolist(),
        "inliers": int(inl.sum()),
        "epipole_left": epipole.tolist(),
    }
