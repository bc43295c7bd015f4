"""What every matching cost is: :class:`Cost`, and how networks run densely in strips and
in the chosen arithmetic."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from stereo.errors import StereoError
from stereo.geometry.sweep import Sweep


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


PRECISIONS = ("auto", "float32", "bfloat16", "int8")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The arithmetic a network runs in: ``precision`` itself, or for ``"auto"`` bfloat16
    where the device computes it fast — CUDA GPUs with bf16, CPUs with native bf16
    instructions (:func:`cpu_has_native_bfloat16`) — and float32 elsewhere."""
    if precision not in PRECISIONS:
        raise StereoError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "int8" and device.type != "cpu":
        raise StereoError(
            f"--precision int8 runs on the CPU only, not on {device.type}; use auto or bfloat16"
        )
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device.type == "cpu":
        return "bfloat16" if cpu_has_native_bfloat16() else "float32"
    return "float32"


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX). oneDNN also runs
    bfloat16 on plain AVX-512 by emulation, which is slower than float32 (2ch-deep's dense
    pass 3.4× slower on an Intel Xeon with AVX-512 but no BF16, session 17), so that does
    not count."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a build without these checks
        return False


def dense_in_precision(
    dense: torch.nn.Module, x: Tensor, precision: str, device: torch.device
) -> Tensor:
    """:func:`dense_in_strips` in ``precision`` (:func:`in_precision`); float32 out."""
    with in_precision(precision, device):
        return dense_in_strips(dense, x).float()


def in_precision(precision: str, device: torch.device) -> torch.autocast:
    """The context a network runs in: bfloat16 autocast when ``precision`` resolves to it
    (:func:`resolve_precision`), plain float32 otherwise."""
    low = resolve_precision(precision, device) == "bfloat16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=low)


def dense_in_strips(dense: torch.nn.Module, x: Tensor, rows: int = 192) -> Tensor:
    """Run a dense network (:class:`DenseDescriptor` / :class:`DenseTwoChannel`) on
    ``(1, C, H, W)`` in horizontal strips of ``rows`` output rows (a 2-channel network with
    an ``output_stride`` s gives ``(⌈H/s⌉, ⌈W/s⌉)`` scores, every s-th pixel): the image is
    padded once and each strip gets the padded rows its receptive field needs
    (:func:`dense_block`), so the result equals one pass over the whole image while memory
    stays bounded."""
    from stereo.cost.dense import pad_image

    h, w = x.shape[-2:]
    stride = getattr(dense, "output_stride", 1)  # scores every stride-th pixel (2ch only)
    if rows % stride:
        raise StereoError(f"strips of {rows} rows do not split into stride-{stride} rows")
    padded = pad_image(x, dense.window)
    blocks = [
        dense_block(dense, padded, (r0, min(r0 + rows, h)), (0, w)) for r0 in range(0, h, rows)
    ]
    return torch.cat(blocks, dim=-2)


def dense_block(
    dense: torch.nn.Module, padded: Tensor, rows: tuple[int, int], cols: tuple[int, int]
) -> Tensor:
    """The dense network's outputs for the pixels ``rows × cols`` (``[start, stop)`` each)
    of an image padded by :func:`~stereo.cost.dense.pad_image`, from the padded pixels
    their receptive fields need only: equal to the same block of one pass over the whole
    image. With an ``output_stride`` s, ``rows[0]`` and ``cols[0]`` must be multiples of s
    and the block holds the grid points (every s-th pixel) inside it.

    Networks with zero-padded ("same") layers (L2-Net, CNN3's subtractive normalisation)
    read up to their summed paddings past the window — zeros at the image's edges, image
    pixels inside it — so each block also takes the network's ``context`` (pixels; ``window
    / 2`` for descriptor networks, 0 for the unpadded 2-channel ones) on every side, cut off
    again afterwards.
    """
    from stereo.cost.dense import SPARE

    stride = getattr(dense, "output_stride", 1)
    if rows[0] % stride or cols[0] % stride:
        raise StereoError(f"a block must start on the stride-{stride} grid, not at {rows, cols}")
    window = dense.window
    context = -(-dense.context // stride) * stride  # a whole number of grid points
    lo_r, hi_r = max(0, rows[0] - context), rows[1] + window - 1 + SPARE + context
    lo_c, hi_c = max(0, cols[0] - context), cols[1] + window - 1 + SPARE + context
    piece = dense._dense(padded[..., lo_r:hi_r, lo_c:hi_c])
    first_r, last_r = (rows[0] - lo_r) // stride, -(-(rows[1] - lo_r) // stride)
    first_c, last_c = (cols[0] - lo_c) // stride, -(-(cols[1] - lo_c) // stride)
    return piece[..., first_r:last_r, first_c:last_c]
