"""Local descriptor matching on homography sequences (Mikolajczyk & Schmid's Oxford set):
MSER regions normalised to 64×64 patches, every region of ``img1`` scored against every
region of ``imgN``, mean average precision against the overlap-error ground truth.

* Regions: OpenCV MSER on the grey image; each region is the ellipse of its second moments
  ``{x : (x − c)ᵀ M⁻¹ (x − c) ≤ 1}``, ``M = 4 Σ`` (``Σ`` the covariance of its pixels), the
  ellipse a uniform region of that shape fills.
* Patches: the region magnified by :data:`MAGNIFICATION` (the measurement region, 3× as in
  the descriptor evaluation) mapped affinely onto the patch's inscribed circle, then turned
  to the dominant gradient orientation, as keypoint patches are.
* Ground truth: region ``a`` of img1 and ``b`` of imgN correspond when the overlap error of
  ``a`` mapped by ``H1toN`` (its affine linearisation at the centre) with ``b`` is below
  :data:`MAX_OVERLAP_ERROR`, both ellipses first scaled by the factor that gives ``a`` a
  radius of :data:`NORMALISED_RADIUS` px (so large regions are judged as small ones).
* mAP: for each img1 region with at least one correspondent, the imgN regions ranked by score
  give an average precision; the image pair's mAP is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from stereo.datasets.patches import CENTRE, PATCH, cut_patch, pyramid
from stereo.errors import StereoError
from stereo.patchnet.metrics import mean_average_precision

#: the measurement region: the detected ellipse magnified by this factor
MAGNIFICATION = 3.0
#: a region pair is a true correspondence below this overlap error
MAX_OVERLAP_ERROR = 0.5
#: ellipses are compared after scaling the query region to this radius (pixels)
NORMALISED_RADIUS = 30.0
#: regions of fewer pixels are dropped (too small to describe)
MIN_REGION_PIXELS = 30
#: raster points per side when measuring one ellipse overlap
OVERLAP_GRID = 96
#: orientation histogram bins (10° each) of the dominant gradient direction
ORIENTATION_BINS = 36


@dataclass(frozen=True)
class Regions:
    """Elliptic regions of one image: ``centres (N, 2)`` pixels (x, y) and ``shapes
    (N, 2, 2)`` the ellipse matrices ``M`` (``(x − c)ᵀ M⁻¹ (x − c) ≤ 1``), pixels²."""

    centres: np.ndarray
    shapes: np.ndarray

    def __len__(self) -> int:
        return len(self.centres)


def mser_regions(image: np.ndarray, max_regions: int = 600) -> Regions:
    """MSER ellipses of a grey uint8 image, near-duplicates (centres within 2 px and areas
    within 20 %) dropped, at most ``max_regions`` (the largest first)."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise StereoError(f"MSER needs a grey uint8 image, not {image.dtype} {image.shape}")
    point_sets, _ = cv2.MSER_create().detectRegions(image)
    centres, shapes, areas = [], [], []
    for points in point_sets:
        if len(points) < MIN_REGION_PIXELS:
            continue
        xy = points.reshape(-1, 2).astype(np.float64)
        covariance = np.cov(xy, rowvar=False)
        if np.linalg.det(covariance) <= 1e-6:
            continue
        centres.append(xy.mean(axis=0))
        shapes.append(4.0 * covariance)
        areas.append(len(points))
    order = np.argsort(-np.asarray(areas, float), kind="stable")
    kept: list[int] = []
    for i in order:
        duplicate = any(
            np.hypot(*(centres[i] - centres[j])) < 2.0 and abs(areas[i] - areas[j]) < 0.2 * areas[j]
            for j in kept
        )
        if not duplicate:
            kept.append(int(i))
        if len(kept) == max_regions:
            break
    if not kept:
        return Regions(np.zeros((0, 2)), np.zeros((0, 2, 2)))
    return Regions(np.asarray(centres)[kept], np.asarray(shapes)[kept])


def _square_root(shapes: np.ndarray) -> np.ndarray:
    """Symmetric square roots ``(N, 2, 2)`` of positive-definite ``shapes``."""
    values, vectors = np.linalg.eigh(shapes)
    return vectors @ (np.sqrt(np.maximum(values, 0))[..., None] * np.swapaxes(vectors, 1, 2))


def affine_frames(regions: Regions, magnification: float = MAGNIFICATION) -> np.ndarray:
    """Patch → image maps ``(N, 3, 3)``: the patch's inscribed circle onto each region's
    ellipse magnified by ``magnification``, upright (no orientation yet)."""
    A = _square_root(regions.shapes) * (magnification / (PATCH / 2))
    T = np.tile(np.eye(3), (len(regions), 1, 1))
    T[:, :2, :2] = A
    T[:, :2, 2] = regions.centres - A @ np.array([CENTRE, CENTRE])
    return T


def dominant_angle(patch: np.ndarray) -> float:
    """Dominant gradient direction of a patch (radians, image x towards y), from a
    Gaussian-weighted, magnitude-weighted histogram of :data:`ORIENTATION_BINS` bins."""
    image = patch.astype(np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1)
    yy, xx = np.mgrid[0:PATCH, 0:PATCH] - CENTRE
    weight = np.hypot(gx, gy) * np.exp(-(xx**2 + yy**2) / (2 * (PATCH / 4) ** 2))
    angles = np.arctan2(gy, gx)
    bins = ((angles + np.pi) / (2 * np.pi) * ORIENTATION_BINS).astype(int) % ORIENTATION_BINS
    histogram = np.bincount(bins.ravel(), weight.ravel(), ORIENTATION_BINS)
    histogram = np.convolve(np.r_[histogram[-1], histogram, histogram[0]], [1, 2, 1], "valid")
    return float((np.argmax(histogram) + 0.5) / ORIENTATION_BINS * 2 * np.pi - np.pi)


