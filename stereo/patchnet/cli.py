"""``stereo-patches``: train, score and inspect patch-comparison networks.

A thin layer over the library: each command parses its options, calls one library function
and prints. Bad input ends with a one-line ``Error: …`` (exit status 1), never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

from stereo.errors import StereoError, error_reporting_group
from stereo.patchnet.baselines import BASELINES
from stereo.patchnet.data.patchset import PairSet, make_pairs
from stereo.patchnet.data.sources import load_patch_source
from stereo.patchnet.manifest import (
    MANIFEST_NAME,
    manifest_problems,
    read_manifest,
    write_manifest,
)
from stereo.patchnet.metrics import pair_metrics
from stereo.patchnet.models import MODELS, build_model, count_parameters
from stereo.patchnet.recipes import RECIPES, default_recipe, get_recipe, parse_overrides


@click.group(cls=error_reporting_group(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stereo", message="%(prog)s %(version)s")
def cli() -> None:
    """Patch-comparison networks: DeepCompare, DeepDesc CNN3, L2-Net."""


@cli.command("models")
def models_command() -> None:
    """List the registry (name, parameters, description, default weights of each task) and
    every shipped weights file with its model card's training data."""
    from stereo.patchnet.weights import models_dir, read_card, shipped_weights

    for name, spec in MODELS.items():
        params = count_parameters(build_model(name))
        shipped = []
        for task in ("stereo", "patch"):
            path = shipped_weights(name, task)
            shipped.append(path.name if path is not None and path.is_file() else "-")
        click.echo(
            f"{name:16s} {params:>10,d}  {spec.summary}  "
            f"[stereo weights: {shipped[0]}; patch weights: {shipped[1]}]"
        )
    click.echo(f"\nshipped weights ({models_dir()}):")
    listed = read_manifest(models_dir())
    for path in sorted(models_dir().glob("*.pt")):
        entry = listed.get(path.name, {})
        task = entry.get("task", "?")
        window = entry.get("window", "?")
        window_text = f"{window} px" if isinstance(window, int) else str(window)
        lam = entry.get("smoothness")
        data = str(read_card(path).get("data", "?")).split(";")[0]
        click.echo(
            f"  {path.stem:32s} {entry.get('family', '?'):16s} {task:6s} {window_text:>8s} "
            f"λ {lam if lam is not None else '-':<4}  {data}"
        )


@cli.command("manifest")
@click.option("--write", is_flag=True, help="make the manifest afresh from the weights and cards")
def manifest_command(write: bool) -> None:
    """Check the shipped weights against models/manifest.json (sha256, family, task, window,
    training set, λ), or write it afresh with --write after training."""
    from stereo.patchnet.weights import models_dir

    folder = models_dir()
    if write:
        click.echo(f"wrote {write_manifest(folder)}")
        return
    problems = manifest_problems(folder)
    if problems:
        raise click.ClickException(
            f"{len(problems)} problem(s) in {folder / MANIFEST_NAME}: {'; '.join(problems)}; "
            "run `stereo-patches manifest --write` if the weights were retrained on purpose"
        )
    click.echo(f"{len(read_manifest(folder))} shipped weights files match {MANIFEST_NAME}")


