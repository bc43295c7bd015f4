"""Sub-label refinement: a continuous depth (or disparity) below the label step.

After the MRF has chosen a label ``l`` at a pixel, a parabola through the pixel's normalised
costs at ``l − 1``, ``l`` and ``l + 1`` has its minimum at the offset

    δ = (c₋ − c₊) / (2 (c₋ − 2 c₀ + c₊)),   clipped to [−½, ½],

where the three costs are known and convex (``c₋ − 2 c₀ + c₊ > 0``); elsewhere δ = 0. Where
the MRF chose a label off the pixel's own cost minimum, δ is clipped to the label's bin. The
refined hypothesis is interpolated at ``l + δ`` in the space where the labels are uniform:
inverse depth for a plane sweep, disparity for a row search.
"""

from __future__ import annotations

import numpy as np

#: what to do where the parabola's minimum lies beyond the chosen label's bin (|δ| > ½: the
#: MRF chose a label that is not a local minimum of the pixel's own costs): "clip" δ to ±½
#: (the default: better at τ = 0.01 and 0.02 on castle-P19 for the default cost and ZNCC,
#: benchmarks/results/sublabel_castle.md) or "keep" the label (δ = 0)
BEYOND_BIN = ("clip", "keep")


def sublabel_offsets(
    volume: np.ndarray, labels: np.ndarray, beyond_bin: str = "clip"
) -> np.ndarray:
    """``(h, w)`` float32 offsets δ in [−½, ½] of each pixel's cost minimum from its label.

    Args:
        volume: ``(L, h, w)`` normalised costs, NaN = invalid hypothesis.
        labels: ``(h, w)`` chosen label indices.
        beyond_bin: see :data:`BEYOND_BIN`.
    """
    n_labels = volume.shape[0]
    if n_labels < 3:
        return np.zeros(labels.shape, np.float32)
    inner = np.clip(labels, 1, n_labels - 2)
    costs = [np.take_along_axis(volume, (inner + d)[None], axis=0)[0] for d in (-1, 0, 1)]
    before, centre, after = (c.astype(np.float64) for c in costs)
    curvature = before - 2 * centre + after
    usable = (labels == inner) & np.isfinite(curvature) & (curvature > 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(usable, (before - after) / (2 * curvature), 0.0)
    if beyond_bin == "keep":
        delta = np.where(np.abs(delta) <= 0.5, delta, 0.0)
    return np.clip(delta, -0.5, 0.5).astype(np.float32)


def refined_values(
    values: np.ndarray, labels: np.ndarray, offsets: np.ndarray, inverse: bool
) -> np.ndarray:
    """``(h, w)`` float32 hypotheses at fractional labels ``labels + offsets``.

    Args:
        values: ``(L,)`` the hypotheses (depths in metres, or disparities in pixels).
        inverse: the hypotheses are uniform in ``1 / value`` (plane-sweep depths), so
            interpolate there; else in ``value`` itself (disparities).
    """
    uniform = 1.0 / values if inverse else values.astype(np.float64)
    fractional = labels + offsets.astype(np.float64)
    out = np.interp(fractional, np.arange(len(values)), uniform)
    return (1.0 / out if inverse else out).astype(np.float32)
