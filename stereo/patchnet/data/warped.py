"""Patches with exact geometry cut from real photographs under random local warps.

Each 3D point is a corner detected in a photograph; each of its *views* is the 64×64 patch
around it after a random local homography (rotation, anisotropic scale, shear, perspective)
and a photometric change (gain, bias, blur, noise). All views of one point therefore show the
same surface point exactly, like the positives of the Brown set, without needing any
download: the default photographs ship inside scikit-image. This is the project's embedded
default data; patches from real calibrated
multi-view scenes come from the scene builders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from stereo.errors import StereoError
from stereo.patchnet.data.patchset import PATCH_SIZE, PatchSet

#: scikit-image sample photographs used by default (all ship inside the wheel).
SAMPLE_IMAGES = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "brick",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
)


def sample_photographs(names: Sequence[str] = SAMPLE_IMAGES) -> list[np.ndarray]:
    """Grey uint8 photographs from ``skimage.data`` (no network access)."""
    import skimage.data

    images = []
    for name in names:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 3:
            image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
        images.append(np.ascontiguousarray(image, dtype=np.uint8))
    return images


@dataclass(frozen=True)
class WarpConfig:
    """Ranges of the random view changes (one draw per view)."""

    max_rotation_deg: float = 20.0  # residual in-plane rotation, ± degrees
    log_scale: float = 0.2  # isotropic scale factor in exp(±log_scale)
    anisotropy: float = 0.15  # extra scale of one axis in exp(±anisotropy)
    shear: float = 0.15  # ± shear coefficient
    perspective: float = 0.0015  # ± projective terms, 1/pixel
    max_gain: float = 0.3  # intensity gain in exp(±max_gain)
    max_bias: float = 20.0  # ± grey levels
    max_blur_sigma: float = 1.0  # Gaussian blur σ in [0, max], pixels
    noise_sigma: float = 3.0  # additive Gaussian noise, grey levels


def _view_transform(point: np.ndarray, rng: np.random.Generator, cfg: WarpConfig) -> np.ndarray:
    """3×3 map from image pixels to patch pixels putting ``point`` at the patch centre."""
    theta = np.deg2rad(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    c, s = np.cos(theta), np.sin(theta)
    scale = np.exp(rng.uniform(-cfg.log_scale, cfg.log_scale))
    aniso = np.exp(rng.uniform(-cfg.anisotropy, cfg.anisotropy))
    shear = rng.uniform(-cfg.shear, cfg.shear)
    linear = scale * np.array([[c, -s], [s, c]]) @ np.array([[aniso, shear], [0, 1 / aniso]])
    local = np.eye(3)
    local[:2, :2] = linear
    local[2, :2] = rng.uniform(-cfg.perspective, cfg.perspective, 2)
    centre = (PATCH_SIZE - 1) / 2.0
    to_origin = np.array([[1, 0, -point[0]], [0, 1, -point[1]], [0, 0, 1]], float)
    to_patch = np.array([[1, 0, centre], [0, 1, centre], [0, 0, 1]], float)
    return to_patch @ local @ to_origin


def _photometric(patch: np.ndarray, rng: np.random.Generator, cfg: WarpConfig) -> np.ndarray:
    x = patch.astype(np.float32)
    sigma = rng.uniform(0, cfg.max_blur_sigma)
    if sigma > 0.3:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x * np.exp(rng.uniform(-cfg.max_gain, cfg.max_gain)) + rng.uniform(
        -cfg.max_bias, cfg.max_bias
    )
    x += rng.normal(0, cfg.noise_sigma, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def detect_points(
    image: np.ndarray, n: int, margin: int = 48, min_distance: int = 12
) -> np.ndarray:
    """Up to ``n`` well-spread corners ``(n, 2)`` (x, y) at least ``margin`` px from borders."""
    h, w = image.shape
    mask = np.zeros_like(image)
    mask[margin : h - margin, margin : w - margin] = 255
    corners = cv2.goodFeaturesToTrack(image, n, 0.01, min_distance, mask=mask)
    return np.zeros((0, 2)) if corners is None else corners[:, 0, :].astype(np.float64)


def warped_patch_set(
    n_points: int,
    views_per_point: int = 3,
    seed: int = 0,
    images: Sequence[np.ndarray] | None = None,
    config: WarpConfig | None = None,
) -> PatchSet:
    """Patches of ``n_points`` points, ``views_per_point`` randomly warped views each.

    Args:
        n_points: number of distinct points (spread over the photographs).
        views_per_point: patches per point (≥ 2).
        seed: random seed; the same seed gives the same set.
        images: grey uint8 photographs (default :func:`sample_photographs`).
        config: ranges of the view changes.

    Returns:
        A :class:`PatchSet` of ``n_points · views_per_point`` patches (64×64 uint8).
    """
    if views_per_point < 2:
        raise StereoError("views_per_point must be at least 2 to form matching pairs")
    cfg = config or WarpConfig()
    rng = np.random.default_rng(seed)
    images = list(images) if images is not None else sample_photographs()
    per_image = 2 * -(-n_points // len(images)) + 100  # spare corners; some images have few
    points = []
    for i, image in enumerate(images):
        found = detect_points(image, per_image)
        points += [(i, p) for p in found]
    if len(points) < n_points:
        raise StereoError(f"the photographs give {len(points)} corners, {n_points} were asked")
    chosen = rng.choice(len(points), n_points, replace=False)
    patches = np.empty((n_points * views_per_point, PATCH_SIZE, PATCH_SIZE), np.uint8)
    point_ids = np.repeat(np.arange(n_points), views_per_point)
    for k, idx in enumerate(chosen):
        image_index, point = points[idx]
        image = images[image_index]
        for v in range(views_per_point):
            transform = _view_transform(point, rng, cfg)
            patch = cv2.warpPerspective(
                image,
                transform,
                (PATCH_SIZE, PATCH_SIZE),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT101,
            )
            patches[k * views_per_point + v] = _photometric(patch, rng, cfg)
    return PatchSet(patches, point_ids, {"source": "warped skimage photographs", "seed": seed})
