"""The common interface of every patch-comparison network.

Every model takes *raw* patches — ``(B, H, W)`` or ``(B, 1, H, W)``, grey levels in
[0, 255] (uint8 or float) — and handles its own input normalisation, so callers never
hand-normalise. ``H = W = input_size`` (64 for every seed model, the Brown/UBC convention);
models that work internally at 32×32 (L2-Net) or on central/surround streams do the
resampling themselves.

* :meth:`PatchNet.score` — similarity of a batch of pairs, shape ``(B,)``, higher = more
  similar.
* :meth:`DescriptorNet.describe` — for siamese/descriptor models, one vector per patch;
  :meth:`DescriptorNet.compare` turns two descriptor batches into scores, so nearest-neighbour
  search needs each patch described only once.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stereo.errors import StereoError

Normalisation = Literal["unit_mean", "standardise"]

#: Small constant keeping square roots and divisions finite.
EPS = 1e-8


def normalise_patches(x: Tensor, mode: Normalisation) -> Tensor:
    """Normalise raw grey patches per patch.

    Args:
        x: ``(B, C, H, W)`` float, grey levels in [0, 255].
        mode: ``"unit_mean"`` — scale to [0, 1] and subtract each patch's mean (the
            DeepCompare release); ``"standardise"`` — zero mean and unit standard deviation
            per patch (L2-Net release; DeepDesc uses dataset-wide statistics, we use per-patch
            ones so the descriptor is invariant to affine illumination changes).

    Returns:
        ``(B, C, H, W)`` float32.
    """
    x = x.float() / 255.0
    mean = x.mean(dim=(-2, -1), keepdim=True)
    if mode == "unit_mean":
        return x - mean
    std = x.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (x - mean) / (std + 1e-4)


class PatchNet(nn.Module):
    """Base class: a network scoring pairs of patches.

    Subclasses set the class attributes and implement :meth:`forward` on normalised input.
    """

    #: registry name, e.g. ``"2ch-deep"``; set by the registry.
    name: str = ""
    #: side of the raw patch the model expects, pixels; ``None`` = any size (SPP models).
    input_size: int | None = 64
    #: smallest raw patch side accepted when ``input_size`` is None.
    min_input_size: int = 64
    #: per-patch input normalisation.
    normalisation: Normalisation = "unit_mean"
    #: whether the model yields a per-patch descriptor (siamese / descriptor models).
    is_descriptor: bool = False
    #: the model card of the weights loaded (:func:`~stereo.patchnet.weights.load_weights_file`);
    #: empty for untrained or hand-loaded models.
    card: Mapping[str, Any] = MappingProxyType({})

    # ----- input handling -------------------------------------------------------------
    def prepare(self, patches: Tensor) -> Tensor:
        """Check and normalise raw patches.

        Args:
            patches: ``(B, H, W)`` or ``(B, 1, H, W)``, grey levels in [0, 255].

        Returns:
            ``(B, 1, H, W)`` float32 on the model's device, normalised as the model expects.
        """
        if not isinstance(patches, Tensor):
            patches = torch.as_tensor(patches)
        if patches.ndim == 3:
            patches = patches[:, None]
        if patches.ndim != 4 or patches.shape[1] != 1:
            raise StereoError(
                f"{self.name}: expected patches of shape (B, H, W) or (B, 1, H, W), got "
                f"{tuple(patches.shape)}; pass a batch of single-channel grey patches"
            )
        if patches.dtype not in (torch.uint8, torch.float16, torch.float32, torch.float64):
            raise StereoError(
                f"{self.name}: patches have dtype {patches.dtype}; pass uint8 or float grey "
                "levels in [0, 255]"
            )
        h, w = patches.shape[-2:]
        if self.input_size is not None and (h, w) != (self.input_size, self.input_size):
            raise StereoError(
                f"{self.name}: patches are {h}x{w} but the model takes "
                f"{self.input_size}x{self.input_size}; resample them to that size"
            )
        if self.input_size is None and (h < self.min_input_size or w < self.min_input_size):
            raise StereoError(
                f"{self.name}: patches are {h}x{w}, smaller than the minimum "
                f"{self.min_input_size}x{self.min_input_size}"
            )
        device = next(self.parameters()).device
        return normalise_patches(patches.to(device), self.normalisation)

    # ----- scoring --------------------------------------------------------------------
    def forward(self, a: Tensor, b: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Score normalised pairs: ``a, b`` ``(B, 1, H, W)`` → ``(B,)``."""
        raise NotImplementedError

    def score(self, a: Tensor, b: Tensor) -> Tensor:
        """Similarity of raw patch pairs.

        Args:
            a, b: ``(B, H, W)`` or ``(B, 1, H, W)`` grey levels in [0, 255].

        Returns:
            ``(B,)`` float32 scores, higher = more similar.
        """
        pa, pb = self.prepare(a), self.prepare(b)
        if pa.shape[0] != pb.shape[0]:
            raise StereoError(
                f"{self.name}: got {pa.shape[0]} first patches and {pb.shape[0]} second "
                "patches; pass the same number of each"
            )
        return self(pa, pb)


class DescriptorNet(PatchNet):
    """A patch network with a per-patch descriptor (siamese models, CNN3, L2-Net)."""

    is_descriptor = True
    #: length of the descriptor.
    descriptor_size: int = 0
    #: ``"l2"`` — score is minus the Euclidean distance; ``"decision"`` — a learned head.
    metric: Literal["l2", "decision"] = "l2"

    def embed(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Descriptors of normalised patches: ``(B, 1, H, W)`` → ``(B, D)``."""
        raise NotImplementedError

    def compare(self, da: Tensor, db: Tensor) -> Tensor:
        """Scores of descriptor pairs ``(B, D), (B, D)`` → ``(B,)``; default ``-‖a − b‖₂``."""
        return -pair_distance(da, db)

    def describe(self, patches: Tensor) -> Tensor:
        """Descriptors of raw patches ``(B, H, W)`` in [0, 255] → ``(B, D)`` float32."""
        return self.embed(self.prepare(patches))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """Score normalised pairs ``(B, 1, H, W)`` → ``(B,)``."""
        return self.compare(self.embed(a), self.embed(b))


def pair_distance(da: Tensor, db: Tensor) -> Tensor:
    """Euclidean distance of matching rows, ``(B, D), (B, D) → (B,)``, finite gradient at 0."""
    return torch.sqrt(((da - db) ** 2).sum(dim=1) + EPS)


def l2_normalise(x: Tensor) -> Tensor:
    """Rows scaled to unit Euclidean norm, ``(B, D) → (B, D)``."""
    return F.normalize(x, p=2.0, dim=1, eps=EPS)
