"""The patch benchmark: DeepCompare's Table 1 layout on the Strecha scenes.

    python benchmarks/patches.py                      # every split with trained weights
    python benchmarks/patches.py --models 2ch siam-l2 --splits castle+oxford:fountain-P11

For each split TRAIN → TEST, every model trained on TRAIN scores the pair file of TEST (all
the pairs the scene gives, up to 100,000; half positive) and FPR95 is reported in percent,
with SIFT, NCC and raw-pixel L2 on the same pairs. Weights are looked up as
``models/MODEL.TRAIN.pt`` (shipped, fp16) and ``runs/patch_splits/TRAIN/MODEL.TRAIN.pt``.
The fp32 weights of the shipped models (``runs/shipped/MODEL/…fp32.pt``), where present, are
scored too, to show whether storing fp16 moves FPR95.

Prints a Markdown table and writes ``benchmarks/results/patches.md`` and ``.json``.
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
from stereo.patchnet.baselines import BASELINES
from stereo.patchnet.data.patchset import PairSet
from stereo.patchnet.metrics import fpr95
from stereo.patchnet.train import score_pairs
from stereo.patchnet.weights import load_weights_file

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT / "datasets" / "patches"
MODELS = ["2ch", "2ch-deep", "2ch-2stream", "siam", "siam-l2", "siam-2stream-l2", "cnn3", "l2net"]
SCENES = ["castle-P19", "fountain-P11", "Herz-Jesu-P8"]
#: the patch table's training sets and the scenes they contain (a split never tests on a
#: training scene)
TABLE_TRAINING_SCENES = {"castle+oxford": {"castle-P19"}, **{s: {s} for s in SCENES}}
#: every training set a split may name: the table's and the castle keypoint sets
TRAINING_SCENES = {
    **TABLE_TRAINING_SCENES,
    "castle-keypoints": {"castle-P19"},
    "castle+synthetic-keypoints": {"castle-P19"},
    "castle+synthetic-keypoints-any-angle": {"castle-P19"},
}
DEFAULT_SPLITS = [
    f"{a}:{b}" for a, seen in TABLE_TRAINING_SCENES.items() for b in SCENES if b not in seen
]


def find_weights(model: str, train: str) -> Path | None:
    """Weights of ``model`` (``FAMILY`` or ``FAMILY.TAG``) trained on ``train``, shipped
    first (``models/FAMILY.TRAIN.TAG.pt`` for a tagged model)."""
    family, _, tag = model.partition(".")
    shipped = f"{family}.{train}.{tag}.pt" if tag else f"{model}.{train}.pt"
    for path in (
        ROOT / "models" / shipped,
        ROOT / "runs" / "patch_splits" / train / f"{model}.{train}.pt",
    ):
        if path.is_file():
            return path
    return None


def display_path(path: Path) -> str:
    """``path`` relative to the project when inside it, else as given."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def checked_split(split: str) -> tuple[str, str]:
    """``TRAIN:TEST`` of a split; exits with a one-line error for an unknown training set or
    test scene, or a test scene the training set contains."""
    train, _, test = split.partition(":")
    if train not in TRAINING_SCENES or test not in SCENES:
        sys.exit(
            f"error: bad split {split!r}; write TRAIN:TEST with TRAIN one of "
            f"{', '.join(TRAINING_SCENES)} and TEST one of {', '.join(SCENES)}"
        )
    if test in TRAINING_SCENES[train]:
        sys.exit(f"error: split {split}: {train} trained on {test}; test on another scene")
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--splits", nargs="+", default=DEFAULT_SPLITS, help="TRAIN:TEST")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "patches"))
    parser.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help="folder of the test scenes' pair files (SCENE.pairs.npz; stereo-dataset build)",
    )
    parser.add_argument(
        "--update-cards",
        action="store_true",
        help="Write the held-out FPR95 into the shipped models' cards.",
    )
    parser.add_argument(
        "--from-json",
        action="store_true",
        help="Rebuild the table (and cards) from the saved JSON, no scoring.",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    for split in args.splits:  # every split checked before the first one runs
        checked_split(split)
    results: dict[str, dict] = {}
    baseline_names = ["sift", "ncc", "raw-l2"]
    if args.from_json:
        saved = json.loads(Path(args.out).with_suffix(".json").read_text())["splits"]
        results = {k: v for k, v in saved.items() if k in args.splits}
    for split in [] if args.from_json else args.splits:
        train, test = checked_split(split)
        pairs_path = args.data / f"{test}.pairs.npz"
        if not pairs_path.is_file():
            sys.exit(f"error: {pairs_path} missing; build it (see benchmarks/README.md)")
        weights = {m: find_weights(m, train) for m in args.models}
        if not any(weights.values()):
            print(f"skip {split}: no trained weights", file=sys.stderr)
            continue
        pairs = PairSet.load(pairs_path)
        row: dict = {"n_pairs": len(pairs), "fpr95": {}, "seconds": {}, "fp32_fpr95": {}}
        for name in baseline_names:
            t0 = time.time()
            row["fpr95"][name] = 100 * fpr95(BASELINES[name](pairs.a, pairs.b), pairs.label)
            row["seconds"][name] = round(time.time() - t0, 1)
        for model, path in weights.items():
            if path is None:
                continue
            t0 = time.time()
            row["fpr95"][model] = 100 * fpr95(
                score_pairs(load_weights_file(path), pairs), pairs.label
            )
            row["seconds"][model] = round(time.time() - t0, 1)
            fp32 = ROOT / "runs" / "shipped" / model / f"{model}.{train}.fp32.pt"
            if path.parent.name == "models" and fp32.is_file():
                row["fp32_fpr95"][model] = 100 * fpr95(
                    score_pairs(load_weights_file(fp32), pairs), pairs.label
                )
            print(f"{split} {model}: {row['fpr95'][model]:.2f}", file=sys.stderr, flush=True)
        results[split] = row
    columns = [m for m in args.models if any(m in r["fpr95"] for r in results.values())]
    columns += baseline_names
    lines = [
        "| train → test | pairs | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for split, row in results.items():
        cells = [f"{row['fpr95'][c]:.2f}" if c in row["fpr95"] else "–" for c in columns]
        lines.append(
            f"| {split.replace(':', ' → ')} | {row['n_pairs']:,} | " + " | ".join(cells) + " |"
        )
    means = {
        c: float(np.mean([r["fpr95"][c] for r in results.values() if c in r["fpr95"]]))
        for c in columns
    }
    lines.append("| **mean** | | " + " | ".join(f"**{means[c]:.2f}**" for c in columns) + " |")
    counts = {c: sum(c in r["fpr95"] for r in results.values()) for c in columns}
    lines.append("| splits in the mean | | " + " | ".join(str(counts[c]) for c in columns) + " |")
    table = "\n".join(lines)
    print(table)
    # the best model is chosen among those that ran every split (means over the same splits)
    models_only = {
        c: v for c, v in means.items() if c not in baseline_names and counts[c] == len(results)
    }
    best = min(models_only, key=models_only.get) if models_only else None
    summary = {
        "hardware": hardware(),
        "date": time.strftime("%Y-%m-%d"),
        "pair_files": display_path(args.data),
        "splits": results,
        "mean_fpr95": means,
        "best_model": best,
        "sift_over_best": means["sift"] / models_only[best] if best else None,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    fp16_lines = [
        f"| {s.replace(':', ' → ')} | {m} | {r['fpr95'][m]:.2f} | {v:.2f} |"
        for s, r in results.items()
        for m, v in r["fp32_fpr95"].items()
    ]
    md = [
        "# Patch benchmark: FPR95 (%) on the Strecha scenes",
        "",
        f"Generated by `python benchmarks/patches.py` on {summary['date']}; hardware: "
        f"{summary['hardware']}. Lower is better. Each TEST column uses all the pairs the "
        f"scene gives (up to 100,000), half positive, from `{display_path(args.data)}`; see "
        "`benchmarks/README.md` for how the data and models are made.",
        "",
        table,
        "",
    ]
    if best:
        md.append(
            f"Best model: **{best}**, mean FPR95 {models_only[best]:.2f} % against SIFT's "
            f"{means['sift']:.2f} % — SIFT / best = {summary['sift_over_best']:.2f}."
        )
    if fp16_lines:
        md += [
            "",
            "fp16 (shipped) against fp32 weights, FPR95 %:",
            "",
            "| split | model | fp16 | fp32 |",
            "|---|---|---|---|",
            *fp16_lines,
        ]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    if args.update_cards:
        update_cards(results, display_path(args.data))


def update_cards(results: dict[str, dict], pair_files: str) -> None:
    """Set ``heldout_fpr95_percent`` (per test scene) in the cards of the shipped weights
    :func:`find_weights` scored (tagged ones too), with the pair files they were scored on;
    only splits whose test scene is not a training scene count."""
    cards: dict[Path, dict[str, float]] = {}
    for split, row in results.items():
        train, test = split.split(":")
        for model, value in row["fpr95"].items():
            weights = find_weights(model, train)
            if weights is not None and weights.parent == ROOT / "models":
                cards.setdefault(weights.with_suffix(".json"), {})[test] = round(value, 3)
    for card_path, fpr in cards.items():
        card = json.loads(card_path.read_text())
        card["heldout_fpr95_percent"] = fpr
        card["heldout_protocol"] = (
            f"all pairs the test scene gives (up to 100,000, half positive) in {pair_files}; "
            "python benchmarks/patches.py"
        )
        card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
