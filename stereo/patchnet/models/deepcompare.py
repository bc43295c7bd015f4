"""DeepCompare networks (Zagoruyko & Komodakis, CVPR 2015), layer lists of REFERENCE.md §1.

Variants are built by composition from three pieces: a trunk (:func:`conv_trunk`), the
central-surround split, and a decision head — 2-channel models stack both patches as input
channels; siamese models run one branch per patch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stereo.patchnet.models.base import DescriptorNet, PatchNet, l2_normalise
from stereo.patchnet.models.layers import (
    SpatialPyramidPool,
    central_crop,
    conv_trunk,
    decision_head,
    he_init,
    surround,
)

TRUNK_2CH = "C(96,7,3) P C(192,5) P C(256,3)"
TRUNK_2CH_DEEP = "C(96,4,3) C(96,3) C(96,3) C(96,3) Pc C(192,3) C(192,3) C(192,3)"
STREAM_2CH = "C(96,5) P C(96,3) P C(192,3) C(192,3)"
STREAM_SIAM = "C(96,4,2) P C(192,3) C(256,3) C(256,3)"


class TwoChannel(PatchNet):
    """2-channel model: both patches as the channels of one image, trunk, decision head.

    ``2ch``: trunk :data:`TRUNK_2CH` → 256 → F(1). ``2ch-deep``: :data:`TRUNK_2CH_DEEP` →
    2×2×192 → F(1). ``2ch-spp``: :data:`TRUNK_2CH` + spatial pyramid pooling, any patch size.
    """

    def __init__(self, trunk: str, features: int, spp_levels: tuple[int, ...] | None = None):
        super().__init__()
        self.trunk = conv_trunk(trunk, 2)
        self.pool: nn.Module = nn.Flatten(1)
        if spp_levels is not None:
            self.pool = SpatialPyramidPool(spp_levels)
            self.input_size = None
        self.head = decision_head([features, 1])
        he_init(self)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """``a, b``: ``(B, 1, H, W)`` normalised → ``(B,)`` scores."""
        x = torch.cat([a, b], dim=1)
        return self.head(self.pool(self.trunk(x)))[:, 0]


class TwoChannel2Stream(PatchNet):
    """``2ch-2stream``: central (centre 32×32 crop) and surround (whole patch 2×2 average-
    pooled) streams over the 2-channel stack, each :data:`STREAM_2CH` → 768; concat 1536 →
    F(768) → F(1)."""

    def __init__(self) -> None:
        super().__init__()
        self.central = conv_trunk(STREAM_2CH, 2)
        self.surround = conv_trunk(STREAM_2CH, 2)
        self.head = decision_head([1536, 768, 1])
        he_init(self)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """``a, b``: ``(B, 1, 64, 64)`` normalised → ``(B,)`` scores."""
        x = torch.cat([a, b], dim=1)
        fc = self.central(central_crop(x, 32)).flatten(1)
        fs = self.surround(surround(x)).flatten(1)
        return self.head(torch.cat([fc, fs], dim=1))[:, 0]


class TwoStreamBranch(nn.Module):
    """Per-patch central + surround streams (:data:`STREAM_SIAM` each) → 512-D descriptor."""

    def __init__(self) -> None:
        super().__init__()
        self.central = conv_trunk(STREAM_SIAM, 1)
        self.surround = conv_trunk(STREAM_SIAM, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 1, 64, 64) → (B, 512)``."""
        fc = self.central(central_crop(x, 32)).flatten(1)
        fs = self.surround(surround(x)).flatten(1)
        return torch.cat([fc, fs], dim=1)


def single_stream_branch() -> nn.Module:
    """The ``siam`` branch: :data:`TRUNK_2CH` on one channel → 256-D."""
    return nn.Sequential(conv_trunk(TRUNK_2CH, 1), nn.Flatten(1))


class Siamese(DescriptorNet):
    """Siamese family.

    * ``head=True``: descriptors concatenated → F(2D) → F(1) (``siam``, ``siam-2stream``).
    * ``head=False``: descriptors L2-normalised, score ``−‖a − b‖₂`` (``*-l2`` models).
    * ``shared=False``: the two branches have their own weights (``pseudo-siam``); the
      descriptor of the second patch of a pair is then :meth:`embed` with ``side=1``.
    """

    def __init__(self, two_stream: bool, head: bool, shared: bool = True) -> None:
        super().__init__()
        make = TwoStreamBranch if two_stream else single_stream_branch
        self.descriptor_size = 512 if two_stream else 256
        self.branch = make()
        self.branch_b = None if shared else make()
        self.metric = "decision" if head else "l2"
        self.head = decision_head([2 * self.descriptor_size] * 2 + [1]) if head else None
        he_init(self)

    def embed(self, x: Tensor, side: int = 0) -> Tensor:
        """``(B, 1, 64, 64)`` normalised → ``(B, D)``; ``side`` picks the pseudo-siamese
        branch (0 = first patch of a pair, 1 = second)."""
        branch = self.branch_b if (side == 1 and self.branch_b is not None) else self.branch
        d = branch(x)
        return d if self.head is not None else l2_normalise(d)

    def compare(self, da: Tensor, db: Tensor) -> Tensor:
        """``(B, D), (B, D) → (B,)``: decision head, or ``−‖a − b‖₂``."""
        if self.head is None:
            return super().compare(da, db)
        return self.head(torch.cat([da, db], dim=1))[:, 0]

    def describe(self, patches: Tensor, side: int = 0) -> Tensor:
        """Descriptors of raw patches ``(B, H, W)`` in [0, 255] → ``(B, D)``."""
        return self.embed(self.prepare(patches), side=side)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """``a, b``: ``(B, 1, 64, 64)`` normalised → ``(B,)`` scores."""
        return self.compare(self.embed(a, 0), self.embed(b, 1))
