"""Train the shipped patch models: one documented command per model.

    python benchmarks/train_models.py --model 2ch-deep            # one model
    python benchmarks/train_models.py --all                       # every shipped model
    python benchmarks/train_models.py --model siam-l2 --train-set castle-near   # stereo

Each model is trained on a set of :data:`TRAIN_SETS` (default castle+oxford: castle-P19 + the
six Oxford sequences, built by ``stereo-dataset build`` + ``merge``; see
``benchmarks/README.md``) with the loss and sampling of its own paper and Adam (lr 1e-3) for a
fixed number of steps chosen to give every model about the same CPU time on the 2-core
development machine (~8 minutes). The run folder ``runs/shipped/NAME.SET`` keeps the fp32
weights and the log; the fp16 weights and their model card go to ``models/NAME.SET.pt`` /
``.json``, and ``models/defaults.json`` is updated unless ``--no-default``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from stereo.datasets.random_scenes import SceneSpec
from stereo.datasets.stereo_windows import (
    WindowSpec,
    real_stereo_windows,
    synthetic_stereo_windows,
)
from stereo.datasets.synthetic_keypoints import KeypointSpec, synthetic_keypoint_patches
from stereo.errors import StereoError
from stereo.patchnet.data.patchset import PatchSet
from stereo.patchnet.data.sources import joined
from stereo.patchnet.manifest import write_manifest
from stereo.patchnet.models import PatchNet, build_model
from stereo.patchnet.models.l2net import L2NetTower
from stereo.patchnet.recipes import RECIPES, checked_overrides, get_recipe
from stereo.patchnet.train import train
from stereo.patchnet.weights import load_weights_file, save_weights

ROOT = Path(__file__).resolve().parents[1]

SHARED = ROOT.parent / "shared" / "data"
#: view pairs of the synthetic-stereo set and the folders its textures come from (no
#: benchmark scene: castle-P19 is the training scene, Oxford the patch benchmark's homography
#: sequences)
SYNTHETIC_PAIRS = 600
#: view pairs of the synthetic keypoint set (castle+synthetic-keypoints): 39,167 points
SYNTHETIC_KEYPOINT_PAIRS = 300
#: view pairs of the GPU-scale set (synthetic-stereo-2ch-xl): ~2 CPU-minutes on 16 cores
SYNTHETIC_PAIRS_XL = 2400
TEXTURE_FOLDERS = [
    SHARED / "strecha" / "castle-P19" / "images",
    *(SHARED / "oxford" / name for name in ("bark", "bikes", "boat", "graf", "trees", "ubc")),
]
#: texture folders of the synthetic keypoint sets: no Oxford image, so that the Oxford
#: descriptor benchmark (benchmarks/oxford_map.py) stays unseen
KEYPOINT_TEXTURE_FOLDERS = [SHARED / "strecha" / "castle-P19" / "images"]

#: the keypoint patch sets the shipped keypoint weights trained on, built before the patch
#: builder's orientation rule (session 30) and rebuilt byte-equal without it: `stereo-dataset
#: build ... --max-orientation 180 --out datasets/patches-any-orientation` (benchmarks/README.md,
#: Patch datasets); the benchmark's pair files (datasets/patches) follow Brown et al.'s rule
KEYPOINT_PATCHES = ROOT / "datasets" / "patches-any-orientation"
#: training sets: name → (file, description); file None: generated on the fly.
#: "castle+oxford": keypoint-normalised patches (scale factor 5, rotated), for descriptor
#: matching; "castle-fixed": upright 64×64 windows cut at image scale 0.5 of the 1536×1024
#: castle views (what the plane sweep compares at its default 768-px working size), for
#: stereo; "castle-near": the same windows plus two near misses per observation (shifted
#: 2–6 px along an epipolar line), half of every batch's negatives being near misses.
TRAIN_SETS: dict[str, tuple[Path | None, str]] = {
    "castle+oxford": (
        KEYPOINT_PATCHES / "castle+oxford.npz",
        "castle+oxford: castle-P19 (Strecha) + Oxford graf, bark, boat, bikes, trees, ubc; "
        "built by `stereo-dataset build --max-orientation 180` (scale factor 5)",
    ),
    "castle-keypoints": (
        KEYPOINT_PATCHES / "castle-P19.npz",
        "castle-keypoints: castle-P19 (Strecha) keypoint patches alone (scale factor 5, "
        "rotated to the dominant orientation); built by `stereo-dataset build "
        "--max-orientation 180` (benchmarks/README.md, Patch datasets)",
    ),
    "castle-fixed": (
        ROOT / "datasets" / "fixed" / "castle-P19.npz",
        "castle-fixed: castle-P19 (Strecha), upright windows at image scale 0.5; built by "
        "`stereo-dataset build --normalise fixed --fixed-scale 0.5`",
    ),
    "castle-fixed-s1": (
        ROOT / "datasets" / "fixed-s1" / "castle-P19.npz",
        "castle-fixed-s1: castle-P19 (Strecha), upright windows at image scale 1.0 (half the "
        "scene extent of castle-fixed: 32 px at the 768-px working size, where the network "
        "runs on the working image upsampled 2×); built by `stereo-dataset build --normalise "
        "fixed --fixed-scale 1.0 --out datasets/fixed-s1`",
    ),
    "castle0-9-fixed-s1": (
        ROOT / "datasets" / "fixed-s1-views0-9" / "castle-P19.npz",
        "castle0-9-fixed-s1: castle-fixed-s1 from views 0-9 of castle-P19 only (views 10-18 "
        "held out to choose the smoothness weight on scenery the network never saw); built by "
        "`stereo-dataset build --normalise fixed --fixed-scale 1.0 --views 0-9 --out "
        "datasets/fixed-s1-views0-9`",
    ),
    "castle-near": (
        ROOT / "datasets" / "near" / "castle-P19.npz",
        "castle-near: castle-P19 (Strecha), upright windows at image scale 0.5 plus two near "
        "misses per observation (2–6 px along an epipolar line) as hard negatives; built by "
        "`stereo-dataset build --normalise fixed --fixed-scale 0.5 --near-misses 2` (before "
        "view ids were stored: the anchor of a near miss may come from its own view)",
    ),
    "synthetic-stereo": (
        None,
        f"synthetic-stereo: {SYNTHETIC_PAIRS} random wide-baseline view pairs (rectified, "
        "convergent 3-30 degrees, forward; textured planes, exact depth, per-view exposure, "
        "gamma, vignetting, blur, noise, JPEG), windows of 32 px cut as the plane sweep "
        "compares them (pre-warp by the middle plane), matches and near misses 1-6 labels "
        "off; textures from scikit-image's samples, castle-P19 and the six Oxford sequences; "
        "generated on the fly by stereo.datasets.stereo_windows (seed 0)",
    ),
    "synthetic-stereo-r2": (
        None,
        f"synthetic-stereo-r2: {SYNTHETIC_PAIRS} further random wide-baseline view pairs drawn "
        "exactly as synthetic-stereo's but from seed 1 (none shared with it); fine-tuned from "
        "the synthetic-stereo run, so the network has seen 1,200 pairs in all",
    ),
    "synthetic-stereo-2ch": (
        None,
        f"synthetic-stereo-2ch: {SYNTHETIC_PAIRS} random wide-baseline view pairs drawn as "
        "synthetic-stereo's (seed 2), windows of 64 px cut as a 2-channel cost compares them "
        "(the second image warped by each hypothesis' own plane), matches and near misses "
        "1-6 labels off",
    ),
    "synthetic-stereo-desc": (
        None,
        f"synthetic-stereo-desc: {SYNTHETIC_PAIRS} random wide-baseline view pairs drawn as "
        "synthetic-stereo's but from seed 4 (none shared with the other sets), 32-px windows "
        "pre-warped by the middle plane, matches and near misses 1-6 labels off; for the "
        "descriptor families (siam, siam-2stream-l2, cnn3 ...), from their keypoint-patch "
        "weights",
    ),
    "synthetic-stereo-2ch-fine": (
        None,
        f"synthetic-stereo-2ch-fine: {SYNTHETIC_PAIRS} random wide-baseline view pairs drawn "
        "as synthetic-stereo-2ch's but from seed 3 (none shared with it), 64-px windows warped "
        "by each hypothesis' own plane, near misses at every half label from 0.5 to 6 labels "
        "off that move the window by 0.5 px or more (sub-label precision); fine-tuned from the "
        "synthetic-stereo-2ch run",
    ),
    "synthetic-stereo-2ch-xl": (
        None,
        f"synthetic-stereo-2ch-xl: {SYNTHETIC_PAIRS_XL} random wide-baseline view pairs drawn as "
        "synthetic-stereo-2ch-fine's but from seed 5 (none shared with the other sets), 64-px "
        "windows warped by each hypothesis' own plane, near misses at every half label from "
        "0.5 to 6 labels off; a GPU run (benchmarks/gpu_session.sh), fine-tuned from the "
        "synthetic-stereo-2ch-fine run",
    ),
    "synthetic-stereo-2ch-ws2": (
        None,
        f"synthetic-stereo-2ch-ws2: {SYNTHETIC_PAIRS} random wide-baseline view pairs drawn "
        "as synthetic-stereo-2ch-fine's but from seed 6 (none shared with the other sets), "
        "32-px windows warped by each hypothesis' own plane and sampled 64 times a side "
        "(bicubic) as --window-scale 2 enlarges the images, near misses at every half label "
        "from 0.5 to 6 labels off; fine-tuned from the synthetic-stereo-2ch-fine run",
    ),
    "synthetic-stereo-2ch-hard": (
        None,
        f"synthetic-stereo-2ch-hard: {SYNTHETIC_PAIRS} random wide-baseline view pairs drawn "
        "as synthetic-stereo-2ch-fine's but from seed 7 (none shared with the other sets) and "
        "with harder scenes: 30 % of the textures faint (3-25 % of their contrast) and 30 % of "
        "the panels thin bars (6-20 times longer than wide); 64-px windows warped by each "
        "hypothesis' own plane, near misses at every half label from 0.5 to 6 labels off; "
        "fine-tuned from the synthetic-stereo-2ch-fine run",
    ),
    "synthetic-stereo-2ch-edge": (
        None,
        f"synthetic-stereo-2ch-edge: {SYNTHETIC_PAIRS} random wide-baseline view pairs drawn "
        "as synthetic-stereo-2ch-fine's but from seed 8 (none shared with the other sets), "
        "windows cut as synthetic-stereo-2ch-ws2's (32 px, as --window-scale 2 reads them); "
        "75 % of the points drawn where the window straddles a depth edge (another surface "
        "more than 6 labels off lies in it), each with one more negative: the window at that "
        "surface's hypothesis; fine-tuned from the synthetic-stereo-2ch-fine run",
    ),
    "synthetic-stereo-2ch-edge-ws4": (
        None,
        f"synthetic-stereo-2ch-edge-ws4: {SYNTHETIC_PAIRS} random wide-baseline view pairs "
        "drawn as synthetic-stereo-2ch-edge's but from seed 9 (none shared with the other "
        "sets), 16-px windows sampled 64 times a side (bicubic) as --window-scale 4 enlarges "
        "the images, 75 % of the points where the window straddles a depth edge, each with "
        "the other surface's window as one more negative; fine-tuned from the "
        "synthetic-stereo-2ch-edge run",
    ),
    "synthetic-stereo-2ch-relief": (
        None,
        f"synthetic-stereo-2ch-relief: {SYNTHETIC_PAIRS} random wide-baseline view pairs drawn "
        "as synthetic-stereo-2ch-fine's but from seed 11 (none shared with the other sets) and "
        "with relief on 60 % of the planes (fractal bumps, raised and sunken "
        "rectangles and mouldings up to 1-8 % of the depth, Lambertian shading; "
        "stereo.datasets.random_scenes.random_relief); 64-px windows warped by each "
        "hypothesis' own plane, near misses at every half label from 0.5 to 6 labels off; "
        "fine-tuned from the synthetic-stereo-2ch-fine run",
    ),
    "castle-dense-2ch": (
        None,
        "castle-dense-2ch: real stereo windows of castle-P19 views 0-9 only (views 10-18 held "
        "out to choose the smoothness weight), cut at the depths `stereo-dataset dense-truth` "
        "kept where three views agree within 1 %, each view paired with the three before and "
        "after it, 64-px windows warped by each hypothesis' own plane, near misses at every "
        "half label from 0.5 to 6 labels off",
    ),
    "castle+synthetic-keypoints": (
        None,
        "castle+synthetic-keypoints: castle-P19 (Strecha) keypoint patches (as castle-keypoints) "
        f"and those of {SYNTHETIC_KEYPOINT_PAIRS} random synthetic view pairs (512x384, rigs as "
        "synthetic-stereo's, the second camera rolled by up to 180 degrees; textures from "
        "scikit-image's samples and castle-P19 alone), DoG keypoints matched by "
        "the exact depth alone (position, size, orientation), scale- and orientation-"
        "normalised as castle's (stereo.datasets.synthetic_keypoints, seed 10)",
    ),
    "castle+synthetic-keypoints-any-angle": (
        None,
        "castle+synthetic-keypoints-any-angle: as castle+synthetic-keypoints (the same 300 "
        "view pairs, seed 10), the synthetic keypoints matched with any orientation error "
        "(castle's own rule: position and size alone), so positives whose keypoints took "
        "different orientations are kept",
    ),
    "castle-stereo": (
        ROOT / "datasets" / "stereo" / "castle-P19.npz",
        "castle-stereo: castle-P19 (Strecha), upright windows at image scale 0.5, two near "
        "misses per observation (2–6 px along an epipolar line) and the view of every patch; "
        "built by `stereo-dataset build --normalise fixed --fixed-scale 0.5 --near-misses 2 "
        "--out datasets/stereo`",
    ),
}
#: model-card fields that come with a training set: ``input_scale`` = how much the stereo cost
#: resizes its working image before the network runs (windows cut at twice the scale of
#: castle-fixed describe the 768-px working image upsampled 2×); ``score_stride`` = the
#: 2-channel cost's default ``--score-stride`` (every 3rd pixel: the stride measured on
#: castle-P19 and Strecha, ``results/smoothness_2ch.md``, ``results/strecha_2ch.md``)
TRAIN_SET_CARD: dict[str, dict[str, float]] = {
    "synthetic-stereo-2ch": {"score_stride": 3},
    # every 6th: castle-P19 four pairs 0.978/0.954/0.894 against 0.978/0.955/0.895 at 3, two
    # thirds of the volume's time (results/castle_share.md)
    # window scale 2 (session 20) and a 15 % ZNCC blend (session 21): chosen on castle-P19
    # (results/castle_window.md, results/castle_variants.md)
    "synthetic-stereo-2ch-fine": {"score_stride": 6, "window_scale": 2, "cascade_fuse": 0.15},
    "synthetic-stereo-2ch-hard": {"score_stride": 6, "window_scale": 2, "cascade_fuse": 0.15},
    "synthetic-stereo-2ch-relief": {"score_stride": 6, "window_scale": 2, "cascade_fuse": 0.15},
    "synthetic-stereo-2ch-edge": {"score_stride": 6, "window_scale": 2, "cascade_fuse": 0.15},
    "synthetic-stereo-2ch-edge-ws4": {"score_stride": 6, "window_scale": 4, "cascade_fuse": 0.15},
    "synthetic-stereo-2ch-xl": {"score_stride": 6},
    "castle-dense-2ch": {"score_stride": 6},
    "synthetic-stereo-2ch-ws2": {"score_stride": 6, "window_scale": 2},
    "castle-fixed-s1": {"input_scale": 2.0},
    "castle0-9-fixed-s1": {"input_scale": 2.0},
    "synthetic-stereo": {"input_scale": 2.0},
    "synthetic-stereo-r2": {"input_scale": 2.0},
    "synthetic-stereo-desc": {"input_scale": 2.0},
}
#: a 2-channel family's ``score_stride`` where it differs from its training set's: 2ch-2stream
#: scores on grids of 2 or 4 pixels only, and at 4 matched every pixel on castle 2:1
#: (``results/castle_variants.md``)
FAMILY_SCORE_STRIDE: dict[str, int] = {"2ch-2stream": 4}


def card_fields(train_set: str, family: str) -> dict[str, float]:
    """The model-card fields :data:`TRAIN_SET_CARD` gives ``train_set``, with the family's
    own ``score_stride`` (:data:`FAMILY_SCORE_STRIDE`)."""
    fields = dict(TRAIN_SET_CARD.get(train_set, {}))
    if "score_stride" in fields and family in FAMILY_SCORE_STRIDE:
        fields["score_stride"] = FAMILY_SCORE_STRIDE[family]
    return fields


#: seed of each generated training set (pair i of a set is drawn from (seed, i))
SYNTHETIC_SEEDS: dict[str, int] = {
    "synthetic-stereo": 0,
    "synthetic-stereo-r2": 1,
    "synthetic-stereo-2ch": 2,
    "synthetic-stereo-2ch-fine": 3,
    "synthetic-stereo-desc": 4,
    "synthetic-stereo-2ch-xl": 5,
    "synthetic-stereo-2ch-ws2": 6,
    "synthetic-stereo-2ch-hard": 7,
    "synthetic-stereo-2ch-edge": 8,
    "synthetic-stereo-2ch-edge-ws4": 9,
    "synthetic-stereo-2ch-relief": 11,
}
#: the random scenes of the synthetic keypoint sets, and their seed
KEYPOINT_SCENE = SceneSpec(width=512, height=384, roll_deg=180.0)
KEYPOINT_SEED = 10
#: keypoint sets generated from random scenes, each joined to a real scene's keypoint
#: patches: name → (real patch file, view pairs, seed, scene, matching rule)
SYNTHETIC_KEYPOINT_SETS: dict[str, tuple[Path, int, int, SceneSpec, KeypointSpec]] = {
    "castle+synthetic-keypoints": (
        KEYPOINT_PATCHES / "castle-P19.npz",
        SYNTHETIC_KEYPOINT_PAIRS,
        KEYPOINT_SEED,
        KEYPOINT_SCENE,
        KeypointSpec(),
    ),
    "castle+synthetic-keypoints-any-angle": (
        KEYPOINT_PATCHES / "castle-P19.npz",
        SYNTHETIC_KEYPOINT_PAIRS,
        KEYPOINT_SEED,
        KEYPOINT_SCENE,
        KeypointSpec(max_angle_deg=180.0),
    ),
}
#: scenes of a generated set where they differ from SceneSpec()'s
SYNTHETIC_SCENES: dict[str, SceneSpec] = {
    "synthetic-stereo-2ch-hard": SceneSpec(faint_share=0.3, thin_share=0.3),
    "synthetic-stereo-2ch-relief": SceneSpec(relief_share=0.6),
}
#: how each generated set cuts its windows (default: WindowSpec(), 32 px pre-warped)
#: 64-px windows warped by each hypothesis' own plane, near misses at every half label
HALF_LABEL_WINDOWS = WindowSpec(window=64, warp="label", near_step=0.5, min_near_shift=0.5)
SYNTHETIC_WINDOWS: dict[str, WindowSpec] = {
    "synthetic-stereo-2ch": WindowSpec(window=64, warp="label"),
    "synthetic-stereo-2ch-fine": HALF_LABEL_WINDOWS,
    "synthetic-stereo-2ch-xl": HALF_LABEL_WINDOWS,
    "synthetic-stereo-2ch-ws2": replace(HALF_LABEL_WINDOWS, window=32, enlarged=True),
    "synthetic-stereo-2ch-hard": HALF_LABEL_WINDOWS,
    "synthetic-stereo-2ch-relief": HALF_LABEL_WINDOWS,
    "synthetic-stereo-2ch-edge": replace(
        HALF_LABEL_WINDOWS, window=32, enlarged=True, edge_share=0.75
    ),
    "synthetic-stereo-2ch-edge-ws4": replace(
        HALF_LABEL_WINDOWS, window=16, enlarged=True, edge_share=0.75
    ),
}
#: sets cut from a scene fused by `stereo-dataset dense-truth`: name → (folder, views it may
#: use, view offsets of its pairs, how its windows are cut)
REAL_SETS: dict[str, tuple[Path, tuple[int, ...], tuple[int, ...], WindowSpec]] = {
    "castle-dense-2ch": (
        ROOT / "datasets" / "dense" / "castle-P19",
        tuple(range(10)),
        (-3, -2, -1, 1, 2, 3),
        replace(HALF_LABEL_WINDOWS, points_per_pair=800),
    ),
}
#: number of generated view pairs of a set (default SYNTHETIC_PAIRS)
SYNTHETIC_SET_PAIRS: dict[str, int] = {"synthetic-stereo-2ch-xl": SYNTHETIC_PAIRS_XL}
#: recipe overrides that come with a training set
TRAIN_SET_OVERRIDES: dict[str, dict[str, str]] = {"castle-near": {"near_negatives": "0.5"}}
#: the 2-channel fine-tunes' recipe overrides (600 steps of the stereo recipe)
TWO_CHANNEL_FINE_TUNE = {
    "lr": "0.0002",
    "margin": "1.0",
    "val_every": "200",
    "checkpoint_every": "50",
}


def two_channel_fine_tune(init_set: str) -> tuple[str, int, str, dict[str, str]]:
    """A :data:`TRAIN_SET_RECIPES` entry: 600 steps of the stereo recipe at rate 2e-4 from
    the weights of ``init_set``'s run."""
    return "stereo", 600, init_set, dict(TWO_CHANNEL_FINE_TUNE)


