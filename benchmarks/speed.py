"""Speed of the stereo pipeline on this machine: seconds per stage against image size and
number of labels, for descriptor models, a 2-channel model and baselines.

    python benchmarks/speed.py                        # default grid (~15 minutes on 2 cores)
    python benchmarks/speed.py --costs siam-l2 zncc --sizes 384 768 --labels 32 64

Runs on the embedded rendered scene (no data needed), calibrated, with the depth range given
(no keypoint matching), at the given working size (long side; the scene is rendered 3:2, so
768 → 768×512), graph cuts with the default settings. A 2-channel model's full sweep
(``NAME:full``) runs the network once per label, so it is timed with few labels
(``--slow-labels``) and the per-label time is reported; its 64-label time is that × 64 plus
the MRF, stated as an extrapolation. Without ``:full`` the 2-channel models run their
cascade (``--cascade``, the default) and are timed like any other cost.
Every row also gives its ratio to ZNCC at the same size and labels, measured in the same run.
Writes ``benchmarks/results/speed.md`` and ``.json``.

    python benchmarks/speed.py --gpu                  # on a CUDA machine: results/gpu.md

``--gpu`` is the prepared GPU measurement (issue 13): every cost on ``cuda`` — the baselines,
every shipped stereo network and the full 64-label 2ch-deep sweep (untrained weights where a
family has no stereo weights: the same arithmetic) — at 768×512, after one warm-up run,
stopping before ``--time-limit`` seconds (default 600) with the rows measured so far.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import traceback
from pathlib import Path

import cv2
import numpy as np
import torch

from stereo.bench.machine import hardware
from stereo.bench.middlebury import sgbm_run
from stereo.bench.specs import parse_method
from stereo.bench.strecha import truth_range
from stereo.datasets.synthetic import make_scene
from stereo.errors import StereoError
from stereo.pipeline import match_calibrated

ROOT = Path(__file__).resolve().parents[1]

#: the --gpu preset, most wanted first (rows stop at --time-limit): the default (2ch-deep's
#: stereo weights, cascade), its full 64-label sweep, the MRF in more row bands (the GPU
#: machine has more cores), the baselines and every family (untrained weights where the
#: stereo weights would not travel: the same arithmetic). Since session 21 the default reads
#: its windows at scale 2 (4× the network's pixels); ``:ws1`` rows keep the session-18 measure.
GPU_COSTS = [
    "2ch-deep",
    "2ch-deep:full",
    "2ch-deep:ws1",
    "2ch-deep:full:ws1",
    "2ch-deep:mt8",
    "2ch-deep:mt16",
    "sgbm",
    "zncc",
    "zncc:mt8",
    "census",
    "l2net",
    "cnn3",
    "siam",
    "2ch",
    "2ch-2stream:untrained",
    "siam-2stream-l2:untrained",
    "siam-l2",
    "dsift",
    "daisy",
]


def time_sgbm(scene, size: int, labels: int) -> dict:
    """OpenCV SGBM (the benchmarks' setting, :func:`~stereo.bench.middlebury.sgbm_run`) on
    the pair resized to the working size, over ``labels`` disparities rounded up to a
    multiple of 16, as if rectified: its time does not depend on the geometry."""
    h = round(scene.images[0].shape[0] * size / max(scene.images[0].shape))
    left, right = (
        cv2.resize(image, (size, h), interpolation=cv2.INTER_AREA) for image in scene.images[:2]
    )
    t0 = time.time()
    sgbm_run(left, right, 0, -(-labels // 16) * 16)
    total = time.time() - t0
    row = {"cost": "sgbm", "size": f"{size}x{h}", "pixels": size * h, "labels": labels}
    row |= {"total_s": round(total, 2), "cost_volume": round(total, 2), "mrf": 0.0, "device": "cpu"}
    print(row, file=sys.stderr, flush=True)
    return row


def time_one(scene, cost: str, size: int, labels: int, device: str = "cpu") -> dict:
    """One calibrated run; wall seconds per stage. ``cost`` is a benchmark method
    (:func:`~stereo.bench.specs.parse_method`: ``2ch-deep:s3`` scores every 3rd pixel,
    ``2ch-deep:full`` is the full sweep instead of the cascade) and may also say
    ``untrained``: random weights of a family without stereo weights, timed only
    (``2ch-deep:untrained:full``); ``sgbm`` is :func:`time_sgbm`."""
    if cost == "sgbm":
        return time_sgbm(scene, size, labels)
    depth_range = truth_range(scene.depths[0])
    options = cost.split(":")
    spec = parse_method(":".join(option for option in options if option != "untrained"))
    cfg = spec.config(
        n_labels=labels,
        depth_range=depth_range,
        working_size=size,
        device=device,
        untrained="untrained" in options,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.time()
    result = match_calibrated(
        scene.images[0], scene.images[1], scene.cameras[0], scene.cameras[1], cfg
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    total = time.time() - t0
    h, w = result.depth_working.shape
    row = {
        "cost": cost,
        "size": f"{w}x{h}",
        "pixels": int(w * h),
        "labels": labels,
        "total_s": round(total, 1),
        **result.report["seconds"],
        "descriptor_dims": result.report.get("descriptor_dims"),
        "descriptor_dims_kept": result.report.get("descriptor_dims_kept"),
        "precision": result.report.get("precision"),
        "scored_fraction": result.report.get("cascade", {}).get("scored_fraction"),
        "cycles": result.report.get("mrf", {}).get("iterations"),
        "device": device,
    }
    print(row, file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--costs",
        nargs="+",
        default=["sgbm", "zncc", "census", "l2net", "siam-l2", "cnn3", "2ch-deep"],
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[384, 768])
    parser.add_argument("--labels", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--slow-costs", nargs="*", default=["2ch-deep:full"])
    parser.add_argument("--slow-labels", nargs="+", type=int, default=[4, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", default=None, help="results stem (default results/speed, with --gpu results/gpu)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gpu", action="store_true", help="the prepared CUDA measurement")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds; then stop")
    args = parser.parse_args()
    if args.gpu:
        args.device, args.costs, args.slow_costs = "cuda", GPU_COSTS, []
        args.sizes, args.labels = [768], [64]
        args.time_limit = args.time_limit or 600.0
    default_stem = "gpu" if args.gpu else "speed"
    args.out = args.out or str(ROOT / "benchmarks" / "results" / default_stem)
    torch.set_num_threads(args.threads)
    rows = measure(args)
    write_results(rows, args)


def measure(args: argparse.Namespace) -> list[dict]:
    """Every (size, labels, cost) row of the grid, until ``args.time_limit`` seconds."""
    start, rows = time.time(), []
    for size in args.sizes:
        scene = make_scene(2, width=size, height=size * 2 // 3, baseline=0.6)
        if args.device != "cpu":  # CUDA initialisation and kernel selection off the clock
            time_one(scene, "zncc", size, 8, args.device)
        grid = [(labels, cost) for labels in args.labels for cost in args.costs]
        grid += [(labels, cost) for labels in args.slow_labels for cost in args.slow_costs]
        for labels, cost in grid:
            if args.time_limit and time.time() - start > args.time_limit:
                print(f"time limit reached: {len(rows)} rows", file=sys.stderr)
                return rows
            try:
                rows.append(time_one(scene, cost, size, labels, args.device))
            except StereoError as error:  # e.g. a family without stereo weights: skip the row
                print(f"skipped {cost} at {size} px, {labels} labels: {error}", file=sys.stderr)
            except Exception:  # a prepared run on a borrowed machine keeps going
                print(f"FAILED {cost} at {size} px, {labels} labels:", file=sys.stderr)
                traceback.print_exc()
    return rows


def write_results(rows: list[dict], args: argparse.Namespace) -> None:
    """The JSON and the Markdown table, each row with its ratio to ZNCC."""
    zncc = {(r["size"], r["labels"]): r["total_s"] for r in rows if r["cost"] == "zncc"}
    for r in rows:
        base = zncc.get((r["size"], r["labels"]))
        r["ratio_to_zncc"] = round(r["total_s"] / base, 2) if base else None
        r["cost_volume_s_per_label"] = round(r["cost_volume"] / r["labels"], 3)
    summary = {
        "hardware": hardware(),
        "threads": args.threads,
        "device": args.device,
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Stereo pipeline speed",
        "",
        f"`python benchmarks/speed.py{' --gpu' if args.gpu else ''}`, {summary['date']}, "
        f"{summary['hardware']}, device {args.device}. "
        "Calibrated pair of the embedded rendered scene, depth range "
        "given, graph cuts from the winner-take-all labels (cycles: each cost's expansion "
        "cycles, `models/smoothness.json`, else 2); wall "
        "seconds. Descriptor dims: network output → kept by the principal-component "
        "projection of the volume; precision: the network's arithmetic (`--precision auto`); "
        "scored: the share of the volume a 2-channel cascade scored (`:full` = the full "
        "sweep, `:sN` = every Nth pixel).",
        "",
        "| cost | size | labels | cost volume | per label | MRF | cycles | total | × ZNCC | "
        "dims | precision | scored |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dims = (
            f"{r['descriptor_dims']} → {r['descriptor_dims_kept']}"
            if r.get("descriptor_dims_kept")
            else (r.get("descriptor_dims") or "")
        )
        ratio = r["ratio_to_zncc"] if r["ratio_to_zncc"] is not None else ""
        lines.append(
            f"| {r['cost']} | {r['size']} | {r['labels']} | {r['cost_volume']} | "
            f"{r['cost_volume_s_per_label']} | {r['mrf']} | {r.get('cycles') or ''} | "
            f"{r['total_s']} | {ratio} | {dims} | "
            f"{r.get('precision') or ''} | {r.get('scored_fraction') or ''} |"
        )
    lines += growth_lines(rows)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


#: the stages whose growth :func:`growth_lines` states
GROWTH_STAGES = ("cost_volume", "mrf", "total_s")


def growth_exponent(rows: list[dict], cost: str, stage: str, across: str) -> float | None:
    """The exponent e of ``seconds ∝ across^e`` (``across`` = ``"pixels"`` or
    ``"labels"``) for one cost and stage: the mean log-log slope between rows that differ
    only in ``across``; None without two such rows."""
    fixed = "labels" if across == "pixels" else "pixels"
    groups: dict = {}
    for r in rows:
        if r["cost"] == cost and r.get(stage):
            groups.setdefault(r[fixed], []).append((r[across], r[stage]))
    slopes = [
        np.log(b[1] / a[1]) / np.log(b[0] / a[0])
        for points in groups.values()
        for a, b in itertools.pairwise(sorted(points))
        if b[0] != a[0]
    ]
    return round(float(np.mean(slopes)), 2) if slopes else None


def growth_lines(rows: list[dict]) -> list[str]:
    """A table of how each stage's time grows with pixels and with labels, per cost."""
    lines = [
        "",
        "## How time grows",
        "",
        "Exponent e of time ∝ pixels^e (labels fixed) and ∝ labels^e (size fixed), the mean "
        "log-log slope between the rows above (1 = linear; below 1 = a fixed part, e.g. a "
        "descriptor network that runs once per image, not once per label).",
        "",
        "| cost | volume vs pixels | volume vs labels | MRF vs pixels | MRF vs labels | "
        "total vs pixels | total vs labels |",
        "|---|---|---|---|---|---|---|",
    ]
    for cost in dict.fromkeys(r["cost"] for r in rows):
        cells = [
            growth_exponent(rows, cost, stage, across)
            for stage in GROWTH_STAGES
            for across in ("pixels", "labels")
        ]
        if any(c is not None for c in cells):
            lines.append(
                f"| {cost} | " + " | ".join("" if c is None else str(c) for c in cells) + " |"
            )
    return lines


if __name__ == "__main__":
    main()