def rotated(frame: np.ndarray, angle: float) -> np.ndarray:
    """``frame`` turned about the patch centre so that the patch's +u axis points along
    ``angle`` (radians, in the patch's own coordinates)."""
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    about_centre = np.array([[1.0, 0, CENTRE], [0, 1.0, CENTRE], [0, 0, 1.0]])
    return frame @ about_centre @ turn @ np.linalg.inv(about_centre)


def region_patches(image: np.ndarray, regions: Regions) -> np.ndarray:
    """``(N, 64, 64)`` uint8 affine- and orientation-normalised patches of ``regions``."""
    levels = pyramid(image)
    patches = np.empty((len(regions), PATCH, PATCH), np.uint8)
    for i, frame in enumerate(affine_frames(regions)):
        upright = cut_patch(levels, frame)
        patches[i] = cut_patch(levels, rotated(frame, dominant_angle(upright)))
    return patches


def mapped_regions(regions: Regions, H: np.ndarray) -> Regions:
    """``regions`` carried by the homography ``H`` (each ellipse through the affine
    linearisation of ``H`` at its centre)."""
    ones = np.c_[regions.centres, np.ones(len(regions))]
    w = ones @ H[2]
    mapped = (ones @ H[:2].T) / w[:, None]
    # Jacobian of x ↦ (H₁₂ x) / (h₃ x): (H₁₂ − x' h₃ᵀ) / w, on the first two columns
    J = (H[None, :2, :2] - mapped[:, :, None] * H[None, 2, :2][:, None, :]) / w[:, None, None]
    return Regions(mapped, J @ regions.shapes @ np.swapaxes(J, 1, 2))


def overlap_error(centre_a, shape_a, centre_b, shape_b) -> float:
    """``1 − |A ∩ B| / |A ∪ B|`` of two ellipses, after scaling both so that ``A`` has a
    radius of :data:`NORMALISED_RADIUS` px (measured on an :data:`OVERLAP_GRID`² raster)."""
    radius_a = np.sqrt(np.sqrt(np.linalg.det(shape_a)))
    factor = NORMALISED_RADIUS / radius_a
    ca, cb = centre_a * factor, centre_b * factor
    ma, mb = shape_a * factor**2, shape_b * factor**2
    half = np.sqrt(np.r_[np.diag(ma), np.diag(mb)]).reshape(2, 2)  # bounding half-widths
    lo = np.minimum(ca - half[0], cb - half[1])
    hi = np.maximum(ca + half[0], cb + half[1])
    xs = np.linspace(lo[0], hi[0], OVERLAP_GRID)
    ys = np.linspace(lo[1], hi[1], OVERLAP_GRID)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    inside_a = _inside(grid, ca, ma)
    inside_b = _inside(grid, cb, mb)
    union = np.count_nonzero(inside_a | inside_b)
    return 1.0 - np.count_nonzero(inside_a & inside_b) / max(union, 1)


def _inside(points: np.ndarray, centre: np.ndarray, shape: np.ndarray) -> np.ndarray:
    d = points - centre
    return np.einsum("ni,ij,nj->n", d, np.linalg.inv(shape), d) <= 1.0


def correspondences(first: Regions, second: Regions, H: np.ndarray) -> np.ndarray:
    """``(N1, N2)`` bool: region ``a`` of the first image and ``b`` of the second (image 1
    mapped by ``H`` onto image N) overlap with error below :data:`MAX_OVERLAP_ERROR`. Pairs
    whose ellipses' bounding circles do not meet are never rasterised."""
    mapped = mapped_regions(first, H)
    reach_a = np.sqrt(np.linalg.eigvalsh(mapped.shapes)[:, 1])
    reach_b = np.sqrt(np.linalg.eigvalsh(second.shapes)[:, 1])
    distance = np.linalg.norm(mapped.centres[:, None] - second.centres[None], axis=2)
    correct = np.zeros((len(first), len(second)), bool)
    for a, b in zip(*np.nonzero(distance < reach_a[:, None] + reach_b[None]), strict=True):
        error = overlap_error(
            mapped.centres[a], mapped.shapes[a], second.centres[b], second.shapes[b]
        )
        correct[a, b] = error < MAX_OVERLAP_ERROR
    return correct


def pair_mean_average_precision(scores: np.ndarray, correct: np.ndarray) -> tuple[float, int]:
    """mAP of a ``(N1, N2)`` score matrix (higher = more alike) against ``correct``, over the
    rows with at least one correspondent, and how many such queries there were."""
    if scores.shape != correct.shape:
        raise StereoError(f"scores {scores.shape} and ground truth {correct.shape} differ")
    queries = np.nonzero(correct.any(axis=1))[0]
    if len(queries) == 0:
        return float("nan"), 0
    ranked = mean_average_precision([scores[q] for q in queries], [correct[q] for q in queries])
    return ranked, len(queries)
