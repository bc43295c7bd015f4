"""Building blocks shared by the model families.

Trunks are written in the notation of ``REFERENCE.md`` so that a layer list can be read
against the paper: ``C(n,k[,s])`` convolution + ReLU (no padding), ``P`` 2×2 max-pool stride
2, ``Pc`` the same in ceil mode. :func:`conv_trunk` turns such a string into a module.
"""

from __future__ import annotations

import itertools
import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_TOKEN = re.compile(r"C\((\d+),(\d+)(?:,(\d+))?\)|Pc|P")


def conv_trunk(spec: str, in_channels: int) -> nn.Sequential:
    """Build ``conv → ReLU`` / max-pool layers from REFERENCE notation.

    Args:
        spec: e.g. ``"C(96,7,3) P C(192,5) P C(256,3)"``.
        in_channels: channels of the input (1 for a patch, 2 for a 2-channel stack).

    Returns:
        The layers; an ``(B, in_channels, H, W)`` input gives ``(B, n_last, h, w)``.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    compact = spec.replace(" ", "")
    pos = 0
    while pos < len(compact):
        match = _TOKEN.match(compact, pos)
        if match is None:
            raise ValueError(f"cannot parse layer spec {spec!r} at {compact[pos:]!r}")
        token = match.group(0)
        if token.startswith("C"):
            n, k = int(match.group(1)), int(match.group(2))
            stride = int(match.group(3) or 1)
            layers += [nn.Conv2d(channels, n, k, stride=stride), nn.ReLU(inplace=True)]
            channels = n
        else:
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=token == "Pc"))
        pos = match.end()
    return nn.Sequential(*layers)


def decision_head(sizes: list[int]) -> nn.Sequential:
    """Fully connected layers ``sizes[0] → sizes[1] → … → sizes[-1]``, ReLU between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i > 0:
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def he_init(module: nn.Module) -> None:
    """He (Kaiming) normal initialisation of every convolution and linear layer, zero biases.

    PyTorch's default initialisation shrinks the small DeepCompare inputs (grey levels in
    [0, 1] minus the mean) layer after layer, so SGD stalls at a zero output in the deeper
    models; He initialisation keeps the activation scale through ReLU layers.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def central_crop(x: Tensor, size: int) -> Tensor:
    """Centre ``size × size`` crop of ``(B, C, H, W)`` → ``(B, C, size, size)``."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def surround(x: Tensor) -> Tensor:
    """Whole patch 2×2 average-pooled (the *surround* stream): ``(B,C,H,W) → (B,C,H/2,W/2)``."""
    return F.avg_pool2d(x, 2)


class L2Pool(nn.Module):
    """L2 pooling (DeepDesc): ``sqrt(Σ x²)`` over non-overlapping ``k × k`` windows."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) → (B, C, H // k, W // k)``."""
        k = self.kernel
        return torch.sqrt(F.avg_pool2d(x * x, k, k) * (k * k) + 1e-8)


class SubtractiveNorm(nn.Module):
    """Subtractive normalisation over a Gaussian neighbourhood (Torch7's
    ``SpatialSubtractiveNormalization``): subtract from every feature map the Gaussian-weighted
    mean over the neighbourhood and over all maps, with the weights renormalised at borders.
    """

    def __init__(self, size: int = 5, sigma: float | None = None) -> None:
        super().__init__()
        sigma = sigma if sigma is not None else size / 4.0
        r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        g = torch.exp(-(r**2) / (2 * sigma**2))
        kernel = torch.outer(g, g)
        kernel = (kernel / kernel.sum()).float()
        self.register_buffer("kernel", kernel[None, None], persistent=False)
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) → (B, C, H, W)``."""
        pad = self.size // 2
        mean_map = F.conv2d(x.mean(dim=1, keepdim=True), self.kernel, padding=pad)
        coverage = F.conv2d(torch.ones_like(x[:1, :1]), self.kernel, padding=pad)
        return x - mean_map / coverage


class SpatialPyramidPool(nn.Module):
    """Spatial pyramid pooling: max-pool the map into ``l × l`` bins for each level ``l`` and
    concatenate, so any input size gives a vector of ``C · Σ l²`` values."""

    def __init__(self, levels: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) → (B, C · Σ l²)``."""
        pooled = [F.adaptive_max_pool2d(x, level).flatten(1) for level in self.levels]
        return torch.cat(pooled, dim=1)
