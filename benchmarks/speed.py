"""Speed of the stereo pipeline on this machine: seconds per stage against image size and
number of labels, for a descriptor model, a 2-channel model and a baseline.

    python benchmarks/speed.py                        # default grid
    python benchmarks/speed.py --costs siam-l2 zncc --sizes 384 768 --labels 32 64

Runs on the embedded rendered scene (no data needed), calibrated, at the given working size
(long side; 4:3 images ⇒ 768 → 768×576), graph cuts. Writes ``benchmarks/results/speed.md``
and ``.json``; times are wall seconds on the stated hardware, with the baseline ZNCC measured
in the same run for ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.patches import hardware  # noqa: E402
from stereo.datasets.synthetic import make_scene  # noqa: E402
from stereo.pipeline import StereoConfig, match_calibrated  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--costs", nargs="+", default=["zncc", "siam-l2", "cnn3", "2ch-deep"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[384, 768])
    parser.add_argument("--labels", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for size in args.sizes:
        scene = make_scene(2, width=size, height=size * 2 // 3, baseline=0.6)
        depth_range = (
            float(np.nanmin(scene.depths[0])) / 1.05,
            float(np.nanmax(scene.depths[0])) * 1.05,
        )
        for labels in args.labels:
            for cost in args.costs:
                cfg = StereoConfig(
                    model=cost, n_labels=labels, depth_range=depth_range, working_size=size
                )
                t0 = time.time()
                result = match_calibrated(
                    scene.images[0], scene.images[1], scene.cameras[0], scene.cameras[1], cfg
                )
                total = time.time() - t0
                row = {
                    "cost": cost,
                    "size": f"{size}x{size * 2 // 3}",
                    "labels": labels,
                    "total_s": round(total, 1),
                    **result.report["seconds"],
                }
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
    summary = {"hardware": hardware(), "date": time.strftime("%Y-%m-%d"), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Stereo pipeline speed",
        "",
        f"`python benchmarks/speed.py`, {summary['date']}, {summary['hardware']}. "
        "Calibrated pair of the embedded rendered scene, graph cuts; wall seconds.",
        "",
        "| cost | size | labels | cost volume | MRF | total |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cost']} | {r['size']} | {r['labels']} | {r['cost_volume']} | "
            f"{r['mrf']} | {r['total_s']} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
