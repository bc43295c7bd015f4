"""Train the patch table's single-scene splits: each model on one scene's keypoint patches.

    python benchmarks/patch_splits.py                      # fountain-P11 and Herz-Jesu-P8
    python benchmarks/patch_splits.py --scenes castle-P19 --models cnn3 l2net
    python benchmarks/patch_splits.py --models l2net --recipe stereo --tag hard \
        --set hardest_in_batch=true --set near_negatives=0 --set augment=true

Each model is trained with its own keypoint-patch recipe, exactly as ``train_models.py``
trains it on castle+oxford (:func:`train_models.keypoint_overrides`), on
``datasets/patches/SCENE.npz`` alone, and written (fp16, with its card) to
``runs/patch_splits/SCENE/MODEL.SCENE.pt`` (``MODEL.TAG.SCENE.pt`` with ``--tag``), where
``benchmarks/patches.py`` finds it (``--models MODEL.TAG``). ``--recipe`` and ``--set``
replace the plan's recipe and override its fields (the last example: in-batch hardest
negatives, as ``l2net.castle-keypoints.hard``). ``--synthetic-pairs N`` joins to each scene's
patches the keypoint patches of N random synthetic view pairs textured from that scene's own
images (``stereo.datasets.synthetic_keypoints``; castle+synthetic-keypoints takes 300): no
split ever sees a test scene's photographs. The scenes train side by side, one thread
each (~50 minutes for the two default scenes on 2 cores); each scene's log goes to
``runs/patch_splits/SCENE.log`` (``SCENE.TAG.log`` with a tag). Each run keeps its checkpoint
in ``runs/patch_splits/SCENE/MODEL[.TAG]/``; ``--resume`` with the same arguments continues a
stopped run from it. Needs ``datasets/patches`` (``benchmarks/README.md``, "Patch datasets").
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from patches import display_path
from train_models import KEYPOINT_SCENE, KEYPOINT_SEED, PLAN, SHARED, keypoint_overrides

from stereo.datasets.random_scenes import SceneSpec
from stereo.datasets.synthetic_keypoints import KeypointSpec, synthetic_keypoint_patches
from stereo.errors import StereoError
from stereo.patchnet.data.patchset import PatchSet
from stereo.patchnet.data.sources import joined
from stereo.patchnet.recipes import RECIPES, checked_overrides, get_recipe
from stereo.patchnet.train import train
from stereo.patchnet.weights import card_path

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ROOT / "runs" / "patch_splits"
#: the folder of the scenes' keypoint patches (``--data``)
PATCHES = ROOT / "datasets" / "patches"
#: the splits of the patch table: the two benchmark scenes (castle-P19 trains the shipped models)
SCENES = ["fountain-P11", "Herz-Jesu-P8"]
#: the families of the patch table, in the order each scene trains them
MODELS = ["cnn3", "l2net", "2ch-2stream"]


@dataclass(frozen=True)
class SplitPlan:
    """How every model of a run trains: its plan's recipe unless ``recipe``, the plan's steps
    unless ``steps``, recipe ``overrides`` on top, and a ``tag`` naming the weights."""

    recipe: str | None = None
    steps: int | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    tag: str = ""
    synthetic_pairs: int = 0  # synthetic keypoint pairs joined to the scene's patches
    keypoints: KeypointSpec = field(default_factory=KeypointSpec)  # how they are matched
    data: Path = PATCHES  # the folder of the scenes' keypoint patches
    resume: bool = False  # continue each run from its folder's checkpoint
    # the synthetic pairs' views (None: castle+synthetic-keypoints'; --max-convergence)
    views: SceneSpec | None = None


def training_patches(
    scene: str,
    synthetic_pairs: int,
    keypoints: KeypointSpec | None = None,
    data_dir: Path = PATCHES,
    views: SceneSpec | None = None,
) -> tuple[PatchSet, str]:
    """``scene``'s keypoint patches, joined with those of ``synthetic_pairs`` random view pairs
    textured from scikit-image's photographs and the scene's own images (never another
    scene's) when > 0, drawn as castle+synthetic-keypoints' (``train_models.py``) and matched
    by ``keypoints`` (default: ``KeypointSpec()``) and rendered as ``views`` says (default:
    ``train_models.KEYPOINT_SCENE``); and a description of them for the model card. The
    scene's patches are ``data_dir/SCENE.npz``."""
    keypoints = keypoints or KeypointSpec()
    views = views or KEYPOINT_SCENE
    data = PatchSet.load(patches_path(scene, data_dir))
    description = display_path(patches_path(scene, data_dir))
    if synthetic_pairs <= 0:
        return data, description
    folder = SHARED / "strecha" / scene / "images"
    generated = synthetic_keypoint_patches(
        synthetic_pairs, [folder], KEYPOINT_SEED, views, keypoints, progress=False
    )
    description += f" + {synthetic_pairs} synthetic keypoint pairs textured from {scene}"
    if keypoints != KeypointSpec():
        description += f" (orientations within {keypoints.max_angle_deg:g} degrees)"
    if views.max_convergence_deg != KEYPOINT_SCENE.max_convergence_deg:
        description += f" (convergent views up to {views.max_convergence_deg:g} degrees apart)"
    return joined([data, generated], {"source": description}), description


def patches_path(scene: str, data_dir: Path = PATCHES) -> Path:
    """``data_dir/SCENE.npz`` (default ``datasets/patches``): a scene's keypoint patches."""
    return data_dir / f"{scene}.npz"


def run_folder(out: Path, scene: str, model: str, tag: str) -> Path:
    """``out/SCENE/MODEL[.TAG]``: one run's checkpoint, log and weights (so that runs of
    other models or tags never resume from each other's checkpoint)."""
    return out / scene / (f"{model}.{tag}" if tag else model)


def train_scene(scene: str, models: list[str], out: Path, plan: SplitPlan) -> str:
    """Train every model of ``models`` on ``scene``'s patches as ``plan`` says, one thread,
    each in its :func:`run_folder` (resumed from its checkpoint with ``plan.resume``), its
    weights copied to ``out/SCENE`` (``MODEL.SCENE.pt``, or ``MODEL.TAG.SCENE.pt`` with a tag,
    where ``patches.py`` finds them) with the log in ``out/SCENE[.TAG].log``; returns the
    scene."""
    torch.set_num_threads(1)
    data, description = training_patches(
        scene, plan.synthetic_pairs, plan.keypoints, plan.data, plan.views
    )
    stem = f".{plan.tag}" if plan.tag else ""
    mode = "a" if plan.resume else "w"
    with open(out / f"{scene}{stem}.log", mode) as stream, contextlib.redirect_stderr(stream):
        for model in models:
            overrides = keypoint_overrides(model, plan.steps, plan.overrides)
            result = train(
                model,
                get_recipe(plan.recipe or PLAN[model][0]).with_overrides(overrides),
                data,
                run_folder(out, scene, model, plan.tag),
                resume=plan.resume,
                weights_name=f"{model}{stem}.{scene}.pt",
                half=True,
                data_description=description,
            )
            for path in (result.weights, card_path(result.weights)):
                shutil.copy2(path, out / scene / path.name)
            print(f"{scene}: {model} done", file=stream, flush=True)
    return scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=SCENES)
    parser.add_argument("--models", nargs="+", default=MODELS, choices=list(PLAN))
    parser.add_argument("--steps", type=int, help="every model's steps (default: the plan's)")
    parser.add_argument("--out", type=Path, default=SPLITS, help="folder of the splits")
    parser.add_argument("--recipe", choices=list(RECIPES), help="instead of each plan's recipe")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--synthetic-pairs",
        type=int,
        default=0,
        help="join the keypoint patches of this many synthetic view pairs, textured from the "
        "scene's own images, to each scene's (castle+synthetic-keypoints used 300)",
    )
    parser.add_argument(
        "--max-angle",
        type=float,
        default=KeypointSpec().max_angle_deg,
        help="the synthetic pairs' orientation error allowed in a match, degrees (180: any, "
        "the real scenes' own rule)",
    )
    parser.add_argument(
        "--max-convergence",
        type=float,
        default=KEYPOINT_SCENE.max_convergence_deg,
        help="the synthetic pairs' widest angle between a convergent rig's optical axes, "
        "degrees (castle-P19's positive pairs: median 31, 29 %% beyond 45)",
    )
    parser.add_argument(
        "--tag", default="", help="weights MODEL.TAG.SCENE.pt (patches.py: --models MODEL.TAG)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue each run from the checkpoint in its folder (SCENE/MODEL[.TAG]/) with "
        "the same arguments; a finished run only copies its weights again",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=PATCHES,
        help="folder of the scenes' keypoint patches (SCENE.npz; stereo-dataset build)",
    )
    args = parser.parse_args()
    paths = [patches_path(s, args.data) for s in args.scenes]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        sys.exit(
            f"error: {', '.join(missing)} missing; build it with stereo-dataset build "
            "(benchmarks/README.md, Patch datasets)"
        )
    try:
        overrides = checked_overrides(args.set, args.recipe or "stereo")
    except StereoError as error:
        sys.exit(f"error: {error}")
    try:
        keypoints = KeypointSpec(max_angle_deg=args.max_angle)
        views = replace(KEYPOINT_SCENE, max_convergence_deg=args.max_convergence)
    except StereoError as error:
        sys.exit(f"error: {error}")
    plan = SplitPlan(
        args.recipe,
        args.steps,
        overrides,
        args.tag,
        args.synthetic_pairs,
        keypoints,
        args.data,
        args.resume,
        views,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    n = len(args.scenes)
    with ProcessPoolExecutor(max_workers=n) as pool:
        runs = pool.map(train_scene, args.scenes, [args.models] * n, [args.out] * n, [plan] * n)
        for scene in runs:
            print(f"{scene}: {', '.join(args.models)} in {args.out / scene}", flush=True)


if __name__ == "__main__":
    main()
