"""Hand-crafted baselines scored on the same patch pairs as the networks.

Every function maps raw patches ``a, b`` ``(N, 64, 64)`` uint8 to ``(N,)`` float64 scores,
higher = more similar.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from stereo.errors import StereoError

#: SIFT keypoint diameter covering a whole 64×64 patch: OpenCV's descriptor spans
#: 4 bins × 3σ each with σ = size / 2, i.e. 6 × size pixels.
SIFT_KEYPOINT_SIZE = 64 / 6


def sift_descriptors(patches: np.ndarray) -> np.ndarray:
    """OpenCV SIFT descriptors of whole patches: ``(N, S, S)`` uint8 → ``(N, 128)`` float32.

    One keypoint at the patch centre, orientation 0 (patches are assumed oriented, as in the
    Brown protocol), size such that the descriptor window covers the patch.
    """
    sift = cv2.SIFT_create()
    side = patches.shape[1]
    centre = (side - 1) / 2.0
    size = SIFT_KEYPOINT_SIZE * side / 64
    out = np.empty((patches.shape[0], 128), np.float32)
    for i, patch in enumerate(patches):
        keypoint = [cv2.KeyPoint(centre, centre, size, 0)]
        _, desc = sift.compute(np.ascontiguousarray(patch), keypoint)
        if desc is None or desc.shape[0] != 1:
            raise StereoError(f"OpenCV SIFT returned no descriptor for patch {i}")
        out[i] = desc[0]
    return out


def sift_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``−‖SIFT(a) − SIFT(b)‖₂``."""
    return -np.linalg.norm(sift_descriptors(a) - sift_descriptors(b), axis=1).astype(np.float64)


def raw_l2_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``−‖a − b‖₂`` on raw grey levels."""
    diff = a.reshape(len(a), -1).astype(np.float64) - b.reshape(len(b), -1)
    return -np.linalg.norm(diff, axis=1)


def ncc_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Zero-mean normalised cross-correlation in [−1, 1] (0 for a flat patch)."""
    x = a.reshape(len(a), -1).astype(np.float64)
    y = b.reshape(len(b), -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    denom = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    return np.divide((x * y).sum(axis=1), denom, out=np.zeros(len(x)), where=denom > 0)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "sift": sift_scores,
    "raw-l2": raw_l2_scores,
    "ncc": ncc_scores,
}
