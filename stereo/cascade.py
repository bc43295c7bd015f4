"""The cascade of the 2-channel costs: a cheap cost proposes, the network scores a band.

A 2-channel network scores one (pixel, hypothesis) pair at a time, so its full sweep costs
one network pass over the image per label. The cascade runs a cheap cost (ZNCC by default)
through the same MRF first; each pixel's proposed label and the ``band`` labels either side
of it are what the network must score, tile by tile: each tile of the image is scored
over the range of labels its pixels need (:func:`tile_band_mask`; a few outlying proposals
do not widen it) by :meth:`~stereo.cost.two_channel.TwoChannelCost.volume_at`, which equals
the full sweep there; every other entry takes the worst cost. The MRF then runs
on that volume as on any other. With ``--cascade-fuse W`` the volume the MRF sees is the
blend ``(1 − W) · network + W · proposal`` of the two normalised volumes (the proposal's is
computed anyway), and where the reference image is flat (``--cascade-flat-std``) the
proposal's volume alone: a network's normalised window has nothing to compare there.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, NamedTuple

import cv2
import numpy as np

from stereo.config import StereoConfig
from stereo.cost.base import Cost
from stereo.cost.factory import cost_of
from stereo.cost.flat import flat_pixels
from stereo.cost.two_channel import BLOCK_ROWS, TwoChannelCost
from stereo.errors import StereoError
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import blended, normalise_volume
from stereo.mrf.optimise import optimise
from stereo.progress import LOG

#: ``--cascade`` value that turns the cascade off (the full sweep)
FULL_SWEEP = "none"
#: ``--cascade`` value that lets the search decide (:func:`for_search`)
AUTO = "auto"
#: the proposal cost of a cascade asked for by ``auto``
DEFAULT_PROPOSAL = "zncc"
#: what ``auto`` means for each kind of sweep: the ZNCC cascade for plane sweeps (the default's
#: speed), the full sweep for rectified row searches (castle-P19's rectified validation pairs,
#: mean bad-2 0.021 against the cascade's 0.028, benchmarks/results/castle_rectified_full.md)
AUTO_CASCADE = {"depth": DEFAULT_PROPOSAL, "disparity": FULL_SWEEP}


def for_search(cfg: StereoConfig, sweep: Sweep) -> StereoConfig:
    """``cfg`` with ``--cascade auto`` made what :data:`AUTO_CASCADE` says for ``sweep``'s
    kind; any other ``--cascade`` unchanged."""
    if cfg.cascade != AUTO:
        return cfg
    return replace(cfg, cascade=AUTO_CASCADE[sweep.kind])


def cascades(cfg: StereoConfig, cost: Cost, sweep: Sweep) -> bool:
    """Whether a run's cost volume comes from the cascade: a 2-channel cost and
    ``cfg.cascade`` not ``"none"`` (``auto``: as :func:`for_search` makes it for ``sweep``)."""
    cascade = for_search(cfg, sweep).cascade
    return isinstance(cost, TwoChannelCost) and cascade != FULL_SWEEP


def proposal_config(cfg: StereoConfig) -> StereoConfig:
    """The run's configuration for the proposal cost: its own model and smoothness weight,
    ``cfg.cascade_cycles`` expansion cycles (0: winner-take-all), no sub-label refinement
    (the proposal is a label)."""
    cycles = cfg.cascade_cycles
    return replace(
        cfg,
        model=DEFAULT_PROPOSAL if cfg.cascade == AUTO else cfg.cascade,
        optimizer="graphcut" if cycles else "wta",
        mrf=replace(cfg.mrf, smoothness=None, iterations=cycles or cfg.mrf.iterations),
        sublabel=False,
        cascade=FULL_SWEEP,
    )


def band_mask(proposal: np.ndarray, n_labels: int, band: int) -> np.ndarray:
    """``(L, h, w)`` bool: the labels within ``band`` of each pixel's ``proposal``
    (``(h, w)`` label indices)."""
    labels = np.arange(n_labels)[:, None, None]
    return np.abs(labels - proposal[None]) <= band


#: a label is proposed for a tile when at least this share of its pixels propose it
#: (isolated wrong proposals add no labels): ``--cascade-share``'s default
TILE_SHARE = StereoConfig.cascade_share


def tile_band_mask(
    proposal: np.ndarray,
    n_labels: int,
    band: int,
    tile: int = BLOCK_ROWS,
    share: float = TILE_SHARE,
) -> np.ndarray:
    """``(L, h, w)`` bool: for every ``tile × tile`` tile of the image, the labels within
    ``band`` of those that at least ``share`` of its pixels propose (``proposal``:
    ``(h, w)`` label indices). The network runs on whole blocks anyway, so every pixel of
    a tile is scored over the tile's labels; a tile across a depth edge gets the bands of
    both surfaces, not the labels between them."""
    h, w = proposal.shape
    mask = np.zeros((n_labels, h, w), bool)
    every = np.arange(n_labels)[:, None]
    for r0 in range(0, h, tile):
        for c0 in range(0, w, tile):
            cell = proposal[r0 : r0 + tile, c0 : c0 + tile]
            counts = np.bincount(cell.ravel(), minlength=n_labels)
            proposed = counts >= max(1.0, share * cell.size)
            labels = (np.abs(every - np.flatnonzero(proposed)) <= band).any(axis=1)
            mask[labels, r0 : r0 + tile, c0 : c0 + tile] = True
    return mask


def resized_pair(
    images: tuple[np.ndarray, np.ndarray], factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Both images (grey uint8) resized by ``factor`` (area averaging), each to
    ``round(side · factor)`` pixels as :meth:`Sweep.resized` expects."""
    if factor == 1.0:
        return images
    return tuple(  # type: ignore[return-value]
        cv2.resize(
            image,
            (round(image.shape[1] * factor), round(image.shape[0] * factor)),
            interpolation=cv2.INTER_AREA,
        )
        for image in images
    )


