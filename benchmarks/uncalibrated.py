"""Uncalibrated pairs end to end: rectification from matches, then the row search, scored
with castle-P19's sparse truth carried through the estimated homographies.

    python benchmarks/uncalibrated.py --methods census 2ch-deep 2ch-deep:projective \
        --pairs castle-P19:0:1 castle-P19:2:1 castle-P19:5:2 castle-P19:1:-1 castle-P19:4:-2

Views r and r + k of castle-P19 (the validation scene: no benchmark image enters) at
``--size`` (768 px) are given to :func:`stereo.pipeline.match_uncalibrated` as two
photographs, without cameras; a negative k puts the second view to the left. Each truth point
of view r that view r + k sees is mapped by the run's own ``H1`` and, through its true match,
``H2``: its true disparity is the difference of the two rectified x, its row gap (``dy``) what
the rectification left. bad-2 / bad-4: share of the truth points whose disparity is off by
more than 2 / 4 px at half the input size (384 px, the rectified validation pairs' scale; no
estimate counts as bad). ``:rotation`` / ``:projective`` pick ``--rectification``;
``sgbm`` is OpenCV's SGBM on the default rectification. Writes
``benchmarks/results/uncalibrated.md`` and ``.json``; finished rows are kept on a rerun.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from stereo.bench.middlebury import sgbm_disparity
from stereo.bench.results import run_pairs
from stereo.bench.specs import parse_method, parse_pair
from stereo.bench.strecha import ProtocolPair, load_pair
from stereo.geometry.planesweep import backproject
from stereo.geometry.rectify import apply_homography, rectify_uncalibrated, warped_onto_canvas
from stereo.pipeline import match_uncalibrated

ROOT = Path(__file__).resolve().parents[1]
SCENE = "castle-P19"
PAIRS = [f"{SCENE}:0:1", f"{SCENE}:2:1", f"{SCENE}:5:2", f"{SCENE}:1:-1", f"{SCENE}:4:-2"]
METHODS = ["sgbm", "zncc", "census", "2ch-deep", "2ch-deep:projective"]
#: errors are counted at this share of the input size (384 of 768 px)
SCORE_SCALE = 0.5


def true_matches(pair: ProtocolPair) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 2)`` truth points of the reference view that the other view sees, and their
    true pixels in the other view."""
    xy, depth = pair.truth.xy[pair.in_view], pair.truth.depth[pair.in_view]
    matched, _ = pair.other_camera.project(backproject(pair.reference_camera, xy, depth))
    return xy, matched


def scores(disparity: np.ndarray, rect: dict, pair: ProtocolPair) -> dict[str, float]:
    """bad-2, bad-4 (at :data:`SCORE_SCALE`), median row gap and the share of truth points
    with an estimate, of a disparity map of the rectified left image."""
    xy, matched = true_matches(pair)
    left, right = (
        apply_homography(np.array(rect["H1"]), xy),
        apply_homography(np.array(rect["H2"]), matched),
    )
    cols, rows = np.rint(left).astype(int).T
    h, w = disparity.shape
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    found = np.full(len(xy), np.nan)
    found[inside] = disparity[rows[inside], cols[inside]]
    error = np.abs(found - (left[:, 0] - right[:, 0])) * SCORE_SCALE
    error[~np.isfinite(error)] = np.inf
    return {
        "bad2": float(np.mean(error > 2)),
        "bad4": float(np.mean(error > 4)),
        "dy": float(np.median(np.abs(left[:, 1] - right[:, 1]))),
        "coverage": float(np.mean(np.isfinite(found))),
        "points": len(xy),
    }


def run_method(method: str, pair: ProtocolPair, size: int) -> tuple[np.ndarray, dict]:
    """The rectified left image's disparity map and the rectification of one method."""
    if method == "sgbm":
        rect = rectify_uncalibrated(pair.reference, pair.other)
        left, right = warped_onto_canvas(pair.reference, pair.other, rect)
        return sgbm_disparity(left, right, *rect["disparity_range_px"]), rect
    cfg = parse_method(method).config(working_size=round(size * SCORE_SCALE))
    result = match_uncalibrated(pair.reference, pair.other, cfg)
    return result.depth, result.rectification


def run_pair(name: str, methods: list[str], size: int) -> dict[str, dict]:
    """``{method: figures}`` of every method on one pair."""
    pair = load_pair(*parse_pair(name), size)
    rows = {}
    for method in methods:
        start = time.time()
        disparity, rect = run_method(method, pair, size)
        rows[method] = {
            **scores(disparity, rect, pair),
            "rectification": rect["method"],
            "seconds": round(time.time() - start, 1),
        }
        print(f"{name} {method}: {rows[method]}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--pairs", nargs="+", default=PAIRS)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "uncalibrated"))
    parser.add_argument("--table-only", action="store_true", help="Rewrite the Markdown only.")
    args = parser.parse_args()
    for pair in args.pairs:  # every spec checked before the first pair runs
        if parse_pair(pair)[0] != SCENE:
            sys.exit(f"error: pair {pair!r}: the uncalibrated pairs come from {SCENE} only")
    for method in args.methods:
        if method != "sgbm":
            parse_method(method)
    out = Path(args.out)
    run_pairs(
        out,
        args.pairs,
        partial(run_pair, methods=args.methods, size=args.size),
        write_table,
        args.table_only,
    )


def write_table(summary: dict, path: Path) -> None:
    """One Markdown row per method: bad-2 per pair and the mean; bad-4 mean; seconds."""
    results = summary["results"]
    pairs = list(results)
    methods = list(dict.fromkeys(m for rows in results.values() for m in rows))
    lines = [
        "# Uncalibrated castle-P19 pairs: bad-2 of the rectified left image's disparity "
        "(lower is better)",
        "",
        f"`python benchmarks/uncalibrated.py`, {summary['date']}, {summary['hardware']}; "
        "truth points carried through each run's own homographies; errors at 384 px "
        "(half the input); no estimate = bad; dy: median row gap the rectification left (px "
        "at 768); seconds end to end, mean over pairs.",
        "",
        "| method | " + " | ".join(pairs) + " | mean bad-2 | mean bad-4 | dy | seconds |",
        "|---" * (len(pairs) + 5) + "|",
    ]
    for method in methods:
        rows = [results[p].get(method) for p in pairs]
        done = [r for r in rows if r]
        cells = [f"{r['bad2']:.3f}" if r else "–" for r in rows]
        mean = {key: np.mean([r[key] for r in done]) for key in ("bad2", "bad4", "dy", "seconds")}
        lines.append(
            f"| {method} | " + " | ".join(cells) + f" | **{mean['bad2']:.3f}** | "
            f"{mean['bad4']:.3f} | {mean['dy']:.2f} | {mean['seconds']:.0f} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
