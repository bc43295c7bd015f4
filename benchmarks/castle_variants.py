"""Pipeline variants of one cost on castle-P19 (the training scene): winner-take-all and graph
cuts after 1 or 2 expansion cycles, each with and without sub-label refinement, at τ = 0.05,
0.02 and 0.01 — how settings such as ``--cascade-scale`` or ``--mrf-iterations`` are chosen
without touching the benchmark pairs.

    python benchmarks/castle_variants.py --methods 2ch-deep 2ch-deep:p2 zncc census

One cost volume per pair and method (768×512 unless ``--size``, 64 labels over the truth's
depth range + 5 %, the cost's own λ), solved each way; correctness in view against
``stereo-dataset truth`` (``datasets/truth/castle-P19``). Writes
``results/castle_variants.md`` / ``.json``; rows of earlier runs are kept.
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
from stereo.bench.results import merge_scores, save_results, saved_results
from stereo.bench.specs import parse_method, parse_pair
from stereo.bench.strecha import load_pair
from stereo.bench.sweeps import method_volume
from stereo.config import StereoConfig
from stereo.evaluation import depth_correctness
from stereo.geometry.planesweep import inverse_depth_labels
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import solve, winner_take_all
from stereo.mrf.optimise import label_values, resolved_mrf

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ["castle-P19:2:1", "castle-P19:2:2", "castle-P19:2:3", "castle-P19:5:2"]
TAUS = ("0.05", "0.02", "0.01")
CYCLES = (1, 2)


def scored_labels(volume, labels, depths, pair, cfg: StereoConfig) -> dict[str, list[float]]:
    """correctness@τ (``TAUS``) of a label map, at the label depths (key ``""``) and
    sub-label refined (``"+sub"``), as the pipeline turns labels into depths."""
    out = {}
    for key, sublabel in (("", False), ("+sub", True)):
        depth = label_values(volume, labels, depths, replace(cfg, sublabel=sublabel), True)
        scores = depth_correctness(depth, pair.truth, pair.in_view)
        out[key] = [round(scores[f"correct@{tau}_in_view"], 3) for tau in TAUS]
    return out


def run_method(pair, method: str, n_labels: int) -> dict:
    """One method's row on one pair: volume seconds, what a cascade did, and the scores of
    winner-take-all and of each number of expansion cycles (with its MRF seconds)."""
    depths = inverse_depth_labels(*pair.depth_range, n_labels)
    sweep = Sweep.planes(pair.reference_camera, pair.other_camera, depths)
    spec = parse_method(method)
    cfg = spec.config(n_labels=n_labels)
    volume, _, cascade, seconds = method_volume(spec, pair, sweep)
    row: dict = {"volume_s": round(seconds, 1), "cascade": cascade}
    wta = scored_labels(volume, winner_take_all(volume), depths, pair, cfg)
    for key, scores in wta.items():
        row["wta" + key] = scores
    mrf = resolved_mrf(cfg)
    row["lambda"] = mrf.smoothness
    for cycles in CYCLES:
        t1 = time.time()
        labels = solve(volume, pair.reference, replace(mrf, iterations=cycles)).labels
        row[f"mrf{cycles}_s"] = round(time.time() - t1, 1)
        for key, scores in scored_labels(volume, labels, depths, pair, cfg).items():
            row[f"mrf{cycles}" + key] = scores
    return row


def write_table(summary: dict, path: Path) -> None:
    """The Markdown table: per method the mean over the pairs it ran on, then per pair."""
    results = summary["results"]
    lines = [
        "# Pipeline variants on castle-P19",
        "",
        f"`python benchmarks/castle_variants.py`; {summary['date']}; {summary['hardware']}. "
        f"{summary.get('size', 768)} px, 64 labels; correctness@0.05 / 0.02 / 0.01 over "
        "in-view truth points of castle-P19 (`stereo-dataset truth`); graph cuts at the "
        "cost's λ after 1 or 2 expansion cycles (`mrf1`, `mrf2`; the default is 2), `+sub`: "
        "sub-label refined (the default). Method options as in `strecha.py` (`pN`: cascade "
        "proposal at 1/N size). "
        "Seconds are wall time on that CPU.",
        "",
        "| method | pairs | WTA+sub | mrf1+sub | mrf2 | mrf2+sub | volume s | mrf1 s | mrf2 s "
        "| scored |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    methods = sorted({m for rows in results.values() for m in rows})
    for method in methods:
        rows = [rows[method] for rows in results.values() if method in rows]

        def mean(key: str, rows=rows) -> str:
            return " / ".join(f"{v:.3f}" for v in np.mean([r[key] for r in rows], axis=0))

        def seconds(key: str, rows=rows) -> str:
            return f"{np.mean([r[key] for r in rows]):.1f}"

        scored = [r["cascade"]["scored_fraction"] for r in rows if r.get("cascade")]
        lines.append(
            f"| {method} | {len(rows)} | {mean('wta+sub')} | {mean('mrf1+sub')} | "
            f"{mean('mrf2')} | **{mean('mrf2+sub')}** | {seconds('volume_s')} | "
            f"{seconds('mrf1_s')} | {seconds('mrf2_s')} | "
            f"{f'{np.mean(scored):.3f}' if scored else ''} |"
        )
    for pair, rows in results.items():
        lines += [
            "",
            f"## {pair}",
            "",
            "| method | WTA+sub | mrf1+sub | mrf2+sub |",
            "|---|---|---|---|",
        ]
        for method in sorted(rows):
            r = rows[method]
            cells = [
                " / ".join(f"{v:.3f}" for v in r[k]) for k in ("wta+sub", "mrf1+sub", "mrf2+sub")
            ]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["2ch-deep", "zncc", "census"])
    parser.add_argument("--pairs", nargs="+", default=PAIRS, help="castle-P19:r:k")
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--size", type=int, default=768, help="working size (px, long side)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "castle_variants"))
    parser.add_argument("--table-only", action="store_true", help="rewrite the Markdown only")
    args = parser.parse_args()
    out = Path(args.out)
    summary = saved_results(out, required=args.table_only)
    if args.table_only:
        save_results(out, summary, write_table)
        return
    torch.set_num_threads(2)
    results = summary.get("results", {})
    for pair_name in args.pairs:
        pair = load_pair(*parse_pair(pair_name), args.size)
        for method in args.methods:
            row = run_method(pair, method, args.labels)
            print(pair_name, method, row, file=sys.stderr, flush=True)
            merge_scores(results, pair_name, {method: row})
            summary = {
                "hardware": hardware(),
                "date": time.strftime("%Y-%m-%d"),
                "size": args.size,
                "results": results,
            }
            save_results(out, summary, write_table)


if __name__ == "__main__":
    main()