#: training sets trained with another recipe, from the weights of another set's run
#: (set → (recipe, steps, init set, overrides)): "castle-stereo" fine-tunes the castle-fixed
#: network with the `stereo` ranking recipe (match vs near miss of the same view).
TRAIN_SET_RECIPES: dict[str, tuple[str, int, str, dict[str, str]]] = {
    "castle-stereo": (
        "stereo",
        1600,
        "castle-fixed",
        {"val_every": "800", "checkpoint_every": "400"},
    ),
    # fine-tunes the shipped default (l2net castle-fixed-s1) on synthetic stereo windows
    "synthetic-stereo": (
        "stereo",
        1200,
        "castle-fixed-s1",
        {"lr": "0.0003", "margin": "0.5", "val_every": "200", "checkpoint_every": "50"},
    ),
    # 2-channel families: from their keypoint-patch weights, on per-hypothesis windows
    "synthetic-stereo-2ch": (
        "stereo",
        1200,
        "castle+oxford",
        {"lr": "0.0003", "margin": "1.0", "val_every": "200", "checkpoint_every": "50"},
    ),
    # descriptor families without castle stereo weights: from their keypoint-patch weights
    "synthetic-stereo-desc": (
        "stereo",
        1200,
        "castle+oxford",
        {"lr": "0.0003", "margin": "1.0", "val_every": "200", "checkpoint_every": "50"},
    ),
    # half-label near misses on fresh pairs, from the synthetic-stereo-2ch weights
    "synthetic-stereo-2ch-fine": two_channel_fine_tune("synthetic-stereo-2ch"),
    # the GPU run: four times the pairs, batches of 256, as many steps as --time-limit allows
    "synthetic-stereo-2ch-xl": (
        "stereo",
        20000,
        "synthetic-stereo-2ch-fine",
        {
            "lr": "0.0002",
            "margin": "1.0",
            "batch_size": "256",
            "val_every": "2000",
            "checkpoint_every": "250",
        },
    ),
    # windows as --window-scale 2 reads them, from the synthetic-stereo-2ch-fine weights
    "synthetic-stereo-2ch-ws2": two_channel_fine_tune("synthetic-stereo-2ch-fine"),
    # faint textures and thin bars, from the synthetic-stereo-2ch-fine weights
    "synthetic-stereo-2ch-hard": two_channel_fine_tune("synthetic-stereo-2ch-fine"),
    # relief on walls and panels, from the synthetic-stereo-2ch-fine weights
    "synthetic-stereo-2ch-relief": two_channel_fine_tune("synthetic-stereo-2ch-fine"),
    # edge-straddling windows and their other surface as a negative, from the default's weights
    "synthetic-stereo-2ch-edge": two_channel_fine_tune("synthetic-stereo-2ch-fine"),
    # the same at a quarter of the network's window (16 px), from the edge run's weights
    "synthetic-stereo-2ch-edge-ws4": two_channel_fine_tune("synthetic-stereo-2ch-edge"),
    # real castle windows (views 0-9), from the synthetic-stereo-2ch-fine weights
    "castle-dense-2ch": (
        "stereo",
        600,
        "synthetic-stereo-2ch-fine",
        {"lr": "0.0001", "margin": "1.0", "val_every": "200", "checkpoint_every": "50"},
    ),
    # a second round on fresh pairs, from the first round's weights, at a lower rate
    "synthetic-stereo-r2": (
        "stereo",
        1200,
        "synthetic-stereo",
        {"lr": "0.0002", "margin": "0.5", "val_every": "200", "checkpoint_every": "50"},
    ),
}

