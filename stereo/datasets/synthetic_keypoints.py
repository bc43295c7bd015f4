"""Keypoint patches of random synthetic scenes, with exact correspondences.

The patch benchmark's kind of data (as ``stereo-dataset build`` cuts castle-P19's, and as the
Brown set was made) from the random scenes of :mod:`stereo.datasets.random_scenes`:

1. Render a random view pair (:func:`~stereo.datasets.random_scenes.random_view_pair`;
   exact z-depth in both views, each view with its own photometric changes).
2. Detect DoG keypoints with scale and orientation (OpenCV SIFT) in both views.
3. Map every first-view keypoint into the second view through the exact depth: its position,
   and the local affine map (finite differences of the inverse depth, interpolated bilinearly —
   exact on a plane), which predicts the keypoint's size and orientation there.
4. A second-view keypoint is its correspondent when it lies within ``max_offset`` of the
   predicted size of the predicted position, its size within ``max_log2_size`` octaves and
   its orientation within ``max_angle_deg`` of the prediction (the best such, one to one),
   and the point is visible (not hidden) in the second view.
5. One 64×64 patch per keypoint of a correspondence, normalised for the keypoint's own scale
   and orientation exactly as the castle builder does (window ``scale_factor × size``).

No descriptor takes part in the matching: positives SIFT would miss are kept, as in Brown's
set (matched by geometry alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import cKDTree

from stereo.datasets.patches import PATCH, cut_patch, footprint_inside, keypoint_frame, pyramid
from stereo.datasets.random_scenes import SceneSpec, ViewPair, random_view_pair
from stereo.datasets.worker_pool import TEXTURES, map_pairs
from stereo.errors import StereoError
from stereo.geometry.planesweep import backproject, depth_agrees
from stereo.patchnet.data.patchset import PatchSet

#: relative depth tolerance of the visibility test
VISIBLE_TOLERANCE = 0.01
#: finite-difference step of the local affine map, pixels
JACOBIAN_STEP_PX = 1.0


@dataclass(frozen=True)
class KeypointSpec:
    """How :func:`pair_keypoint_patches` detects, matches and cuts."""

    max_keypoints: int = 1500  # SIFT keypoints per view
    scale_factor: float = 5.0  # window side = scale_factor × keypoint size, as castle's
    min_window_px: float = 16.0  # smaller windows are dropped (as castle's)
    max_offset: float = 0.15  # position error allowed, × the predicted keypoint size
    min_offset_px: float = 1.5  # … but at least this many pixels
    max_log2_size: float = 0.3  # size error allowed, octaves
    max_angle_deg: float = 25.0  # orientation error allowed, degrees

    def __post_init__(self) -> None:
        if self.max_keypoints < 1 or self.scale_factor <= 0 or self.max_offset <= 0:
            raise StereoError("keypoint spec: max_keypoints, scale_factor, max_offset must be > 0")
        if not 0.0 <= self.max_angle_deg <= 180.0:
            raise StereoError(
                f"keypoint spec: max_angle_deg {self.max_angle_deg} must lie in [0, 180] degrees"
            )


def detect(image: np.ndarray, max_keypoints: int) -> np.ndarray:
    """SIFT keypoints ``(K, 4)``: x, y, size (diameter, pixels), angle (degrees)."""
    keypoints = cv2.SIFT_create(max_keypoints).detect(image, None)
    return np.array([(k.pt[0], k.pt[1], k.size, k.angle) for k in keypoints], float).reshape(-1, 4)


def mapped_keypoints(pair: ViewPair, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First-view keypoints ``(K, 4)`` predicted in the second view ``(K, 4)`` (x, y, size,
    angle) through the exact depth, and ``(K,)`` bool: the prediction is valid (the keypoint
    and its finite-difference neighbours lie on one surface that the second view sees)."""
    first, second = pair.cameras
    with np.errstate(divide="ignore"):
        inverse_depth = (1.0 / pair.depths[0]).astype(np.float32)
    step = JACOBIAN_STEP_PX
    offsets = np.array([[0.0, 0.0], [step, 0.0], [0.0, step]])
    xy = keypoints[:, None, :2] + offsets[None]  # (K, 3, 2)
    inverse = cv2.remap(
        inverse_depth,
        xy[..., 0].astype(np.float32),
        xy[..., 1].astype(np.float32),
        cv2.INTER_LINEAR,
        borderValue=np.nan,
    )
    valid = np.isfinite(inverse).all(axis=1) & (inverse > 0).all(axis=1)
    inverse = np.where(valid[:, None], inverse, 1.0)
    world = backproject(first, xy.reshape(-1, 2), 1.0 / inverse.reshape(-1))
    seen, _ = second.project(world)
    seen = seen.reshape(-1, 3, 2)
    valid &= depth_agrees(world[0::3], second, pair.depths[1], VISIBLE_TOLERANCE)
    jacobian = np.stack([seen[:, 1] - seen[:, 0], seen[:, 2] - seen[:, 0]], axis=-1) / step
    angle = np.deg2rad(keypoints[:, 3])
    direction = np.einsum("kij,kj->ki", jacobian, np.c_[np.cos(angle), np.sin(angle)])
    with np.errstate(invalid="ignore"):
        size = keypoints[:, 2] * np.sqrt(np.abs(np.linalg.det(jacobian)))
    predicted = np.c_[seen[:, 0], size, np.rad2deg(np.arctan2(direction[:, 1], direction[:, 0]))]
    return predicted, valid & np.isfinite(predicted).all(axis=1)


