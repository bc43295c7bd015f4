"""Sub-label refinement, before and after, on the Strecha and Middlebury pairs.

    python benchmarks/sublabel.py                       # default cost and ZNCC, every pair
    python benchmarks/sublabel.py --methods zncc --pairs fountain-P11:5:1 tsukuba

Each pair is matched once per method (the Strecha protocol of ``strecha.py``: 768 px, 64
labels over the truth's range + 5 %; Middlebury at its own size, 64 labels over the truth's
disparity range + 5 %); the same volume and MRF labels then give the depth map at the label
values and refined below the label step (:mod:`stereo.refine`), so the two columns differ
only by the refinement. Strecha: correctness@0.01 / 0.02 / 0.05 over in-view points;
Middlebury: bad-1, bad-2 (share of known pixels off by more than 1 / 2 px, no estimate =
bad) and MAE. Writes ``benchmarks/results/sublabel.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stereo.bench.machine import hardware
from stereo.bench.middlebury import MIDDLEBURY_PAIRS, middlebury_pair
from stereo.bench.results import save_results, saved_results
from stereo.bench.specs import parse_pair
from stereo.bench.strecha import PAIRS as STRECHA_PAIRS
from stereo.bench.strecha import load_pair, truth_range
from stereo.config import DEFAULT_MODEL, StereoConfig
from stereo.evaluation import depth_correctness, disparity_errors
from stereo.pipeline import StereoResult, match_calibrated, match_rectified
from stereo.refine import refined_values, sublabel_offsets

ROOT = Path(__file__).resolve().parents[1]

METHODS = [DEFAULT_MODEL, "zncc"]


#: the maps compared: at the label values, refined keeping labels off the pixel's own cost
#: minimum ("keep"), refined with those offsets clipped to ±½ (as shipped)
KINDS = ("labels", "refined", "clipped")


def all_maps(result: StereoResult, inverse: bool) -> list[np.ndarray]:
    """The working-resolution maps of :data:`KINDS` (unknown pixels stay unknown)."""
    maps = [result.depths[result.labels].astype(np.float32)]
    for rule in ("keep", "clip"):
        offsets = sublabel_offsets(result.volume, result.labels, beyond_bin=rule)
        maps.append(refined_values(result.depths, result.labels, offsets, inverse))
    for values in maps:
        values[~np.isfinite(result.depth_working)] = np.nan
    return maps


def strecha_rows(pair: str, method: str, n_labels: int) -> dict:
    data = load_pair(*parse_pair(pair), 768)
    cfg = StereoConfig(
        model=method, n_labels=n_labels, depth_range=data.depth_range, sublabel=False
    )
    result = match_calibrated(
        data.reference, data.other, data.reference_camera, data.other_camera, cfg
    )
    rows = {}
    for name, depth in zip(KINDS, all_maps(result, True), strict=True):
        scores = depth_correctness(depth, data.truth, data.in_view)
        rows[name] = {f"correct@{t}": scores[f"correct@{t}_in_view"] for t in (0.01, 0.02, 0.05)}
    return rows


def middlebury_rows(name: str, method: str, n_labels: int) -> dict:
    left, right, truth = middlebury_pair(name)
    cfg = StereoConfig(model=method, n_labels=n_labels, working_size=1024, sublabel=False)
    result = match_rectified(left, right, cfg, truth_range(truth))
    rows = {}
    for kind, disparity in zip(KINDS, all_maps(result, False), strict=True):
        scores = disparity_errors(disparity, truth)
        rows[kind] = {key: scores[key] for key in ("bad1", "bad2", "mae")}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--pairs", nargs="+", default=[*STRECHA_PAIRS, *MIDDLEBURY_PAIRS])
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sublabel"))
    parser.add_argument("--table-only", action="store_true", help="Rewrite the Markdown only.")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    if args.table_only:
        save_results(out, saved_results(out, required=True), write_table)
        return
    results = saved_results(out).get("results", {})
    for pair in args.pairs:
        for method in args.methods:
            t0 = time.time()
            run = middlebury_rows if pair in MIDDLEBURY_PAIRS else strecha_rows
            rows = run(pair, method, args.labels)
            rows["seconds"] = round(time.time() - t0, 1)
            results.setdefault(pair, {})[method] = rows
            print(f"{pair} {method}: {rows}", file=sys.stderr, flush=True)
            summary = {
                "hardware": hardware(),
                "date": time.strftime("%Y-%m-%d"),
                "labels": args.labels,
                "results": results,
            }
            save_results(out, summary, write_table)


def write_table(summary: dict, path: Path) -> None:
    """Two Markdown tables: Strecha correctness and Middlebury errors, before → after."""
    results = summary["results"]
    lines = [
        "# Sub-label refinement: at the label values → keep → clip (shipped)",
        "",
        f"Generated by `python benchmarks/sublabel.py`; {summary['date']}; hardware: "
        f"{summary['hardware']}; {summary['labels']} labels. Same volume and MRF labels in "
        "the three values of a cell: only the refinement differs. keep: no offset where the "
        "MRF chose a label off the pixel's own cost minimum; clip: the offset clipped to "
        "the label's bin there (the rule shipped, chosen on castle-P19: "
        "`results/sublabel_castle.md`).",
        "",
        "## Strecha (768 px; correctness@τ over in-view points, higher is better)",
        "",
        "| pair | method | @0.01 | @0.02 | @0.05 | s |",
        "|---|---|---|---|---|---|",
    ]
    middlebury = [
        "## Middlebury (own size; bad-1, bad-2 over known pixels, lower is better; MAE px)",
        "",
        "| pair | method | bad-1 | bad-2 | MAE | s |",
        "|---|---|---|---|---|---|",
    ]
    for pair, methods in results.items():
        for method, rows in methods.items():
            keys = ("bad1", "bad2", "mae") if pair in MIDDLEBURY_PAIRS else None
            keys = keys or ("correct@0.01", "correct@0.02", "correct@0.05")
            cells = [
                " → ".join(f"{rows[kind][k]:.3f}" for kind in KINDS if kind in rows) for k in keys
            ]
            row = f"| {pair} | {method} | {' | '.join(cells)} | {rows['seconds']} |"
            (middlebury if pair in MIDDLEBURY_PAIRS else lines).append(row)
    path.write_text("\n".join([*lines, "", *middlebury]) + "\n")


if __name__ == "__main__":
    main()
