"""Where a reference image has no texture to compare: a 2-channel network normalises each
window, so on a flat one it has nothing to go on, and the rules that hand such pixels to a
hand-made cost (:mod:`stereo.cascade`, :mod:`stereo.edge_fusion`) find them here."""

from __future__ import annotations

import cv2
import numpy as np

#: the side of the square window whose grey-level spread says whether the image is flat
FLAT_WINDOW = 9


def flat_pixels(image: np.ndarray, max_std: float) -> np.ndarray:
    """``(h, w)`` bool: where the ``FLAT_WINDOW``-square window around each pixel of
    ``image`` (``(h, w)`` grey, 0–255) has a grey-level standard deviation below
    ``max_std`` (nowhere for 0)."""
    grey = image.astype(np.float64)
    size = (FLAT_WINDOW, FLAT_WINDOW)
    mean = cv2.blur(grey, size)
    mean_square = cv2.blur(grey * grey, size)
    return np.sqrt(np.maximum(mean_square - mean * mean, 0.0)) < max_std