def upsampled_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(..., height, width)`` nearest-neighbour upsampling of a label map (or volume)
    ``(..., h, w)`` made on the images resized to ``h × w`` (pixel centres matched as
    :meth:`Camera.scaled` does)."""
    h, w = labels.shape[-2:]
    if (h, w) == (height, width):
        return labels
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(int), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(int), w - 1)
    return labels[..., rows[:, None], cols[None, :]]


def block_means(array: np.ndarray, block: int) -> np.ndarray:
    """``(..., ⌈h/block⌉, ⌈w/block⌉)`` float32 means of ``array`` ``(..., h, w)`` over
    ``block × block`` pixel blocks (the last row and column of blocks padded by repeating
    the edge); NaN entries are left out of a block's mean (NaN where all are)."""
    h, w = array.shape[-2:]
    pad = [(0, 0)] * (array.ndim - 2) + [(0, -h % block), (0, -w % block)]
    padded = np.pad(array.astype(np.float32), pad, mode="edge")
    blocks = padded.reshape(*array.shape[:-2], padded.shape[-2] // block, block, -1, block)
    finite = np.isfinite(blocks)
    counts = finite.sum(axis=(-3, -1))
    sums = np.where(finite, blocks, 0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan).astype(np.float32)


def pooled_labels(
    cfg: StereoConfig, volume: np.ndarray, reference: np.ndarray, block: int
) -> np.ndarray:
    """``(h, w)`` labels of the proposal's MRF (``proposal_config``) on ``volume``
    (``(L, h, w)`` normalised) and ``reference`` (grey ``(h, w)``) averaged over
    ``block × block`` pixel blocks, each block's label repeated over its pixels."""
    h, w = reference.shape
    if block > 1:
        volume = block_means(volume, block)
        reference = np.rint(block_means(reference, block)).astype(np.uint8)
    hypotheses = np.arange(volume.shape[0], dtype=float)
    labels = optimise(volume, reference, hypotheses, proposal_config(cfg))[0]
    small_h, small_w = labels.shape
    return upsampled_labels(labels, small_h * block, small_w * block)[:h, :w]


def proposal(
    cfg: StereoConfig, proposer: Cost, images: tuple[np.ndarray, np.ndarray], sweep: Sweep
) -> tuple[np.ndarray, np.ndarray]:
    """The proposal cost's ``(h, w)`` label indices — from its MRF (or winner-take-all) on
    the images resized by ``cfg.cascade_scale`` and its volume there averaged over
    ``cfg.cascade_pool`` pixel blocks, upsampled to the reference's size — and its
    normalised ``(L, h', w')`` volume at that scale (neither upsampled nor averaged)."""
    small = resized_pair(images, cfg.cascade_scale)
    proposed = normalise_volume(proposer.volume(*small, sweep.resized(cfg.cascade_scale)))
    labels = pooled_labels(cfg, proposed, small[0], cfg.cascade_pool)
    return upsampled_labels(labels, *images[0].shape), proposed


def proposed_labels(
    cfg: StereoConfig, proposer: Cost, images: tuple[np.ndarray, np.ndarray], sweep: Sweep
) -> np.ndarray:
    """``(h, w)`` label indices of the proposal cost (:func:`proposal`)."""
    return proposal(cfg, proposer, images, sweep)[0]


def fused_volume(
    learned: np.ndarray, proposed: np.ndarray, weight: float | np.ndarray
) -> np.ndarray:
    """``(L, h, w)`` float32 ``(1 − weight) · normalised learned + weight · proposed``: the
    network's raw volume (worst cost where unscored) blended with the proposal cost's
    normalised volume upsampled to the same shape, ``weight`` a number or an ``(h, w)``
    map; NaN where a volume with a share is (:func:`~stereo.mrf.graphcut.blended`)."""
    return blended(normalise_volume(learned), proposed, weight)


#: the proposal cost's share of the volume the MRF sees when neither ``--cascade-fuse`` nor
#: the weights' model card (``cascade_fuse``) gives one (session 15, castle-P19, four pairs,
#: 2ch-deep at window scale 1: 0.976 / 0.955 / 0.896 against 0.973 / 0.945 / 0.866 unfused;
#: results/castle_variants.md)
DEFAULT_FUSE = 0.5


def proposal_weight(cfg: StereoConfig, cost: TwoChannelCost) -> float:
    """The blend weight W of the proposal cost (``--cascade-fuse``): the run's own, else
    the network's model card's ``cascade_fuse`` (chosen for those weights on castle-P19),
    else :data:`DEFAULT_FUSE`."""
    if cfg.cascade_fuse is not None:
        return cfg.cascade_fuse
    card = getattr(cost.model, "card", {})
    weight = float(card.get("cascade_fuse", DEFAULT_FUSE))
    if not 0.0 <= weight < 1.0:
        raise StereoError(
            f"model card of {cost.name} gives cascade_fuse {weight}; it must lie in [0, 1)"
        )
    return weight


class SweptVolume(NamedTuple):
    """A run's raw cost volume and what came with it."""

    #: ``(L, h, w)`` the cost's raw volume (through the cascade where the run cascades)
    raw: np.ndarray
    #: what the cascade did (:func:`cascade_volume`); None without a cascade
    cascade: dict[str, Any] | None = None
    #: the cascade's proposal cost (its model name) and its normalised ``(L, h, w)`` volume
    #: when it was computed at the reference's own size (``--cascade-scale 1``), so that edge
    #: fusion with the same hand-made cost need not compute it again; else None
    proposal: tuple[str, np.ndarray] | None = None


def cascade_volume(
    cfg: StereoConfig,
    cost: TwoChannelCost,
    images: tuple[np.ndarray, np.ndarray],
    sweep: Sweep,
    progress: bool = False,
) -> SweptVolume:
    """The 2-channel cost volume ``(L, h, w)`` of ``images`` (reference, other; grey uint8)
    scored in the band around the proposal cost's MRF labels, what the cascade did
    (proposal model, band, share of the volume scored, proposal seconds) and, at cascade
    scale 1, the proposal's volume (:class:`SweptVolume`)."""
    start = time.time()
    proposer_cfg = proposal_config(cfg)
    proposer = cost_of(proposer_cfg)
    if isinstance(proposer, TwoChannelCost):
        raise StereoError(
            f"--cascade {cfg.cascade} is itself a 2-channel cost; propose with a cheap one "
            "(zncc, census or a descriptor model)"
        )
    labels, proposed = proposal(cfg, proposer, images, sweep)
    needed = tile_band_mask(labels, len(sweep), cfg.cascade_band, share=cfg.cascade_share)
    seconds, scored = time.time() - start, float(needed.mean())
    LOG.info(
        "cascade: %s proposed the labels in %.1f s; %s scores %.0f %% of the volume",
        proposer.name,
        seconds,
        cost.name,
        100 * scored,
    )
    raw = cost.volume_at(*images, sweep, needed, progress=progress)
    weight = proposal_weight(cfg, cost)
    flat = flat_pixels(images[0], cfg.cascade_flat_std)
    if weight or flat.any():
        full_size = upsampled_labels(proposed, *images[0].shape)
        raw = fused_volume(raw, full_size, np.where(flat, np.float32(1.0), np.float32(weight)))
    info = {
        "proposal": proposer.name,
        "band_labels": cfg.cascade_band,
        "proposal_scale": cfg.cascade_scale,
        "proposal_cycles": cfg.cascade_cycles,
        "proposal_pool_px": cfg.cascade_pool,
        "proposal_weight": weight,
        "flat_std": cfg.cascade_flat_std,
        "flat_share": round(float(flat.mean()), 4),
        "tile_share": cfg.cascade_share,
        "scored_fraction": round(scored, 4),
        "proposal_seconds": round(seconds, 2),
    }
    same_size = proposed.shape[-2:] == images[0].shape
    return SweptVolume(raw, info, (proposer_cfg.model, proposed) if same_size else None)


def sweep_volume(
    cfg: StereoConfig,
    cost: Cost,
    images: tuple[np.ndarray, np.ndarray],
    sweep: Sweep,
    progress: bool = False,
) -> SweptVolume:
    """The raw ``(L, h, w)`` volume of ``images`` under ``sweep`` as a run computes it:
    through the cascade when :func:`cascades` (with what it did and its proposal's volume),
    else ``cost.volume`` alone."""
    if cascades(cfg, cost, sweep):
        return cascade_volume(cfg, cost, images, sweep, progress)
    return SweptVolume(cost.volume(*images, sweep, progress=progress))