@cli.command("train")
@click.argument("model", type=click.Choice(list(MODELS)))
@click.option(
    "--data",
    required=True,
    help="Training patches: .npz, Brown/HPatches folder, warped:N[:VIEWS]; join several with '+'.",
)
@click.option(
    "--recipe",
    type=click.Choice(list(RECIPES)),
    default=None,
    help="Named recipe (default: the model's own paper's).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe field, e.g. --set lr=0.01 --set steps=500.",
)
@click.option("--steps", type=int, default=None, help="Shorthand for --set steps=N.")
@click.option(
    "--val",
    "val_path",
    type=click.Path(),
    default=None,
    help="Validation pair .npz (default: pairs from 10%% held-out points).",
)
@click.option("--out", "out_dir", type=click.Path(), default="runs/train", show_default=True)
@click.option("--name", default=None, help="Weights file name (default MODEL.RECIPE.pt).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option("--init", "init_path", default=None, help="Start from these weights (.pt).")
@click.option("--half", is_flag=True, help="Store the final weights in fp16.")
def train_command(
    model: str,
    data: str,
    recipe: str | None,
    overrides: tuple[str, ...],
    steps: int | None,
    val_path: str | None,
    out_dir: str,
    name: str | None,
    seed: int,
    device: str,
    resume: bool,
    init_path: str | None,
    half: bool,
) -> None:
    """Train MODEL on patch data and write weights + model card to --out."""
    from stereo.patchnet.train import train
    from stereo.patchnet.weights import load_weights_file

    chosen = get_recipe(recipe) if recipe else default_recipe(model)
    values = parse_overrides(overrides)
    if steps is not None:
        values["steps"] = str(steps)
    chosen = chosen.with_overrides(values)
    patches = load_patch_source(data, seed)
    val = PairSet.load(val_path) if val_path else None
    init = load_weights_file(Path(init_path)) if init_path else None
    if init is not None and init.name != model:
        raise StereoError(f"--init weights are for {init.name!r}, not {model!r}")
    click.echo(
        f"training {model} with recipe {chosen.name} on {len(patches)} patches "
        f"({patches.n_points} points), {chosen.steps} steps, device {device}",
        err=True,
    )
    result = train(
        model,
        chosen,
        patches,
        out_dir,
        val_pairs=val,
        seed=seed,
        device=device,
        resume=resume,
        init_weights=init,
        weights_name=name,
        half=half,
        data_description=data,
    )
    click.echo(
        json.dumps(
            {
                "weights": str(result.weights),
                "first_loss": result.first_loss,
                "last_loss": result.last_loss,
                "validation": result.card["validation"],
            },
            indent=2,
        )
    )


@cli.command("score")
@click.option(
    "--pairs",
    "pairs_path",
    required=True,
    type=click.Path(),
    help="Pair .npz with a, b (N,64,64 uint8) and label (N,).",
)
@click.option("--model", default=None, help="Registry name (shipped weights) or a .pt file.")
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    type=click.Choice(list(BASELINES)),
    help="Also score a hand-crafted baseline (repeatable).",
)
@click.option(
    "--untrained", is_flag=True, help="Use a randomly initialised network (timing and tests only)."
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", type=int, default=512, show_default=True)
def score_command(
    pairs_path: str,
    model: str | None,
    baselines: tuple[str, ...],
    untrained: bool,
    device: str,
    batch_size: int,
) -> None:
    """Score a pair file; print JSON with fpr95 (fraction), roc_auc, pr_auc, n_pairs."""
    from stereo.patchnet.train import score_pairs
    from stereo.patchnet.weights import load_model

    if model is None and not baselines:
        raise StereoError("give --model NAME|FILE and/or --baseline sift|ncc|raw-l2")
    pairs = PairSet.load(pairs_path)
    report: dict = {"pairs": str(pairs_path)}
    if model is not None:
        net = load_model(model, device=device, untrained=untrained)
        t0 = time.time()
        scores = score_pairs(net, pairs, batch_size, progress=sys.stderr.isatty())
        report.update(
            {
                "model": net.name,
                "weights": model,
                **pair_metrics(scores, pairs.label),
                "seconds": round(time.time() - t0, 2),
            }
        )
    if baselines:
        report["baselines"] = {}
        for name in baselines:
            t0 = time.time()
            metrics = pair_metrics(BASELINES[name](pairs.a, pairs.b), pairs.label)
            report["baselines"][name] = {**metrics, "seconds": round(time.time() - t0, 2)}
    click.echo(json.dumps(report, indent=2))


@cli.command("evaluate")
@click.option("--data", required=True, help="Patch source with point ids (as for train).")
@click.option("--model", default=None, help="Registry name (shipped weights) or a .pt file.")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(list(BASELINES)))
@click.option("--queries", type=int, default=1000, show_default=True)
@click.option("--negatives", type=int, default=1000, show_default=True)
@click.option("--untrained", is_flag=True, help="Randomly initialised network (tests only).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def evaluate_command(
    data: str,
    model: str | None,
    baselines: tuple[str, ...],
    queries: int,
    negatives: int,
    untrained: bool,
    device: str,
    seed: int,
) -> None:
    """DeepDesc protocol: one true match against NEGATIVES non-matches per query; prints
    JSON with PR AUC, ROC AUC and CMC for the model and each baseline."""
    from stereo.patchnet.evaluate import one_vs_many
    from stereo.patchnet.weights import load_model

    if model is None and not baselines:
        raise StereoError("give --model NAME|FILE and/or --baseline sift|ncc|raw-l2")
    patches = load_patch_source(data, seed)
    methods = [load_model(model, device=device, untrained=untrained)] if model else []
    report = {}
    for method in [*methods, *baselines]:
        label = method if isinstance(method, str) else method.name
        report[label] = one_vs_many(method, patches, queries, negatives, seed)
    click.echo(json.dumps(report, indent=2))


