"""Middlebury pairs of the benchmarks: tsukuba and venus from ``../shared/data/middlebury``,
Motorcycle (Middlebury 2014) from scikit-image, each with its truth disparity."""

from __future__ import annotations

import cv2
import numpy as np

from stereo.bench.strecha import REPOSITORY
from stereo.evaluation import read_disparity_truth
from stereo.io.images import read_image

MIDDLEBURY = REPOSITORY.parent / "shared" / "data" / "middlebury"
#: Middlebury pairs: left, right, truth, the truth's scale (None: scikit-image's Motorcycle)
MIDDLEBURY_PAIRS = {
    "tsukuba": ("im3.png", "im4.png", "disp3.pgm", 16.0),
    "venus": ("im2.png", "im6.png", "disp2.pgm", 8.0),
    "motorcycle": (None, None, None, 1.0),  # scikit-image's Middlebury 2014, quarter size
}


def middlebury_pair(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey left and right images (uint8) and the truth disparity (pixels, NaN = unknown)."""
    left, right, truth, scale = MIDDLEBURY_PAIRS[name]
    if left is None:
        from skimage.data import stereo_motorcycle

        a, b, disparity = stereo_motorcycle()
        grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b)]
        disparity = np.where(np.isfinite(disparity), disparity, np.nan).astype(np.float32)
        return grey[0], grey[1], disparity
    folder = MIDDLEBURY / name
    images = [read_image(folder / left), read_image(folder / right)]
    return images[0], images[1], read_disparity_truth(folder / truth, scale)


def sgbm_disparity(left: np.ndarray, right: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """OpenCV SGBM on a rectified pair over disparities ``[lo, hi]`` px (:func:`sgbm_run`):
    ``(H, W)`` float32, NaN where it gives none."""
    min_disp = int(np.floor(lo))
    return sgbm_run(left, right, min_disp, max(16, int(np.ceil((hi - min_disp) / 16.0)) * 16))


def sgbm_run(left: np.ndarray, right: np.ndarray, min_disp: int, num: int) -> np.ndarray:
    """OpenCV SGBM (3-way, 5×5 blocks: the benchmarks' one setting) over ``num`` (a multiple
    of 16) disparities from ``min_disp``: ``(H, W)`` float32 px, NaN where it gives none."""
    sgbm = cv2.StereoSGBM_create(
        minDisparity=min_disp,
        numDisparities=num,
        blockSize=5,
        P1=200,
        P2=800,
        disp12MaxDiff=1,
        uniquenessRatio=5,
        speckleWindowSize=100,
        speckleRange=2,
        mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY,
    )
    disparity = sgbm.compute(left, right).astype(np.float32) / 16.0
    disparity[disparity < min_disp] = np.nan
    return disparity
