"""L2-Net and CS L2-Net (Tian, Fan, Wu, CVPR 2017), REFERENCE.md §3.

32×32 input, all convolutional, no biases: C(32,3) C(32,3) C(64,3,2) C(64,3) C(128,3,2)
C(128,3) C(128,8, no padding); batch norm without learned scale/shift after each convolution,
ReLU between, unit-length output (the paper's LRN over the whole descriptor is an L2
normalisation). 1,334,560 parameters.

Raw 64×64 patches (Brown convention) are 2×2 area-averaged to 32×32 inside the model. CS
L2-Net adds a second tower on the central half of the patch (the centre 32×32 of the 64×64
patch, i.e. "cropped and resized" at native resolution); the two 128-D descriptors are
concatenated and divided by √2, so the 256-D descriptor is unit length too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stereo.patchnet.models.base import DescriptorNet, l2_normalise
from stereo.patchnet.models.layers import central_crop

#: (out_channels, kernel, stride, padding) of the seven convolutions.
L2NET_LAYERS = [
    (32, 3, 1, 1),
    (32, 3, 1, 1),
    (64, 3, 2, 1),
    (64, 3, 1, 1),
    (128, 3, 2, 1),
    (128, 3, 1, 1),
    (128, 8, 1, 0),
]


class L2NetTower(nn.Module):
    """One L2-Net tower on ``(B, 1, 32, 32)`` normalised input."""

    def __init__(self) -> None:
        super().__init__()
        convs, norms = [], []
        channels = 1
        for out, kernel, stride, pad in L2NET_LAYERS:
            convs.append(nn.Conv2d(channels, out, kernel, stride, pad, bias=False))
            norms.append(nn.BatchNorm2d(out, affine=False))
            channels = out
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(norms)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``(descriptor (B,128) unit length, first BN output (B,32,32,32),
        last BN output (B,128))`` — the latter two are what E3 / E2 supervise."""
        first = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = norm(conv(x))
            if i == 0:
                first = x
            if i < len(self.convs) - 1:
                x = F.relu(x)
        last = x.flatten(1)
        return l2_normalise(last), first, last


class L2Net(DescriptorNet):
    """L2-Net: 128-D unit descriptor from a 64×64 patch (resampled to 32×32 inside)."""

    normalisation = "standardise"
    descriptor_size = 128

    def __init__(self) -> None:
        super().__init__()
        self.tower = L2NetTower()

    def embed_with_intermediates(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``(B, 1, 64, 64)`` → descriptor ``(B, 128)``, [first BN maps], [last BN maps]."""
        desc, first, last = self.tower(F.avg_pool2d(x, 2))
        return desc, [first], [last]

    def embed(self, x: Tensor) -> Tensor:
        """``(B, 1, 64, 64)`` normalised → ``(B, 128)`` unit vectors."""
        return self.embed_with_intermediates(x)[0]


class CSL2Net(DescriptorNet):
    """CS L2-Net: whole-patch tower + central-half tower, 256-D unit descriptor."""

    normalisation = "standardise"
    descriptor_size = 256

    def __init__(self) -> None:
        super().__init__()
        self.tower = L2NetTower()
        self.central_tower = L2NetTower()

    def embed_with_intermediates(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``(B, 1, 64, 64)`` → descriptor ``(B, 256)``, first and last BN maps per tower."""
        d1, f1, l1 = self.tower(F.avg_pool2d(x, 2))
        d2, f2, l2 = self.central_tower(central_crop(x, 32))
        return torch.cat([d1, d2], dim=1) / math.sqrt(2.0), [f1, f2], [l1, l2]

    def embed(self, x: Tensor) -> Tensor:
        """``(B, 1, 64, 64)`` normalised → ``(B, 256)`` unit vectors."""
        return self.embed_with_intermediates(x)[0]
