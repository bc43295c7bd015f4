"""From a normalised cost volume to a label map: confidence, the cost's smoothness weight,
graph cuts or winner-take-all, and sub-label refinement."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from stereo.config import StereoConfig
from stereo.errors import StereoError
from stereo.mrf.graphcut import (
    DEFAULT_CYCLES,
    FALLBACK_SMOOTHNESS,
    MRFConfig,
    solve,
    winner_take_all,
)
from stereo.refine import refined_values, sublabel_offsets


def informative_confidence(volume: np.ndarray) -> np.ndarray:
    """:func:`confidence_map` of a normalised volume, refusing a volume in which no pixel
    prefers one hypothesis (blank or identical images, a range that misses the scene)."""
    confidence = confidence_map(volume)
    if not (confidence > 0).any():
        raise StereoError(
            "the cost volume carries no information: no pixel prefers one hypothesis; "
            "check that the images show the same textured scene and the depth range"
        )
    return confidence


def confidence_map(volume: np.ndarray) -> np.ndarray:
    """``(h, w)`` margin between the best and second-best normalised cost, in [0, 1].

    The two smallest costs of each pixel are carried through the labels one ``(h, w)`` slice
    at a time (NaN = worst): the same values as ``np.partition(volume, 1, axis=0)[:2]``,
    ten times faster (a partition along the first axis reads the volume strided)."""
    best = np.full(volume.shape[1:], np.inf, np.result_type(volume.dtype, np.float32))
    second = best.copy()
    for layer in volume:
        layer = np.where(np.isnan(layer), np.float32(np.inf), layer)
        np.minimum(second, np.maximum(best, layer), out=second)
        np.minimum(best, layer, out=best)
    both = np.isfinite(best) & np.isfinite(second)
    margin = np.zeros(best.shape, np.float32)
    margin[both] = second[both] - best[both]
    return np.clip(margin, 0, 1)


def default_smoothness(model: str) -> float:
    """The smoothness weight λ of a matching cost: the value chosen for it on castle-P19 by
    ``benchmarks/tune_smoothness.py --install`` (``models/smoothness.json``; registry names
    resolve to their shipped stereo weights file), else :data:`FALLBACK_SMOOTHNESS`."""
    value = cost_setting("smoothness", model)
    return FALLBACK_SMOOTHNESS if value is None else float(value)


def default_cycles(model: str) -> int:
    """The alpha-expansion cycles of a matching cost: the number chosen for it on castle-P19
    (``models/smoothness.json``'s ``cycles``), else :data:`DEFAULT_CYCLES`."""
    value = cost_setting("cycles", model)
    return DEFAULT_CYCLES if value is None else int(value)


def cost_setting(key: str, model: str) -> float | None:
    """The value of ``model`` in the ``key`` table of ``models/smoothness.json`` (registry
    names resolve to their shipped stereo weights file), or None: no table, no entry."""
    from stereo.patchnet.weights import models_dir, shipped_weights

    path = models_dir() / "smoothness.json"
    if not path.is_file():
        return None
    try:
        tables = json.loads(path.read_text())
        table = dict(tables["smoothness"] if key == "smoothness" else tables.get(key, {}))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StereoError(
            f"{path} is not a smoothness table (needs {{'smoothness': {{cost: λ}}}}); "
            "rewrite it with benchmarks/tune_smoothness.py --install or delete it"
        ) from None
    if model in table:
        return table[model]
    shipped = shipped_weights(model, "stereo")
    if shipped is not None and shipped.stem in table:
        return table[shipped.stem]
    return None


def resolved_mrf(cfg: StereoConfig) -> MRFConfig:
    """``cfg.mrf`` with the smoothness weight and the expansion cycles filled in (the
    cost's defaults where unset)."""
    smoothness, cycles = cfg.mrf.smoothness, cfg.mrf.iterations
    return replace(
        cfg.mrf,
        smoothness=default_smoothness(cfg.model) if smoothness is None else smoothness,
        iterations=default_cycles(cfg.model) if cycles is None else cycles,
    )


def optimise(
    volume: np.ndarray,
    image: np.ndarray,
    values: np.ndarray,
    cfg: StereoConfig,
    inverse: bool = False,
):
    """Labels of a normalised volume by graph cut or winner-take-all.

    Args:
        values: ``(L,)`` the hypotheses; ``inverse``: they are uniform in ``1 / value``
            (plane-sweep depths) rather than in value (disparities).

    Returns:
        ``(labels (h, w), energy_wta, energy_final, value map (h, w) float32)``; the value map
        holds ``values[label]`` — refined below the label step when ``cfg.sublabel``
        (:mod:`stereo.refine`) — and NaN where the chosen hypothesis leaves the second image
        (unless ``cfg.invalid == "fill"``).
    """
    if cfg.optimizer == "graphcut":  # StereoConfig refused any other name when made
        mrf = solve(volume, image, resolved_mrf(cfg))
        labels, energy_wta, energy_final = mrf.labels, mrf.energy_wta, mrf.energy
    else:
        labels, energy_wta, energy_final = winner_take_all(volume), None, None
    return labels, energy_wta, energy_final, label_values(volume, labels, values, cfg, inverse)


def label_values(
    volume: np.ndarray, labels: np.ndarray, values: np.ndarray, cfg: StereoConfig, inverse: bool
) -> np.ndarray:
    """``(h, w)`` float32 hypotheses of a label map ``(h, w)`` on a normalised volume
    ``(L, h, w)``: ``values[label]`` — refined below the label step when ``cfg.sublabel`` —
    and NaN where the chosen hypothesis is invalid (unless ``cfg.invalid == "fill"``); see
    :func:`optimise` for ``values`` and ``inverse``."""
    if cfg.sublabel:
        offsets = sublabel_offsets(volume, labels)
        value_map = refined_values(values, labels, offsets, inverse)
    else:
        value_map = values[labels].astype(np.float32)
    chosen_invalid = ~np.isfinite(np.take_along_axis(volume, labels[None], axis=0)[0])
    if cfg.invalid == "nan":
        value_map[chosen_invalid] = np.nan
    return value_map
