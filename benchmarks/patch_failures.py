"""Where a patch benchmark's errors lie: missed positives by view gap, false positives by view.

For one scene's pair file (``DATA/SCENE.pairs.npz``, made by ``stereo-dataset build`` from
``DATA/SCENE.npz`` with ``--seed``), each method's threshold at 95 % recall (the FPR95
protocol) and, at that threshold, the share of positives it misses by how many views apart
their two patches were taken, and how many of its false positives pair two patches of one view.

    python benchmarks/patch_failures.py --scene castle-P19 --data datasets/patches-geometry \\
        --models l2net.geo-hard:Herz-Jesu-P8 --out benchmarks/results/patch_failures_castle
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from patches import DATA, display_path, find_weights

from stereo.bench.machine import hardware
from stereo.errors import StereoError
from stereo.patchnet.baselines import BASELINES
from stereo.patchnet.data.patchset import PairSet, PatchSet, sample_pair_indices
from stereo.patchnet.metrics import fpr95, recall_threshold
from stereo.patchnet.train import score_pairs
from stereo.patchnet.weights import load_weights_file

#: upper ends of the view-gap bins (views apart, inclusive); the first bin starts at 1
GAP_BINS = (1, 2, 3, 4, 6, 10, 18)


def missed_by_gap(
    scores: np.ndarray, labels: np.ndarray, gaps: np.ndarray, threshold: float
) -> list[dict]:
    """Per bin of :data:`GAP_BINS`: the positives ``(N,)`` whose two patches lie that many
    views apart (``gaps``, ``(N,)`` int), and the fraction of them scoring below
    ``threshold`` (missed)."""
    rows, low = [], 0
    for high in GAP_BINS:
        chosen = (labels == 1) & (gaps > low) & (gaps <= high)
        n = int(chosen.sum())
        missed = float((scores[chosen] < threshold).mean()) if n else float("nan")
        rows.append(
            {"gap": f"{low + 1}-{high}" if high > low + 1 else str(high), "n": n, "missed": missed}
        )
        low = high
    return rows


def pair_view_gaps(data: Path, scene: str, pairs: PairSet, seed: int) -> np.ndarray:
    """``(N,)`` how many views apart each pair's two patches were taken (0: one view),
    recovered by drawing the pair file's indices again from the scene's patch set; refuses a
    pair file drawn otherwise."""
    patchset = PatchSet.load(data / f"{scene}.npz")
    if patchset.view_ids is None:
        raise StereoError(
            f"{display_path(data / scene)}.npz holds no view ids; rebuild it with "
            "stereo-dataset build"
        )
    index, labels = sample_pair_indices(patchset.point_ids, len(pairs), seed)
    if not (labels == pairs.label).all() or not (patchset.patches[index[:, 0]] == pairs.a).all():
        raise StereoError(
            f"{display_path(data / scene)}.pairs.npz was not drawn from its patch set with "
            f"seed {seed}; pass the --seed it was built with, or rebuild it"
        )
    views = patchset.view_ids[index]
    return np.abs(views[:, 0] - views[:, 1])


def method_row(scores: np.ndarray, labels: np.ndarray, gaps: np.ndarray) -> dict:
    """One method's FPR95, its false positives within one view, and its misses by gap."""
    threshold = recall_threshold(scores, labels)
    false_positive = (labels == 0) & (scores >= threshold)
    return {
        "fpr95": 100 * fpr95(scores, labels),
        "false_positives": int(false_positive.sum()),
        "false_positives_one_view": int((false_positive & (gaps == 0)).sum()),
        "missed_by_gap": missed_by_gap(scores, labels, gaps, threshold),
    }


def table(results: dict, gaps: np.ndarray, labels: np.ndarray) -> str:
    """The Markdown table: a row per gap bin, a column per method."""
    names = list(results)
    lines = ["| views apart | positives | " + " | ".join(f"{n} missed" for n in names) + " |"]
    lines.append("|---|---|" + "---|" * len(names))
    for i, first in enumerate(next(iter(results.values()))["missed_by_gap"]):
        cells = [f"{100 * results[n]['missed_by_gap'][i]['missed']:.1f} %" for n in names]
        lines.append(f"| {first['gap']} | {first['n']:,} | " + " | ".join(cells) + " |")
    fprs = " | ".join(f"**{results[n]['fpr95']:.2f} %**" for n in names)
    lines.append(f"| **FPR95** | | {fprs} |")
    share = 100 * float((gaps[labels == 0] == 0).mean())
    lines.append(
        f"| false positives within one view (negatives within one view: {share:.1f} %) | | "
        + " | ".join(
            f"{results[n]['false_positives_one_view']} of {results[n]['false_positives']}"
            for n in names
        )
        + " |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", required=True, help="e.g. castle-P19")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of SCENE.npz / .pairs.npz")
    parser.add_argument("--models", nargs="*", default=[], help="MODEL[.TAG]:TRAIN each")
    parser.add_argument("--seed", type=int, default=0, help="the pair file's --seed")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.json")
    args = parser.parse_args()
    try:
        pairs = PairSet.load(args.data / f"{args.scene}.pairs.npz")
        gaps = pair_view_gaps(args.data, args.scene, pairs, args.seed)
    except (StereoError, OSError) as error:
        sys.exit(f"error: {error}")
    scores = {"sift": BASELINES["sift"](pairs.a, pairs.b)}
    for spec in args.models:
        model, _, train = spec.partition(":")
        path = find_weights(model, train) if train else None
        if path is None:
            sys.exit(
                f"error: no weights for {spec!r}; pass MODEL[.TAG]:TRAIN as patches.py finds them"
            )
        scores[spec] = score_pairs(load_weights_file(path), pairs)
    results = {name: method_row(s, pairs.label, gaps) for name, s in scores.items()}
    text = table(results, gaps, pairs.label)
    print(text)
    header = (
        f"# Patch benchmark errors on {args.scene} (`{display_path(args.data)}`)\n\n"
        f"`python benchmarks/patch_failures.py`, {time.strftime('%Y-%m-%d')}, {hardware()}; "
        "each method at its own 95 %-recall threshold: the positives it misses by how many "
        "views apart their patches were taken, and its false positives within one view.\n\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(header + text + "\n")
    summary = {
        "scene": args.scene,
        "pair_files": display_path(args.data),
        "hardware": hardware(),
        "date": time.strftime("%Y-%m-%d"),
        "methods": results,
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
