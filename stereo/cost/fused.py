"""Fused costs: the mean of several costs' normalised volumes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from stereo.cost.base import Cost
from stereo.errors import StereoError


class FusedCost(Cost):
    """The mean of the normalised volumes (:func:`~stereo.mrf.graphcut.normalise_volume`,
    each in [0, 1]) of several costs — e.g. a learned cost with ZNCC. NaN where any
    component is NaN."""

    def __init__(self, components: list[Cost]) -> None:
        if len(components) < 2:
            raise StereoError("a fused cost needs at least two components")
        self.components = components
        self.name = ",".join(c.name for c in components)
        self.info: dict[str, float | int] = {}

    def volume(self, reference, other, sweep, progress=False):
        parts = ((c.volume(reference, other, sweep, progress),) for c in self.components)
        return self._mean_normalised(parts)[0]

    def volume_pair(self, reference, other, forward, backward, progress=False):
        return self._mean_normalised(
            c.volume_pair(reference, other, forward, backward, progress) for c in self.components
        )

    def _mean_normalised(self, parts: Iterator[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        """Mean over the components of each normalised volume of their tuples, summed as the
        components produce them (one component's raw volumes in memory at a time)."""
        from stereo.mrf.graphcut import normalise_volume

        totals: list[np.ndarray] = []
        for volumes in parts:
            normalised = [normalise_volume(v) for v in volumes]
            if totals:
                normalised = [t + n for t, n in zip(totals, normalised, strict=True)]
            totals = normalised
        self.info = {k: v for c in self.components for k, v in getattr(c, "info", {}).items()}
        return tuple(t / len(self.components) for t in totals)
