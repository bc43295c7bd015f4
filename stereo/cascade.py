"""The cascade of the 2-channel costs: a cheap cost proposes, the network scores a band.

A 2-channel network scores one (pixel, hypothesis) pair at a time, so its full sweep costs
one network pass over the image per label. The cascade runs a cheap cost (ZNCC by default)
through the same MRF first; each pixel's proposed label and the ``band`` labels either side
of it are all the network scores (:meth:`~stereo.cost.two_channel.TwoChannelCost.volume_at`,
equal to the full sweep there), every other entry takes the worst cost. The MRF then runs
on that volume as on any other.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from stereo.config import StereoConfig
from stereo.cost.base import Cost
from stereo.cost.factory import cost_of
from stereo.cost.two_channel import TwoChannelCost
from stereo.errors import StereoError
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import normalise_volume
from stereo.mrf.optimise import optimise

#: ``--cascade`` value that turns the cascade off (the full sweep)
FULL_SWEEP = "none"


def cascades(cfg: StereoConfig, cost: Cost) -> bool:
    """Whether a run's cost volume comes from the cascade: a 2-channel cost and
    ``cfg.cascade`` not ``"none"``."""
    return isinstance(cost, TwoChannelCost) and cfg.cascade != FULL_SWEEP


def proposal_config(cfg: StereoConfig) -> StereoConfig:
    """The run's configuration for the proposal cost: its own model and smoothness weight,
    no sub-label refinement (the proposal is a label)."""
    return replace(
        cfg,
        model=cfg.cascade,
        mrf=replace(cfg.mrf, smoothness=None),
        sublabel=False,
        cascade=FULL_SWEEP,
    )


def band_mask(proposal: np.ndarray, n_labels: int, band: int) -> np.ndarray:
    """``(L, h, w)`` bool: the labels within ``band`` of each pixel's ``proposal``
    (``(h, w)`` label indices)."""
    labels = np.arange(n_labels)[:, None, None]
    return np.abs(labels - proposal[None]) <= band


def cascade_volume(
    cfg: StereoConfig,
    cost: TwoChannelCost,
    images: tuple[np.ndarray, np.ndarray],
    sweep: Sweep,
    progress: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The 2-channel cost volume ``(L, h, w)`` of ``images`` (reference, other; grey uint8)
    scored in the band around the proposal cost's MRF labels, and what the cascade did
    (proposal model, band, share of the volume scored, proposal seconds)."""
    start = time.time()
    proposal_cfg = proposal_config(cfg)
    proposer = cost_of(proposal_cfg)
    if isinstance(proposer, TwoChannelCost):
        raise StereoError(
            f"--cascade {cfg.cascade} is itself a 2-channel cost; propose with a cheap one "
            "(zncc, census or a descriptor model)"
        )
    reference, other = images
    proposed = normalise_volume(proposer.volume(reference, other, sweep))
    labels = optimise(proposed, reference, np.arange(len(sweep), dtype=float), proposal_cfg)[0]
    needed = band_mask(labels, len(sweep), cfg.cascade_band)
    seconds = time.time() - start
    raw = cost.volume_at(reference, other, sweep, needed, progress=progress)
    info = {
        "proposal": proposer.name,
        "band_labels": cfg.cascade_band,
        "scored_fraction": round(float(needed.mean()), 4),
        "proposal_seconds": round(seconds, 2),
    }
    return raw, info
