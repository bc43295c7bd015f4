"""Cost volumes: the matching cost of every reference pixel under every hypothesis.

A :class:`Sweep` says where each hypothesis sends each reference pixel in the second image
(plane sweep: a homography per depth; rectified pair: a shift per disparity). A *cost*
turns the two images and the sweep into a ``(L, H, W)`` volume, lower = better match, NaN
where the hypothesis leaves the second image. Every cost differs only in how it compares
pixels, so comparisons between learned costs and baselines are fair.

Costs:

* :class:`DescriptorCost` — descriptor networks: per-pixel descriptors of both images
  computed once (:class:`~stereo.cost.dense.DenseDescriptor`); the second image's are
  sampled bilinearly at each hypothesis; cost ``‖a − b‖₂`` (or minus the decision layers'
  score, applied as 1×1 convolutions, for ``siam`` / ``siam-2stream``).
* :class:`TwoChannelCost` — 2-channel networks: the second image is warped to the reference
  for each hypothesis, stacked with it and scored densely.
* :class:`ZNCCCost`, :class:`CensusCost`, :class:`DaisyCost`, :class:`DenseSiftCost` — baselines.
* :class:`FusedCost` — the mean of several costs' normalised volumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from stereo.cost.dense import DenseDescriptor, DenseTwoChannel, normalise_image
from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import plane_homography
from stereo.patchnet.models import DescriptorNet, PatchNet
from stereo.patchnet.models.l2net import L2Net

#: reference rows processed at once when sampling the second image (bounds memory).
ROW_CHUNK = 128
#: channels per ``cv2.remap`` call: OpenCV 5.0 crashes on more than 128 channels when
#: coordinates leave the image (a known limit of its generic remap), 64 is as fast
REMAP_CHANNELS = 64


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

    def __len__(self) -> int:
        return int(self.labels.size)

    def coordinates(self, label: int, rows: slice = slice(None)) -> np.ndarray:
        """``(h, W, 2)`` float32 pixel coordinates ``(x, y)`` in the second image of the
        reference pixels of ``rows`` under hypothesis ``label``."""
        ys = np.arange(self.height, dtype=np.float64)[rows]
        xs = np.arange(self.width, dtype=np.float64)
        gx, gy = np.meshgrid(xs, ys)
        if self.kind == "disparity":
            return np.stack([gx - self.labels[label], gy], axis=-1).astype(np.float32)
        assert self.reference is not None and self.other is not None
        H = plane_homography(self.reference, self.other, float(self.labels[label]))
        return _project(H, np.stack([gx, gy], axis=-1))


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
            reached.append(_apply_homography(back, xy[_inside(xy, oh, ow)].astype(np.float64)))
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
        return _project(self.from_other, xy)

    def inside_other(self, xy: np.ndarray) -> np.ndarray:
        """``(...)`` bool: second-image coordinates ``(..., 2)`` that lie inside it."""
        return _inside(xy, self.other_height, self.other_width)


def _apply_homography(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points mapped by a 3×3 homography (non-finite where they reach infinity
    or fall behind)."""
    p = np.c_[xy, np.ones(len(xy))] @ H.T
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p[:, :2] / p[:, 2:3]
    out[p[:, 2] <= 0] = np.nan
    return out


