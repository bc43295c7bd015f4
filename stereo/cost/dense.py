"""Patch networks run fully convolutionally over whole images, at stride 1.

Every strided layer (convolution stride, pooling) is turned into a stride-1 layer and the
layers after it are dilated by the stride ("filter rarefaction"), so the network's output at
every pixel is computed once for the whole image instead of once per patch. Fully connected
layers become convolutions with the kernel of the map they flattened.

Alignment: the dense output at ``(y, x)`` is the network on the 64×64 patch whose top-left
pixel is ``(y − 32, x − 32)``, i.e. the patch *around* ``(y, x)``; images are reflect-padded
by 32 (top/left) and 31 (bottom/right) so outputs cover the whole image.

Input normalisation: the patch networks normalise each patch by its own mean (and standard
deviation), which cannot be shared between overlapping patches. Densely, each pixel is
normalised by the statistics of the 64×64 window around it (:func:`normalise_image`); the
networks then see exactly what the patch network would see for that normalised image. For
the DeepCompare families (``2ch``, ``2ch-2stream``, ``siam*``) the dense output equals the
patch network on the patch of the normalised image (tested). ``2ch-deep`` (its ceil-mode
pool reads one row past the patch), ``cnn3`` (subtractive normalisation) and ``l2net`` (zero
padding inside the patch) differ from it near patch borders only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stereo.cost.quantized import int8_refusal, plain_network, quantizable, quantized_network
from stereo.errors import StereoError
from stereo.patchnet.models import DescriptorNet, PatchNet
from stereo.patchnet.models.deepcompare import Siamese, TwoChannel, TwoChannel2Stream
from stereo.patchnet.models.deepdesc import CNN3
from stereo.patchnet.models.l2net import CSL2Net, L2Net, L2NetTower
from stereo.patchnet.models.layers import L2Pool, SubtractiveNorm

PATCH = 64
#: extra bottom/right padding: 2ch-deep's ceil-mode pool reads 3 pixels past the patch.
SPARE = 8


def dilated_avg_pool(x: Tensor, kernel: int, dilation: int) -> Tensor:
    """Average over ``kernel × kernel`` samples spaced ``dilation`` apart, stride 1."""
    channels = x.shape[1]
    weight = x.new_full((channels, 1, kernel, kernel), 1.0 / (kernel * kernel))
    return F.conv2d(x, weight, dilation=dilation, groups=channels)


def run_dense(
    layers: nn.Module, x: Tensor, dilation: int, output_stride: int = 1
) -> tuple[Tensor, int]:
    """Run a sequence of layers densely. Returns the output and the dilation after it.

    ``output_stride`` > 1: strided layers keep their strides while the product of those
    kept still divides into it, the others are dilated as usual: the output is the dense
    one sampled every ``output_stride`` pixels (from pixel 0), for about 1/``output_stride²``
    of the work of the layers after the first kept stride. It must be a product of some of
    the network's strides (2ch-deep: 2, 3, 6; 2ch: 2, 3, 4, 6, 12)."""
    kept = 1  # product of the strides kept so far
    for layer in layers if isinstance(layers, nn.Sequential) else [layers]:
        if isinstance(layer, nn.Conv2d):
            stride = layer.stride[0] if output_stride % (kept * layer.stride[0]) == 0 else 1
            pad = layer.padding[0] * dilation if isinstance(layer.padding, tuple) else 0
            x = F.conv2d(
                x,
                layer.weight,
                layer.bias,
                stride=stride,
                padding=pad,
                dilation=dilation * layer.dilation[0],
            )
            kept *= stride
            dilation *= layer.stride[0] // stride
        elif isinstance(layer, nn.MaxPool2d):
            stride = layer.stride if output_stride % (kept * layer.stride) == 0 else 1
            x = F.max_pool2d(x, layer.kernel_size, stride=stride, dilation=dilation)
            kept *= stride
            dilation *= layer.stride // stride
        elif isinstance(layer, L2Pool):
            k = layer.kernel
            x = torch.sqrt(dilated_avg_pool(x * x, k, dilation) * (k * k) + 1e-8)
            dilation *= k
        elif isinstance(layer, SubtractiveNorm):
            x = _dense_subtractive_norm(layer, x, dilation)
        elif isinstance(layer, (nn.ReLU, nn.Tanh, nn.BatchNorm2d)):
            x = layer(x)
        elif isinstance(layer, nn.Flatten):
            break
        else:
            raise StereoError(f"no dense form for layer {type(layer).__name__}")
    if kept != output_stride:
        raise StereoError(
            f"output stride {output_stride} is not a product of the network's first strides"
        )
    return x, dilation


