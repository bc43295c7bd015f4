"""Cutting 64×64 patches out of images under a known patch-to-image transform.

Every patch is defined by a 3×3 map ``T`` from patch pixel coordinates (centre at 31.5,
31.5) to image pixel coordinates. To avoid aliasing when ``T`` shrinks the image, the patch
is sampled from the level of a Gaussian pyramid (``cv2.pyrDown``: level-``l`` pixel ``x``
sits at level-0 ``2^l · x``) whose resolution is closest above the patch's.
"""

from __future__ import annotations

import cv2
import numpy as np

PATCH = 64
CENTRE = (PATCH - 1) / 2.0


def pyramid(image: np.ndarray, levels: int = 6) -> list[np.ndarray]:
    """Gaussian pyramid of a grey image, level 0 = the image."""
    out = [image]
    for _ in range(levels - 1):
        if min(out[-1].shape[:2]) < 2 * PATCH:
            break
        out.append(cv2.pyrDown(out[-1]))
    return out


def keypoint_frame(x: float, y: float, side: float, angle_deg: float) -> np.ndarray:
    """Patch → image map of a square window of ``side`` image pixels centred at ``(x, y)``,
    rotated by ``angle_deg`` (OpenCV keypoint angle convention: the patch's +u axis points
    along the keypoint's orientation)."""
    s = side / PATCH
    theta = np.deg2rad(angle_deg)
    c, si = np.cos(theta), np.sin(theta)
    # OpenCV keypoint angles turn from +x towards +y (clockwise on screen, y down): the
    # orientation is the pixel direction (cos θ, sin θ). Checked by a test: patches of an
    # image and of its rotated copy agree.
    A = s * np.array([[c, -si], [si, c]])
    T = np.eye(3)
    T[:2, :2] = A
    T[:2, 2] = np.array([x, y]) - A @ np.array([CENTRE, CENTRE])
    return T


def local_scale(T: np.ndarray) -> float:
    """Image pixels per patch pixel at the patch centre (√|det J| of ``T``)."""
    p = np.array([CENTRE, CENTRE, 1.0])
    w = T[2] @ p
    J = (T[:2, :2] * w - np.outer(T[:2] @ p, T[2, :2])) / w**2
    return float(np.sqrt(abs(np.linalg.det(J))))


def cut_patch(levels: list[np.ndarray], T: np.ndarray) -> np.ndarray:
    """Sample the ``64×64`` uint8 patch of patch→image map ``T`` (level-0 coordinates)."""
    scale = local_scale(T)
    level = int(np.clip(np.floor(np.log2(max(scale, 1e-9))), 0, len(levels) - 1))
    to_level = np.diag([0.5**level, 0.5**level, 1.0])
    return cv2.warpPerspective(
        levels[level],
        to_level @ T,
        (PATCH, PATCH),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def footprint_inside(T: np.ndarray, width: int, height: int, margin: float = 0.0) -> bool:
    """Whether all four patch corners map inside the image (with ``margin`` pixels)."""
    corners = (
        np.array(
            [[0, 0, 1], [PATCH - 1, 0, 1], [0, PATCH - 1, 1], [PATCH - 1, PATCH - 1, 1]], float
        )
        @ T.T
    )
    if np.any(corners[:, 2] <= 0):
        return False
    xy = corners[:, :2] / corners[:, 2:]
    return bool(
        np.all(xy >= -margin)
        and np.all(xy[:, 0] <= width - 1 + margin)
        and np.all(xy[:, 1] <= height - 1 + margin)
    )
