"""Edge-aware fusion: a network's cost volume, with a small-window hand-made cost near depth
edges.

A 2-channel network compares windows of 64 / window-scale working pixels (32 at the
default's scale 2), so where a window straddles a depth edge the nearer surface wins the
whole window and foreground edges fatten by up to half a window. A 7×7 census does not
fatten them so far but is noisier on faint texture. Edge fusion takes each where it is
better:

1. a first pass: the MRF's labels on ``(1 − b) · network + b · hand-made`` (both
   normalised volumes; ``b`` = ``--edge-blend``);
2. its depth edges: neighbours whose labels differ by more than :data:`EDGE_JUMP_LABELS`,
   dilated by ``--edge-radius`` pixels;
3. the volume the final MRF solves: the hand-made cost alone within those edge zones and
   where the reference image is flat (9×9 grey-level std below ``--edge-flat-std``: the
   network's normalised window has nothing to compare), the first pass's blend elsewhere.

Blend, radius and jump chosen by the least sum of mean bad-2 on the held-out synthetic
rectified scenes (dense truth) and castle-P19's rectified pairs (sparse truth), never on a
benchmark pair (``benchmarks/README.md``, session 27; ``benchmarks/results/
edge_fusion_synthetic.md``, ``edge_fusion_castle.md``); the flat rule likewise (session 31).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from stereo.config import EDGE_AUTO, EDGE_OFF, StereoConfig
from stereo.cost.base import Cost
from stereo.cost.factory import cost_of
from stereo.cost.flat import flat_pixels
from stereo.cost.two_channel import TwoChannelCost
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import blended, normalise_volume
from stereo.mrf.optimise import default_cycles, optimise

#: what ``auto`` means for each kind of sweep, for 2-channel networks (other costs: off):
#: census on rectified row searches (held-out synthetic rectified scenes, mean bad-2 0.092
#: against census's 0.106 and the network's 0.142; castle-P19's rectified pairs 0.034 against
#: 0.037 and 0.021); off for plane sweeps (castle-P19's four calibrated pairs: 0.970 / 0.938 /
#: 0.865 correctness@0.05 / 0.02 / 0.01 against 0.982 / 0.970 / 0.918 without it)
AUTO_EDGE_COST = {"depth": EDGE_OFF, "disparity": "census"}
#: a depth edge: neighbouring labels further apart than this many label steps
EDGE_JUMP_LABELS = 5.0


def edge_cost_name(cfg: StereoConfig, cost: Cost, sweep: Sweep) -> str:
    """The hand-made cost a run fuses near depth edges, or ``"none"``: ``cfg.edge_cost``
    (``auto``: :data:`AUTO_EDGE_COST` for ``sweep``'s kind when ``cost`` is a 2-channel
    network, else none)."""
    if cfg.edge_cost != EDGE_AUTO:
        return cfg.edge_cost
    if not isinstance(cost, TwoChannelCost):
        return EDGE_OFF
    return AUTO_EDGE_COST[sweep.kind]


def edge_fusion_config(cfg: StereoConfig, edge_cost: str) -> StereoConfig:
    """``cfg`` with the expansion cycles of both passes' MRFs those of ``edge_cost`` (census:
    2) unless the run sets them: the volumes are half hand-made or more, and one cycle — the
    default network's own, chosen on its volume alone — leaves them short of converged
    (synthetic validation scenes: pair 0 bad-2 0.119 after one cycle, 0.113 after two)."""
    if cfg.mrf.iterations is not None:
        return cfg
    return replace(cfg, mrf=replace(cfg.mrf, iterations=default_cycles(edge_cost)))


def depth_edges(labels: np.ndarray, radius: int, jump: float = EDGE_JUMP_LABELS) -> np.ndarray:
    """``(h, w)`` bool: the pixels within ``radius`` pixels (a square) of a depth edge of
    ``labels`` (``(h, w)`` label indices): two 4-neighbours more than ``jump`` labels apart."""
    lab = labels.astype(np.float32)
    across = np.abs(np.diff(lab, axis=1)) > jump
    down = np.abs(np.diff(lab, axis=0)) > jump
    edges = np.zeros(lab.shape, np.uint8)
    edges[:, :-1] |= across
    edges[:, 1:] |= across
    edges[:-1, :] |= down
    edges[1:, :] |= down
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(edges, kernel).astype(bool)


def edge_fused_volume(
    cfg: StereoConfig,
    learned: np.ndarray,
    images: tuple[np.ndarray, np.ndarray],
    sweep: Sweep,
    values: np.ndarray,
    inverse: bool,
    edge_cost: str,
    handmade: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``(L, h, w)`` volume the final MRF solves (module docstring) from the network's
    normalised volume ``learned`` of ``images`` (reference, other; grey uint8) under
    ``sweep`` (hypotheses ``values``), and what the fusion did. ``handmade``: ``edge_cost``'s
    normalised ``(L, h, w)`` volume of the same images and sweep where the run already has
    it (a cascade that proposed with it at scale 1); else it is computed here."""
    handmade_cost = cost_of(replace(cfg, model=edge_cost))
    if handmade is None:
        handmade = normalise_volume(handmade_cost.volume(*images, sweep))
    first = blended(learned, handmade, cfg.edge_blend)
    first_pass = replace(edge_fusion_config(cfg, edge_cost), sublabel=False, optimizer="graphcut")
    labels = optimise(first, images[0], values, first_pass, inverse)[0]
    edges = depth_edges(labels, cfg.edge_radius)
    flat = flat_pixels(images[0], cfg.edge_flat_std)
    weight = np.where(edges | flat, np.float32(1.0), np.float32(cfg.edge_blend))
    info = {
        "edge_cost": handmade_cost.name,
        "edge_blend": cfg.edge_blend,
        "edge_radius_px": cfg.edge_radius,
        "edge_share": round(float(edges.mean()), 4),
        "edge_flat_std": cfg.edge_flat_std,
        "flat_share": round(float(flat.mean()), 4),
    }
    return blended(learned, handmade, weight), info
