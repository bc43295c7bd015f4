"""Choose each cost's smoothness weight λ on the training scene, never on the test pairs.

    python benchmarks/tune_smoothness.py                       # every method of METHODS
    python benchmarks/tune_smoothness.py --methods zncc l2net.castle-fixed

castle-P19 (the scene the stereo networks were trained on; fountain and Herz-Jesu, the test
scenes, take no part) has cameras but no ground truth: ``stereo-dataset truth`` makes it
(``datasets/truth/castle-P19``, SIFT tracks checked against the true cameras, as the data
README made the gt_sparse files). For validation pairs r, r + k of castle the cost volume is
computed once per cost (768×512, 64 labels over the truth's depth range + 5 %) and solved with
graph cuts at each λ of a grid; the chosen λ maximises the mean correctness@0.05 (in view)
over the pairs. Writes ``results/smoothness.md`` / ``.json``; ``models/smoothness.json`` (the
per-cost default of ``stereo-match``) is written with ``--install``.

Caveat: the truth points of castle are the keypoints whose windows trained the networks, so a
network's cost is better at these points than elsewhere — if anything this biases its λ low.
The held-out protocol removes the bias: train a twin on views 0-9 only (``stereo-dataset build
--views 0-9``, training set ``castle0-9-fixed-s1``), tune it on pairs among views 11-17, which
it never saw, and install its λ for the network trained on all views (``--install-as``; the
exact command is in ``benchmarks/README.md``, output ``results/smoothness_heldout``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stereo.bench.machine import hardware
from stereo.bench.results import merge_scores, save_results, saved_results
from stereo.bench.strecha import DATA
from stereo.bench.sweeps import smoothness_sweep
from stereo.patchnet.manifest import write_manifest

ROOT = Path(__file__).resolve().parents[1]

PAIRS = ["castle-P19:2:1", "castle-P19:2:2", "castle-P19:2:3", "castle-P19:5:2"]
GRID = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
METHODS = [
    "zncc",
    "census",
    "dsift",
    "daisy",
    "siam-l2.castle-fixed",
    "l2net.castle-fixed",
]


def smoothness_keys(scores: dict) -> list[float]:
    """The λ values a result row was solved at (its keys other than ``wta`` and metadata)."""
    out = []
    for key in scores:
        try:
            out.append(float(key))
        except ValueError:
            continue
    return sorted(out)


def choose(results: dict) -> dict[str, dict]:
    """Per method: mean correctness at each λ its rows share over the pairs and the λ that
    maximises it (the smaller λ on ties). Rows keep the grid they were run with, so adding
    λ values or methods reruns only what is new."""
    methods = sorted({m for rows in results.values() for m in rows})
    chosen = {}
    for method in methods:
        rows = [rows[method] for rows in results.values() if method in rows]
        grid = sorted(set.intersection(*(set(smoothness_keys(r)) for r in rows)))
        means = {str(s): float(np.mean([r[str(s)] for r in rows])) for s in grid}
        wta = float(np.mean([r["wta"] for r in rows]))
        best = max(grid, key=lambda s: (round(means[str(s)], 4), -s))
        chosen[method] = {
            "smoothness": best,
            "mean": means,
            "wta": wta,
            "pairs": len(rows),
            "grid_edge": best in (grid[0], grid[-1]),
            "prewarped": any(r.get("prewarped") for r in rows),
        }
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--pairs", nargs="+", default=PAIRS, help="SCENE:r:k")
    parser.add_argument("--grid", nargs="+", type=float, default=list(GRID))
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "smoothness"))
    parser.add_argument(
        "--install",
        action="store_true",
        help="write the chosen weights to models/smoothness.json (stereo-match's defaults)",
    )
    parser.add_argument(
        "--install-as",
        nargs="+",
        default=[],
        metavar="TUNED=NAME",
        help="with --install: install only the λ of cost TUNED, under NAME (e.g. a network "
        "trained on views 0-9, tuned on pairs among views 12-17, for its all-views twin)",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="rewrite the table (and with --install the defaults) from the JSON, running nothing",
    )
    args = parser.parse_args()
    out = Path(args.out).resolve()
    try:
        rename = dict(spec.split("=", 1) for spec in args.install_as)
    except ValueError:
        sys.exit("error: --install-as takes TUNED=NAME pairs")
    installed = ROOT / "models" / "smoothness.json"
    if args.table_only:
        summary = saved_results(out, required=True)
        summary["chosen"] = choose(summary["results"])
        save_results(out, summary, write_table)
        if args.install:
            install(summary["chosen"], installed, out.with_suffix(".md"), rename)
        return
    if not DATA.is_dir():
        sys.exit(f"error: {DATA} is missing (the shared Strecha data)")
    torch.set_num_threads(2)
    grid = tuple(args.grid)
    previous = saved_results(out)
    results = previous.get("results", {})
    for pair in args.pairs:
        merge_scores(
            results, pair, smoothness_sweep(pair, args.methods, args.size, args.labels, grid)
        )
        summary = {
            "hardware": hardware(),
            "date": time.strftime("%Y-%m-%d"),
            "size": args.size,
            "labels": args.labels,
            "results": results,
            "chosen": choose(results),
        }
        save_results(out, summary, write_table)
    if args.install:
        install(summary["chosen"], installed, out.with_suffix(".md"), rename)


def write_table(summary: dict, path: Path) -> None:
    """Mean correctness per λ and the choice, then the per-pair numbers."""
    grid = sorted({s for c in summary["chosen"].values() for s in map(float, c["mean"])})

    def cells(scores: dict) -> list[str]:
        return [f"{scores['wta']:.3f}"] + [
            f"{scores[str(s)]:.3f}" if str(s) in scores else "" for s in grid
        ]

    lines = [
        "# Smoothness weight per cost, chosen on castle-P19",
        "",
        f"`python benchmarks/tune_smoothness.py`; {summary['date']}; {summary['hardware']}. "
        f"{summary['size']} px, {summary['labels']} labels; correctness@0.05 over in-view truth "
        f"points of castle-P19 (made by `stereo-dataset truth`), mean over the pairs "
        f"{', '.join(summary['results'])} (those it was run on: `pairs`). Descriptor costs "
        "marked * describe the second image pre-warped by the middle plane (`--prewarp`, the "
        "default); unmarked ones (`:flat`) do not. Empty cells: λ not run for that cost.",
        "",
        "| cost | pairs | WTA | " + " | ".join(f"λ={s:g}" for s in grid) + " | chosen λ |",
        "|---|---|---|" + "---|" * (len(grid) + 1),
    ]
    for method, c in summary["chosen"].items():
        edge = " (grid edge)" if c.get("grid_edge") else ""
        star = "*" if c.get("prewarped") else ""
        lines.append(
            f"| {method}{star} | {c['pairs']} | "
            + " | ".join(cells({"wta": c["wta"], **c["mean"]}))
            + f" | **{c['smoothness']}**{edge} |"
        )
    for pair, rows in summary["results"].items():
        lines += [
            "",
            f"## {pair}",
            "",
            "| cost | WTA | " + " | ".join(f"λ={s:g}" for s in grid) + " |",
        ]
        lines.append("|---|---|" + "---|" * len(grid))
        for method, scores in rows.items():
            lines.append(f"| {method} | " + " | ".join(cells(scores)) + " |")
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: len(summary["chosen"]) + 6]))


def install(
    chosen: dict[str, dict], path: Path, table_path: Path, rename: dict[str, str] | None = None
) -> None:
    """Merge ``{cost: λ}`` into ``path`` (entries of other costs are kept), with where each
    value was chosen. ``rename`` maps a tuned cost to the name its λ is installed under (a
    held-out twin's λ for the network trained on all views); when given, only those costs
    are installed."""
    rename = rename or {}
    table = json.loads(path.read_text()) if path.is_file() else {}
    weights = table.get("smoothness", {})
    sources = table.get("chosen_in", {})
    for method, c in chosen.items():
        if (method not in rename) if rename else (":" in method):  # variants (flat, wta)
            continue
        name = rename.get(method, method)
        weights[name] = c["smoothness"]
        note = f" (tuned as {method})" if name != method else ""
        sources[name] = f"{table_path.relative_to(ROOT)}{note}"
    table = {
        **table,  # other tables (the expansion cycles: "cycles", "cycles_chosen_in") kept
        "about": "graph-cut smoothness weight (lambda) per matching cost, chosen on castle-P19 by "
        "`python benchmarks/tune_smoothness.py --install` (the table each came from: chosen_in)",
        "smoothness": dict(sorted(weights.items())),
        "chosen_in": dict(sorted(sources.items())),
    }
    path.write_text(json.dumps(table, indent=2) + "\n")
    print(f"wrote {path} and {write_manifest(path.parent)}")


if __name__ == "__main__":
    main()
