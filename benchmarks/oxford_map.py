"""Local descriptor matching on the Oxford (Mikolajczyk) sequences: the seeds' third
experiment. MSER regions normalised to 64×64 patches, every img1 region scored against every
imgN region (N = 2…6) by each method, mean average precision against the overlap-error
ground truth (``stereo.bench.oxford`` says how).

    python benchmarks/oxford_map.py --methods sift l2net.castle-fixed siam-l2.castle-fixed

Models whose model card says they trained on Oxford images (the castle+oxford sets, and the
synthetic sets, which take Oxford photographs as textures) are refused unless
``--allow-oxford-trained``; their rows are then marked † (not a fair test). Writes
``results/oxford_map.md`` / ``.json``; rows of earlier runs are kept.
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
from stereo.bench.oxford import (
    correspondences,
    mser_regions,
    pair_mean_average_precision,
    region_patches,
)
from stereo.bench.results import merge_scores, save_results, saved_results
from stereo.datasets.homography import load_sequence
from stereo.errors import StereoError
from stereo.patchnet.baselines import BASELINES
from stereo.patchnet.evaluate import score_index_pairs
from stereo.patchnet.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
OXFORD = ROOT.parent / "shared" / "data" / "oxford"
SEQUENCES = ["bark", "bikes", "boat", "graf", "trees", "ubc"]
#: what each sequence changes from img1 to img6
CHANGES = {
    "bark": "zoom + rotation",
    "bikes": "blur",
    "boat": "zoom + rotation",
    "graf": "viewpoint",
    "trees": "blur",
    "ubc": "JPEG",
}
OXFORD_TRAINED = "†"


def load_method(name: str, allow_oxford_trained: bool):
    """A baseline name, or the model and whether it trained on Oxford images; exits with a
    one-line error for an Oxford-trained model unless allowed."""
    if name in BASELINES:
        return name, False
    model = load_model(name)
    data = str(getattr(model, "card", {}).get("data", "")).lower()
    trained_on_oxford = "oxford" in data
    if trained_on_oxford and not allow_oxford_trained:
        sys.exit(
            f"error: {name} trained on Oxford images (its card: {data[:80]}…); pass "
            "--allow-oxford-trained to score it anyway (marked †)"
        )
    return model, trained_on_oxford


def sequence_regions(folder: Path, max_regions: int):
    """Per image of a sequence: its regions and their patches; and the homographies."""
    images, homographies = load_sequence(folder)
    regions = [mser_regions(image, max_regions) for image in images]
    patches = [region_patches(image, r) for image, r in zip(images, regions, strict=True)]
    return regions, patches, homographies


@torch.no_grad()
def score_matrices(method, patches: list[np.ndarray]) -> list[np.ndarray]:
    """``(N1, Nn)`` scores of every patch of ``patches[0]`` (img1) against every patch of
    each later image, in one call (descriptor methods describe each patch once)."""
    starts = np.cumsum([0] + [len(p) for p in patches])
    first = np.arange(len(patches[0]))
    pairs = [
        np.stack(np.meshgrid(first, np.arange(starts[n], starts[n + 1]), indexing="ij"), -1)
        for n in range(1, len(patches))
    ]
    scores = score_index_pairs(
        method, np.concatenate(patches), np.concatenate([p.reshape(-1, 2) for p in pairs])
    )
    sizes = [p.shape[0] * p.shape[1] for p in pairs]
    chunks = np.split(scores, np.cumsum(sizes)[:-1])
    return [c.reshape(p.shape[:2]) for c, p in zip(chunks, pairs, strict=True)]


def run_sequence(name: str, methods: dict, max_regions: int) -> dict[str, dict]:
    """One sequence's rows: per method the mAP of img1 against each imgN, and seconds."""
    regions, patches, homographies = sequence_regions(OXFORD / name, max_regions)
    truths = {
        n: correspondences(regions[0], regions[n - 1], homographies[n - 1])
        for n in range(2, len(regions) + 1)
    }
    queries = {str(n): int(t.any(axis=1).sum()) for n, t in truths.items()}
    print(f"{name}: regions {[len(r) for r in regions]}, queries {queries}", file=sys.stderr)
    rows = {}
    for label, (method, trained_on_oxford) in methods.items():
        start = time.time()
        matrices = score_matrices(method, patches)
        scores = {
            str(n): round(pair_mean_average_precision(matrices[n - 2], truth)[0], 4)
            for n, truth in truths.items()
        }
        rows[label] = {
            "map": scores,
            "queries": queries,
            "regions": [len(r) for r in regions],
            "oxford_trained": trained_on_oxford,
            "seconds": round(time.time() - start, 1),
        }
        print(f"  {label}: {scores}", file=sys.stderr)
    return rows


def mean_map(row: dict) -> float:
    """A row's mAP averaged over the steps img2…img6."""
    return float(np.nanmean(list(row["map"].values())))


