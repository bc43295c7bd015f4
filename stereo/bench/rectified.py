"""Rectified validation pairs that no benchmark image enters: pairs cut from a calibrated
scene with sparse truth (castle-P19), and held-out synthetic rectified scenes with dense truth.

A calibrated pair at the working size is rectified with its true cameras (OpenCV's
``stereoRectify``, ``alpha`` 0: every output pixel sees the image); when the second view lies
to the first's left both images are mirrored, so that ``x_right = x_left − d`` with ``d > 0``
as :func:`stereo.pipeline.match_rectified` expects. The reference view's sparse truth points
are carried to the rectified images through their 3D points and written into a disparity map
(NaN elsewhere) at their nearest pixel, so that the Middlebury scorer
(:func:`stereo.evaluation.disparity_errors`) scores the truth points alone.

The synthetic pairs (:func:`synthetic_rectified_pair`) are random scenes of
:mod:`stereo.datasets.random_scenes` on its rectified rig, drawn from a seed no training set
uses, textured with scikit-image's photographs alone; their truth is exact and dense, depth
edges included (where castle's sparse points seldom lie).
"""

from __future__ import annotations

import cv2
import numpy as np

from stereo.bench.strecha import ProtocolPair, load_pair
from stereo.datasets.random_scenes import SceneSpec, random_view_pair, texture_pool
from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import backproject


def rectification(reference: Camera, other: Camera) -> tuple[np.ndarray, ...]:
    """OpenCV's rectifying rotations and projections ``(R1, R2, P1, P2)`` of a pair of
    same-size cameras (``R1``, ``R2``: ``(3, 3)`` camera → rectified frame; ``P1``, ``P2``:
    ``(3, 4)`` in the first rectified camera's frame). Refuses a pair that OpenCV would
    rectify vertically (a baseline more vertical than horizontal)."""
    relative_rotation = other.R.T @ reference.R
    translation = (other.R.T @ (reference.C - other.C)).reshape(3, 1)
    size = (reference.width, reference.height)
    R1, R2, P1, P2, *_ = cv2.stereoRectify(
        reference.K, None, other.K, None, size, relative_rotation, translation,
        flags=cv2.CALIB_ZERO_DISPARITY, alpha=0,
    )  # fmt: skip
    if abs(P2[1, 3]) > abs(P2[0, 3]):
        raise StereoError("the pair's baseline is more vertical than horizontal: not a row search")
    return R1, R2, P1, P2


def rectified_images(pair: ProtocolPair, R1, R2, P1, P2) -> tuple[np.ndarray, np.ndarray]:
    """The pair's grey images resampled into the rectified cameras (bilinear)."""
    size = (pair.reference.shape[1], pair.reference.shape[0])
    out = []
    for image, camera, R, P in (
        (pair.reference, pair.reference_camera, R1, P1),
        (pair.other, pair.other_camera, R2, P2),
    ):
        maps = cv2.initUndistortRectifyMap(camera.K, None, R, P, size, cv2.CV_32FC1)
        out.append(cv2.remap(image, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return out[0], out[1]


def rectified_truth(pair: ProtocolPair, R1, P1, P2) -> tuple[np.ndarray, np.ndarray]:
    """Rectified pixel ``(N, 2)`` and disparity ``(N,)`` (x_left − x_right, px) of each
    truth point of the reference view that the second view sees."""
    camera = pair.reference_camera
    xy, depth = pair.truth.xy[pair.in_view], pair.truth.depth[pair.in_view]
    points = camera.to_camera(backproject(camera, xy, depth)) @ R1.T  # rectified frame
    homogeneous = np.c_[points, np.ones(len(points))]
    left, right = homogeneous @ P1.T, homogeneous @ P2.T
    x_left, x_right = left[:, :2] / left[:, 2:], right[:, 0] / right[:, 2]
    return x_left, x_left[:, 0] - x_right


def rectified_scene_pair(
    scene: str, r: int, k: int, size: int = 768
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views ``r`` and ``r + k`` of a Strecha scene rectified at working size ``size``:
    grey left and right images (uint8, ``(H, W)``) and the truth disparity map (pixels, NaN
    where no truth point lies)."""
    pair = load_pair(scene, r, k, size)
    R1, R2, P1, P2 = rectification(pair.reference_camera, pair.other_camera)
    left, right = rectified_images(pair, R1, R2, P1, P2)
    left, right, xy, disparity = second_view_right(left, right, *rectified_truth(pair, R1, P1, P2))
    return left, right, truth_map(xy, disparity, left.shape)


def second_view_right(left, right, xy, disparity):
    """``(left, right, xy, disparity)`` as given when the disparities are mostly positive
    (the second view lies to the right), else mirrored left to right (images ``(H, W)``,
    truth pixels ``(N, 2)``), which turns every disparity's sign."""
    if np.median(disparity) >= 0:
        return left, right, xy, disparity
    mirrored_xy = np.c_[left.shape[1] - 1 - xy[:, 0], xy[:, 1]]
    return left[:, ::-1].copy(), right[:, ::-1].copy(), mirrored_xy, -disparity


def truth_map(xy: np.ndarray, disparity: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` float32 map holding each point's ``disparity`` at its nearest pixel (NaN
    elsewhere). Points outside the image, with a non-positive disparity, or whose match
    ``x − d`` falls outside the second image (cropped by the rectification) are dropped."""
    h, w = shape
    cols, rows = np.rint(xy[:, 0]).astype(int), np.rint(xy[:, 1]).astype(int)
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    keep = inside & (disparity > 0) & (xy[:, 0] - disparity >= 0)
    out = np.full(shape, np.nan, np.float32)
    out[rows[keep], cols[keep]] = disparity[keep]
    return out


#: seed of the synthetic validation scenes (the synthetic training sets use seeds 0–9)
SYNTHETIC_VALIDATION_SEED = 1000


def synthetic_rectified_pair(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out synthetic rectified scene ``index`` (384×256): grey left and right images
    (uint8, ``(H, W)``) and the exact truth disparity map (pixels; NaN where no surface lies
    or the match falls outside the right image)."""
    spec = SceneSpec(rigs=("rectified",))
    pair = random_view_pair((SYNTHETIC_VALIDATION_SEED, index), texture_pool(), spec)
    reference, other = pair.cameras
    baseline_x = float(((other.C - reference.C) @ reference.R)[0])  # in the reference frame
    with np.errstate(divide="ignore", invalid="ignore"):
        disparity = reference.K[0, 0] * baseline_x / pair.depths[0]
    left, right = pair.images
    if baseline_x < 0:  # the second view lies to the left: mirror (disparity turns positive)
        left, right, disparity = left[:, ::-1].copy(), right[:, ::-1].copy(), -disparity[:, ::-1]
    columns = np.arange(left.shape[1])[None, :]
    disparity = np.where(columns - disparity >= 0, disparity, np.nan).astype(np.float32)
    return left, right, disparity
