"""Keypoint correspondences from the true cameras alone, no descriptor: Brown et al.'s rule.

The patch benchmark's positives were SIFT tracks: pairs whose SIFT descriptors matched (ratio
test), then extended by geometry. That favours SIFT, whose own matches they are. Brown et
al.'s data admit a correspondence by geometry alone — two detections within a few pixels in
position, 0.25 octaves in scale and π/8 in angle of what the scene's geometry predicts — but
they had multi-view-stereo depth for it. Without dense depth, a third view decides instead:

1. every keypoint pair of views ``i`` and ``j`` within ``max_epipolar_px`` of the true
   epipolar lines is triangulated;
2. kept if the point lies in front of both cameras and ``j``'s keypoint agrees with the scale
   and orientation that ``i``'s predicts there (``max_scale_octaves``; the orientation rule);
3. and confirmed if a keypoint of another view lies within ``max_reprojection_px`` of the
   point's projection with the scale and orientation predicted there too;
4. a keypoint keeps its match only when it has exactly one confirmed partner (both ways).

No descriptor is compared anywhere, so SIFT's descriptor gains nothing from how the pairs were
chosen (the keypoints themselves are still DoG detections with SIFT's orientations, as in
Brown's data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from stereo.geometry.camera import Camera, fundamental_matrix, triangulate

#: keypoints of view ``i`` compared with all of view ``j`` at once (memory: rows × keypoints)
CHUNK_ROWS = 512


@dataclass(frozen=True)
class GeometricRule:
    """How close a keypoint must lie to what the geometry predicts (pixels of the images)."""

    max_epipolar_px: float
    max_reprojection_px: float
    max_scale_octaves: float
    max_orientation_deg: float  # 180: no orientation rule


@dataclass(frozen=True)
class View:
    """One view's keypoints ``(K, 4)`` (x, y, size, angle in degrees) and camera."""

    keypoints: np.ndarray
    camera: Camera

    @property
    def focal(self) -> float:
        """The focal length, pixels (geometric mean of the two axes)."""
        return float(np.sqrt(self.camera.K[0, 0] * self.camera.K[1, 1]))


def carried_angles(
    X: np.ndarray, keypoints: np.ndarray, camera: Camera, other: Camera
) -> np.ndarray:
    """``(N,)`` orientations (degrees, OpenCV's convention) in ``other``'s image of
    ``keypoints`` ``(N, 4)`` seen by ``camera`` at the 3D points ``X`` ``(N, 3)``, each
    surface taken as facing ``camera`` (the plane at the point's depth): the keypoint's
    orientation step of one keypoint size carried onto that plane and projected into
    ``other``."""
    x, y, size, angle = np.asarray(keypoints, np.float64).T
    theta = np.deg2rad(angle)
    tips = np.stack([x + size * np.cos(theta), y + size * np.sin(theta), np.ones_like(x)])
    depth = camera.to_camera(X)[:, 2]
    tips_world = camera.C + (camera.R @ (np.linalg.solve(camera.K, tips) * depth)).T
    start, _ = other.project(X)
    end, _ = other.project(tips_world)
    return np.degrees(np.arctan2(end[:, 1] - start[:, 1], end[:, 0] - start[:, 0]))


