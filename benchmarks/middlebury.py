"""Rectified stereo on Middlebury: bad-1, bad-2 and MAE of every cost against SGBM.

    python benchmarks/middlebury.py                            # every method, every pair
    python benchmarks/middlebury.py --methods zncc sgbm --pairs tsukuba

tsukuba and venus (``../shared/data/middlebury``) and Motorcycle (scikit-image's Middlebury
2014 pair) are matched at their own size (``--size`` 1024 keeps them whole) with 64 labels
over the truth's disparity range ± 5 %, graph cuts at each cost's λ (chosen on castle-P19,
``models/smoothness.json``) and sub-label refinement, as ``stereo-match --rectified`` does.
bad-1 / bad-2: share of pixels with known truth whose disparity is off by more than 1 / 2 px
(no estimate counts as bad); MAE over the pixels estimated. ``sgbm`` is OpenCV's
semi-global matcher with the Strecha benchmark's settings. Methods take the options of
``strecha.py`` (``NAME:0.4``, ``:wta``, ``:full``, ``:sN`` …). Writes
``benchmarks/results/middlebury.md`` and ``.json``; finished rows are kept on a rerun.

Validation pairs for choosing the row search's settings without the benchmark:
``--pairs castle-P19:2:1 …`` rectifies views r and r + k of castle-P19 with their true
cameras at 384 px (a label step near Middlebury's) and scores the reference view's sparse
truth points (``stereo.bench.rectified``)::

    python benchmarks/middlebury.py --pairs castle-P19:0:1 castle-P19:2:1 castle-P19:5:1 \
        --out benchmarks/results/castle_rectified

``--pairs synthetic:0 synthetic:1 …`` are held-out synthetic rectified scenes (384×256, exact
dense truth, depth edges included; ``stereo.bench.rectified.synthetic_rectified_pair``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from stereo.bench.middlebury import MIDDLEBURY_PAIRS, middlebury_pair, sgbm_disparity
from stereo.bench.rectified import rectified_scene_pair, synthetic_rectified_pair
from stereo.bench.results import common_methods, run_pairs
from stereo.bench.specs import parse_method, parse_pair
from stereo.bench.strecha import DATA, MADE_TRUTH, truth_folder, truth_range
from stereo.config import DEFAULT_MODEL
from stereo.evaluation import disparity_errors
from stereo.pipeline import match_rectified

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["sgbm", "zncc", "census", "daisy", "dsift", DEFAULT_MODEL]
#: the figures of a row, as the table shows them
FIGURES = ("bad1", "bad2", "mae", "coverage")
#: the one scene whose rectified pairs serve as validation (no benchmark pair comes from it)
VALIDATION_SCENE = "castle-P19"
#: working size (px, long side) of the rectified validation pairs
VALIDATION_SIZE = 384
#: prefix of the held-out synthetic validation pairs (``synthetic:i``, dense truth)
SYNTHETIC = "synthetic"


def pair_loader(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """What loads the left, right and truth disparity of a Middlebury pair, a
    ``castle-P19:r:k`` or a ``synthetic:i`` validation pair; a malformed or unknown spec
    exits with a one-line error here, before anything is loaded."""
    if name in MIDDLEBURY_PAIRS:
        return partial(middlebury_pair, name)
    if name.startswith(f"{SYNTHETIC}:"):
        return partial(synthetic_rectified_pair, synthetic_index(name))
    return partial(rectified_scene_pair, *validation_pair(name), VALIDATION_SIZE)


def check_truth(pairs: list[str], data: Path = DATA, made_root: Path = MADE_TRUTH) -> None:
    """Exit with a one-line error, naming the command that makes it, when a
    ``castle-P19:r:k`` pair of ``pairs`` has no sparse truth yet (castle-P19 ships none)."""
    if any(pair.startswith(f"{VALIDATION_SCENE}:") for pair in pairs):
        truth_folder(VALIDATION_SCENE, data, made_root)


def synthetic_index(name: str) -> int:
    """i of a ``synthetic:i`` spec; exits with a one-line error on a malformed one."""
    index = name.split(":", 1)[1]
    if not index.isdigit():
        sys.exit(f"error: pair {name!r}: synthetic validation pairs are synthetic:i, i ≥ 0")
    return int(index)


def validation_pair(name: str) -> tuple[str, int, int]:
    """Scene, r and k of a ``castle-P19:r:k`` spec; exits with a one-line error on any
    other scene or a malformed spec."""
    scene, r, k = parse_pair(name)
    if scene != VALIDATION_SCENE:
        sys.exit(f"error: pair {name!r}: validation pairs come from {VALIDATION_SCENE} only")
    return scene, r, k


def run_pair(name: str, methods: list[str], n_labels: int, size: int) -> dict[str, dict]:
    """``{method: figures}`` of every method on one pair."""
    left, right, truth = pair_loader(name)()
    lo, hi = truth_range(truth)
    rows = {}
    for method in methods:
        start = time.time()
        if method == "sgbm":
            disparity = sgbm_disparity(left, right, lo, hi)
        else:
            cfg = parse_method(method).config(n_labels=n_labels, working_size=size)
            disparity = match_rectified(left, right, cfg, (lo, hi)).depth
        scores = {k: v for k, v in disparity_errors(disparity, truth).items() if k in FIGURES}
        rows[method] = {**scores, "seconds": round(time.time() - start, 1)}
        print(f"{name} {method}: {rows[method]}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--pairs", nargs="+", default=list(MIDDLEBURY_PAIRS))
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "middlebury"))
    parser.add_argument("--table-only", action="store_true", help="Rewrite the Markdown only.")
    args = parser.parse_args()
    unknown = [p for p in args.pairs if p not in MIDDLEBURY_PAIRS and ":" not in p]
    if unknown:
        sys.exit(
            f"error: unknown pair(s) {', '.join(unknown)}; valid: {', '.join(MIDDLEBURY_PAIRS)} "
            f"or {VALIDATION_SCENE}:r:k or {SYNTHETIC}:i"
        )
    for pair in args.pairs:  # every spec checked before the first pair runs
        pair_loader(pair)
    check_truth(args.pairs)  # and castle-P19's truth, not only once its pair's turn comes
    out = Path(args.out)
    run_pairs(
        out,
        args.pairs,
        lambda pair: run_pair(pair, args.methods, args.labels, args.size),
        write_table,
        args.table_only,
        labels=args.labels,
    )


def write_table(summary: dict, path: Path) -> None:
    """One Markdown row per pair and method; the best bad-2 of a pair in bold."""
    title, source = table_title(list(summary["results"]))
    lines = [
        f"# {title} (lower is better)",
        "",
        f"{source}, {summary['date']}, {summary['hardware']}; "
        f"{summary['labels']} labels over the truth's range ± 5 %, graph cuts at each cost's "
        "castle-P19 λ, sub-label refinement; bad-1 / bad-2 over pixels with truth (no "
        "estimate = bad), MAE (px) and coverage over the estimated ones; seconds end to end.",
        "",
        "| pair | method | bad-1 | bad-2 | MAE | coverage | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair, methods in summary["results"].items():
        best = min(row["bad2"] for row in methods.values())
        for method, row in methods.items():
            bad2 = f"**{row['bad2']:.3f}**" if row["bad2"] == best else f"{row['bad2']:.3f}"
            lines.append(
                f"| {pair} | {method} | {row['bad1']:.3f} | {bad2} | {row['mae']:.2f} | "
                f"{row['coverage']:.3f} | {row['seconds']} |"
            )
    path.write_text("\n".join(lines + mean_rows(summary["results"])) + "\n")


def table_title(pairs: list[str]) -> tuple[str, str]:
    """Title and command of a table of ``pairs``: Middlebury, castle-P19 or synthetic
    validation pairs."""
    if all(pair in MIDDLEBURY_PAIRS for pair in pairs):
        return "Middlebury: rectified pairs", "`python benchmarks/middlebury.py`"
    if all(pair.startswith(f"{SYNTHETIC}:") for pair in pairs):
        return (
            "held-out synthetic rectified scenes (384×256): validation pairs, dense exact truth",
            "`python benchmarks/middlebury.py --pairs synthetic:i …`",
        )
    return (
        f"{VALIDATION_SCENE} rectified with its true cameras at {VALIDATION_SIZE} px: "
        "validation pairs, sparse truth",
        "`python benchmarks/middlebury.py --pairs castle-P19:r:k …`",
    )


def mean_rows(results: dict[str, dict[str, dict]]) -> list[str]:
    """Markdown rows of each method's mean bad-1 / bad-2 over the pairs (methods run on
    every pair only)."""
    lines = ["", f"Mean over the {len(results)} pairs:", "", "| method | bad-1 | bad-2 |"]
    lines.append("|---|---|---|")
    for method in common_methods(results):
        bad1, bad2 = (np.mean([r[method][k] for r in results.values()]) for k in ("bad1", "bad2"))
        lines.append(f"| {method} | {bad1:.3f} | {bad2:.3f} |")
    return lines


if __name__ == "__main__":
    main()
