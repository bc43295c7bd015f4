"""2-channel costs: the second image warped to the reference for each hypothesis,
stacked with it and scored densely by the network."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from stereo.cost.base import (
    Cost,
    dense_block,
    dense_in_precision,
    in_precision,
    resolve_precision,
)
from stereo.cost.dense import (
    PATCH,
    SPARE,
    DenseTwoChannel,
    normalise_image,
    pad_image,
    upsample_grid,
)
from stereo.cost.quantized import int8_available, int8_refusal, quantizable
from stereo.cost.sampling import sample, sweep_grid, to_tensor
from stereo.errors import StereoError
from stereo.geometry.sweep import inside_image
from stereo.patchnet.models import PatchNet

#: rows of the blocks :meth:`TwoChannelCost.volume_at` scores (a multiple of every stride)
BLOCK_ROWS = 96
#: needed pixels of one block row closer than this (pixels) are scored in one block
BLOCK_GAP = 64


class TwoChannelCost(Cost):
    """Minus the score of a 2-channel network on the reference and the warped second image.

    ``output_stride`` s > 1 (2ch, 2ch-deep: 2, 3, 6; 2ch-2stream: 2, 4): the network
    scores every s-th pixel of each hypothesis (its first strides kept, about 1/s² of the
    work) and the scores are interpolated bilinearly to every pixel; 0: the weights' model
    card's ``score_stride`` (chosen for them by measurement), else 1.

    ``window_scale`` f > 1: the network reads both working images enlarged f times
    (bicubic; the second one warped at the enlarged pixels), so its 64-pixel window spans
    64 / f working pixels, and each working pixel takes the mean of its f × f enlarged
    scores; the output stride counts enlarged pixels. 0: the card's ``window_scale``, else 1.
    """

    #: the network's arithmetic, as :attr:`DescriptorCost.precision`
    precision: str = "auto"

    def __init__(
        self,
        model: PatchNet,
        device: str | torch.device = "cpu",
        output_stride: int = 0,
        window_scale: int = 0,
    ) -> None:
        card = getattr(model, "card", {})
        if output_stride == 0:
            output_stride = int(card.get("score_stride", 1))
        self.window_scale = window_scale or int(card.get("window_scale", 1))
        if self.window_scale < 1:
            raise StereoError(f"window scale must be 1 or more, not {self.window_scale}")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.name = model.name
        self.dense = DenseTwoChannel(self.model, output_stride)
        self.info: dict[str, str] = {}

    @torch.no_grad()
    def volume(self, reference, other, sweep, progress=False):
        out = torch.empty((len(sweep), sweep.height, sweep.width), device=self.device)
        labels = tqdm(
            range(len(sweep)), desc=f"cost {self.name}", disable=not progress, leave=False
        )
        warps = (sweep_grid(sweep, label, self.device) for label in labels)
        for label, (pair, inside) in enumerate(self._warped_pairs(reference, other, warps)):
            out[label] = -self._scores(pair, inside)
        return out.cpu().numpy()

    @torch.no_grad()
    def volume_at(self, reference, other, sweep, needed: np.ndarray, progress=False):
        """:meth:`volume` computed only where ``needed`` (``(L, H, W)`` bool): the network
        runs on blocks of :data:`BLOCK_ROWS` rows spanning each row's needed pixels
        (:func:`~stereo.cost.base.dense_block`, equal to the full sweep there); other
        entries are +inf (worst after normalisation), NaN outside the second image."""
        out = torch.full((len(sweep), sweep.height, sweep.width), np.inf, device=self.device)
        labels = np.flatnonzero(needed.reshape(len(sweep), -1).any(axis=1))
        shown = tqdm(labels, desc=f"cost {self.name} (band)", disable=not progress, leave=False)
        warps = (sweep_grid(sweep, label, self.device) for label in shown)
        f = self.window_scale
        for label, (pair, inside) in zip(
            labels, self._warped_pairs(reference, other, warps), strict=True
        ):
            score = shrink(self._scores_at(pad_image(pair), enlarge_mask(needed[label], f)), f)
            chosen = torch.from_numpy(needed[label]).to(self.device)
            out[label][chosen] = -score[chosen]
            out[label][~inside] = float("nan")
        return out.cpu().numpy()

    def _warped_pairs(self, reference, other, warps):
        """``(pair, inside)`` for each of ``warps`` (``(H, W, 2)`` second-image coordinates
        of every reference pixel): the normalised reference stacked with the second image
        sampled there (``(1, 2, fH, fW)``, both enlarged by the window scale f), and
        ``(H, W)`` bool: inside the second image."""
        mode, f = self.model.normalisation, self.window_scale
        ref = normalise_image(enlarge(to_tensor(reference, self.device), f), mode)
        src = to_tensor(other, self.device)
        height, width = src.shape[-2:]
        src = enlarge(src, f)[0]
        for count, coordinates in enumerate(warps):
            warped, inside = sample(src, enlarged_grid(coordinates, f))
            if f > 1:  # ``inside`` above is the enlarged pixels'; the working ones' here
                inside = inside_image(coordinates.to(self.device), height, width)
            pair = torch.cat([ref, normalise_image(warped[None], mode)], dim=1)
            if count == 0:
                self._choose_arithmetic(pair)
            yield pair, inside

    def _choose_arithmetic(self, pair: torch.Tensor) -> None:
        """Resolve :attr:`precision` for this volume (:func:`two_channel_precision`) into
        ``info``; for int8, quantize the network with activation ranges observed on strips
        of ``pair`` (the volume's first warped pair, ``(1, 2, H, W)``)."""
        precision = two_channel_precision(self.precision, self.device, self.dense)
        self.info = {"precision": precision}
        strips = calibration_strips(pad_image(pair)) if precision == "int8" else None
        self.dense.quantize(strips)

    @property
    def _arithmetic(self) -> str:
        """The precision :meth:`_choose_arithmetic` resolved for the current volume."""
        return self.info["precision"]

    def _scores(self, pair: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """``(H, W)`` float32 scores of a whole pair (:meth:`_warped_pairs`), NaN outside, on
        the cost's device."""
        score = dense_in_precision(self.dense, pair, self._arithmetic, self.device)
        score = upsample_grid(score, self.dense.output_stride, *pair.shape[-2:])[0].float()
        score = shrink(score, self.window_scale)
        score[~inside] = float("nan")
        return score

    def _scores_at(self, padded: torch.Tensor, needed: np.ndarray) -> torch.Tensor:
        """``(H, W)`` scores of a padded pair, right at the ``needed`` pixels (NaN or
        anything elsewhere): blocks of grid points around them, then interpolation."""
        s = self.dense.output_stride
        h, w = needed.shape
        grid = torch.full((1, -(-h // s), -(-w // s)), float("nan"), device=padded.device)
        with in_precision(self._arithmetic, self.device):
            for rows, cols in needed_blocks(needed, s):
                block = dense_block(self.dense, padded, rows, cols).float()
                top, left = rows[0] // s, cols[0] // s
                grid[:, top : top + block.shape[-2], left : left + block.shape[-1]] = block
        return upsample_grid(grid, s, h, w)[0]


def two_channel_precision(precision: str, device: torch.device, dense: DenseTwoChannel) -> str:
    """A 2-channel network's arithmetic: ``"auto"`` is int8 on the CPU where ``dense``
    can be quantized (:func:`~stereo.cost.quantized.quantizable`) and PyTorch has 8-bit
    kernels (:func:`~stereo.cost.quantized.int8_available`), else as
    :func:`resolve_precision`; ``"int8"`` where it cannot be is refused in one line."""
    can_quantize = quantizable(dense.model, dense.output_stride)
    if precision == "auto" and device.type == "cpu" and can_quantize and int8_available():
        return "int8"
    resolved = resolve_precision(precision, device)
    if resolved == "int8" and not can_quantize:
        raise StereoError(int8_refusal(dense.model, dense.output_stride))
    return resolved


#: rows of each strip of the first warped pair that int8's activation ranges are observed on
CALIBRATION_ROWS = 96
#: strips observed: evenly spread from top to bottom
CALIBRATION_STRIPS = 3


def calibration_strips(padded: torch.Tensor) -> list[torch.Tensor]:
    """``CALIBRATION_STRIPS`` strips of a padded pair (``(1, 2, H, W)``), each the rows
    the network reads for :data:`CALIBRATION_ROWS` rows of scores, evenly spread (fewer
    on a short image), on the CPU."""
    rows = CALIBRATION_ROWS + PATCH - 1 + SPARE
    last = max(padded.shape[-2] - rows, 0)
    steps = max(CALIBRATION_STRIPS - 1, 1)
    tops = sorted({round(last * k / steps) for k in range(CALIBRATION_STRIPS)})
    return [padded[..., top : top + rows, :].float().cpu() for top in tops]


def enlarge(image: torch.Tensor, factor: int) -> torch.Tensor:
    """``(B, C, H, W)`` grey levels enlarged ``factor`` times (bicubic, kept in [0, 255]):
    ``(B, C, factor·H, factor·W)``; ``factor`` 1 returns ``image``."""
    if factor == 1:
        return image
    big = F.interpolate(image.float(), scale_factor=factor, mode="bicubic", align_corners=False)
    return big.clamp(0, 255)


def enlarged_grid(coordinates: torch.Tensor, factor: int) -> torch.Tensor:
    """``(H, W, 2)`` second-image coordinates of the working pixels → ``(fH, fW, 2)`` those
    of the enlarged pixels in the second image enlarged by :func:`enlarge` (pixel centres:
    enlarged ``j`` ↔ working ``(j + 0.5) / f − 0.5``; the coordinates interpolated
    bilinearly — extrapolated linearly by one pixel past the border — so exact for a
    disparity shift)."""
    if factor == 1:
        return coordinates
    grid = coordinates.permute(2, 0, 1)[None].float()
    for dim in (-2, -1):
        first, second = grid.narrow(dim, 0, 1), grid.narrow(dim, 1, 1)
        last, before = grid.narrow(dim, -1, 1), grid.narrow(dim, -2, 1)
        grid = torch.cat([2 * first - second, grid, 2 * last - before], dim=dim)
    grid = F.interpolate(grid, scale_factor=factor, mode="bilinear", align_corners=False)
    grid = grid[..., factor:-factor, factor:-factor]
    return (grid[0].permute(1, 2, 0) + 0.5) * factor - 0.5


def enlarge_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """``(H, W)`` bool → ``(fH, fW)``: each working pixel's f × f enlarged pixels."""
    return mask.repeat(factor, axis=0).repeat(factor, axis=1)


def shrink(scores: torch.Tensor, factor: int) -> torch.Tensor:
    """``(fH, fW)`` scores of enlarged pixels → ``(H, W)``: each working pixel the mean of
    its f × f."""
    if factor == 1:
        return scores
    return F.avg_pool2d(scores[None], factor)[0]


Block = tuple[tuple[int, int], tuple[int, int]]


def needed_blocks(needed: np.ndarray, stride: int = 1) -> list[Block]:
    """Blocks ``((row0, row1), (col0, col1))`` of pixels that cover every ``needed``
    (``(H, W)`` bool) pixel together with the grid points (every ``stride``-th pixel) its
    bilinear interpolation reads: :data:`BLOCK_ROWS` rows each, split along the row where
    needed columns are more than :data:`BLOCK_GAP` apart; starts on the grid. Blocks whose
    bounding box costs the network less than the two apart are then merged
    (:func:`merged_blocks`)."""
    h, w = needed.shape
    blocks: list[Block] = []
    for r0 in range(0, h, BLOCK_ROWS):
        r1 = min(r0 + BLOCK_ROWS, h)
        cols = np.flatnonzero(needed[r0:r1].any(axis=0))
        if cols.size == 0:
            continue
        rows_needed = np.flatnonzero(needed[r0:r1].any(axis=1)) + r0
        row_lo = rows_needed[0] // stride * stride
        row_hi = min(h, _next_grid_point(rows_needed[-1], stride) + 1)
        splits = np.flatnonzero(np.diff(cols) > BLOCK_GAP)
        for first, last in zip(
            np.r_[cols[0], cols[splits + 1]], np.r_[cols[splits], cols[-1]], strict=True
        ):
            col_hi = min(w, _next_grid_point(int(last), stride) + 1)
            blocks.append(((int(row_lo), int(row_hi)), (int(first) // stride * stride, col_hi)))
    return merged_blocks(blocks)


def block_work(block: Block) -> int:
    """Input pixels the network reads for a block: its window's margin on every side."""
    (r0, r1), (c0, c1) = block
    margin = PATCH - 1 + SPARE
    return (r1 - r0 + margin) * (c1 - c0 + margin)


def merged_blocks(blocks: list[Block]) -> list[Block]:
    """``blocks`` with, repeatedly, the pair whose bounding box saves the most
    :func:`block_work` replaced by that box (a box of blocks that start on the grid starts
    on it too): every pixel stays covered, the work never grows."""
    blocks = list(blocks)
    while True:
        best_gain, best = 0, None
        for i, a in enumerate(blocks):
            for j in range(i + 1, len(blocks)):
                b = blocks[j]
                box = (
                    (min(a[0][0], b[0][0]), max(a[0][1], b[0][1])),
                    (min(a[1][0], b[1][0]), max(a[1][1], b[1][1])),
                )
                gain = block_work(a) + block_work(b) - block_work(box)
                if gain > best_gain:
                    best_gain, best = gain, (i, j, box)
        if best is None:
            return blocks
        i, j, box = best
        blocks = [block for k, block in enumerate(blocks) if k not in (i, j)] + [box]


def _next_grid_point(pixel: int, stride: int) -> int:
    """The first grid pixel (multiple of ``stride``) past ``pixel``, or ``pixel`` itself
    when the grid is every pixel."""
    return pixel if stride == 1 else (pixel // stride + 1) * stride