#: model → (recipe, steps, extra overrides); steps give each model about 8 CPU minutes.
PLAN: dict[str, tuple[str, int, dict[str, str]]] = {
    "2ch": ("deepcompare-adam", 2400, {}),
    "2ch-deep": ("deepcompare-adam", 1300, {}),
    "2ch-2stream": ("deepcompare-adam", 1400, {}),
    "siam": ("deepcompare-adam", 2400, {}),
    "siam-l2": ("deepcompare-adam", 2400, {}),
    "siam-2stream-l2": ("deepcompare-adam", 2000, {}),
    "cnn3": ("deepdesc", 650, {"batch_size": "64"}),
    "l2net": ("l2net", 700, {}),
}
#: families without keypoint-patch weights of their own, trained for stereo from another
#: family's stereo weights: family → the weights whose L2-Net tower starts every tower (CS
#: L2-Net's whole-patch tower then sees the window at the working image's own scale, its
#: central tower exactly what L2-Net sees)
TOWER_INIT: dict[str, str] = {"cs-l2net": "l2net.synthetic-stereo.pt"}
ADAM = {"optimizer": "adam", "lr": "0.001", "momentum": "0", "weight_decay": "0"}


def keypoint_overrides(
    name: str,
    steps: int | None = None,
    extra: dict[str, str] | None = None,
    lr_step: int = 0,
) -> dict[str, str]:
    """The recipe overrides of ``name``'s keypoint-patch run (:data:`PLAN`): Adam, the plan's
    extras, then ``extra``; ``steps`` (default: the plan's), validation four times a run, a
    checkpoint every 200 steps, ``lr_step`` (0: constant rate)."""
    steps = steps or PLAN[name][1]
    return {
        **ADAM,
        **PLAN[name][2],
        **(extra or {}),
        "steps": str(steps),
        "val_every": str(max(steps // 4, 1)),
        "checkpoint_every": "200",
        "lr_step": str(lr_step),
    }


def init_weights_path(name: str, init_set: str) -> Path:
    """The weights a stereo set's run of ``name`` starts from: the ``init_set`` run's fp32
    weights, else its shipped fp16 ones; exits saying which run to make first."""
    path = ROOT / "runs" / "shipped" / f"{name}.{init_set}" / f"{name}.{init_set}.fp32.pt"
    if not path.is_file():
        path = ROOT / "models" / f"{name}.{init_set}.pt"
    if not path.is_file():
        sys.exit(
            f"error: {path} is missing; first run "
            f"`python benchmarks/train_models.py --model {name} --train-set {init_set}`"
        )
    return path


def tower_initialised(name: str, source: Path) -> PatchNet:
    """A fresh ``name`` network (CS L2-Net) whose L2-Net towers all start from the tower of
    the L2-Net weights ``source``."""
    model = build_model(name)
    tower = load_weights_file(source).tower.state_dict()
    for module in model.modules():
        if isinstance(module, L2NetTower):
            module.load_state_dict(tower)
    return model


def load_train_set(train_set: str) -> PatchSet:
    """The patches of ``train_set``: read from its file, or generated (synthetic-stereo)."""
    path, _ = TRAIN_SETS[train_set]
    if path is not None:
        return PatchSet.load(path)
    if train_set in REAL_SETS:
        folder, views, offsets, windows = REAL_SETS[train_set]
        if not folder.is_dir():
            sys.exit(
                f"error: {folder} is missing; make it with `stereo-dataset dense-truth "
                f"../shared/data/strecha/{folder.name} --out {folder.relative_to(ROOT)}`"
            )
        return real_stereo_windows(folder, offsets, windows=windows, views=views)
    if train_set in SYNTHETIC_KEYPOINT_SETS:
        return synthetic_keypoint_set(train_set)
    require_folders(TEXTURE_FOLDERS)
    return synthetic_stereo_windows(
        SYNTHETIC_SET_PAIRS.get(train_set, SYNTHETIC_PAIRS),
        TEXTURE_FOLDERS,
        seed=SYNTHETIC_SEEDS[train_set],
        scene=SYNTHETIC_SCENES.get(train_set),
        windows=SYNTHETIC_WINDOWS.get(train_set),
        workers=torch.get_num_threads(),
    )


def require_folders(folders: list[Path]) -> None:
    """Exit with a one-line error naming the texture folders that are missing."""
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        sys.exit(f"error: texture folder(s) {', '.join(missing)} missing (../shared/data)")


def synthetic_keypoint_set(train_set: str) -> PatchSet:
    """A :data:`SYNTHETIC_KEYPOINT_SETS` set: its real keypoint patches joined to the
    generated ones."""
    real_file, n_pairs, seed, scene, spec = SYNTHETIC_KEYPOINT_SETS[train_set]
    if not real_file.is_file():
        sys.exit(
            f"error: {real_file} is missing; make it with `stereo-dataset build "
            f"../shared/data/strecha/{real_file.stem} --max-orientation 180 "
            f"--out {real_file.parent.relative_to(ROOT)}`"
        )
    require_folders(KEYPOINT_TEXTURE_FOLDERS)
    real = PatchSet.load(real_file)
    generated = synthetic_keypoint_patches(
        n_pairs,
        KEYPOINT_TEXTURE_FOLDERS,
        seed=seed,
        scene=scene,
        spec=spec,
        workers=torch.get_num_threads(),
    )
    return joined([real, generated], {"source": TRAIN_SETS[train_set][1]})


def train_one(
    name: str,
    seed: int = 0,
    device: str = "cpu",
    train_set: str = "castle+oxford",
    steps: int | None = None,
    extra_overrides: dict[str, str] | None = None,
    make_default: bool = True,
    lr_step: int = 0,
    tag: str = "",
    resume: bool = False,
    time_limit_s: float | None = None,
    recipe_base: str | None = None,
) -> Path:
    """Train ``name`` as :data:`PLAN` says on ``train_set``; returns the shipped fp16 weights
    path (``models/NAME.TRAIN_SET.pt``, or ``models/NAME.TRAIN_SET.TAG.pt`` with a ``tag``).

    ``lr_step`` > 0 divides the learning rate by the recipe's ``lr_gamma`` every ``lr_step``
    steps (longer runs); ``steps`` overrides the plan's number of steps; ``recipe_base``
    replaces the plan's recipe on the keypoint sets."""
    description = TRAIN_SETS[train_set][1]
    stem = f"{name}.{train_set}" + (f".{tag}" if tag else "")
    init = None
    if train_set in TRAIN_SET_RECIPES:
        recipe_name, default_steps, init_set, set_overrides = TRAIN_SET_RECIPES[train_set]
        steps = steps or default_steps
        overrides = {**set_overrides, **(extra_overrides or {}), "steps": str(steps)}
        if lr_step:
            overrides["lr_step"] = str(lr_step)
        if name in TOWER_INIT:
            init = tower_initialised(name, ROOT / "models" / TOWER_INIT[name])
            description += f"; every tower initialised from {TOWER_INIT[name]}'s L2-Net tower"
        else:
            init_path = init_weights_path(name, init_set)
            init = load_weights_file(init_path)
            description += f"; initialised from the {init_set} run ({init_path.name})"
    elif name not in PLAN:
        sys.exit(f"error: {name} trains only on the stereo sets ({', '.join(TRAIN_SET_RECIPES)})")
    else:
        recipe_name = recipe_base or PLAN[name][0]
        extra = {**TRAIN_SET_OVERRIDES.get(train_set, {}), **(extra_overrides or {})}
        overrides = keypoint_overrides(name, steps, extra, lr_step)
    recipe = get_recipe(recipe_name).with_overrides(overrides)
    data = load_train_set(train_set)
    if train_set == "castle-near":  # trained before view ids existed: sample as it was then
        data.view_ids = None
    run = ROOT / "runs" / "shipped" / stem
    t0 = time.time()
    result = train(
        name,
        recipe,
        data,
        run,
        seed=seed,
        device=device,
        weights_name=f"{stem}.fp32.pt",
        data_description=description,
        init_weights=init,
        resume=resume,
        time_limit_s=time_limit_s,
    )
    card = dict(result.card)
    steps = card["steps"]
    planned = TRAIN_SET_RECIPES[train_set][1] if train_set in TRAIN_SET_RECIPES else PLAN[name][1]
    card["command"] = (
        f"python benchmarks/train_models.py --model {name} --seed {seed} --train-set {train_set}"
        + (f" --steps {steps}" if steps != planned else "")
        + (f" --device {device}" if device != "cpu" else "")
        + (f" --lr-step {lr_step}" if lr_step else "")
        + (f" --tag {tag}" if tag else "")
        + (f" --recipe {recipe_base}" if recipe_base else "")
        + "".join(f" --set {key}={value}" for key, value in (extra_overrides or {}).items())
        + ("" if make_default else " --no-default")
    )
    card["recipe_base"] = recipe_name
    card["overrides"] = overrides
    card["train_points"] = data.n_points
    card["wall_time_s"] = round(time.time() - t0, 1)
    card.update(card_fields(train_set, name))
    model = load_weights_file(result.weights)
    shipped = ROOT / "models" / f"{stem}.pt"
    save_weights(
        model, shipped, {k: v for k, v in card.items() if k not in ("model", "weights")}, half=True
    )
    write_manifest(shipped.parent)
    if make_default:
        defaults_path = ROOT / "models" / "defaults.json"
        defaults = json.loads(defaults_path.read_text()) if defaults_path.is_file() else {}
        defaults[name] = shipped.name
        defaults_path.write_text(json.dumps(dict(sorted(defaults.items())), indent=2) + "\n")
    shutil.copy(run / "log.jsonl", run / f"{name}.log.jsonl")
    return shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--model", choices=[*PLAN, *TOWER_INIT])
    group.add_argument("--all", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train-set", choices=list(TRAIN_SETS), default="castle+oxford")
    parser.add_argument("--steps", type=int, help="override the PLAN's number of steps")
    parser.add_argument(
        "--lr-step",
        type=int,
        default=0,
        help=(
            "divide the learning rate by the recipe's lr_gamma every N steps (0: the "
            "keypoint plan's rate stays constant; the stereo sets' recipe steps every 10,000)"
        ),
    )
    parser.add_argument(
        "--tag",
        default="",
        help="name the result NAME.TRAIN_SET.TAG (e.g. a longer run beside the plan's one)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field after the plan's (e.g. --set hardest_in_batch=true)",
    )
    parser.add_argument(
        "--recipe",
        choices=list(RECIPES),
        help="keypoint sets: train with this recipe instead of the plan's (e.g. stereo, with "
        "--set hardest_in_batch=true --set near_negatives=0 --set augment=true)",
    )
    parser.add_argument(
        "--no-default",
        action="store_true",
        help="do not make the result the model's default weights (models/defaults.json)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the run folder's checkpoint (runs/shipped/NAME.SET/checkpoint.pt)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds of training (after the data are ready); then stop with the steps done",
    )
    args = parser.parse_args()
    train_path = TRAIN_SETS[args.train_set][0]
    if train_path is not None and not train_path.is_file():
        sys.exit(f"error: {train_path} is missing; build it first (see benchmarks/README.md)")
    if args.recipe and args.train_set in TRAIN_SET_RECIPES:
        sys.exit(f"error: --recipe is for the keypoint sets; {args.train_set} has its own")
    try:
        extra_overrides = checked_overrides(args.set, "stereo")
    except StereoError as error:
        sys.exit(f"error: {error}")
    torch.set_num_threads(2 if args.device == "cpu" else torch.get_num_threads())
    for name in PLAN if args.all else [args.model]:
        path = train_one(
            name,
            args.seed,
            args.device,
            args.train_set,
            args.steps,
            extra_overrides=extra_overrides,
            make_default=not args.no_default,
            lr_step=args.lr_step,
            tag=args.tag,
            resume=args.resume,
            time_limit_s=args.time_limit,
            recipe_base=args.recipe,
        )
        print(f"{name}: {path}", flush=True)


if __name__ == "__main__":
    main()