def _project(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Pixel coordinates ``(..., 2)`` mapped by a 3×3 homography, float32; points that fall
    behind or reach infinity go to −10⁶ (outside every image)."""
    out = _apply_homography(H, xy.reshape(-1, 2).astype(np.float64))
    out[~np.isfinite(out).all(axis=1)] = -1e6
    return out.reshape(xy.shape).astype(np.float32)


def _inside(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(...)`` bool: pixel coordinates ``(..., 2)`` inside a ``height × width`` image."""
    x, y = xy[..., 0], xy[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def sample(image: Tensor, xy: np.ndarray) -> tuple[Tensor, Tensor]:
    """Bilinearly sample ``(C, Hs, Ws)`` at pixel coordinates ``(h, w, 2)``.

    Returns:
        ``(C, h, w)`` values and ``(h, w)`` bool: inside the image.
    """
    _, hs, ws = image.shape
    grid = torch.from_numpy(xy).to(image.device)
    inside = (grid[..., 0] >= 0) & (grid[..., 0] <= ws - 1) & (grid[..., 1] >= 0)
    inside &= grid[..., 1] <= hs - 1
    norm = torch.stack(
        [2 * grid[..., 0] / max(ws - 1, 1) - 1, 2 * grid[..., 1] / max(hs - 1, 1) - 1], dim=-1
    )
    values = F.grid_sample(
        image[None], norm[None], mode="bilinear", padding_mode="border", align_corners=True
    )[0]
    return values, inside


def channel_groups(image: Tensor) -> list[np.ndarray]:
    """A ``(C, H, W)`` CPU map as channel-last float32 arrays ``(H, W, ≤ REMAP_CHANNELS)``,
    the layout :func:`remap_sample` reads."""
    hwc = image.permute(1, 2, 0).float().numpy()
    return [
        np.ascontiguousarray(hwc[..., c : c + REMAP_CHANNELS])
        for c in range(0, hwc.shape[-1], REMAP_CHANNELS)
    ]


def remap_sample(groups: list[np.ndarray], xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample` on the CPU with OpenCV: bilinear with weights rounded to 1/32 pixel
    (``cv2.remap``), 3–4× faster than ``grid_sample`` on many channels, border replicated.

    Args:
        groups: :func:`channel_groups` of a ``(C, Hs, Ws)`` map.
        xy: ``(h, w, 2)`` float32 pixel coordinates.

    Returns:
        ``(h, w, C)`` values and ``(h, w)`` bool: inside the map.
    """
    hs, ws = groups[0].shape[:2]
    x, y = np.ascontiguousarray(xy[..., 0]), np.ascontiguousarray(xy[..., 1])
    parts = []
    for group in groups:
        warped = cv2.remap(group, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        parts.append(warped.reshape(*xy.shape[:2], group.shape[-1]))
    values = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    return values, _inside(xy, hs, ws)


def _to_tensor(image: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)[None, None]


class Cost:
    """Base of the matching costs: :meth:`volume` of two grey uint8 images under a sweep."""

    name = "cost"

    def volume(
        self, reference: np.ndarray, other: np.ndarray, sweep: Sweep, progress: bool = False
    ) -> np.ndarray:
        """``(L, H, W)`` float32 costs (lower = better), NaN outside the second image."""
        raise NotImplementedError

    def volume_pair(
        self,
        reference: np.ndarray,
        other: np.ndarray,
        forward: Sweep,
        backward: Sweep,
        progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Volumes of both directions (left-right checks): ``forward`` sweeps ``reference``
        against ``other``, ``backward`` sweeps ``other`` against ``reference``. Costs that
        describe each image once (descriptor costs) override it to describe them only once."""
        return (
            self.volume(reference, other, forward, progress),
            self.volume(other, reference, backward, progress),
        )


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The arithmetic a network runs in: ``precision`` itself, or for ``"auto"`` bfloat16
    where the device computes it fast — CUDA GPUs with bf16, CPUs whose oneDNN supports
    it (AVX-512) — and float32 elsewhere."""
    if precision not in PRECISIONS:
        raise StereoError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device.type == "cpu":
        try:
            fast = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            fast = False
        return "bfloat16" if fast else "float32"
    return "float32"


def dense_in_precision(
    dense: torch.nn.Module, x: Tensor, precision: str, device: torch.device
) -> Tensor:
    """:func:`dense_in_strips` under bfloat16 autocast when ``precision`` resolves to it
    (:func:`resolve_precision`); float32 out either way."""
    low = resolve_precision(precision, device) == "bfloat16"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low):
        return dense_in_strips(dense, x).float()


class DescriptorCost(Cost):
    """Distance of dense descriptors (descriptor networks, or any per-pixel features).

    L2 costs first project both descriptor maps on their principal components, keeping the
    fewest that hold ``variance_kept`` of the variance (:func:`compress_descriptors`): the
    volume, which reads every descriptor once per hypothesis, gets that many times cheaper
    while distances change by at most the discarded part (``1.0`` turns it off).
    """

    #: share of the descriptor variance the L2 volume keeps (1.0: no compression)
    variance_kept: float = 0.9999
    #: plane sweeps: describe the second image pre-warped by the middle plane (:class:`Prewarp`)
    prewarp: bool = True
    #: pre-warp planes: the labels are split into this many runs, each with its own pre-warp by
    #: its middle plane (one more descriptor pass of the second image each)
    prewarp_planes: int = 1
    #: the network runs on the image resized by this factor (its model card's ``input_scale``:
    #: a network trained on windows cut at twice the working scale has 2)
    input_scale: float = 1.0
    #: ``input_scale`` 2 with l2net: upsample by pixel replication, where the network's own
    #: 2×2 average gives the image back, so its 32×32 tower runs on the image itself (a
    #: quarter of the work; :class:`DenseDescriptor` ``replicated_half``); False: bilinear
    replicated_upsampling: bool = True
    #: the network's arithmetic: "float32", "bfloat16" (autocast: about 2× faster on CPUs
    #: with AVX-512 BF16 and on GPUs; descriptors differ by about 1e-3, and on the Strecha
    #: pairs the depth maps' correctness not at all), or "auto" (:func:`resolve_precision`)
    precision: str = "auto"

    def __init__(self, model: DescriptorNet, device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.name = model.name
        self.dense = DenseDescriptor(self.model)
        self.info: dict[str, float | int] = {}
        self.input_scale = float(getattr(model, "card", {}).get("input_scale", 1.0))

    @torch.no_grad()
    def features(self, image: np.ndarray) -> Tensor:
        """``(D, H, W)`` per-pixel descriptors of a grey uint8 ``(H, W)`` image.

        With ``input_scale`` s ≠ 1 the network describes the image resized by s (bilinear)
        and the descriptors are resampled back to the image's pixels (pixel centres kept:
        for s = 2, the mean of the 2×2 descriptors over each pixel), so each descriptor
        covers 64 / s image pixels. l2net at s = 2 (``replicated_upsampling``): the network
        on the image upsampled by pixel replication, read at the image's pixels — its tower
        on the 32×32 window around each pixel (centred half a pixel up-left of it).
        """
        if self.input_scale == 1.0:
            x = normalise_image(_to_tensor(image, self.device), self.model.normalisation)
            return self._run(self.dense, x)[0]
        if self._replicated_half:
            half = self._half_dense
            x = normalise_image(
                _to_tensor(image, self.device), self.model.normalisation, window=half.window
            )
            return self._run(half, x)[0]
        h, w = image.shape[:2]
        size = (round(w * self.input_scale), round(h * self.input_scale))
        resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        x = normalise_image(_to_tensor(resized, self.device), self.model.normalisation)
        d = self._run(self.dense, x)
        return F.interpolate(d, size=(h, w), mode="bilinear", align_corners=False)[0]

    def _run(self, dense: DenseDescriptor, x: Tensor) -> Tensor:
        """:func:`dense_in_strips` in :attr:`precision`; float32 out."""
        return dense_in_precision(dense, x, self.precision, self.device)

    @cached_property
    def _half_dense(self) -> DenseDescriptor:
        """The l2net half-resolution dense form (built once, on first use)."""
        return DenseDescriptor(self.model, replicated_half=True)

    @property
    def _replicated_half(self) -> bool:
        """Whether :meth:`features` takes the l2net half-resolution form."""
        return (
            self.input_scale == 2.0 and self.replicated_upsampling and isinstance(self.model, L2Net)
        )

    @torch.no_grad()
    def _descriptor_maps(
        self, reference: np.ndarray | Tensor, other: np.ndarray
    ) -> tuple[Tensor, Tensor]:
        """Descriptor maps ``(D, H, W)`` of both images (``reference`` may be its map
        already), compressed together (L2 costs)."""
        d_ref = reference if isinstance(reference, Tensor) else self.features(reference)
        d_other = self.features(other)
        self.info = {"descriptor_dims": int(d_ref.shape[0])}
        if self.model is not None:
            self.info["precision"] = resolve_precision(self.precision, self.device)
        if self.input_scale != 1.0:
            self.info["input_scale"] = self.input_scale
            self.info["replicated_upsampling"] = self._replicated_half
        if getattr(self.model, "head", None) is None and self.variance_kept < 1.0:
            d_ref, d_other, kept = compress_descriptors(d_ref, d_other, self.variance_kept)
            self.info.update(descriptor_dims_kept=int(d_ref.shape[0]), variance_kept=kept)
        return d_ref, d_other

    def _prewarp_groups(self, sweep: Sweep) -> list[np.ndarray] | None:
        """Label indices of each pre-warp (contiguous runs of about equal size), or None
        when the sweep is not pre-warped."""
        if not self.prewarp or sweep.kind != "depth":
            return None
        groups = max(1, min(self.prewarp_planes, len(sweep)))
        return np.array_split(np.arange(len(sweep)), groups)

    @torch.no_grad()
    def volume(self, reference, other, sweep, progress=False):
        head = getattr(self.model, "head", None)
        groups = self._prewarp_groups(sweep)
        if groups is None:
            d_ref, d_other = self._descriptor_maps(reference, other)
            return descriptor_volume(d_ref, d_other, sweep, head, self.name, progress)
        d_ref_raw = self.features(reference)
        out = np.empty((len(sweep), sweep.height, sweep.width), np.float32)
        depths, canvases = [], []
        for labels in groups:
            part = replace(sweep, labels=sweep.labels[labels])
            prewarp = Prewarp.for_sweep(part, other.shape[:2])
            target = other if prewarp is None else prewarp.image(other)
            d_ref, d_other = self._descriptor_maps(d_ref_raw, target)
            out[labels] = descriptor_volume(
                d_ref, d_other, part, head, self.name, progress, prewarp
            )
            if prewarp is not None:
                depths.append(round(prewarp.depth, 4))
                canvases.append([prewarp.width, prewarp.height])
        self.info.update(prewarp_depths_m=depths, prewarp_canvases=canvases)
        return out

    @torch.no_grad()
    def volume_pair(self, reference, other, forward, backward, progress=False):
        if self._prewarp_groups(forward) is not None:  # each direction describes its canvases
            return self.volume(reference, other, forward, progress), self.volume(
                other, reference, backward, progress
            )
        d_ref, d_other = self._descriptor_maps(reference, other)
        head = getattr(self.model, "head", None)
        return (
            descriptor_volume(d_ref, d_other, forward, head, self.name, progress),
            descriptor_volume(d_other, d_ref, backward, head, self.name, progress),
        )


@torch.no_grad()
def compress_descriptors(
    d_ref: Tensor, d_other: Tensor, variance_kept: float = 0.9999, max_samples: int = 100_000
) -> tuple[Tensor, Tensor, float]:
    """Project two ``(D, H, W)`` descriptor maps on their joint principal components.

    The components come from the covariance (float64) of up to ``max_samples`` descriptors
    taken on a regular grid of both maps; the fewest that hold ``variance_kept`` of the total
    variance are kept. L2 distances are invariant to the centring and the rotation, so the
    only change is the discarded variance: ``‖P(a − b)‖ ≤ ‖a − b‖``.

    Returns:
        ``(k, H, W)`` and ``(k, H', W')`` projected maps and the variance share kept (the
        maps themselves when every component is kept).
    """
    d = d_ref.shape[0]
    n = d_ref[0].numel() + d_other[0].numel()
    step = max(1, n // max_samples)
    sample = torch.cat(  # sample first: never copy the full maps
        [d_ref.reshape(d, -1)[:, ::step], d_other.reshape(d, -1)[:, ::step]], dim=1
    ).double()
    mean = sample.mean(dim=1, keepdim=True)
    centred = sample - mean
    eigenvalues, eigenvectors = torch.linalg.eigh(centred @ centred.T / centred.shape[1])
    eigenvalues, eigenvectors = eigenvalues.flip(0).clamp(min=0), eigenvectors.flip(1)
    total = float(eigenvalues.sum())
    if total <= 0:  # constant descriptors: one component says it all
        k = 1
    else:
        share = (eigenvalues.cumsum(0) / total).numpy()
        k = int(np.searchsorted(share, variance_kept - 1e-12) + 1)
    k = min(k, d)
    if k == d:  # a rotation only (decorrelated descriptors such as L2-Net's): skip it
        return d_ref, d_other, 1.0
    P = eigenvectors[:, :k].T.to(d_ref.dtype)
    m = mean.to(d_ref.dtype)[:, 0]

    def project(x: Tensor) -> Tensor:
        return torch.einsum("kd,dhw->khw", P, x - m[:, None, None]).contiguous()

    kept = float(eigenvalues[:k].sum() / total) if total > 0 else 1.0
    return project(d_ref), project(d_other), kept


class TwoChannelCost(Cost):
    """Minus the score of a 2-channel network on the reference and the warped second image."""

    #: the network's arithmetic, as :attr:`DescriptorCost.precision`
    precision: str = "auto"

    def __init__(self, model: PatchNet, device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.name = model.name
        self.dense = DenseTwoChannel(self.model)
        self.info: dict[str, str] = {}

    @torch.no_grad()
    def volume(self, reference, other, sweep, progress=False):
        mode = self.model.normalisation
        self.info = {"precision": resolve_precision(self.precision, self.device)}
        ref = normalise_image(_to_tensor(reference, self.device), mode)
        src = _to_tensor(other, self.device)[0]
        out = np.empty((len(sweep), sweep.height, sweep.width), np.float32)
        for label in tqdm(
            range(len(sweep)), desc=f"cost {self.name}", disable=not progress, leave=False
        ):
            warped, inside = sample(src, sweep.coordinates(label))
            pair = torch.cat([ref, normalise_image(warped[None], mode)], dim=1)
            score = dense_in_precision(self.dense, pair, self.precision, self.device)[0]
            score[~inside] = float("nan")
            out[label] = -score.cpu().numpy()
        return out


def dense_in_strips(dense: torch.nn.Module, x: Tensor, rows: int = 192) -> Tensor:
    """Run a dense network (:class:`DenseDescriptor` / :class:`DenseTwoChannel`) on
    ``(1, C, H, W)`` in horizontal strips of ``rows`` output rows: the image is padded once
    and each strip gets the padded rows its receptive field needs, so the result equals one
    pass over the whole image while memory stays bounded.

    Networks with zero-padded ("same") layers (L2-Net) read up to their summed paddings
    past the window — zeros at the image's edges, image rows inside it — so each strip also
    takes ``window / 2`` rows of context above and below (L2-Net's padded layers reach 11
    rows at dilation 1, 22 at dilation 2), cut off again afterwards.
    """
    from stereo.cost.dense import SPARE, pad_image

    h, w = x.shape[-2:]
    window = dense.window
    context = window // 2
    padded = pad_image(x, window)
    outs = []
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        start = max(0, r0 - context)
        stop = min(padded.shape[-2], r1 + window - 1 + SPARE + context)
        piece = dense._dense(padded[..., start:stop, :])
        outs.append(piece[..., r0 - start : r1 - start, :w])
    return torch.cat(outs, dim=-2)


class ZNCCCost(Cost):
    """``1 − ZNCC`` over a ``window × window`` neighbourhood of the reference and the warped
    second image (costs in [0, 2])."""

    def __init__(self, window: int = 9) -> None:
        self.window = window
        self.name = f"zncc{window}"

    def volume(self, reference, other, sweep, progress=False):
        ref = _to_tensor(reference, torch.device("cpu"))
        src = _to_tensor(other, torch.device("cpu"))[0]
        k = self.window
        box = lambda t: F.avg_pool2d(F.pad(t, (k // 2,) * 4, mode="replicate"), k, 1)  # noqa: E731
        mu_r = box(ref)
        var_r = (box(ref * ref) - mu_r**2).clamp(min=0)
        out = np.empty((len(sweep), sweep.height, sweep.width), np.float32)
        for label in range(len(sweep)):
            warped, inside = sample(src, sweep.coordinates(label))
            w = warped[None]
            mu_w = box(w)
            var_w = (box(w * w) - mu_w**2).clamp(min=0)
            cov = box(ref * w) - mu_r * mu_w
            ncc = cov / torch.sqrt(var_r * var_w + 1e-6)
            cost = (1 - ncc)[0, 0]
            cost[~inside] = float("nan")
            out[label] = cost.numpy()
        return out


class CensusCost(Cost):
    """Hamming distance of ``window × window`` census transforms, averaged over a 5×5
    neighbourhood (costs in [0, 1]: share of differing bits)."""

    def __init__(self, window: int = 7) -> None:
        self.window = window
        self.name = f"census{window}"

    def _census(self, image: Tensor) -> Tensor:
        k, r = self.window, self.window // 2
        padded = F.pad(image, (r, r, r, r), mode="replicate")
        patches = F.unfold(padded, k)  # (1, k², H·W)
        centre = image.reshape(1, 1, -1)
        return (patches < centre).reshape(k * k, *image.shape[-2:])

    def volume(self, reference, other, sweep, progress=False):
        ref = self._census(_to_tensor(reference, torch.device("cpu")))
        src = _to_tensor(other, torch.device("cpu"))[0]
        out = np.empty((len(sweep), sweep.height, sweep.width), np.float32)
        for label in range(len(sweep)):
            warped, inside = sample(src, sweep.coordinates(label))
            bits = self._census(warped[None])
            ham = (bits != ref).float().mean(dim=0)[None, None]
            cost = F.avg_pool2d(F.pad(ham, (2, 2, 2, 2), mode="replicate"), 5, 1)[0, 0]
            cost[~inside] = float("nan")
            out[label] = cost.numpy()
        return out


class HandMadeDescriptorCost(DescriptorCost):
    """A descriptor cost whose per-pixel features come from a fixed algorithm (no network,
    CPU): subclasses set ``name`` and implement :meth:`features`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.model = None
        self.device = torch.device("cpu")
        self.info = {}


class DaisyCost(HandMadeDescriptorCost):
    """L2 distance of dense DAISY descriptors (opencv-contrib; Tola et al.: radius 15,
    3 rings × 8 histograms × 8 orientations = 200-D, full normalisation)."""

    def __init__(self, radius: float = 15.0) -> None:
        super().__init__("daisy")
        self.radius = radius

    def features(self, image: np.ndarray) -> Tensor:
        if not hasattr(cv2, "xfeatures2d"):
            raise StereoError("DAISY needs opencv-contrib-python-headless (cv2.xfeatures2d)")
        daisy = cv2.xfeatures2d.DAISY_create(
            radius=self.radius, q_radius=3, q_theta=8, q_hist=8, norm=cv2.xfeatures2d.DAISY_NRM_FULL
        )
        h, w = image.shape
        ys, xs = np.mgrid[0:h, 0:w]
        keypoints = [
            cv2.KeyPoint(float(x), float(y), 1) for y, x in zip(ys.ravel(), xs.ravel(), strict=True)
        ]
        _, desc = daisy.compute(image, keypoints)
        if desc is None or len(desc) != h * w:
            raise StereoError("OpenCV DAISY did not describe every pixel")
        return torch.from_numpy(desc.reshape(h, w, -1).transpose(2, 0, 1).copy())


class DenseSiftCost(HandMadeDescriptorCost):
    """L2 distance of dense SIFT descriptors (kornia's ``DenseSIFTDescriptor``: 4×4 cells of
    ``cell`` pixels × 8 orientations = 128-D, clipped at 0.2, RootSIFT), one per pixel.

    kornia's cell grid is centred between pixels for 4 cells; the descriptor of pixel ``x``
    here describes the window centred at ``x + ½`` (both images alike, so costs compare
    like with like).
    """

    def __init__(self, cell: int = 8) -> None:
        super().__init__(f"dsift{cell}")
        self.cell = cell

    @torch.no_grad()
    def features(self, image: np.ndarray) -> Tensor:
        try:
            from kornia.feature import DenseSIFTDescriptor
        except ImportError:  # pragma: no cover - kornia is a dependency
            raise StereoError("dense SIFT needs kornia: pip install kornia") from None
        bins = 4
        extent = bins * self.cell  # pixels the 4×4 cells span
        pad = extent // 2
        sift = DenseSIFTDescriptor(
            num_ang_bins=8, num_spatial_bins=bins, spatial_bin_size=self.cell, padding=0
        )
        h, w = image.shape
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32) / 255.0)[None, None]
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        desc = sift(x)[0]
        # output j is centred at input j + (bins − 1)·cell/2 − e/2 of the padded image
        e = 1 if self.cell % 2 == 0 else 0
        first = pad - ((bins - 1) * self.cell - e) // 2
        return desc[:, first : first + h, first : first + w].contiguous()


@torch.no_grad()
def descriptor_volume(
    d_ref: Tensor,
    d_other: Tensor,
    sweep: Sweep,
    head: torch.nn.Sequential | None = None,
    name: str = "descriptor",
    progress: bool = False,
    prewarp: Prewarp | None = None,
    exact_sampling: bool = False,
) -> np.ndarray:
    """``(L, H, W)`` costs from per-pixel descriptors ``(D, H, W)`` of both images (with
    ``prewarp``, ``d_other`` describes that canvas, not the raw second image).

    Without ``head``: ``‖a − b‖₂``. With the decision layers of a ``siam`` model
    (``Linear(2D, 2D) → ReLU → Linear(2D, 1)``): the first layer is split into its
    reference and second-image halves and applied once per image as 1×1 convolutions
    (linear maps commute with bilinear sampling); the cost is minus the score.

    On the CPU the second map is sampled with OpenCV (:func:`remap_sample`, weights to 1/32
    pixel) unless ``exact_sampling``; on other devices with ``grid_sample`` (exact).
    """
    if head is not None:
        first, last = head[0], head[2]
        size = d_ref.shape[0]
        d_ref = torch.einsum("oc,chw->ohw", first.weight[:, :size], d_ref)
        d_ref = d_ref + first.bias[:, None, None]
        d_other = torch.einsum("oc,chw->ohw", first.weight[:, size:], d_other)
    on_cpu = d_other.device.type == "cpu" and not exact_sampling
    if on_cpu:  # channel-last numpy maps for cv2.remap
        other_groups = channel_groups(d_other)
        ref_hwc = d_ref.permute(1, 2, 0).float().contiguous().numpy()
        if head is not None:
            last_w, last_b = last.weight[0].float().numpy(), float(last.bias[0])
    out = np.full((len(sweep), sweep.height, sweep.width), np.nan, np.float32)
    for label in tqdm(range(len(sweep)), desc=f"cost {name}", disable=not progress, leave=False):
        for r0 in range(0, sweep.height, ROW_CHUNK):
            rows = slice(r0, min(r0 + ROW_CHUNK, sweep.height))
            xy = sweep.coordinates(label, rows)
            where = xy if prewarp is None else prewarp.canvas_coordinates(xy)
            if on_cpu:
                b, inside = remap_sample(other_groups, where)
                a = ref_hwc[rows]
                if head is not None:
                    cost = -(np.maximum(a + b, 0) @ last_w + last_b)
                else:
                    cost = np.sqrt(np.square(a - b).sum(axis=-1) + 1e-12)
            else:
                b, inside_t = sample(d_other, where)
                a = d_ref[:, rows]
                if head is not None:
                    score = torch.einsum("chw,c->hw", F.relu(a + b), last.weight[0]) + last.bias[0]
                    cost = (-score).cpu().numpy()
                else:
                    cost = torch.sqrt(((a - b) ** 2).sum(dim=0) + 1e-12).cpu().numpy()
                inside = inside_t.cpu().numpy()
            if prewarp is not None:
                inside &= prewarp.inside_other(xy)
            out[label, rows] = np.where(inside, cost, np.nan)
    return out


class FusedCost(Cost):
    """The mean of the normalised volumes (:func:`~stereo.mrf.graphcut.normalise_volume`,
    each in [0, 1]) of several costs — e.g. a learned cost with ZNCC. NaN where any
    component is NaN."""

    def __init__(self, components: list[Cost]) -> None:
        if len(components) < 2:
            raise StereoError("a fused cost needs at least two components")
        self.components = components
        self.name = ",".join(c.name for c in components)
        self.info: dict[str, float | int] = {}

    def volume(self, reference, other, sweep, progress=False):
        parts = ((c.volume(reference, other, sweep, progress),) for c in self.components)
        return self._mean_normalised(parts)[0]

    def volume_pair(self, reference, other, forward, backward, progress=False):
        return self._mean_normalised(
            c.volume_pair(reference, other, forward, backward, progress) for c in self.components
        )

    def _mean_normalised(self, parts: Iterator[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        """Mean over the components of each normalised volume of their tuples, summed as the
        components produce them (one component's raw volumes in memory at a time)."""
        from stereo.mrf.graphcut import normalise_volume

        totals: list[np.ndarray] = []
        for volumes in parts:
            normalised = [normalise_volume(v) for v in volumes]
            if totals:
                normalised = [t + n for t, n in zip(totals, normalised, strict=True)]
            totals = normalised
        self.info = {k: v for c in self.components for k, v in getattr(c, "info", {}).items()}
        return tuple(t / len(self.components) for t in totals)