@cli.command("make-pairs")
@click.option("--data", required=True, help="Patch source (as for train).")
@click.option("--n", "n_pairs", type=int, default=100000, show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path())
@click.option("--seed", type=int, default=0, show_default=True)
def make_pairs_command(data: str, n_pairs: int, out_path: str, seed: int) -> None:
    """Write a benchmark pair file: half positives, half negatives."""
    pairs = make_pairs(load_patch_source(data, seed), n_pairs, seed)
    pairs.save(out_path)
    click.echo(f"wrote {len(pairs)} pairs ({int(pairs.label.sum())} positive) to {out_path}")


@cli.command("convert")
@click.option("--data", required=True, help="Patch source (as for train).")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(),
    help="FILE.npz for the compact format, otherwise a Brown-format folder.",
)
@click.option(
    "--pairs",
    "n_pairs",
    type=int,
    default=0,
    help="With a Brown folder: also write an m50 file of N pairs.",
)
def convert_command(data: str, out_path: str, n_pairs: int) -> None:
    """Convert patch data between the compact .npz and the Brown format."""
    from stereo.patchnet.data.brown import write_brown
    from stereo.patchnet.data.patchset import sample_pair_indices

    patches = load_patch_source(data)
    if out_path.endswith(".npz"):
        patches.save(out_path)
    else:
        index = sample_pair_indices(patches.point_ids, n_pairs)[0] if n_pairs else None
        write_brown(out_path, patches, index)
    click.echo(f"wrote {len(patches)} patches ({patches.n_points} points) to {out_path}")


@cli.command("download-brown")
@click.argument("name")
@click.option("--dest", type=click.Path(), default="datasets/brown", show_default=True)
@click.option("--url", default=None, help="Archive address (default: the authors' site).")
def download_brown_command(name: str, dest: str, url: str | None) -> None:
    """Download and extract a Brown/UBC set (liberty, notredame, yosemite, *_harris)."""
    from stereo.patchnet.data.download import download_brown

    folder = download_brown(name, dest, url)
    click.echo(f"Brown set {name} ready in {folder}")


@cli.command("demo")
@click.option("--model", type=click.Choice(list(MODELS)), default="siam-l2", show_default=True)
@click.option("--steps", type=int, default=300, show_default=True)
@click.option("--out", "out_dir", type=click.Path(), default="runs/demo", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_command(model: str, steps: int, out_dir: str, seed: int) -> None:
    """Train briefly on warped patches of some embedded photographs and compare with SIFT on
    patches of *other* photographs (no download, about a minute on a 2-core CPU)."""
    from stereo.patchnet.data.warped import SAMPLE_IMAGES, sample_photographs, warped_patch_set
    from stereo.patchnet.train import score_pairs, train

    torch.set_num_threads(max(1, torch.get_num_threads()))
    train_images = sample_photographs(SAMPLE_IMAGES[:7])
    test_images = sample_photographs(SAMPLE_IMAGES[7:])
    train_set = warped_patch_set(1200, 3, seed=seed, images=train_images)
    test_pairs = make_pairs(warped_patch_set(600, 2, seed=seed + 1, images=test_images), 1200, seed)
    recipe = get_recipe("deepcompare-adam").with_overrides(
        {"steps": str(steps), "batch_size": "64", "val_every": "0", "val_pairs": "400"}
    )
    result = train(
        model,
        recipe,
        train_set,
        out_dir,
        seed=seed,
        data_description="warped:1200:3 of " + ",".join(SAMPLE_IMAGES[:7]),
    )
    from stereo.patchnet.weights import load_weights_file

    net = load_weights_file(result.weights)
    rows = {model: pair_metrics(score_pairs(net, test_pairs), test_pairs.label)}
    for name, fn in BASELINES.items():
        rows[name] = pair_metrics(fn(test_pairs.a, test_pairs.b), test_pairs.label)
    click.echo(
        f"\nheld-out photographs {', '.join(SAMPLE_IMAGES[7:])}: "
        f"{len(test_pairs)} pairs, FPR95 lower is better"
    )
    click.echo(f"{'method':18s} {'FPR95 %':>8s} {'ROC AUC':>8s} {'PR AUC':>8s}")
    for name, m in rows.items():
        click.echo(f"{name:18s} {100 * m['fpr95']:8.2f} {m['roc_auc']:8.4f} {m['pr_auc']:8.4f}")
    summary = {"weights": str(result.weights), "results": rows}
    (Path(out_dir) / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    click.echo(f"weights and model card in {out_dir}; table in {Path(out_dir) / 'demo.json'}")


def main() -> None:
    """Console entry point."""
    np.set_printoptions(precision=4)
    cli(prog_name="stereo-patches")


if __name__ == "__main__":
    main()