def write_table(summary: dict, path: Path) -> None:
    """The Markdown table: mean mAP per sequence and method, then each step."""
    results = summary["results"]
    sequences = [s for s in SEQUENCES if s in results]
    methods = sorted({m for s in sequences for m in results[s]})
    lines = [
        "# Oxford (Mikolajczyk) sequences: local descriptor matching, mAP (higher is better)",
        "",
        f"`python benchmarks/oxford_map.py`; {summary['date']}; {summary['hardware']}. MSER "
        f"regions (≤ {summary['max_regions']} an image), measurement region 3× the ellipse, "
        "normalised to 64×64 and to the dominant gradient orientation; every img1 region "
        "scored against every imgN region; ground truth: overlap error < 0.5 under H1toN "
        "(ellipses scaled to radius 30 px); mAP over the img1 regions with a correspondent. "
        "† = the model trained on Oxford images (no fair test).",
        "",
        "| method | " + " | ".join(f"{s} ({CHANGES[s]})" for s in sequences) + " | mean |",
        "|---|" + "---|" * (len(sequences) + 1),
    ]
    for method in methods:
        cells, means = [], []
        for s in sequences:
            row = results[s].get(method)
            cells.append(f"{mean_map(row):.3f}" if row else "")
            means += [mean_map(row)] if row else []
        marked = any(results[s].get(method, {}).get("oxford_trained") for s in sequences)
        name = method + (f" {OXFORD_TRAINED}" if marked else "")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean(means):.3f} |")
    for s in sequences:
        steps = sorted({k for row in results[s].values() for k in row["map"]}, key=int)
        first = next(iter(results[s].values()))
        lines += [
            "",
            f"## {s} ({CHANGES[s]}): regions {first['regions']}, queries per step "
            f"{[first['queries'][k] for k in steps]}",
            "",
            "| method | " + " | ".join(f"1→{k}" for k in steps) + " | s |",
            "|---|" + "---|" * (len(steps) + 1),
        ]
        for method, row in sorted(results[s].items()):
            cells = [f"{row['map'].get(k, float('nan')):.3f}" for k in steps]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {row['seconds']} |")
    path.write_text("\n".join(lines) + "\n")


def update_cards(summary: dict, out: Path, models: Path = ROOT / "models") -> None:
    """Set ``oxford_map`` (mean and per-sequence mAP, SIFT's in the same results, the table)
    in the model card (``models/NAME.json``) of every model that has a row in every sequence."""
    results = summary["results"]
    sequences = [s for s in SEQUENCES if s in results]
    for method in sorted({m for s in sequences for m in results[s]}):
        card_path = models / f"{method}.json"
        if method in BASELINES or not card_path.is_file():
            continue
        if not all(method in results[s] for s in sequences):
            continue
        per_sequence = {s: round(mean_map(results[s][method]), 4) for s in sequences}
        entry = {"mean": round(float(np.mean(list(per_sequence.values()))), 4)}
        entry["per_sequence"] = per_sequence
        if all("sift" in results[s] for s in sequences):
            sift = [mean_map(results[s]["sift"]) for s in sequences]
            entry["sift_mean_same_results"] = round(float(np.mean(sift)), 4)
        table = out.with_suffix(".md").resolve()
        entry["table"] = str(table.relative_to(ROOT) if table.is_relative_to(ROOT) else table)
        card = json.loads(card_path.read_text())
        card["oxford_map"] = entry
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"{card_path.name}: oxford_map {entry['mean']}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["sift", "l2net.castle-fixed"])
    parser.add_argument("--sequences", nargs="+", default=SEQUENCES, choices=SEQUENCES)
    parser.add_argument("--max-regions", type=int, default=600, help="MSER regions an image")
    parser.add_argument("--allow-oxford-trained", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "oxford_map"))
    parser.add_argument("--table-only", action="store_true", help="rewrite the Markdown only")
    parser.add_argument(
        "--update-cards",
        action="store_true",
        help="write each shipped model's mean mAP (and SIFT's of the same results) into its "
        "model card (models/NAME.json)",
    )
    args = parser.parse_args()
    out = Path(args.out)
    summary = saved_results(out, required=args.table_only)
    if not args.table_only:
        if not OXFORD.is_dir():
            sys.exit(f"error: {OXFORD} is missing (../shared/data/oxford)")
        try:
            methods = {m: load_method(m, args.allow_oxford_trained) for m in args.methods}
            results = summary.get("results", {})
            for name in args.sequences:
                merge_scores(results, name, run_sequence(name, methods, args.max_regions))
        except StereoError as error:
            sys.exit(f"error: {error}")
        summary.update(
            date=time.strftime("%Y-%m-%d"),
            hardware=hardware(),
            max_regions=args.max_regions,
            results=results,
        )
    save_results(out, summary, write_table)
    print(out.with_suffix(".md").read_text())
    if args.update_cards:
        update_cards(summary, out)


if __name__ == "__main__":
    main()
