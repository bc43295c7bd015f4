"""Wide-baseline stereo on the Strecha scenes: the protocol of ``../shared/data/README.md``.

    python benchmarks/strecha.py                                   # every method, every pair
    python benchmarks/strecha.py --methods zncc siam-l2 sgbm --pairs fountain-P11:5:1

Reference view r, second view r + k (k = 1, 2, 3; growing baseline): fountain r = 0005,
Herz-Jesu r = 0003. Working size 768×512, 64 labels uniform in inverse depth over the
reference view's ground-truth depth range (widened by 5 %) for every method, so methods differ
only in the matching cost and optimiser. correctness@τ (τ = 0.01, 0.02, 0.05) over the
ground-truth points that project inside the second image (and over all points in the JSON).

Methods: any ``stereo-match --model`` value (registry names use the shipped weights; zncc,
census, daisy, dsift) with graph cuts at the cost's default smoothness (chosen on castle-P19,
see ``tune_smoothness.py``), ``NAME:0.1`` for graph cuts at λ = 0.1, ``NAME:wta`` for
winner-take-all, ``NAME:flat`` for a descriptor cost on the raw second image (not pre-warped
by the middle plane), ``NAME:nosub`` for depth at the labels only (no sub-label refinement;
options combine: ``NAME:wta:flat``), and ``sgbm`` — OpenCV
StereoSGBM after rectification with the true cameras (3-way, block 5, P1 200, P2 800,
uniqueness 5, speckle 100/2, LR check 1), evaluated at the ground-truth points through the
rectification.

Writes ``benchmarks/results/strecha.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from stereo.bench.machine import hardware
from stereo.bench.middlebury import sgbm_run
from stereo.bench.results import save_results, saved_results
from stereo.bench.specs import parse_method, parse_pair
from stereo.bench.strecha import DATA, PAIRS, load_pair
from stereo.evaluation import (
    SparseDepth,
    depth_correctness,
)
from stereo.geometry.camera import Camera
from stereo.pipeline import match_calibrated

ROOT = Path(__file__).resolve().parents[1]

#: rectification scaling of cv2.stereoRectify (-1: OpenCV default, 0: valid pixels only)
ALPHA = -1
#: cv2.stereoRectify flags (0: principal points may differ, which keeps disparities small)
RECTIFY_FLAGS = 0
METHODS = [
    "sgbm",
    "zncc",
    "census",
    "daisy",
    "dsift",
    "siam-l2.castle-fixed",
    "siam-l2.castle-near",
    "siam-l2.castle+oxford",
    "siam-2stream-l2.castle+oxford",
    "cnn3.castle+oxford",
    "l2net.castle+oxford",
]
#: the figures of ``../shared/data/README.md`` (same protocol), correctness@0.05 in view
REFERENCE = {
    "SGBM (data README)": {"fountain-P11": (0.76, 0.49, 0.42), "Herz-Jesu-P8": (0.96, 0.81, 0.64)},
    "DAISY + GC (data README)": {
        "fountain-P11": (0.91, 0.84, 0.70),
        "Herz-Jesu-P8": (0.97, 0.97, 0.95),
    },
}


def sgbm_depths(
    reference: np.ndarray,
    other: np.ndarray,
    ref_cam: Camera,
    other_cam: Camera,
    depth_range: tuple[float, float],
    truth: SparseDepth,
) -> np.ndarray:
    """Depths of the ground-truth points from OpenCV SGBM on the pair rectified with the true
    cameras (NaN where SGBM leaves a point empty).

    After ``cv2.stereoRectify`` the reference pixel ``x₁`` and its match ``x₂`` satisfy
    ``x₁ − x₂ = −f·Tx / Z + (c₁ − c₂)`` (``P2[0, 3] = f·Tx``). When the second camera lies left
    of the reference (``f·Tx > 0``) both rectified images are mirrored, which makes the
    reference the left image and flips the sign of both terms.
    """
    size = (ref_cam.width, ref_cam.height)
    R = other_cam.R.T @ ref_cam.R
    T = (other_cam.R.T @ (ref_cam.C - other_cam.C)).reshape(3, 1)
    zero = np.zeros(5)
    R1, R2, P1, P2, _, _, _ = cv2.stereoRectify(
        ref_cam.K, zero, other_cam.K, zero, size, R, T, flags=RECTIFY_FLAGS, alpha=ALPHA
    )
    m1 = cv2.initUndistortRectifyMap(ref_cam.K, zero, R1, P1, size, cv2.CV_32FC1)
    m2 = cv2.initUndistortRectifyMap(other_cam.K, zero, R2, P2, size, cv2.CV_32FC1)
    left = cv2.remap(reference, *m1, cv2.INTER_LINEAR)
    right = cv2.remap(other, *m2, cv2.INTER_LINEAR)
    if abs(P2[1, 3]) > abs(P2[0, 3]):
        raise ValueError("vertical rectification: not handled by this baseline")
    f_tx, shift = P2[0, 3], P1[0, 2] - P2[0, 2]
    sign = 1.0
    if f_tx > 0:  # second camera on the left: mirror both images
        left, right = left[:, ::-1].copy(), right[:, ::-1].copy()
        sign = -1.0
    fb = abs(f_tx)
    d_lo = fb / depth_range[1] + sign * shift
    d_hi = fb / depth_range[0] + sign * shift
    width = left.shape[1]
    min_disp = int(np.floor(d_lo))
    num = int(np.ceil((d_hi - min_disp) / 16.0)) * 16
    num = min(num, (width - max(min_disp, 0) - 32) // 16 * 16)
    if num < 16:  # the matches would lie outside the rectified image: SGBM gives nothing
        return np.full(len(truth.depth), np.nan)
    disp = sgbm_run(left, right, min_disp, num)
    if sign < 0:
        disp = disp[:, ::-1]
    rect = cv2.undistortPoints(
        truth.xy[:, None, :].astype(np.float64), ref_cam.K, zero, R=R1, P=P1
    )[:, 0, :]
    ix, iy = np.rint(rect[:, 0]).astype(int), np.rint(rect[:, 1]).astype(int)
    h, w = disp.shape
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    d = np.full(len(rect), np.nan)
    d[inside] = disp[iy[inside], ix[inside]]
    with np.errstate(divide="ignore", invalid="ignore"):
        z_rect = fb / (d - sign * shift)
    z_rect[z_rect <= 0] = np.nan
    X_rect = np.stack(
        [
            (rect[:, 0] - P1[0, 2]) * z_rect / P1[0, 0],
            (rect[:, 1] - P1[1, 2]) * z_rect / P1[1, 1],
            z_rect,
        ],
        axis=1,
    )
    return (X_rect @ R1)[:, 2]  # back to the reference camera frame: z = depth


def run_pair(scene_name: str, r: int, k: int, methods: list[str], size: int, n_labels: int):
    """Every method on one pair; returns ``{method: metrics}``."""
    pair = load_pair(scene_name, r, k, size)
    ref_w, other_w = pair.reference, pair.other
    ref_cam, other_cam = pair.reference_camera, pair.other_camera
    truth, in_view, depth_range = pair.truth, pair.in_view, pair.depth_range
    rows = {}
    for method in methods:
        t0 = time.time()
        if method == "sgbm":
            estimate = sgbm_depths(ref_w, other_w, ref_cam, other_cam, depth_range, truth)
            depth_map = np.full((ref_cam.height, ref_cam.width), np.nan, np.float32)
            metrics = _sparse_correctness(estimate, truth, in_view)
        else:
            spec = parse_method(method)
            if not spec.replicated_upsampling:
                sys.exit(f"error: {method}: the bilinear option is for cost_sweep.py")
            cfg = spec.config(n_labels=n_labels, depth_range=depth_range, working_size=size)
            result = match_calibrated(ref_w, other_w, ref_cam, other_cam, cfg)
            depth_map = result.depth
            metrics = depth_correctness(depth_map, truth, in_view)
            metrics["report_seconds"] = result.report["seconds"]
            if "cascade" in result.report:  # what the 2-channel cascade scored
                metrics["cascade"] = result.report["cascade"]
        metrics["seconds"] = round(time.time() - t0, 1)
        rows[method] = metrics
        print(
            f"{scene_name} r={r} k={k} {method}: correct@0.05 in view "
            f"{metrics['correct@0.05_in_view']:.3f} ({metrics['seconds']} s)",
            file=sys.stderr,
            flush=True,
        )
    return rows


def _sparse_correctness(estimate: np.ndarray, truth: SparseDepth, in_view: np.ndarray):
    depth_range = float(truth.depth.max() - truth.depth.min())
    error = np.abs(estimate - truth.depth)
    ok = np.isfinite(error)
    out = {
        "n_points": int(truth.depth.size),
        "depth_range": depth_range,
        "coverage": float(ok.mean()),
        "n_points_in_view": int(in_view.sum()),
    }
    for suffix, mask in (("", np.ones(len(error), bool)), ("_in_view", in_view)):
        for tau in (0.01, 0.02, 0.05):
            out[f"correct@{tau:g}{suffix}"] = float(
                (ok & (error <= tau * depth_range))[mask].mean()
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--pairs", nargs="+", default=PAIRS, help="SCENE:r:k")
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "strecha"))
    parser.add_argument("--note", default=None, help="A remark printed under the title.")
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="Rewrite the Markdown from the JSON without running anything.",
    )
    args = parser.parse_args()
    out = Path(args.out)
    if args.table_only:
        summary = saved_results(out, required=True)
        summary["note"] = args.note or summary.get("note")
        save_results(out, summary, write_table)
        return
    if not DATA.is_dir():
        sys.exit(f"error: {DATA} is missing (the shared Strecha data)")
    torch.set_num_threads(2)
    previous = saved_results(out)
    results = previous.get("results", {})
    for pair in args.pairs:
        scene_name, r, k = parse_pair(pair)
        rows = run_pair(scene_name, int(r), int(k), args.methods, args.size, args.labels)
        results.setdefault(pair, {}).update(rows)
        summary = {
            "hardware": hardware(),
            "date": time.strftime("%Y-%m-%d"),
            "size": args.size,
            "labels": args.labels,
            "results": results,
            "note": args.note or previous.get("note"),
        }
        save_results(out, summary, write_table)


def write_table(summary: dict, path: Path) -> None:
    """Markdown tables (τ = 0.05 and 0.02, in-view points) with seconds per pair."""
    results = summary["results"]
    pairs = list(results)
    methods = sorted({m for rows in results.values() for m in rows}, key=lambda m: (m != "sgbm", m))
    lines = [
        "# Strecha wide-baseline stereo",
        "",
        f"Generated by `python benchmarks/strecha.py`; {summary['date']}; hardware: "
        f"{summary['hardware']}. Working size {summary['size']} px (long side), "
        f"{summary['labels']} labels over the ground-truth depth range (+5 %). "
        "correctness@τ over the ground-truth points that project inside the second "
        "image; a point without an estimate counts as wrong. Graph cuts with the cost's "
        "smoothness weight λ chosen on castle-P19 (`models/smoothness.json`, "
        "`benchmarks/tune_smoothness.py`) unless marked `:wta` (winner-take-all) or `:λ` "
        "(that weight). Descriptor costs describe the second image pre-warped by the middle "
        "depth plane unless marked `:flat`. Empty cells: not run.",
        "",
    ]
    if summary.get("note"):
        lines += [f"Note: {summary['note']}", ""]
    for tau in ("0.05", "0.02"):
        lines += [
            f"## correctness@{tau} (in view)",
            "",
            "| method | "
            + " | ".join(p.replace(":", " r=", 1).replace(":", " k=") for p in pairs)
            + " | s / pair |",
            "|---|" + "---|" * (len(pairs) + 1),
        ]
        for m in methods:
            cells = [
                f"{results[p][m][f'correct@{tau}_in_view']:.2f}" if m in results[p] else ""
                for p in pairs
            ]
            secs = [results[p][m]["seconds"] for p in pairs if m in results[p]]
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {np.mean(secs):.0f} |")
        if tau == "0.05":
            for name, figures in REFERENCE.items():
                cells = []
                for p in pairs:
                    scene, _, k = p.split(":")
                    values = figures.get(scene)
                    cells.append(f"*{values[int(k) - 1]:.2f}*" if values else "")
                lines.append(f"| *{name}* | " + " | ".join(cells) + " | |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
