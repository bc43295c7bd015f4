"""Image matches that fix a pair's geometry: SIFT matching, working resolution, camera
checks against the matches, and the depth / disparity range they give."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from stereo.errors import StereoError
from stereo.geometry.camera import (
    Camera,
    check_camera,
    epipolar_distance,
    fundamental_matrix,
    triangulate,
)

SIFT_MAX_SIDE = 1600  # feature matching runs on images reduced to this long side, pixels
#: cameras fit their images when this share of the image matches lies on their epipolar
#: lines, and this share of those triangulates in front of both cameras (check_cameras_fit)
CAMERA_FIT_MIN_EPIPOLAR = 0.1
CAMERA_FIT_MIN_IN_FRONT = 0.5


def scale_camera(camera: Camera, width: int, height: int) -> Camera:
    """The camera of its image resized to ``width × height`` (pixel centres at integers)."""
    sx, sy = width / camera.width, height / camera.height
    S = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    return Camera(S @ camera.K, camera.R, camera.C, width, height)


def working_pair(images: list[np.ndarray], cameras: list[Camera], working_size: int):
    """Images (grey uint8) and cameras resized so the longest side is ``working_size``."""
    out_images, out_cameras = [], []
    for image, camera in zip(images, cameras, strict=True):
        h, w = image.shape[:2]
        if (w, h) != (camera.width, camera.height):
            raise StereoError(
                f"an image is {w}x{h} but its camera says {camera.width}x{camera.height}"
            )
        scale = min(1.0, working_size / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resized = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        out_images.append(resized)
        out_cameras.append(scale_camera(camera, *size))
    return out_images, out_cameras


@dataclass
class CameraMatches:
    """SIFT matches of a calibrated pair checked against its cameras."""

    n_matches: int  # ratio-test matches
    n_epipolar: int  # of them within 2 px of the cameras' epipolar lines
    depths: np.ndarray  # (N,) reference depths (metres) of those in front of both cameras


def camera_matches(
    reference: np.ndarray, other: np.ndarray, ref_cam: Camera, other_cam: Camera
) -> CameraMatches:
    """Ratio-test SIFT matches of the pair, those within 2 px of the epipolar lines the
    cameras predict, and the depths of those that triangulate in front of both cameras."""
    x1, x2 = sift_matches(reference, other)
    n_matches = len(x1)
    if n_matches:
        keep = epipolar_distance(fundamental_matrix(ref_cam, other_cam), x1, x2) < 2.0
        x1, x2 = x1[keep], x2[keep]
    depths = np.zeros(0)
    if len(x1):
        P = np.broadcast_to(np.stack([ref_cam.P, other_cam.P]), (len(x1), 2, 3, 4))
        X = triangulate(P, np.stack([x1, x2], axis=1))
        depths = ref_cam.to_camera(X)[:, 2]
        depths = depths[(depths > 0) & (other_cam.to_camera(X)[:, 2] > 0)]
    return CameraMatches(n_matches, len(x1), depths)


def check_camera_pair(reference: Camera, other: Camera) -> None:
    """Raise unless both cameras are valid (:func:`check_camera`) and apart."""
    check_camera(reference, "reference camera")
    check_camera(other, "second camera")
    if np.linalg.norm(reference.C - other.C) == 0:
        raise StereoError(
            "both cameras have the same centre: no baseline, depth cannot be measured; "
            "check the camera files (the same camera twice?)"
        )


def check_cameras_fit(matches: CameraMatches, min_matches: int = 40) -> None:
    """Raise when the images' own matches contradict their cameras: too few lie on the
    epipolar lines the cameras predict (cameras of other images), or those that do
    triangulate behind the cameras (cameras swapped). Pairs with fewer than
    ``min_matches`` matches cannot be judged and pass."""
    m = matches
    if m.n_matches < min_matches:
        return
    if m.n_epipolar < max(10, CAMERA_FIT_MIN_EPIPOLAR * m.n_matches):
        raise StereoError(
            f"the cameras do not fit the images: only {m.n_epipolar} of {m.n_matches} image "
            "matches lie within 2 px of the epipolar lines the cameras predict; check that "
            "each camera file belongs to its image (and LEFT/RIGHT are not swapped)"
        )
    if m.depths.size < CAMERA_FIT_MIN_IN_FRONT * m.n_epipolar:
        raise StereoError(
            f"the cameras do not fit the images: {m.n_epipolar - m.depths.size} of "
            f"{m.n_epipolar} epipolar matches triangulate behind the cameras; are the "
            "LEFT and RIGHT cameras swapped?"
        )


def estimate_depth_range(
    matches: CameraMatches, margin: float = 0.15, min_matches: int = 20
) -> tuple[float, float, int]:
    """Depth range of the reference view from its matches triangulated with the cameras
    (:func:`camera_matches`): their 2nd–98th depth percentiles widened by ``margin`` on
    each side.

    Returns:
        ``(depth_min, depth_max, n_matches)`` in metres.
    """
    depths = matches.depths
    if depths.size < min_matches:
        raise StereoError(
            f"only {depths.size} geometrically consistent matches: too few to "
            "estimate the depth range; give it with --depth-range MIN MAX"
        )
    return (*percentile_depth_range(depths, margin), int(depths.size))


def percentile_depth_range(depths: np.ndarray, margin: float = 0.15) -> tuple[float, float]:
    """The 2nd–98th percentiles of ``depths`` (metres) widened by ``margin`` on each side:
    the depth range the matcher sweeps."""
    lo, hi = np.percentile(depths, [2, 98])
    return float(lo * (1 - margin)), float(hi * (1 + margin))


def sift_matches(
    a: np.ndarray,
    b: np.ndarray,
    n: int = 4000,
    ratio: float = 0.8,
    max_side: int = SIFT_MAX_SIDE,
):
    """Ratio-test SIFT matches: ``(M, 2)`` points in ``a`` and in ``b`` (pixels of each).

    Images larger than ``max_side`` on the long side are matched reduced to it (time and
    memory stay bounded whatever the input size) and the points scaled back."""
    return sift_matches_with_distances(a, b, n, ratio, max_side)[:2]


def sift_matches_with_distances(
    a: np.ndarray,
    b: np.ndarray,
    n: int = 4000,
    ratio: float = 0.8,
    max_side: int = SIFT_MAX_SIDE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sift_matches` and each match's descriptor distances to its nearest and
    second-nearest neighbour ``(M, 2)``: a stricter ratio test ``r`` keeps the matches with
    ``distances[:, 0] < r · distances[:, 1]``, without matching again."""
    small_a, scale_a = _reduced(a, max_side)
    small_b, scale_b = _reduced(b, max_side)
    x1, x2, distances = _sift_matches(small_a, small_b, n, ratio)
    return (x1 + 0.5) / scale_a - 0.5, (x2 + 0.5) / scale_b - 0.5, distances


