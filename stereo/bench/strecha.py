"""Strecha protocol pairs: reference view r and view r + k at the working size, with the
reference's sparse ground truth (``../shared/data/README.md``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stereo.evaluation import SparseDepth, in_second_view, read_sparse_ground_truth
from stereo.geometry.camera import Camera
from stereo.geometry.matches import working_pair
from stereo.geometry.scene import load_scene

#: the repository (benchmarks run from a checkout) and the shared data beside it
REPOSITORY = Path(__file__).resolve().parents[2]
DATA = REPOSITORY.parent / "shared" / "data" / "strecha"
#: where ``stereo-dataset truth`` writes the truth of scenes without gt_sparse (castle-P19)
MADE_TRUTH = REPOSITORY / "datasets" / "truth"
#: the benchmark pairs: fountain r = 5 and Herz-Jesu r = 3, second view r + k, k = 1, 2, 3
PAIRS = [f"fountain-P11:5:{k}" for k in (1, 2, 3)] + [f"Herz-Jesu-P8:3:{k}" for k in (1, 2, 3)]


#: every benchmark searches the truth's range widened by this factor each way (± 5 %)
TRUTH_MARGIN = 1.05


def truth_range(truth: np.ndarray) -> tuple[float, float]:
    """The range a benchmark searches for ``truth`` (depths in metres or disparities in
    pixels, any shape, NaN ignored): its smallest value ÷ :data:`TRUTH_MARGIN` to its largest
    × :data:`TRUTH_MARGIN`."""
    return float(np.nanmin(truth)) / TRUTH_MARGIN, float(np.nanmax(truth)) * TRUTH_MARGIN


@dataclass
class ProtocolPair:
    """A pair of the protocol at the working size, with its ground truth."""

    reference: np.ndarray  # (h, w) grey uint8
    other: np.ndarray
    reference_camera: Camera  # working-size cameras
    other_camera: Camera
    truth: SparseDepth  # the reference view's sparse ground truth, working pixels
    in_view: np.ndarray  # (N,) bool: ground-truth points that project inside the other view
    depth_range: tuple[float, float]  # metres: the ground truth's range widened by 5 %


def truth_folder(scene_name: str, data: Path = DATA, made_root: Path = MADE_TRUTH) -> Path:
    """The sparse ground truth of a scene: the shared ``gt_sparse`` files, or for a scene
    without them (castle-P19) the files ``stereo-dataset truth`` writes to
    ``datasets/truth/SCENE``."""
    shared = data / scene_name / "gt_sparse"
    if shared.is_dir():
        return shared
    made = made_root / scene_name
    if not made.is_dir():
        sys.exit(
            f"error: {scene_name} has no ground truth; make it with `stereo-dataset truth "
            f"{data / scene_name} --out {made}`"
        )
    return made


def load_pair(
    scene_name: str, r: int, k: int, size: int, data: Path = DATA, made_root: Path = MADE_TRUTH
) -> ProtocolPair:
    """Reference view ``r`` and view ``r + k`` of a Strecha scene at working size ``size``."""
    scene = load_scene(data / scene_name)
    truth_full = read_sparse_ground_truth(
        truth_folder(scene_name, data, made_root) / f"{r:04d}.npz"
    )
    (ref_w, other_w), (ref_cam, other_cam) = working_pair(
        [scene.image(r), scene.image(r + k)], [scene.cameras[r], scene.cameras[r + k]], size
    )
    scale = ref_cam.width / scene.cameras[r].width
    truth = SparseDepth((truth_full.xy + 0.5) * scale - 0.5, truth_full.depth)
    in_view = in_second_view(ref_cam, other_cam, truth)
    depth_range = truth_range(truth.depth)
    return ProtocolPair(ref_w, other_w, ref_cam, other_cam, truth, in_view, depth_range)
