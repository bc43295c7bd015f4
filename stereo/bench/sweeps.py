"""One cost volume per pair and method, solved at several smoothness weights λ (the
measurement ``cost_sweep.py`` and ``tune_smoothness.py`` make)."""

from __future__ import annotations

import sys
import time

from stereo.bench.specs import parse_method, parse_pair
from stereo.bench.strecha import load_pair
from stereo.cascade import sweep_volume
from stereo.config import StereoConfig
from stereo.cost.factory import make_cost
from stereo.evaluation import depth_correctness
from stereo.geometry.planesweep import inverse_depth_labels
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import MRFConfig, normalise_volume
from stereo.mrf.optimise import optimise


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
        t0 = time.time()
        spec = parse_method(method)
        cost = make_cost(
            spec.name,
            prewarp=spec.prewarp,
            replicated_upsampling=spec.replicated_upsampling,
            precision=spec.precision,
            score_stride=spec.score_stride,
        )
        # a cascade's proposal is λ-free (its own cost's λ): one volume serves every λ
        raw = sweep_volume(
            spec.config(n_labels=n_labels), cost, (pair.reference, pair.other), sweep
        )
        volume = normalise_volume(raw[0])
        scores = {
            "volume_s": round(time.time() - t0, 1),
            "prewarped": bool(getattr(cost, "info", {}).get("prewarp_depths_m")),
        }
        for key, cfg in optimisers.items():
            depth = optimise(volume, pair.reference, depths, cfg, inverse=True)[3]
            scores[key] = depth_correctness(depth, pair.truth, pair.in_view)["correct@0.05_in_view"]
        rows[method] = scores
        print(pair_name, method, scores, file=sys.stderr, flush=True)
    return rows
