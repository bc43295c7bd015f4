"""Descriptor costs: per-pixel descriptors of both images computed once, the second
image's sampled at each hypothesis; cost ``‖a − b‖₂`` or minus a siamese head's score."""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from stereo.cost.base import Cost, dense_in_precision, resolve_precision
from stereo.cost.dense import DenseDescriptor, normalise_image
from stereo.cost.sampling import ROW_CHUNK, channel_groups, remap_sample, sample, to_tensor
from stereo.errors import StereoError
from stereo.geometry.sweep import Prewarp, Sweep
from stereo.patchnet.models import DescriptorNet
from stereo.patchnet.models.l2net import L2Net


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

        With ``input_scale`` s ≠ 1 the network describes the image resized by s (bilinear;
        by pixel replication at s = 2, :attr:`_upsampling`)
        and the descriptors are resampled back to the image's pixels (pixel centres kept:
        for s = 2, the mean of the 2×2 descriptors over each pixel), so each descriptor
        covers 64 / s image pixels. l2net at s = 2 (``replicated_upsampling``): the network
        on the image upsampled by pixel replication, read at the image's pixels — its tower
        on the 32×32 window around each pixel (centred half a pixel up-left of it).
        """
        if self.input_scale == 1.0:
            x = normalise_image(to_tensor(image, self.device), self.model.normalisation)
            return self._run(self.dense, x)[0]
        if self._replicated_half:
            half = self._half_dense
            x = normalise_image(
                to_tensor(image, self.device), self.model.normalisation, window=half.window
            )
            return self._run(half, x)[0]
        h, w = image.shape[:2]
        size = (round(w * self.input_scale), round(h * self.input_scale))
        resized = cv2.resize(image, size, interpolation=self._upsampling)
        x = normalise_image(to_tensor(resized, self.device), self.model.normalisation)
        d = self._run(self.dense, x)
        return F.interpolate(d, size=(h, w), mode="bilinear", align_corners=False)[0]

    def _run(self, dense: DenseDescriptor, x: Tensor) -> Tensor:
        """:func:`dense_in_strips` in :attr:`precision`; float32 out."""
        if self.precision == "int8":
            raise StereoError(
                f"--precision int8 runs the 2-channel networks only, not {self.name}; "
                "use auto, float32 or bfloat16"
            )
        return dense_in_precision(dense, x, self.precision, self.device)

    @cached_property
    def _half_dense(self) -> DenseDescriptor:
        """The l2net half-resolution dense form (built once, on first use)."""
        return DenseDescriptor(self.model, replicated_half=True)

    @property
    def _upsampling(self) -> int:
        """OpenCV interpolation of the resize to ``input_scale``: pixel replication at
        ``input_scale`` 2 with :attr:`replicated_upsampling` (as the synthetic stereo windows
        are replicated to the network's input), else bilinear."""
        if self.input_scale == 2.0 and self.replicated_upsampling:
            return cv2.INTER_NEAREST
        return cv2.INTER_LINEAR

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
        share = (eigenvalues.cumsum(0) / total).cpu().numpy()
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