def angle_error(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Absolute difference of orientations ``a`` and ``b`` (degrees), in [0, 180]."""
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)


def epipolar_candidates(first: View, second: View, max_px: float) -> np.ndarray:
    """``(M, 2)`` index pairs (first's keypoint, second's) within ``max_px`` of each other's
    epipolar line (the larger of the two distances, as
    :func:`~stereo.geometry.camera.epipolar_distance`)."""
    F = fundamental_matrix(first.camera, second.camera)
    h1 = np.c_[first.keypoints[:, :2], np.ones(len(first.keypoints))]
    h2 = np.c_[second.keypoints[:, :2], np.ones(len(second.keypoints))]
    lines_1 = h2 @ F  # in the first image, one per second keypoint
    norm_1 = np.hypot(lines_1[:, 0], lines_1[:, 1])
    pairs = []
    for start in range(0, len(h1), CHUNK_ROWS):
        lines_2 = h1[start : start + CHUNK_ROWS] @ F.T  # in the second image
        num = np.abs(lines_2 @ h2.T)  # (rows, K2)
        distance = np.maximum(num / np.hypot(lines_2[:, :1], lines_2[:, 1:2]), num / norm_1)
        a, b = np.nonzero(distance <= max_px)
        pairs.append(np.c_[a + start, b])
    return np.concatenate(pairs).astype(np.int64) if pairs else np.zeros((0, 2), np.int64)


def predicted_sizes(X: np.ndarray, sizes: np.ndarray, source: View, target: View) -> np.ndarray:
    """``(N,)`` keypoint sizes (pixels) in ``target`` of keypoints of ``sizes`` in ``source``
    at the 3D points ``X``: the same world extent at the target's depth and focal length."""
    world = sizes * source.camera.to_camera(X)[:, 2] / source.focal
    return world * target.focal / target.camera.to_camera(X)[:, 2]


def agrees(
    X: np.ndarray,
    source_keypoints: np.ndarray,
    source: View,
    target: View,
    target_keypoints: np.ndarray,
    rule: GeometricRule,
) -> np.ndarray:
    """``(N,)`` bool: whether ``target_keypoints`` ``(N, 4)`` agree in scale and orientation
    with what ``source_keypoints`` ``(N, 4)`` of ``source`` predict in ``target`` at ``X``."""
    predicted = predicted_sizes(X, source_keypoints[:, 2], source, target)
    ok = np.abs(np.log2(target_keypoints[:, 2] / predicted)) <= rule.max_scale_octaves
    if rule.max_orientation_deg < 180.0:
        angles = carried_angles(X, source_keypoints, source.camera, target.camera)
        ok &= angle_error(target_keypoints[:, 3], angles) <= rule.max_orientation_deg
    return ok


def in_front_and_inside(X: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Projections ``(N, 2)`` of ``X`` into ``camera`` and ``(N,)`` bool: in front of it and
    inside its image."""
    xy, depth = camera.project(X)
    inside = (depth > 0) & (xy[:, 0] >= 0) & (xy[:, 1] >= 0)
    inside &= (xy[:, 0] <= camera.width - 1) & (xy[:, 1] <= camera.height - 1)
    return xy, inside


def confirmed(
    X: np.ndarray, source_keypoints: np.ndarray, source: View, third: View, rule: GeometricRule
) -> np.ndarray:
    """``(N,)`` bool: whether ``third`` has a keypoint within ``rule.max_reprojection_px``
    of each point's projection that agrees (:func:`agrees`) with ``source_keypoints``."""
    xy, inside = in_front_and_inside(X, third.camera)
    found = np.zeros(len(X), bool)
    if not len(third.keypoints):
        return found
    tree = cKDTree(third.keypoints[:, :2])
    rows = np.nonzero(inside)[0]
    near = tree.query_ball_point(xy[rows], rule.max_reprojection_px)
    row_of = np.repeat(rows, [len(n) for n in near])
    if not len(row_of):
        return found
    candidates = third.keypoints[np.concatenate(near).astype(np.int64)]
    ok = agrees(X[row_of], source_keypoints[row_of], source, third, candidates, rule)
    found[row_of[ok]] = True
    return found


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """The rows of ``pairs`` ``(M, 2)`` whose first and second entries each occur once."""
    once = np.ones(len(pairs), bool)
    for column in (0, 1):
        _, inverse, counts = np.unique(pairs[:, column], return_inverse=True, return_counts=True)
        once &= counts[inverse] == 1
    return pairs[once]


def geometric_matches(
    first: View, second: View, thirds: Sequence[View], rule: GeometricRule
) -> np.ndarray:
    """``(M, 2)`` keypoint index pairs of ``first`` and ``second`` found by geometry alone
    (module docstring), each confirmed by at least one of ``thirds``."""
    pairs = epipolar_candidates(first, second, rule.max_epipolar_px)
    if not len(pairs):
        return pairs
    P = np.stack([first.camera.P, second.camera.P])
    xy = np.stack([first.keypoints[pairs[:, 0], :2], second.keypoints[pairs[:, 1], :2]], 1)
    X = triangulate(np.broadcast_to(P, (len(pairs), 2, 3, 4)), xy)
    source = first.keypoints[pairs[:, 0]]
    keep = (first.camera.to_camera(X)[:, 2] > 0) & (second.camera.to_camera(X)[:, 2] > 0)
    keep &= agrees(X, source, first, second, second.keypoints[pairs[:, 1]], rule)
    pairs, X, source = pairs[keep], X[keep], source[keep]
    seen = np.zeros(len(pairs), bool)
    for third in thirds:
        seen |= confirmed(X, source, first, third, rule)
    return unique_pairs(pairs[seen])