def correspondences(
    predicted: np.ndarray, valid: np.ndarray, found: np.ndarray, spec: KeypointSpec
) -> np.ndarray:
    """``(M, 2)`` index pairs (first view, second view): each valid prediction ``(K, 4)``
    matched one to one with the nearest detected second-view keypoint ``found`` ``(J, 4)``
    within the spec's position, size and orientation tolerances."""
    if not len(found) or not valid.any():
        return np.zeros((0, 2), np.int64)
    tree = cKDTree(found[:, :2])
    candidates: list[tuple[float, int, int]] = []
    for i in np.flatnonzero(valid):
        x, y, size, angle = predicted[i]
        radius = max(spec.min_offset_px, spec.max_offset * size)
        for j in tree.query_ball_point((x, y), radius):
            size_error = abs(np.log2(found[j, 2] / size))
            angle_error = abs((found[j, 3] - angle + 180.0) % 360.0 - 180.0)
            if size_error <= spec.max_log2_size and angle_error <= spec.max_angle_deg:
                distance = np.hypot(found[j, 0] - x, found[j, 1] - y) / radius
                candidates.append((distance + size_error + angle_error / 90.0, i, j))
    used_first, used_second, pairs = set(), set(), []
    for _, i, j in sorted(candidates):
        if i not in used_first and j not in used_second:
            used_first.add(i)
            used_second.add(j)
            pairs.append((i, j))
    return np.array(pairs, np.int64).reshape(-1, 2)


def keypoint_window(image: np.ndarray, keypoint: np.ndarray, spec: KeypointSpec):
    """The patch → image map of ``keypoint``'s normalised window, or None when it is too
    small or leaves ``image``."""
    x, y, size, angle = keypoint
    side = spec.scale_factor * size
    frame = keypoint_frame(x, y, side, angle)
    inside = footprint_inside(frame, image.shape[1], image.shape[0])
    return frame if side >= spec.min_window_px and inside else None


def pair_keypoint_patches(pair: ViewPair, spec: KeypointSpec) -> dict[str, np.ndarray]:
    """Patches of the correspondences of one view pair: ``first`` and ``second``
    ``(M, 64, 64)`` uint8, row m of both showing the same scene point."""
    keypoints = [detect(image, spec.max_keypoints) for image in pair.images]
    predicted, valid = mapped_keypoints(pair, keypoints[0])
    matches = correspondences(predicted, valid, keypoints[1], spec)
    levels = [pyramid(image) for image in pair.images]
    first, second = [], []
    for i, j in matches:
        frames = [
            keypoint_window(image, kp, spec)
            for image, kp in zip(pair.images, (keypoints[0][i], keypoints[1][j]), strict=True)
        ]
        if frames[0] is not None and frames[1] is not None:
            first.append(cut_patch(levels[0], frames[0]))
            second.append(cut_patch(levels[1], frames[1]))
    empty = np.zeros((0, PATCH, PATCH), np.uint8)
    return {
        "first": np.stack(first) if first else empty,
        "second": np.stack(second) if second else empty,
    }


def _pair_task(args: tuple[int, int, SceneSpec, KeypointSpec]) -> dict[str, np.ndarray]:
    """Keypoint patches of view pair ``i`` of ``seed`` (run in a worker)."""
    seed, i, scene, spec = args
    return pair_keypoint_patches(random_view_pair((seed, i), TEXTURES, scene), spec)


def synthetic_keypoint_patches(
    n_pairs: int,
    texture_folders: Sequence[str | Path] = (),
    seed: int = 0,
    scene: SceneSpec | None = None,
    spec: KeypointSpec | None = None,
    workers: int = 1,
    progress: bool = True,
) -> PatchSet:
    """Keypoint patches of ``n_pairs`` random view pairs textured from scikit-image's
    photographs and ``texture_folders``; pair ``i`` is drawn from ``(seed, i)`` (the same
    set with any number of ``workers``). A point per correspondence, its two patches from
    views ``2i`` and ``2i + 1``."""
    if n_pairs < 1:
        raise StereoError(f"need at least one view pair, not {n_pairs}")
    scene, spec = scene or SceneSpec(), spec or KeypointSpec()
    tasks = [(seed, i, scene, spec) for i in range(n_pairs)]
    results = map_pairs(_pair_task, tasks, texture_folders, workers, progress, "keypoint pairs")
    patches, point_ids, view_ids, next_id = [], [], [], 0
    for i, found in enumerate(results):
        n = len(found["first"])
        ids = next_id + np.arange(n)
        patches += [found["first"], found["second"]]
        point_ids += [ids, ids]
        view_ids += [np.full(n, 2 * i), np.full(n, 2 * i + 1)]
        next_id += n
    if next_id < 2:
        raise StereoError(
            f"{n_pairs} synthetic pair(s) gave {next_id} correspondences; draw more pairs"
        )
    meta = {
        "source": f"synthetic keypoint patches: {n_pairs} random view pairs, seed {seed}",
        "texture_folders": [Path(f).name for f in texture_folders],
        "scene": asdict(scene),
        "keypoints": asdict(spec),
    }
    return PatchSet(
        np.concatenate(patches),
        np.concatenate(point_ids),
        meta,
        view_ids=np.concatenate(view_ids),
    )
