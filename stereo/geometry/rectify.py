"""Rectification of an uncalibrated pair from its matches.

Quasi-Euclidean rectification (Fusiello & Irsara, ICPR 2008): each image is turned by a
rotation of a camera whose focal length is unknown, ``H = K · R · K⁻¹`` with the principal
point at the image centre; the two rotations and the focal length are fitted to the inlier
matches so that corresponding points share a row (least Sampson error under the rectified
pair's fundamental matrix). Unlike Hartley's projective method (OpenCV's
``stereoRectifyUncalibrated``), which may stretch, shear or push most of an image out of the
frame, the result is the view of a turned camera: windows keep their shape and scale. Each
homography ends with a shift that puts the whole rectified left image on the output canvas
and gives the inlier matches a median disparity of zero (the right image's overlap lands on
the canvas). The rotation model assumes one focal length for both images; where it leaves the
matches more than :data:`MAX_ROW_RESIDUAL_PX` apart across rows (different zooms, a cropped
image), ``auto`` falls back to Hartley's method.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

from stereo.errors import StereoError
from stereo.geometry.matches import SIFT_MAX_SIDE, disparity_span, sift_matches_with_distances

#: the fundamental matrix of a rectified pair: ``m2ᵀ F m1 = y1 − y2``
RECTIFIED_F = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: the rectified left image may be at most this many times the input's long side
MAX_CANVAS_GROWTH = 3.0
#: median row disagreement (px, at the matching size: SIFT_MAX_SIDE on the long side) of the
#: inlier matches above which a rectification is refused
MAX_ROW_RESIDUAL_PX = 1.5
#: the fit's bounds: |angle| (radians) and α's range (focal length (w + h) · 3^α)
MAX_ANGLE = np.pi / 2
FOCAL_EXPONENT_BOUNDS = (-1.0, 1.0)
#: the fit starts from each of these α (one start alone may settle in a poorer minimum:
#: castle-P19 views 0 and 1 from α = −0.56, their true focal length, Sampson cost 257 against
#: 7 from α = 0)
FOCAL_EXPONENT_STARTS = (-0.5, 0.0, 0.5)
#: a match sets the disparity range only if its disparity lies within this many px (per
#: 768 px of the image's long side) of the median of its nearest matches' — matches along
#: an epipolar line onto repeated structure satisfy F but not their neighbours (castle-P19
#: views 5 and 7, 0.8 ratio test: 10 % of the inliers 165–470 px off the truth's −29…45 px)
NEIGHBOUR_TOLERANCE_PX = 4.0
NEIGHBOURS = 8
#: the search range: the kept matches' 5th–95th disparity percentiles widened by this share of
#: their span (+ 2 px) on each side. Matches miss surfaces the truth holds (castle-P19 views
#: 5 → 7: 7 % of the truth beyond the 0.25 margin); chosen on nine castle-P19 pairs (session 29,
#: 2ch-deep mean bad-2 0.116 at 0.25, 0.098 at 0.5, 0.100 at 1.0; census 0.110 / 0.098 / 0.104)
RANGE_MARGIN = 0.5
#: SIFT's ratio test for rectifying, where at least DISTINCT_MATCHES matches pass it (else the
#: usual 0.8): the looser test's inliers hold wrong matches that agree with F and pulled the
#: rotation fit off (castle-P19 views 4 → 2: truth points 0.96 px apart across rows after
#: rectification with 0.8, 0.16 px with 0.6; views 5 → 7 0.11 and 0.04)
DISTINCT_RATIO = 0.6
DISTINCT_MATCHES = 100


def euler_rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    """``(3, 3)`` rotation ``Rz · Ry · Rx`` (radians)."""
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    turn_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    turn_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    turn_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return turn_z @ turn_y @ turn_x


def rotation_homographies(params: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """``(H1, H2)`` ``(3, 3)`` of ``params`` = (left y, z angle; right x, y, z angle, radians;
    α): focal length ``(width + height) · 3^α`` px, principal point at the image centre. The
    left image's x angle is fixed at 0 (a common turn about the baseline changes nothing)."""
    ry1, rz1, rx2, ry2, rz2, alpha = params
    f = (width + height) * 3.0**alpha
    K = np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    K_inv = np.linalg.inv(K)
    return K @ euler_rotation(0.0, ry1, rz1) @ K_inv, K @ euler_rotation(rx2, ry2, rz2) @ K_inv


