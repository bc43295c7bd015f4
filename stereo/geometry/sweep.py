"""Hypotheses of a stereo search: where each one sends each reference pixel.

* :class:`Sweep` — plane sweep (a homography per depth) or rectified row shifts.
* :class:`Prewarp` — the second image resampled into the reference's view by one plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import plane_homography


@dataclass
class Sweep:
    """Hypotheses of a reference image of ``height × width`` pixels.

    Exactly one of the geometries is set: ``reference``/``other`` cameras with ``labels`` =
    depths (plane sweep), or ``labels`` = disparities of a rectified pair (the second image's
    pixel is ``x − d``).
    """

    labels: np.ndarray
    height: int
    width: int
    kind: str  # "depth" | "disparity"
    reference: Camera | None = None
    other: Camera | None = None

    @classmethod
    def planes(cls, reference: Camera, other: Camera, depths: np.ndarray) -> Sweep:
        """Fronto-parallel planes of the reference camera at ``depths`` (metres)."""
        return cls(
            np.asarray(depths, float), reference.height, reference.width, "depth", reference, other
        )

    @classmethod
    def disparities(cls, height: int, width: int, disparities: np.ndarray) -> Sweep:
        """Row-aligned shifts of a rectified pair (reference = left image)."""
        return cls(np.asarray(disparities, float), height, width, "disparity")

    def resized(self, factor: float) -> Sweep:
        """The same hypotheses for both images resized by ``factor`` (pixel centres at
        integers, :meth:`Camera.scaled`): scaled cameras, or disparities times ``factor``."""
        if self.kind == "disparity":
            height, width = round(self.height * factor), round(self.width * factor)
            return Sweep.disparities(height, width, self.labels * factor)
        assert self.reference is not None and self.other is not None
        return Sweep.planes(self.reference.scaled(factor), self.other.scaled(factor), self.labels)

    def __len__(self) -> int:
        return int(self.labels.size)

    def coordinates(self, label: int, rows: slice = slice(None)) -> np.ndarray:
        """``(h, W, 2)`` float32 pixel coordinates ``(x, y)`` in the second image of the
        reference pixels of ``rows`` under hypothesis ``label``."""
        ys = np.arange(self.height, dtype=np.float64)[rows]
        xs = np.arange(self.width, dtype=np.float64)
        if self.kind == "disparity":
            gx, gy = np.meshgrid(xs, ys)
            return np.stack([gx - self.labels[label], gy], axis=-1).astype(np.float32)
        assert self.reference is not None and self.other is not None
        H = plane_homography(self.reference, self.other, float(self.labels[label]))
        return project_grid(H, ys, xs)


@dataclass
class Prewarp:
    """The second image resampled into the reference's view by the homography of one plane
    of a plane sweep (the middle label), on a canvas that holds every pixel a hypothesis of
    the sweep can reach.

    Descriptor costs describe this canvas instead of the raw second image: the perspective
    distortion between the views is undone for surfaces near that plane, as the per-label
    warp of the window costs (ZNCC, census, 2-channel nets) undoes it for each label, at the
    price of one warp. Canvas pixel ``(u, v)`` sits at reference coordinates
    ``(u + x0, v + y0)``.
    """

    to_other: np.ndarray  # (3, 3) canvas pixel → second-image pixel
    height: int  # canvas size, pixels
    width: int
    other_height: int  # the second image's size, pixels
    other_width: int
    depth: float  # the plane's depth, metres

    #: the canvas spans at most this many reference widths / heights
    MAX_SPAN = 2.0

    @classmethod
    def for_sweep(cls, sweep: Sweep, other_shape: tuple[int, int]) -> Prewarp | None:
        """The pre-warp of a plane sweep onto an ``other_shape`` = ``(H, W)`` second image,
        or None for rectified sweeps (shifts distort nothing) and degenerate geometry."""
        if sweep.kind != "depth" or sweep.reference is None or sweep.other is None:
            return None
        depth = float(sweep.labels[len(sweep) // 2])
        plane = plane_homography(sweep.reference, sweep.other, depth)
        if not np.isfinite(plane).all() or abs(np.linalg.det(plane)) < 1e-12:
            return None
        back = np.linalg.inv(plane)
        oh, ow = other_shape
        reached = []
        ys = np.linspace(0, sweep.height - 1, 17)
        for label in np.unique(np.linspace(0, len(sweep) - 1, 17).round().astype(int)):
            xy = sweep.coordinates(label)[np.round(ys).astype(int)][:, ::16].reshape(-1, 2)
            reached.append(apply_homography(back, xy[inside_image(xy, oh, ow)].astype(np.float64)))
        points = np.concatenate(reached)
        points = points[np.isfinite(points).all(axis=1)]
        if len(points) == 0:
            return None
        margin = 24  # grid spacing: reached points between the sampled ones
        lo_x = max(points[:, 0].min() - margin, -(cls.MAX_SPAN - 1) / 2 * sweep.width)
        hi_x = min(points[:, 0].max() + margin, (cls.MAX_SPAN + 1) / 2 * sweep.width)
        lo_y = max(points[:, 1].min() - margin, -(cls.MAX_SPAN - 1) / 2 * sweep.height)
        hi_y = min(points[:, 1].max() + margin, (cls.MAX_SPAN + 1) / 2 * sweep.height)
        x0, y0 = int(np.floor(lo_x)), int(np.floor(lo_y))
        width, height = int(np.ceil(hi_x)) - x0 + 1, int(np.ceil(hi_y)) - y0 + 1
        if width < 2 or height < 2:
            return None
        shift = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
        return cls(plane @ shift, height, width, oh, ow, depth)

    def image(self, other: np.ndarray) -> np.ndarray:
        """The canvas ``(height, width)``: ``other`` (grey uint8) resampled bilinearly."""
        return cv2.warpPerspective(
            other,
            self.to_other,
            (self.width, self.height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )

    @cached_property
    def from_other(self) -> np.ndarray:
        """``(3, 3)`` second-image pixel → canvas pixel."""
        return np.linalg.inv(self.to_other)

    def canvas_coordinates(self, xy: np.ndarray) -> np.ndarray:
        """Canvas coordinates ``(..., 2)`` float32 of second-image pixel coordinates."""
        return project_points(self.from_other, xy)

    def inside_other(self, xy: np.ndarray) -> np.ndarray:
        """``(...)`` bool: second-image coordinates ``(..., 2)`` that lie inside it."""
        return inside_image(xy, self.other_height, self.other_width)


def apply_homography(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points mapped by a 3×3 homography (non-finite where they reach infinity
    or fall behind)."""
    p = np.c_[xy, np.ones(len(xy))] @ H.T
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p[:, :2] / p[:, 2:3]
    out[p[:, 2] <= 0] = np.nan
    return out