def _reduced(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale == 1.0:
        return image, 1.0
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), size[0] / w


def _sift_matches(a: np.ndarray, b: np.ndarray, n: int, ratio: float):
    sift = cv2.SIFT_create(n)
    k1, d1 = sift.detectAndCompute(a, None)
    k2, d2 = sift.detectAndCompute(b, None)
    if d1 is None or d2 is None or len(k1) < 2 or len(k2) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2))
    pairs = [
        (m.queryIdx, m.trainIdx, m.distance, n_.distance)
        for m, n_ in cv2.BFMatcher().knnMatch(d1, d2, k=2)
        if m.distance < ratio * n_.distance
    ]
    x1 = np.array([k1[i].pt for i, *_ in pairs]).reshape(-1, 2)
    x2 = np.array([k2[j].pt for _, j, *_ in pairs]).reshape(-1, 2)
    distances = np.array([pair[2:] for pair in pairs]).reshape(-1, 2)
    return x1, x2, distances


def disparity_span(disparities: np.ndarray, margin: float = 0.25) -> tuple[float, float]:
    """A disparity search range (px) from match disparities ``(N,)``: their 5th–95th
    percentiles widened by ``margin`` of the span + 2 px on each side (robust to the few
    matches between repeated structures)."""
    lo, hi = np.percentile(disparities, [5, 95])
    pad = margin * (hi - lo) + 2.0
    return float(lo - pad), float(hi + pad)


def estimate_disparity_range(
    left: np.ndarray, right: np.ndarray, margin: float = 0.25, min_matches: int = 20
) -> tuple[float, float, int]:
    """Disparity range ``x_left − x_right`` of a rectified pair from row-consistent SIFT
    matches (|Δy| ≤ 1.5 px), as :func:`disparity_span` widens them."""
    x1, x2 = sift_matches(left, right)
    keep = np.abs(x1[:, 1] - x2[:, 1]) <= 1.5 if len(x1) else np.zeros(0, bool)
    d = (x1[keep, 0] - x2[keep, 0]) if len(x1) else np.zeros(0)
    if d.size < min_matches:
        raise StereoError(
            f"only {d.size} row-aligned matches: too few to estimate the "
            "disparity range (is the pair rectified?); give --disparity-range"
        )
    return (*disparity_span(d, margin), int(d.size))