def sampson_errors(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """``(N,)`` signed Sampson distances (px) of matches ``x1 ↔ x2`` (``(N, 2)``) under ``F``
    (``x2ᵀ F x1 = 0``)."""
    m1, m2 = np.c_[x1, np.ones(len(x1))], np.c_[x2, np.ones(len(x2))]
    Fm1, Ftm2 = m1 @ F.T, m2 @ F
    algebraic = np.sum(m2 * Fm1, axis=1)
    norm = np.sqrt(Fm1[:, 0] ** 2 + Fm1[:, 1] ** 2 + Ftm2[:, 0] ** 2 + Ftm2[:, 1] ** 2)
    return algebraic / np.maximum(norm, 1e-12)


def fit_rotations(x1: np.ndarray, x2: np.ndarray, width: int, height: int, epipole) -> np.ndarray:
    """The six parameters of :func:`rotation_homographies` that put matches ``x1 ↔ x2``
    (``(N, 2)`` inliers) on common rows (least squares of the Sampson errors; a Cauchy loss
    was worse on castle-P19's uncalibrated pairs, benchmarks/README.md session 28): the least
    cost of fits started from each
    α of :data:`FOCAL_EXPONENT_STARTS`, both images turned in the image plane so that the
    left epipole's direction (from the image centre) becomes horizontal, by less than 90°,
    one way and the other."""

    def residuals(params: np.ndarray) -> np.ndarray:
        H1, H2 = rotation_homographies(params, width, height)
        return sampson_errors(H2.T @ RECTIFIED_F @ H1, x1, x2)

    direction = np.arctan2(epipole[1] - height / 2, epipole[0] - width / 2)
    level = (direction + np.pi / 2) % np.pi - np.pi / 2  # the turn to the horizontal, |.| ≤ 90°
    starts = [
        np.array([0.0, -sign * level, 0.0, 0.0, -sign * level, alpha])
        for sign in (1.0, -1.0)
        for alpha in FOCAL_EXPONENT_STARTS
    ]
    bounds = (
        [-MAX_ANGLE] * 5 + [FOCAL_EXPONENT_BOUNDS[0]],
        [MAX_ANGLE] * 5 + [FOCAL_EXPONENT_BOUNDS[1]],
    )
    fits = [least_squares(residuals, start, bounds=bounds) for start in starts]
    return min(fits, key=lambda fit: fit.cost).x


def apply_homography(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points mapped by ``H``."""
    mapped = np.c_[points, np.ones(len(points))] @ H.T
    return mapped[:, :2] / mapped[:, 2:]


def shifted_onto_canvas(
    H1: np.ndarray, H2: np.ndarray, x1: np.ndarray, x2: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``H1``, ``H2`` followed by the shifts that put the whole rectified left image on a
    canvas of its bounding box (both images shifted alike vertically) and give the matches
    a median disparity of 0; and the canvas size ``(width, height)``."""
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], float)
    warped = apply_homography(H1, corners)
    low, high = warped.min(axis=0), warped.max(axis=0)
    size = np.ceil(high - low).astype(int)
    if size.max() > MAX_CANVAS_GROWTH * max(width, height):
        raise StereoError(
            "rectifying the pair would stretch the left image more than "
            f"{MAX_CANVAS_GROWTH:g}×: the views are too oblique; give cameras"
        )
    offset = np.median(apply_homography(H1, x1)[:, 0] - apply_homography(H2, x2)[:, 0])
    shift1 = np.array([[1, 0, -low[0]], [0, 1, -low[1]], [0, 0, 1]])
    shift2 = np.array([[1, 0, offset - low[0]], [0, 1, -low[1]], [0, 0, 1]])
    return shift1 @ H1, shift2 @ H2, (int(size[0]), int(size[1]))


def consistent_disparities(xy: np.ndarray, disparities: np.ndarray, long_side: int) -> np.ndarray:
    """The disparities ``(N,)`` of matches at rectified pixels ``xy`` ``(N, 2)`` that agree
    with the median of their :data:`NEIGHBOURS` nearest matches' within
    :data:`NEIGHBOUR_TOLERANCE_PX` (scaled to ``long_side``); all of them when too few."""
    if len(xy) <= NEIGHBOURS:
        return disparities
    _, nearest = cKDTree(xy).query(xy, k=NEIGHBOURS + 1)
    local = np.median(disparities[nearest[:, 1:]], axis=1)
    tolerance = NEIGHBOUR_TOLERANCE_PX * long_side / 768
    return disparities[np.abs(disparities - local) <= tolerance]


def left_epipole(F: np.ndarray) -> np.ndarray:
    """``(2,)`` the left image's epipole (pixels; ±inf when at infinity)."""
    e = np.linalg.svd(F)[2][-1]
    return e[:2] / e[2] if abs(e[2]) > 1e-12 else np.array([np.inf, np.inf])


def inlier_matches(left: np.ndarray, right: np.ndarray, min_inliers: int) -> tuple[np.ndarray, ...]:
    """``(F, x1, x2)``: the fundamental matrix from SIFT matches (RANSAC) and its inlier
    matches ``(N, 2)``: the matches of the strict ratio test :data:`DISTINCT_RATIO` where
    :data:`DISTINCT_MATCHES` pass it, else of the usual one (one matching, both tests);
    raises when too few agree."""
    x1, x2, distances = sift_matches_with_distances(left, right)
    distinct = distances[:, 0] < DISTINCT_RATIO * distances[:, 1]
    if distinct.sum() >= DISTINCT_MATCHES:
        x1, x2 = x1[distinct], x2[distinct]
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
    inliers = mask.ravel().astype(bool)
    return F, x1[inliers].astype(np.float64), x2[inliers].astype(np.float64)


