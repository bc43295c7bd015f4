"""How good is each matching cost on its own, and how much smoothing does it want?

    python benchmarks/cost_sweep.py                                   # fountain k = 1 and 3
    python benchmarks/cost_sweep.py --methods zncc siam-l2.castle-fixed --pairs fountain-P11:5:2

For each pair of the Strecha protocol (see ``strecha.py``) and each cost, the cost volume is
computed once (768×512, 64 labels over the ground-truth depth range + 5 %) and scored with
winner-take-all and with graph cuts at several smoothness weights λ (truncation 4 labels,
2 expansion cycles): correctness@0.05 over the ground-truth points inside the second view.
WTA isolates the cost; the λ sweep shows how much each cost leans on the MRF. Picking λ per
cost on these pairs would be tuning on the test set: ``stereo-match`` and the main table
(``strecha.py``) use the λ chosen on castle-P19 (``tune_smoothness.py``, which runs this
script's ``smoothness_sweep`` on castle). ``NAME:flat``: a descriptor cost on the raw second image
instead of the one pre-warped by the middle plane; ``NAME:bilinear``: a network with
``input_scale`` 2 on the bilinearly upsampled image (l2net's default: pixel replication).
Writes ``results/cost_sweep.md`` / json (``--out``), keeping the rows of other methods and
pairs already there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from stereo.bench.machine import hardware
from stereo.bench.results import merge_scores, save_results, saved_results
from stereo.bench.strecha import DATA
from stereo.bench.sweeps import smoothness_sweep

ROOT = Path(__file__).resolve().parents[1]

SMOOTHNESS = (0.05, 0.1, 0.2, 0.4)
METHODS = [
    "zncc",
    "census",
    "dsift",
    "daisy",
    "siam-l2.castle-fixed",
    "siam-l2.castle-near",
    "siam-l2.castle+oxford",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--pairs", nargs="+", default=["fountain-P11:5:1", "fountain-P11:5:3"])
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cost_sweep"))
    parser.add_argument("--grid", nargs="+", type=float, default=list(SMOOTHNESS))
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"error: {DATA} is missing (the shared Strecha data)")
    torch.set_num_threads(2)
    grid = tuple(args.grid)
    out = Path(args.out)
    previous = saved_results(out)  # rows of other methods / pairs are kept
    results = previous.get("results", {})
    for pair in args.pairs:  # the files are rewritten after each pair
        merge_scores(
            results, pair, smoothness_sweep(pair, args.methods, args.size, args.labels, grid)
        )
        summary = {
            "hardware": hardware(),
            "date": time.strftime("%Y-%m-%d"),
            "size": args.size,
            "labels": args.labels,
            "grid": sorted(set(grid) | set(previous.get("grid", []))),
            "results": results,
        }
        save_results(out, summary, write_table)


def write_table(summary: dict, path: Path) -> None:
    """One table per pair: WTA and each λ of the grid, with the volume's seconds."""
    grid = summary["grid"]
    lines = [
        "# Matching costs alone (WTA) and under graph cuts of growing smoothness",
        "",
        f"`python benchmarks/cost_sweep.py`; {summary['date']}; {summary['hardware']}. "
        f"{summary['size']} px, {summary['labels']} labels, correctness@0.05 over in-view "
        "ground-truth points.",
        "",
    ]
    for pair, rows in summary["results"].items():
        lines += [
            f"## {pair.replace(':', ' r=', 1).replace(':', ' k=')}",
            "",
            "| cost | WTA | " + " | ".join(f"λ={s:g}" for s in grid) + " | volume s |",
            "|---|---|" + "---|" * (len(grid) + 1),
        ]
        for method, scores in rows.items():
            cells = [f"{scores['wta']:.3f}"] + [
                f"{scores[str(s)]:.3f}" if str(s) in scores else "" for s in grid
            ]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {scores['volume_s']} |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
