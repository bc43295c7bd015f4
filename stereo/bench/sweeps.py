"""One cost volume per pair and method, solved at several smoothness weights λ (the
measurement ``cost_sweep.py`` and ``tune_smoothness.py`` make)."""

from __future__ import annotations

import sys
import time

import numpy as np

from stereo.bench.specs import MethodSpec, parse_method, parse_pair
from stereo.bench.strecha import ProtocolPair, load_pair
from stereo.cascade import sweep_volume
from stereo.config import StereoConfig
from stereo.cost.base import Cost
from stereo.cost.factory import make_cost
from stereo.evaluation import depth_correctness
from stereo.geometry.planesweep import inverse_depth_labels
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import MRFConfig, normalise_volume
from stereo.mrf.optimise import optimise


def method_volume(
    spec: MethodSpec, pair: ProtocolPair, sweep: Sweep
) -> tuple[np.ndarray, Cost, dict | None, float]:
    """The normalised ``(L, h, w)`` volume of a benchmark method on a pair under ``sweep``,
    as a run computes it (through the cascade for 2-channel costs), with the cost, what the
    cascade did (None without one) and the seconds it took."""
    t0 = time.time()
    cost = make_cost(
        spec.name,
        prewarp=spec.prewarp,
        replicated_upsampling=spec.replicated_upsampling,
        precision=spec.precision,
        score_stride=spec.score_stride,
        window_scale=spec.window_scale,
    )
    raw, cascade, _ = sweep_volume(
        spec.config(n_labels=len(sweep)), cost, (pair.reference, pair.other), sweep
    )
    return normalise_volume(raw), cost, cascade, time.time() - t0


def smoothness_sweep(
    pair_name: str, methods: list[str], size: int, n_labels: int, smoothness: tuple[float, ...]
) -> dict:
    """``{method: {"wta": c, "0.1": c, ...}}`` of correctness@0.05 in view, one key per
    smoothness weight λ of ``smoothness``."""
    pair = load_pair(*parse_pair(pair_name), size)
    depths = inverse_depth_labels(*pair.depth_range, n_labels)
    sweep = Sweep.planes(pair.reference_camera, pair.other_camera, depths)
    optimisers = {"wta": StereoConfig(optimizer="wta")} | {
        str(s): StereoConfig(mrf=MRFConfig(smoothness=s)) for s in smoothness
    }
    rows = {}
    for method in methods:
        # a cascade's proposal is λ-free (its own cost's λ): one volume serves every λ
        volume, cost, _, seconds = method_volume(parse_method(method), pair, sweep)
        scores = {
            "volume_s": round(seconds, 1),
            "prewarped": bool(getattr(cost, "info", {}).get("prewarp_depths_m")),
        }
        for key, cfg in optimisers.items():
            depth = optimise(volume, pair.reference, depths, cfg, inverse=True)[3]
            scores[key] = depth_correctness(depth, pair.truth, pair.in_view)["correct@0.05_in_view"]
        rows[method] = scores
        print(pair_name, method, scores, file=sys.stderr, flush=True)
    return rows
