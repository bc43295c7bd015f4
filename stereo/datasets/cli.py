"""``stereo-dataset``: build training patches and benchmark pairs from real data.

``stereo-dataset build SOURCE… --out DIR`` writes, for each source (a calibrated scene in the
Strecha layout, or an Oxford-style homography sequence):

* ``DIR/NAME.npz`` — compact patch set (``patches``, ``point_ids`` + builder statistics),
* ``DIR/NAME.pairs.npz`` — a benchmark pair file (half positives, half negatives), all the
  pairs the scene gives up to ``--pairs``,
* ``DIR/NAME/`` — the same patches in Brown format, with ``--brown``.

Finished outputs are skipped on a rerun unless ``--overwrite``.

``stereo-dataset truth SCENE --out DIR`` writes sparse depth ground truth for a calibrated
scene that has none (``DIR/NNNN.npz`` per view: ``xy``, ``depth``, ``point_id``, the format of
the Strecha ``gt_sparse`` files), made as the data README makes those files.

``stereo-dataset synthetic --pairs N --out DIR`` writes random wide-baseline view pairs
(:mod:`stereo.datasets.random_scenes`, the scenes the stereo training windows come from) as
calibrated scenes in the Strecha layout with exact depth: ``DIR/pair-NNNN/{images,cameras,
depth}``, to look at or to match (``stereo-match`` with ``--cameras``).

``stereo-dataset dense-truth SCENE --out DIR`` matches every view of a calibrated scene with
its neighbour and keeps each depth map where at least ``--min-views`` views agree
(:mod:`stereo.datasets.fusion`): ``DIR/STEM.npz`` per view (``depth`` fused, ``raw_depth``,
``image``, the working camera ``K``, ``R``, ``C``) and ``DIR/summary.json`` (kept pixels and,
with ``--truth``, the agreement with the scene's sparse truth).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from stereo.datasets.calibrated import (
    MATCHERS,
    SceneBuildConfig,
    build_scene_patches,
    sparse_truth,
)
from stereo.datasets.homography import HomographyBuildConfig, build_sequence_patches
from stereo.datasets.synthetic_keypoints import KeypointSpec
from stereo.errors import StereoError, error_reporting_group
from stereo.geometry.camera import Camera
from stereo.geometry.scene import load_scene
from stereo.io.files import atomic_path
from stereo.patchnet.data.brown import write_brown
from stereo.patchnet.data.patchset import PatchSet, make_pairs, sample_pair_indices
from stereo.patchnet.data.sources import load_patch_source
from stereo.patchnet.sampling import PointIndex


def is_sequence(folder: Path) -> bool:
    """Whether ``folder`` is a homography sequence (has ``H1to2p``)."""
    return (folder / "H1to2p").is_file()


def build_source(
    folder: str | Path,
    scale_factor: float = 5.0,
    progress: bool = True,
    normalise: str = "keypoint",
    fixed_scale: float = 0.5,
    near_misses: int = 0,
    views: tuple[int, ...] | None = None,
    max_orientation_deg: float = SceneBuildConfig.max_orientation_deg,
    matcher: str = SceneBuildConfig.matcher,
) -> PatchSet:
    """Patches of one scene or sequence folder (``near_misses``: scenes with fixed windows
    only, shifted windows per observation; ``views``: scenes only, the view indices to use
    (0-based, name order; default all); ``max_orientation_deg``: scenes only, the orientation
    a keypoint added to a track may differ by; ``matcher``: scenes only, how tracks begin;
    see :mod:`stereo.datasets.calibrated`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StereoError(f"data folder {folder} does not exist")
    if is_sequence(folder):
        if views is not None:
            raise StereoError(
                f"{folder} is a homography sequence: --views selects views of calibrated "
                "scenes; drop --views for sequences"
            )
        if near_misses:
            raise StereoError(
                f"{folder} is a homography sequence: near misses need a calibrated scene "
                "(epipolar lines); drop --near-misses for sequences"
            )
        if matcher != SceneBuildConfig.matcher:
            raise StereoError(
                f"{folder} is a homography sequence, matched by its homographies: --matcher "
                "chooses how calibrated scenes are matched; drop it for sequences"
            )
        cfg = HomographyBuildConfig(
            scale_factor=scale_factor, normalise=normalise, fixed_scale=fixed_scale
        )
        return build_sequence_patches(folder, cfg)
    cfg = SceneBuildConfig(
        scale_factor=scale_factor,
        normalise=normalise,
        fixed_scale=fixed_scale,
        near_misses=near_misses,
        views=views,
        max_orientation_deg=max_orientation_deg,
        matcher=matcher,
    )
    return build_scene_patches(load_scene(folder), cfg, progress=progress).patches


def parse_views(spec: str) -> tuple[int, ...]:
    """View indices from a spec such as ``"0-9"`` or ``"0-4,7,9"`` (0-based, inclusive ranges),
    sorted and without repeats."""
    views: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part:
                first, last = (int(v) for v in part.split("-"))
                if first > last:
                    raise ValueError
                views.update(range(first, last + 1))
            else:
                views.add(int(part))
        except ValueError:
            raise StereoError(
                f"--views {spec!r}: {part!r} is not a view index or a range FIRST-LAST; "
                "write e.g. 0-9 or 0-4,7,9"
            ) from None
    if any(v < 0 for v in views):
        raise StereoError(f"--views {spec!r}: view indices start at 0")
    return tuple(sorted(views))


def max_pairs(patchset: PatchSet) -> int:
    """How many distinct positive pairs a patch set gives, ×2 (pairs are half positive)."""
    return 2 * len(PointIndex(patchset.point_ids).all_positive_pairs())


@click.group(cls=error_reporting_group(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stereo", message="%(prog)s %(version)s")
def cli() -> None:
    """Build patch datasets from calibrated scenes and homography sequences."""


@cli.command("build")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(), default="datasets/patches", show_default=True)
@click.option(
    "--pairs",
    "n_pairs",
    type=int,
    default=100000,
    show_default=True,
    help="Benchmark pairs per source (fewer if the source gives fewer).",
)
@click.option(
    "--scale-factor",
    type=float,
    default=5.0,
    show_default=True,
    help="Patch window side = factor × keypoint size (OpenCV diameter).",
)
@click.option(
    "--normalise",
    type=click.Choice(["keypoint", "fixed"]),
    default="keypoint",
    show_default=True,
    help="Scenes: keypoint scale+orientation, or fixed scale.",
)
@click.option(
    "--fixed-scale",
    type=float,
    default=0.5,
    show_default=True,
    help="With --normalise fixed: image scale of the 64×64 window.",
)
@click.option(
    "--near-misses",
    type=int,
    default=0,
    show_default=True,
    help="Scenes with --normalise fixed: windows shifted 2–6 px (at --fixed-scale) along an "
    "epipolar line per observation, stored as hard negatives (never in the pair file).",
)
@click.option(
    "--views",
    "views_spec",
    help="Calibrated scenes: use only these views (0-based indices in name order, e.g. 0-9 "
    "or 0-4,7), to hold the others out for validation.  [default: all]",
)
@click.option(
    "--max-orientation",
    "max_orientation_deg",
    type=click.FloatRange(0, 180),
    default=SceneBuildConfig.max_orientation_deg,
    show_default=True,
    help="Calibrated scenes, keypoint patches: a keypoint joins a track (a positive) only if "
    "its orientation lies within this many degrees of the track's (Brown et al.'s pi/8); "
    "180: no orientation rule, as the builder before session 30 (upright --normalise fixed "
    "windows never have one).",
)
@click.option(
    "--matcher",
    type=click.Choice(MATCHERS),
    default=SceneBuildConfig.matcher,
    show_default=True,
    help="Calibrated scenes: how tracks begin — descriptors = SIFT matches on the true "
    "epipolar lines; geometry = keypoint pairs found by the true cameras alone, each "
    "confirmed in a third view (positives free of SIFT's descriptor).",
)
@click.option("--brown", is_flag=True, help="Also write each set in Brown format.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Rebuild outputs that exist.")
def build_command(
    sources: tuple[str, ...],
    out_dir: str,
    n_pairs: int,
    scale_factor: float,
    normalise: str,
    fixed_scale: float,
    near_misses: int,
    views_spec: str | None,
    max_orientation_deg: float,
    matcher: str,
    brown: bool,
    seed: int,
    overwrite: bool,
) -> None:
    """Build patches + pair files from scene / sequence folders."""
    views = parse_views(views_spec) if views_spec is not None else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for source in sources:
        name = Path(source).name
        target = out / f"{name}.npz"
        if target.is_file() and not overwrite:
            patchset = PatchSet.load(target)
            click.echo(f"{name}: exists, skipped ({len(patchset)} patches)", err=True)
        else:
            patchset = build_source(
                source,
                scale_factor,
                normalise=normalise,
                fixed_scale=fixed_scale,
                near_misses=near_misses,
                views=views,
                max_orientation_deg=max_orientation_deg,
                matcher=matcher,
            )
            patchset.save(target)
        n_near = 0
        if patchset.near_of is not None:  # pair files and Brown sets hold true points only
            n_near = int((patchset.near_of >= 0).sum())
            patchset = patchset.subset(patchset.near_of < 0)
        pairs_path = out / f"{name}.pairs.npz"
        n = min(n_pairs, max_pairs(patchset))
        if overwrite or not pairs_path.is_file():
            make_pairs(patchset, n, seed).save(pairs_path)
        if brown and (overwrite or not (out / name / "info.txt").is_file()):
            write_brown(out / name, patchset, sample_pair_indices(patchset.point_ids, n, seed)[0])
        summary[name] = {
            "points": patchset.n_points,
            "patches": len(patchset),
            "pairs": n,
            **({"near_misses": n_near} if n_near else {}),
            "file": str(target),
        }
    click.echo(json.dumps(summary, indent=2))


@cli.command("truth")
@click.argument("scene_dir", type=click.Path())
@click.option("--out", "out_dir", type=click.Path(), required=True, help="Folder for NNNN.npz.")
def truth_command(scene_dir: str, out_dir: str) -> None:
    """Sparse depth ground truth of every view of a calibrated scene (SIFT tracks checked
    against the true cameras and triangulated), in the gt_sparse format."""
    scene = load_scene(scene_dir)
    truth = sparse_truth(scene)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for view, arrays in truth.items():
        stem = Path(scene.names[view]).stem
        with atomic_path(out / f"{stem}.npz") as tmp, tmp.open("wb") as f:
            np.savez_compressed(f, **arrays)
        summary[stem] = len(arrays["depth"])
    click.echo(json.dumps({"scene": str(scene_dir), "points_per_view": summary}, indent=2))


@cli.command("dense-truth")
@click.argument("scene_dir", type=click.Path())
@click.option("--out", "out_dir", type=click.Path(), required=True, help="Folder for STEM.npz.")
@click.option("--model", default="zncc", show_default=True, help="Matching cost of each pair.")
@click.option("--size", type=int, default=768, show_default=True, help="Working size, pixels.")
@click.option("--min-views", type=int, default=3, show_default=True)
@click.option("--tolerance", type=float, default=0.01, show_default=True, help="Relative depth.")
@click.option(
    "--truth", "truth_dir", type=click.Path(), default=None, help="Sparse truth (NNNN.npz)."
)
def dense_truth_command(
    scene_dir: str,
    out_dir: str,
    model: str,
    size: int,
    min_views: int,
    tolerance: float,
    truth_dir: str | None,
) -> None:
    """Dense depth of every view of a calibrated scene, kept where several views agree."""
    from stereo.config import StereoConfig
    from stereo.datasets.fusion import fused_depths, scene_depth_maps

    scene = load_scene(scene_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = StereoConfig(model=model, working_size=size)
    maps = scene_depth_maps(scene, config, lambda line: click.echo(line, err=True))
    depths, cameras = [m[0] for m in maps], [m[1] for m in maps]
    fused = fused_depths(depths, cameras, min_views, tolerance)
    summary = {"scene": str(scene_dir), "model": model, "size": size, "min_views": min_views}
    summary |= {"tolerance": tolerance, "views": {}}
    for view, (depth, camera, image) in enumerate(maps):
        stem = Path(scene.names[view]).stem
        with atomic_path(out / f"{stem}.npz") as tmp, tmp.open("wb") as f:
            arrays = {"depth": fused[view], "raw_depth": depth, "image": image}
            np.savez_compressed(f, **arrays, K=camera.K, R=camera.R, C=camera.C)
        summary["views"][stem] = _view_summary(
            fused[view], depth, camera, scene.cameras[view], truth_dir, stem
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    click.echo(json.dumps(summary, indent=2))


def _view_summary(
    fused: np.ndarray,
    raw: np.ndarray,
    camera: Camera,
    full_camera: Camera,
    truth_dir: str | None,
    stem: str,
) -> dict:
    """Kept pixels of one view and, with a truth folder, its agreement with the sparse truth."""
    from stereo.datasets.fusion import truth_agreement

    row = {
        "pixels_with_depth": int(np.isfinite(raw).sum()),
        "kept": int(np.isfinite(fused).sum()),
        "kept_share": round(float(np.isfinite(fused).mean()), 4),
    }
    truth_file = Path(truth_dir) / f"{stem}.npz" if truth_dir else None
    if truth_file is not None and truth_file.is_file():
        with np.load(truth_file) as truth:
            factor = camera.width / full_camera.width
            row["truth"] = truth_agreement(fused, factor, truth["xy"], truth["depth"])
            row["truth_raw"] = truth_agreement(raw, factor, truth["xy"], truth["depth"])
    return row


def random_pair_options(default_pairs: int) -> Callable[[Callable], Callable]:
    """``--pairs`` (default ``default_pairs``), ``--seed`` and ``--textures``: the options of
    the commands that draw random synthetic view pairs."""
    options = (
        click.option(
            "--pairs",
            "n_pairs",
            type=click.IntRange(1, 100000),
            default=default_pairs,
            show_default=True,
        ),
        click.option(
            "--seed", type=int, default=0, show_default=True, help="Pair i is drawn from (seed, i)."
        ),
        click.option(
            "--textures",
            multiple=True,
            type=click.Path(),
            help="Folder of photographs to texture the planes with (repeatable; scikit-image's "
            "samples are always used).",
        ),
    )

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@cli.command("synthetic")
@random_pair_options(default_pairs=8)
@click.option("--out", "out_dir", type=click.Path(), required=True, help="Folder for pair-NNNN/.")
@click.option(
    "--relief",
    "relief_share",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of the planes given relief (bumps, raised and sunken rectangles, mouldings).",
)
def synthetic_command(
    n_pairs: int, seed: int, out_dir: str, textures: tuple[str, ...], relief_share: float
) -> None:
    """Random wide-baseline view pairs with exact depth, as calibrated scenes."""
    from stereo.datasets.random_scenes import SceneSpec, random_view_pair, texture_pool
    from stereo.datasets.synthetic import SyntheticScene

    pool = texture_pool(textures)
    spec = SceneSpec(relief_share=relief_share)
    rigs = {}
    for i in range(n_pairs):
        pair = random_view_pair((seed, i), pool, spec)
        scene = SyntheticScene(list(pair.images), list(pair.cameras), list(pair.depths))
        name = f"pair-{i:04d}"
        scene.save(Path(out_dir) / name)
        rigs[name] = pair.rig
    click.echo(json.dumps({"out": str(out_dir), "seed": seed, "rigs": rigs}, indent=2))


@cli.command("synthetic-keypoints")
@random_pair_options(default_pairs=50)
@click.option("--out", "output", type=click.Path(), required=True, help="Patch file (.npz).")
@click.option("--width", type=click.IntRange(64, 4096), default=512, show_default=True)
@click.option("--height", type=click.IntRange(64, 4096), default=384, show_default=True)
@click.option(
    "--roll",
    "roll_deg",
    type=click.FloatRange(0, 180),
    default=180.0,
    show_default=True,
    help="The second camera turns about its axis by up to ± this many degrees.",
)
@click.option(
    "--max-angle",
    "max_angle_deg",
    type=click.FloatRange(0, 180),
    default=KeypointSpec.max_angle_deg,
    show_default=True,
    help="Orientation error a correspondence may have, degrees (180: no orientation rule, "
    "as `build --max-orientation 180`).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
def synthetic_keypoints_command(
    n_pairs: int,
    seed: int,
    output: str,
    textures: tuple[str, ...],
    width: int,
    height: int,
    roll_deg: float,
    max_angle_deg: float,
    workers: int,
) -> None:
    """Keypoint patches (scale and orientation normalised, as `build` cuts a real scene's) of
    random synthetic view pairs, matched by their exact depth."""
    from stereo.datasets.random_scenes import SceneSpec
    from stereo.datasets.synthetic_keypoints import synthetic_keypoint_patches

    if not output.endswith(".npz"):
        raise StereoError(f"--out {output}: give a .npz file name")
    scene = SceneSpec(width=width, height=height, roll_deg=roll_deg)
    spec = KeypointSpec(max_angle_deg=max_angle_deg)
    patches = synthetic_keypoint_patches(n_pairs, textures, seed, scene, spec, workers=workers)
    patches.save(output)
    click.echo(f"wrote {len(patches)} patches ({patches.n_points} points) to {output}")


@cli.command("merge")
@click.argument("output", type=click.Path())
@click.argument("inputs", nargs=-1, required=True)
def merge_command(output: str, inputs: tuple[str, ...]) -> None:
    """Concatenate patch sets (point ids kept distinct) into OUTPUT.npz."""
    merged = load_patch_source("+".join(inputs))
    merged.meta = {"source": " + ".join(Path(i).stem for i in inputs)}
    merged.save(output)
    click.echo(f"wrote {len(merged)} patches ({merged.n_points} points) to {output}")


def main() -> None:
    """Console entry point."""
    cli(prog_name="stereo-dataset")