def rotation_homographies_fitted(
    F: np.ndarray, x1: np.ndarray, x2: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Quasi-Euclidean ``(H1, H2)`` fitted to the inlier matches (:func:`fit_rotations`)."""
    params = fit_rotations(x1, x2, width, height, left_epipole(F))
    return rotation_homographies(params, width, height)


def projective_homographies(
    F: np.ndarray, x1: np.ndarray, x2: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hartley's ``(H1, H2)`` (OpenCV ``stereoRectifyUncalibrated``)."""
    ok, H1, H2 = cv2.stereoRectifyUncalibrated(x1, x2, F, (width, height))
    if not ok:
        raise StereoError("OpenCV could not rectify the pair; give cameras instead")
    return H1, H2


HOMOGRAPHIES = {"rotation": rotation_homographies_fitted, "projective": projective_homographies}
#: ``--rectification``: the methods tried in turn until one puts the inliers within
#: :data:`MAX_ROW_RESIDUAL_PX` of a common row
RECTIFICATION_ORDER = {
    "rotation": ("rotation",),
    "projective": ("projective",),
    "auto": ("rotation", "projective"),
}


def row_residual(H1: np.ndarray, H2: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> float:
    """Median row disagreement (px) of matches ``x1 ↔ x2`` ``(N, 2)`` once rectified."""
    return float(np.median(np.abs(apply_homography(H1, x1)[:, 1] - apply_homography(H2, x2)[:, 1])))


def check_epipole_outside(epipole: np.ndarray, width: int, height: int) -> None:
    """Refuse a pair whose left epipole lies in the image or within 10 % of its long side
    of it: the camera moves toward the scene and no useful rectification exists."""
    margin = 0.1 * max(height, width)
    if (-margin <= epipole[0] <= width + margin) and (-margin <= epipole[1] <= height + margin):
        raise StereoError(
            f"the epipole lies inside the image (at {epipole[0]:.0f}, "
            f"{epipole[1]:.0f}): the camera moves toward the scene and the pair "
            "cannot be rectified; give cameras to use the plane sweep"
        )


def rectify_uncalibrated(
    left: np.ndarray, right: np.ndarray, method: str = "auto", min_inliers: int = 30
) -> dict[str, Any]:
    """Epipolar geometry from SIFT matches (RANSAC) and rectifying homographies of a pair
    of grey images ``(h, w)``: quasi-Euclidean (the module's docstring) or projective
    (``method``, :data:`RECTIFICATION_ORDER`).

    Returns:
        ``{"F", "H1", "H2" (3×3 lists: input pixels → rectified canvas pixels), "size"
        ([width, height] of the rectified canvas, px), "method" (rotation | projective),
        "inliers", "epipole_left", "row_residual_px" (median row disagreement of the inliers
        after rectification), "disparity_range_px" (the search range that the inliers'
        rectified disparities give where their neighbours agree,
        :func:`consistent_disparities`, :func:`~stereo.geometry.matches.disparity_span` with
        :data:`RANGE_MARGIN`)}``;
        raises when the matches are too few, the epipole lies inside the left image, or no
        method puts the matches on common rows.
    """
    F, x1, x2 = inlier_matches(left, right, min_inliers)
    h, w = left.shape
    epipole = left_epipole(F)
    check_epipole_outside(epipole, w, h)
    limit = MAX_ROW_RESIDUAL_PX * max(1.0, max(h, w) / SIFT_MAX_SIDE)  # matched reduced
    for name in RECTIFICATION_ORDER[method]:
        H1, H2 = HOMOGRAPHIES[name](F, x1, x2, w, h)
        residual = row_residual(H1, H2, x1, x2)
        if residual <= limit:
            break
    else:
        raise StereoError(
            f"the rectified matches disagree by {residual:.1f} px across rows (at most "
            f"{limit:.1f}): the pair could not be rectified; give cameras"
        )
    H1, H2, size = shifted_onto_canvas(H1, H2, x1, x2, w, h)
    rectified_1 = apply_homography(H1, x1)
    disparities = rectified_1[:, 0] - apply_homography(H2, x2)[:, 0]
    return {
        "F": F.tolist(),
        "H1": H1.tolist(),
        "H2": H2.tolist(),
        "size": list(size),
        "method": name,
        "inliers": len(x1),
        "epipole_left": epipole.tolist(),
        "row_residual_px": residual,
        "disparity_range_px": list(
            disparity_span(
                consistent_disparities(rectified_1, disparities, max(h, w)), RANGE_MARGIN
            )
        ),
    }


def warped_onto_canvas(
    left: np.ndarray, right: np.ndarray, rect: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """``left`` and ``right`` warped onto the canvas of :func:`rectify_uncalibrated`'s
    ``rect`` (``rect["size"]``; black outside each image)."""
    canvas = tuple(rect["size"])
    return (
        cv2.warpPerspective(left, np.array(rect["H1"]), canvas),
        cv2.warpPerspective(right, np.array(rect["H2"]), canvas),
    )
