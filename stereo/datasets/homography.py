"""Training patches from homography sequences (Oxford layout: ``img1 … img6`` + ``H1toNp``).

DoG keypoints are detected in ``img1``; each is a point whose position in ``imgN`` is given
exactly by the homography ``H1toN``. The patch of a keypoint in ``img1`` is its scale- and
orientation-normalised window (as in the calibrated-scene builder); its patch in ``imgN`` is
the *same* window mapped through ``H1toN`` (a full projective warp, so the patches are
affine- and even projectively normalised: positives with exact geometry). A view is kept
only where the mapped window lies inside ``imgN`` and is not too small (the window must
cover at least ``min_window_px`` pixels there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stereo.datasets.calibrated import SceneBuildConfig, detect
from stereo.datasets.patches import cut_patch, footprint_inside, keypoint_frame, local_scale
from stereo.datasets.patches import pyramid as make_pyramid
from stereo.errors import StereoError
from stereo.io.images import IMAGE_SUFFIXES, read_image
from stereo.patchnet.data.patchset import PatchSet


@dataclass(frozen=True)
class HomographyBuildConfig:
    """Knobs of the homography-sequence builder."""

    max_keypoints: int = 3000  # SIFT keypoints in img1
    scale_factor: float = 5.0  # window side = scale_factor × keypoint size (diameter)
    min_window_px: float = 16.0  # window side in every kept view, pixels
    min_views: int = 2  # views a point needs (img1 included)
    min_distance_px: float = 4.0  # keypoints closer than this to a kept one are dropped
    normalise: str = "keypoint"  # "keypoint" (scale + orientation) | "fixed" (upright window)
    fixed_scale: float = 0.5  # "fixed": image scale of the 64×64 window in img1


def read_homography(path: str | Path) -> np.ndarray:
    """A 3×3 homography from a text file (9 numbers, 3 rows)."""
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"homography file {path} does not exist")
    try:
        H = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise StereoError(f"homography file {path} does not parse: {error}") from None
    if H.shape != (3, 3):
        raise StereoError(
            f"homography file {path} holds a {H.shape[0]}x{H.shape[1]} matrix, expected 3x3"
        )
    if abs(np.linalg.det(H)) < 1e-12:
        raise StereoError(f"homography file {path} is singular")
    return H


def _find_image(folder: Path, stem: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise StereoError(f"sequence {folder} has no {stem} image ({stem}.png, {stem}.ppm …)")


def load_sequence(folder: str | Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images ``img1 …`` (grey) and homographies ``[I, H1to2, …]`` of a sequence."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StereoError(f"sequence folder {folder} does not exist")
    images = [read_image(_find_image(folder, "img1"))]
    homographies = [np.eye(3)]
    n = 2
    while (folder / f"H1to{n}p").is_file():
        homographies.append(read_homography(folder / f"H1to{n}p"))
        images.append(read_image(_find_image(folder, f"img{n}")))
        n += 1
    if len(images) < 2:
        raise StereoError(f"sequence {folder} has no H1to2p file; expected img1…imgN + H1toNp")
    return images, homographies


def build_sequence_patches(
    folder: str | Path, config: HomographyBuildConfig | None = None, point_offset: int = 0
) -> PatchSet:
    """Patches of the img1 keypoints of one sequence in every view where they stay valid."""
    cfg = config or HomographyBuildConfig()
    folder = Path(folder)
    images, homographies = load_sequence(folder)
    keypoints, _ = detect(images[0], SceneBuildConfig(max_keypoints=cfg.max_keypoints))
    order = np.argsort(-keypoints[:, 2])  # large keypoints first, then thin duplicates out
    kept: list[np.ndarray] = []
    for kp in keypoints[order]:
        if all(np.hypot(*(kp[:2] - k[:2])) >= cfg.min_distance_px for k in kept[-200:]):
            kept.append(kp)
    levels = [make_pyramid(image) for image in images]
    patches, ids = [], []
    n_points = 0
    for x, y, size, angle in kept:
        if cfg.normalise == "fixed":
            frame = keypoint_frame(x, y, 64 / cfg.fixed_scale, 0.0)
        else:
            frame = keypoint_frame(x, y, cfg.scale_factor * size, angle)
        views = []
        for image, H, lv in zip(images, homographies, levels, strict=True):
            T = H @ frame
            if not footprint_inside(T, image.shape[1], image.shape[0]):
                continue
            if local_scale(T) * 64 < cfg.min_window_px:
                continue
            views.append(cut_patch(lv, T))
        if len(views) >= cfg.min_views:
            patches += views
            ids += [point_offset + n_points] * len(views)
            n_points += 1
    if n_points < 2:
        raise StereoError(f"sequence {folder}: fewer than two keypoints stay inside the views")
    meta = {
        "source": f"homography sequence {folder.name}",
        "builder": {"points": n_points, "patches": len(patches), "config": asdict(cfg)},
    }
    return PatchSet(np.stack(patches), np.array(ids), meta)