def _dense_subtractive_norm(layer: SubtractiveNorm, x: Tensor, dilation: int) -> Tensor:
    pad = (layer.size // 2) * dilation
    mean_map = F.conv2d(x.mean(dim=1, keepdim=True), layer.kernel, padding=pad, dilation=dilation)
    return x - mean_map


def trunk_shape(layers: nn.Module, channels: int, size: int) -> tuple[int, int, int]:
    """``(C, h, w)`` of the trunk output for one ``size × size`` patch."""
    with torch.no_grad():
        p = next(layers.parameters())
        y = layers(torch.zeros(1, channels, size, size, dtype=p.dtype, device=p.device))
    return tuple(y.shape[1:])  # type: ignore[return-value]


def linear_as_conv(
    linear: nn.Linear,
    shape: tuple[int, int, int],
    x: Tensor,
    dilation: int,
    columns: slice = slice(None),
) -> Tensor:
    """Apply ``linear`` (or the input ``columns`` of it) to a dense map of flattened
    ``shape = (C, h, w)`` trunk outputs, as a dilated ``h × w`` convolution (no bias)."""
    weight = linear.weight[:, columns].reshape(linear.out_features, *shape)
    return F.conv2d(x, weight, dilation=dilation)


def normalise_image(image: Tensor, mode: str, window: int = PATCH) -> Tensor:
    """Dense input normalisation: every pixel by the statistics of the ``window × window``
    patch around it (as the patch networks normalise whole patches).

    Args:
        image: ``(B, 1, H, W)`` grey levels in [0, 255], already padded.
        mode: ``"unit_mean"`` or ``"standardise"`` (see :func:`normalise_patches`).
    """
    x = image.float() / 255.0
    # mean over the window whose top-left is at offset −window/2 from the pixel
    before, after = window // 2, window // 2 - 1
    padded = F.pad(x, (before, after, before, after), mode="replicate")
    mean = box_mean(padded, window)
    if mode == "unit_mean":
        return x - mean
    var = (box_mean(padded * padded, window) - mean * mean).clamp(min=0)
    return (x - mean) / (var.sqrt() + 1e-4)


def box_mean(image: Tensor, window: int) -> Tensor:
    """Mean of every ``window × window`` window of ``(B, C, H, W)`` (valid positions:
    ``(H − window + 1, W − window + 1)``): differences of running sums (float64) along
    each axis, a few operations a pixel whatever the window (a 64-px pooling pass costs
    ~7× more)."""
    x = image.double()
    for dim in (-2, -1):
        sums = x.cumsum(dim)
        sums = torch.cat([torch.zeros_like(sums.narrow(dim, 0, 1)), sums], dim=dim)
        count = x.shape[dim] - window + 1
        x = (sums.narrow(dim, window, count) - sums.narrow(dim, 0, count)) / window
    return x.to(image.dtype)


def pad_image(image: Tensor, window: int = PATCH) -> Tensor:
    """Reflect-pad ``(B, C, H, W)`` so that dense outputs of a network on ``window × window``
    patches cover every pixel (``window / 2`` before, ``window / 2 − 1`` + spare after)."""
    before, after = window // 2, window // 2 - 1 + SPARE
    h, w = image.shape[-2:]
    if min(h, w) <= max(before, after):
        raise StereoError(
            f"the working image is {w}×{h} pixels: learned costs need at least "
            f"{max(before, after) + 1} pixels a side; raise --size or use larger images"
        )
    return F.pad(image, (before, after, before, after), mode="reflect")


class DenseDescriptor(nn.Module):
    """Per-pixel descriptors of a descriptor network: ``(B, 1, H, W)`` normalised image
    (:func:`normalise_image` with window :attr:`window`) → ``(B, D, H, W)``; the descriptor
    at ``(y, x)`` is that of the patch around ``(y, x)``.

    ``replicated_half=True`` (L2-Net only): the network on the image upsampled 2× by pixel
    replication, read at the pixels of the original image. L2-Net area-averages its 64×64
    input 2×2 first, which gives the replicated image's original pixels back, so this is its
    32×32 tower run on the image itself at stride 1 (:attr:`window` 32): a quarter of the
    work of running it on an image upsampled 2×."""

    #: side of the window each descriptor covers, in input pixels
    window: int = PATCH
    #: pixels past the window the zero-padded layers read (L2-Net: up to 22, CNN3's
    #: normalisation too), taken as context around blocks (:func:`dense_block`)
    context: int = PATCH // 2

    def __init__(self, model: DescriptorNet, replicated_half: bool = False) -> None:
        super().__init__()
        if model.name == "pseudo-siam":
            raise StereoError("pseudo-siam has two different branches; use siam or siam-l2")
        if replicated_half and not isinstance(model, L2Net):
            raise StereoError(
                f"{model.name}: only l2net (whose first step is a 2×2 average) has a "
                "half-resolution dense form; drop replicated_half"
            )
        self.model = model.eval()
        self.replicated_half = replicated_half
        self.window = PATCH // 2 if replicated_half else PATCH
        self.context = self.window // 2

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        return self._dense(pad_image(x, self.window))[..., :h, :w]

    def _dense(self, x: Tensor) -> Tensor:
        m = self.model
        if self.replicated_half:
            return _dense_l2net_tower(m.tower, x, 1)
        if isinstance(m, Siamese):
            branch = m.branch
            if hasattr(branch, "central"):
                central, _ = run_dense(branch.central, x, 1)
                surround, _ = run_dense(branch.surround, F.avg_pool2d(x, 2, stride=1), 2)
                h, w = surround.shape[-2:]
                d = torch.cat([central[..., 16 : 16 + h, 16 : 16 + w], surround], dim=1)
            else:
                d, _ = run_dense(branch[0], x, 1)
            return d if m.head is not None else F.normalize(d, dim=1, eps=1e-8)
        if isinstance(m, CNN3):
            d, _ = run_dense(m.features, x, 1)
            return d
        if isinstance(m, L2Net):
            return _dense_l2net_tower(m.tower, F.avg_pool2d(x, 2, stride=1), 2)
        if isinstance(m, CSL2Net):
            d1 = _dense_l2net_tower(m.tower, F.avg_pool2d(x, 2, stride=1), 2)
            d2 = _dense_l2net_tower(m.central_tower, x, 1)
            h, w = d1.shape[-2:]
            return torch.cat([d1, d2[..., 16 : 16 + h, 16 : 16 + w]], dim=1) / 2**0.5
        raise StereoError(f"no dense descriptor for model {m.name!r}")


def _dense_l2net_tower(tower: L2NetTower, x: Tensor, dilation: int) -> Tensor:
    for i, (conv, norm) in enumerate(zip(tower.convs, tower.norms, strict=True)):
        x, dilation = run_dense(nn.Sequential(conv, norm), x, dilation)
        if i < len(tower.convs) - 1:
            x = F.relu(x)
    return F.normalize(x, dim=1, eps=1e-8)


#: 2ch-2stream: offset (pixels) of the central 32×32 crop inside the 64×64 window
CENTRAL_OFFSET = 16


class DenseTwoChannel(nn.Module):
    """Per-pixel scores of a 2-channel network on a stacked pair: ``(B, 2, H, W)``
    normalised (:func:`normalise_image` per channel) → ``(B, H, W)``."""

    #: side of the window each score covers, in input pixels
    window: int = PATCH
    #: the 2-channel networks have no zero padding: a block needs no context around it
    context: int = 0

    def __init__(self, model: PatchNet, output_stride: int = 1) -> None:
        super().__init__()
        if not isinstance(model, (TwoChannel, TwoChannel2Stream)) or model.input_size is None:
            raise StereoError(f"no dense 2-channel form for model {model.name!r}")
        if not isinstance(model, TwoChannel) and CENTRAL_OFFSET % output_stride:
            raise StereoError(
                f"{model.name} scores on a grid of every 1, 2 or 4 pixels, not {output_stride} "
                "(its central window's offset, 16 px, must fall on the grid)"
            )
        self.model = model.eval()
        #: scores every ``output_stride`` pixels (:func:`run_dense`); 1 = every pixel
        self.output_stride = output_stride
        if isinstance(model, TwoChannel):
            self.shape = trunk_shape(model.trunk, 2, PATCH)
        else:
            self.shape = trunk_shape(model.central, 2, 32)
        #: the dense pass in 8-bit integers when set (:meth:`quantize`), else float
        self.quantized: nn.Module | None = None

    def quantize(self, calibration: list[Tensor] | None) -> None:
        """Run the dense pass in 8-bit integers from now on, its activation ranges observed
        on ``calibration`` (padded pairs, ``(1, 2, H, W)`` each; CPU, at the model's full
        output stride: :func:`~stereo.cost.quantized.quantizable`); ``None``: float again."""
        if calibration is None:
            self.quantized = None
            return
        if not quantizable(self.model, self.output_stride):
            raise StereoError(int8_refusal(self.model, self.output_stride))
        self.quantized = quantized_network(plain_network(self.model, self.shape), calibration)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        return self._dense(pad_image(x))[..., :h, :w]

    def _dense(self, x: Tensor) -> Tensor:
        m = self.model
        if self.quantized is not None:
            return self.quantized(x.float())[:, 0]
        if isinstance(m, TwoChannel):
            y, d = run_dense(m.trunk, x, 1, self.output_stride)
            y = linear_as_conv(m.head[0], self.shape, y, d) + m.head[0].bias[:, None, None]
            return y[:, 0]
        stride = self.output_stride
        central, dc = run_dense(m.central, x, 1, stride)
        surround, ds = run_dense(m.surround, F.avg_pool2d(x, 2, stride=1), 2, stride)
        n = self.shape[0] * self.shape[1] * self.shape[2]
        first = m.head[0]
        zs = linear_as_conv(first, self.shape, surround, ds, slice(n, 2 * n))
        zc = linear_as_conv(first, self.shape, central, dc, slice(0, n))
        h, w = zs.shape[-2:]
        top = CENTRAL_OFFSET // stride  # the central crop's corner, in grid points
        z = F.relu(zc[..., top : top + h, top : top + w] + zs + first.bias[:, None, None])
        last = m.head[2]
        return torch.einsum("bchw,c->bhw", z, last.weight[0]) + last.bias[0]


def upsample_grid(scores: Tensor, stride: int, height: int, width: int) -> Tensor:
    """Bilinear interpolation of ``(B, h, w)`` scores on a grid of every ``stride``-th pixel
    (grid point ``i`` at pixel ``stride · i``) to ``(B, height, width)``; pixels past the
    last grid point take its value."""
    if stride == 1:
        return scores[..., :height, :width]
    gh, gw = scores.shape[-2:]
    ys = torch.arange(height, device=scores.device, dtype=torch.float32) / stride
    xs = torch.arange(width, device=scores.device, dtype=torch.float32) / stride
    gy = ys / max(gh - 1, 1) * 2 - 1
    gx = xs / max(gw - 1, 1) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
    grid = grid.expand(scores.shape[0], -1, -1, -1)
    out = F.grid_sample(
        scores[:, None].float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[:, 0]
