"""Graph cuts: time against energy for the start labelling and the number of expansion cycles.

    python benchmarks/mrf_speed.py                                  # ~15 minutes on 2 cores
    python benchmarks/mrf_speed.py --pairs fountain-P11:5:1 --methods zncc

For each Strecha pair (as in ``strecha.py``: 768 px, 64 labels, range from the ground truth)
and each cost, the normalised volume is computed once and solved with alpha-expansion
started *cold* (label 0 everywhere, gco's default) or *warm* (the winner-take-all labelling,
``MRFConfig.warm_start``), for 1 and 2 cycles over the labels, and cold until convergence,
whose energy is the reference. λ is the cost's own (``models/smoothness.json``) unless the
method says ``NAME:λ``. Reports seconds, energy relative to the converged one, and
correctness@0.05 over in-view ground-truth points; writes ``benchmarks/results/mrf_speed.md``
and ``.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from stereo.bench.machine import hardware
from stereo.bench.results import save_results
from stereo.bench.specs import parse_method, parse_pair
from stereo.bench.strecha import DATA, load_pair
from stereo.cost.factory import make_cost
from stereo.evaluation import depth_correctness
from stereo.geometry.planesweep import inverse_depth_labels
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import MRFConfig, normalise_volume, solve
from stereo.mrf.optimise import default_smoothness

ROOT = Path(__file__).resolve().parents[1]

#: (label, warm start, cycles); the last one (cold, to convergence) is the reference energy
SETTINGS = [
    ("cold, 1 cycle", False, 1),
    ("cold, 2 cycles", False, 2),
    ("warm, 1 cycle", True, 1),
    ("warm, 2 cycles", True, 2),
    ("cold, converged", False, -1),
]


def run_pair(pair_name: str, method: str, size: int, n_labels: int) -> list[dict]:
    """One volume, every setting of :data:`SETTINGS`: a row each."""
    pair = load_pair(*parse_pair(pair_name), size)
    depths = inverse_depth_labels(*pair.depth_range, n_labels)
    spec = parse_method(method)
    cost = make_cost(spec.name)
    t0 = time.time()
    sweep = Sweep.planes(pair.reference_camera, pair.other_camera, depths)
    volume = normalise_volume(cost.volume(pair.reference, pair.other, sweep))
    volume_s = time.time() - t0
    smoothness = spec.smoothness if spec.smoothness is not None else default_smoothness(spec.name)
    base = MRFConfig(smoothness=smoothness)
    rows = []
    for label, warm, cycles in SETTINGS:
        t0 = time.time()
        result = solve(volume, pair.reference, replace(base, warm_start=warm, iterations=cycles))
        seconds = time.time() - t0
        depth = depths[result.labels].astype("float32")
        chosen = np.take_along_axis(volume, result.labels[None], axis=0)[0]
        depth[~np.isfinite(chosen)] = np.nan  # the chosen plane leaves the second image
        rows.append(
            {
                "pair": pair_name,
                "method": spec.name,
                "smoothness": smoothness,
                "volume_s": round(volume_s, 1),
                "setting": label,
                "mrf_s": round(seconds, 1),
                "energy": result.energy,
                "energy_wta": result.energy_wta,
                "correct@0.05_in_view": round(
                    depth_correctness(depth, pair.truth, pair.in_view)["correct@0.05_in_view"], 4
                ),
            }
        )
        print(rows[-1], file=sys.stderr, flush=True)
    reference = rows[-1]["energy"]
    for row in rows:
        row["energy_vs_converged"] = round(row["energy"] / reference, 5)
    return rows


def write_table(summary: dict, path: Path) -> None:
    lines = [
        "# Graph cuts: start labelling and expansion cycles",
        "",
        f"`python benchmarks/mrf_speed.py`, {summary['date']}, {summary['hardware']}. "
        f"{summary['size']} px, {summary['labels']} labels, alpha-expansion (gco) on the "
        "normalised volume; *cold*: every pixel starts at label 0 (gco's default), *warm*: at "
        "the winner-take-all label. Energy relative to cold-until-convergence on the same "
        "volume; correctness@0.05 over in-view ground-truth points; MRF wall seconds "
        "(the volume is computed once per pair).",
        "",
        "| pair | cost | λ | setting | MRF s | energy / converged | correct@0.05 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        lines.append(
            f"| {row['pair']} | {row['method']} | {row['smoothness']} | {row['setting']} | "
            f"{row['mrf_s']} | {row['energy_vs_converged']:.4f} | "
            f"{row['correct@0.05_in_view']:.3f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs",
        nargs="+",
        default=["fountain-P11:5:1", "fountain-P11:5:3", "Herz-Jesu-P8:3:1"],
    )
    parser.add_argument("--methods", nargs="+", default=["l2net.castle-fixed-s1", "zncc"])
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mrf_speed"))
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"error: {DATA} is missing (the shared Strecha data)")
    torch.set_num_threads(2)
    rows = [
        row
        for pair in args.pairs
        for method in args.methods
        for row in run_pair(pair, method, args.size, args.labels)
    ]
    summary = {
        "hardware": hardware(),
        "date": time.strftime("%Y-%m-%d"),
        "size": args.size,
        "labels": args.labels,
        "rows": rows,
    }
    save_results(Path(args.out), summary, write_table)
    print(Path(args.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