def project_points(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Pixel coordinates ``(..., 2)`` mapped by a 3×3 homography, float32; points that fall
    behind or reach infinity go to −10⁶ (outside every image)."""
    out = apply_homography(H, xy.reshape(-1, 2).astype(np.float64))
    out[~np.isfinite(out).all(axis=1)] = -1e6
    return out.reshape(xy.shape).astype(np.float32)


def project_grid(H: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """:func:`project_points` of the pixel grid ``ys × xs`` (1-D float64 rows and columns):
    ``(len(ys), len(xs), 2)`` float32 — the same values, from row and column terms
    broadcast (about 6× faster than projecting every point's homogeneous vector)."""
    x, y = xs[None, :], ys[:, None]
    w = H[2, 0] * x + (H[2, 1] * y + H[2, 2])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = (H[0, 0] * x + (H[0, 1] * y + H[0, 2])) / w
        v = (H[1, 0] * x + (H[1, 1] * y + H[1, 2])) / w
    out = np.stack([u, v], axis=-1)
    out[(w <= 0) | ~np.isfinite(out).all(axis=-1)] = -1e6
    return out.astype(np.float32)


def inside_image(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(...)`` bool: pixel coordinates ``(..., 2)`` inside a ``height × width`` image."""
    x, y = xy[..., 0], xy[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
