"""The stereo pipeline as plain functions: geometry → cost volume → MRF → depth map.

:func:`match_calibrated` computes the depth map of a reference image from a second image and
both cameras; notebooks, tests and the ``stereo-match`` command call it directly.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from stereo.cost.base import PRECISIONS, Cost
from stereo.cost.descriptor import DescriptorCost
from stereo.cost.fused import FusedCost
from stereo.cost.handmade import CensusCost, DaisyCost, DenseSiftCost, ZNCCCost
from stereo.cost.two_channel import TwoChannelCost
from stereo.errors import StereoError
from stereo.geometry.camera import (
    Camera,
    check_camera,
    epipolar_distance,
    fundamental_matrix,
    triangulate,
)
from stereo.geometry.planesweep import backproject, check_sweep_geometry, inverse_depth_labels
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import (
    FALLBACK_SMOOTHNESS,
    MRFConfig,
    normalise_volume,
    solve,
    winner_take_all,
)
from stereo.patchnet.devices import check_device
from stereo.patchnet.models import DescriptorNet
from stereo.refine import refined_values, sublabel_offsets

#: costs that need no network, by the name ``--model`` takes.
BASELINE_COSTS = {
    "zncc": lambda: ZNCCCost(9),
    "census": lambda: CensusCost(7),
    "daisy": lambda: DaisyCost(),
    "dsift": lambda: DenseSiftCost(),
}
#: the default cost: L2-Net trained on upright windows of 32 working pixels (castle-P19), the
#: most accurate learned cost in benchmarks/results/strecha.md, about 50 s a pair end to end
#: at 768×512 × 64 labels on 2 CPU cores; ``l2net`` alone loads the keypoint-patch weights.
DEFAULT_MODEL = "l2net.castle-fixed-s1"
OPTIMIZERS = ("graphcut", "wta")
INVALID_MODES = ("nan", "fill")  # pixels whose match leaves the second image: NaN or kept
MAX_LABELS = 4096  # hypotheses per pixel (memory is checked too: check_volume_fits)
MIN_WORKING_SIZE = 32  # pixels on the long side
SIFT_MAX_SIDE = 1600  # feature matching runs on images reduced to this long side, pixels
#: cameras fit their images when this share of the image matches lies on their epipolar
#: lines, and this share of those triangulates in front of both cameras (check_cameras_fit)
CAMERA_FIT_MIN_EPIPOLAR = 0.1
CAMERA_FIT_MIN_IN_FRONT = 0.5


@dataclass(frozen=True)
class StereoConfig:
    """Every knob of a run, with its unit."""

    model: str = DEFAULT_MODEL  # registry name, weights file, or zncc | census | daisy | dsift
    n_labels: int = 64  # depth hypotheses, uniform in inverse depth
    depth_range: tuple[float, float] | None = None  # metres; None: estimated from matches
    working_size: int = 768  # long side of the working resolution, pixels (never upsampled)
    optimizer: str = "graphcut"  # graphcut | wta
    mrf: MRFConfig = field(default_factory=MRFConfig)
    invalid: str = "nan"  # pixels whose depth leaves the second image: nan | fill
    device: str = "cpu"
    untrained: bool = False  # random network weights (tests and timing only)
    # L2 descriptor costs: share of the variance the principal-component projection keeps
    descriptor_variance: float = DescriptorCost.variance_kept
    # descriptor costs on plane sweeps: describe the second image pre-warped by the middle plane
    prewarp: bool = DescriptorCost.prewarp
    prewarp_planes: int = DescriptorCost.prewarp_planes  # label runs with their own pre-warp
    precision: str = DescriptorCost.precision  # descriptor networks: auto | float32 | bfloat16
    lr_check: bool = False  # also match the second image against the first; NaN where they disagree
    lr_tolerance: float = 1.0  # left-right agreement, in label steps
    # refine each pixel below the label step (parabola through its costs, stereo.refine)
    sublabel: bool = True

    def __post_init__(self) -> None:
        """Refuse a configuration that cannot run, before any work is done."""
        _check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("--invalid", self.invalid, INVALID_MODES)
        _check_choice("--precision", self.precision, PRECISIONS)
        if not 2 <= self.n_labels <= MAX_LABELS:
            raise StereoError(f"--labels must lie in [2, {MAX_LABELS}], not {self.n_labels}")
        if self.working_size < MIN_WORKING_SIZE:
            raise StereoError(
                f"--size (the working long side) must be at least {MIN_WORKING_SIZE} px, "
                f"not {self.working_size}"
            )
        if self.depth_range is not None:
            lo, hi = self.depth_range
            if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0):
                raise StereoError(f"--depth-range {lo} {hi} must be positive finite metres")
            if lo >= hi:
                raise StereoError(
                    f"--depth-range min {lo} must be below max {hi}; swap them or widen it"
                )
        if not 0.0 < self.descriptor_variance <= 1.0:
            raise StereoError(
                f"--descriptor-variance must lie in (0, 1], not {self.descriptor_variance}"
            )
        if self.prewarp_planes < 1:
            raise StereoError(f"--prewarp-planes must be at least 1, not {self.prewarp_planes}")
        if not (np.isfinite(self.lr_tolerance) and self.lr_tolerance > 0):
            raise StereoError(f"left-right tolerance must be > 0 labels, not {self.lr_tolerance}")
        check_device(self.device)


def _check_choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise StereoError(f"unknown {option} {value!r}; valid: {', '.join(valid)}")


@dataclass
class StereoResult:
    """A depth map in the reference image's pixel grid and what made it."""

    depth: np.ndarray  # (H, W) float32: metres (calibrated) or pixels (disparity); NaN = unknown
    confidence: np.ndarray  # (H, W) float32 in [0, 1]: margin of the best hypothesis
    depth_working: np.ndarray  # (h, w) at the working resolution
    labels: np.ndarray  # (h, w) chosen hypothesis index
    depths: np.ndarray  # (L,) hypotheses: depths (metres) or disparities (pixels)
    volume: np.ndarray  # (L, h, w) normalised costs (NaN = leaves the second image)
    reference_working: np.ndarray  # (h, w) grey reference at the working resolution
    camera_working: Camera | None
    report: dict[str, Any]
    kind: str = "depth"  # "depth" (metres) | "disparity" (pixels of the input pair)
    rectification: dict[str, Any] | None = None  # uncalibrated pairs: H1, H2, F


def make_cost(
    name: str,
    device: str = "cpu",
    untrained: bool = False,
    descriptor_variance: float = DescriptorCost.variance_kept,
    prewarp: bool = DescriptorCost.prewarp,
    prewarp_planes: int = DescriptorCost.prewarp_planes,
    replicated_upsampling: bool = DescriptorCost.replicated_upsampling,
    precision: str = DescriptorCost.precision,
) -> Cost:
    """The matching cost of a registry model, a weights file, a baseline name, or several of
    these joined by commas (their mean normalised volume, :class:`~stereo.cost.fused.FusedCost`)
    (``descriptor_variance``, ``prewarp``, ``prewarp_planes``, ``replicated_upsampling``,
    ``precision``: see :class:`~stereo.cost.descriptor.DescriptorCost`)."""
    if not 0.0 < descriptor_variance <= 1.0:
        raise StereoError(f"descriptor variance kept must lie in (0, 1], not {descriptor_variance}")
    if prewarp_planes < 1:
        raise StereoError(f"pre-warp planes must be at least 1, not {prewarp_planes}")
    if precision not in PRECISIONS:
        raise StereoError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    cost = _make_cost(name, device, untrained)
    for part in cost.components if isinstance(cost, FusedCost) else [cost]:
        if isinstance(part, DescriptorCost):
            part.variance_kept = descriptor_variance
            part.prewarp = prewarp
            part.prewarp_planes = prewarp_planes
            part.replicated_upsampling = replicated_upsampling
        if isinstance(part, (DescriptorCost, TwoChannelCost)):
            part.precision = precision
    return cost


def cost_of(cfg: StereoConfig) -> Cost:
    """The matching cost a run's configuration asks for (:func:`make_cost`)."""
    return make_cost(
        cfg.model,
        cfg.device,
        cfg.untrained,
        cfg.descriptor_variance,
        cfg.prewarp,
        cfg.prewarp_planes,
        precision=cfg.precision,
    )


def _make_cost(name: str, device: str, untrained: bool) -> Cost:
    if "," in name:  # a fused cost: "zncc,l2net.castle-fixed"
        return FusedCost([_make_cost(part.strip(), device, untrained) for part in name.split(",")])
    if name in BASELINE_COSTS:
        return BASELINE_COSTS[name]()
    from stereo.patchnet.weights import load_model

    try:
        model = load_model(name, device=device, untrained=untrained)
    except StereoError as error:
        if "unknown model" in str(error):
            raise StereoError(f"{error}; or a baseline: {', '.join(BASELINE_COSTS)}") from None
        raise
    if isinstance(model, DescriptorNet):
        return DescriptorCost(model, device)
    return TwoChannelCost(model, device)


def scale_camera(camera: Camera, width: int, height: int) -> Camera:
    """The camera of its image resized to ``width × height`` (pixel centres at integers)."""
    sx, sy = width / camera.width, height / camera.height
    S = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    return Camera(S @ camera.K, camera.R, camera.C, width, height)


def working_pair(images: list[np.ndarray], cameras: list[Camera], working_size: int):
    """Images (grey uint8) and cameras resized so the longest side is ``working_size``."""
    out_images, out_cameras = [], []
    for image, camera in zip(images, cameras, strict=True):
        h, w = image.shape[:2]
        if (w, h) != (camera.width, camera.height):
            raise StereoError(
                f"an image is {w}x{h} but its camera says {camera.width}x{camera.height}"
            )
        scale = min(1.0, working_size / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resized = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        out_images.append(resized)
        out_cameras.append(scale_camera(camera, *size))
    return out_images, out_cameras


@dataclass
class CameraMatches:
    """SIFT matches of a calibrated pair checked against its cameras."""

    n_matches: int  # ratio-test matches
    n_epipolar: int  # of them within 2 px of the cameras' epipolar lines
    depths: np.ndarray  # (N,) reference depths (metres) of those in front of both cameras


def camera_matches(
    reference: np.ndarray, other: np.ndarray, ref_cam: Camera, other_cam: Camera
) -> CameraMatches:
    """Ratio-test SIFT matches of the pair, those within 2 px of the epipolar lines the
    cameras predict, and the depths of those that triangulate in front of both cameras."""
    x1, x2 = sift_matches(reference, other)
    n_matches = len(x1)
    if n_matches:
        keep = epipolar_distance(fundamental_matrix(ref_cam, other_cam), x1, x2) < 2.0
        x1, x2 = x1[keep], x2[keep]
    depths = np.zeros(0)
    if len(x1):
        P = np.broadcast_to(np.stack([ref_cam.P, other_cam.P]), (len(x1), 2, 3, 4))
        X = triangulate(P, np.stack([x1, x2], axis=1))
        depths = ref_cam.to_camera(X)[:, 2]
        depths = depths[(depths > 0) & (other_cam.to_camera(X)[:, 2] > 0)]
    return CameraMatches(n_matches, len(x1), depths)


def check_camera_pair(reference: Camera, other: Camera) -> None:
    """Raise unless both cameras are valid (:func:`check_camera`) and apart."""
    check_camera(reference, "reference camera")
    check_camera(other, "second camera")
    if np.linalg.norm(reference.C - other.C) == 0:
        raise StereoError(
            "both cameras have the same centre: no baseline, depth cannot be measured; "
            "check the camera files (the same camera twice?)"
        )


def check_cameras_fit(matches: CameraMatches, min_matches: int = 40) -> None:
    """Raise when the images' own matches contradict their cameras: too few lie on the
    epipolar lines the cameras predict (cameras of other images), or those that do
    triangulate behind the cameras (cameras swapped). Pairs with fewer than
    ``min_matches`` matches cannot be judged and pass."""
    m = matches
    if m.n_matches < min_matches:
        return
    if m.n_epipolar < max(10, CAMERA_FIT_MIN_EPIPOLAR * m.n_matches):
        raise StereoError(
            f"the cameras do not fit the images: only {m.n_epipolar} of {m.n_matches} image "
            "matches lie within 2 px of the epipolar lines the cameras predict; check that "
            "each camera file belongs to its image (and LEFT/RIGHT are not swapped)"
        )
    if m.depths.size < CAMERA_FIT_MIN_IN_FRONT * m.n_epipolar:
        raise StereoError(
            f"the cameras do not fit the images: {m.n_epipolar - m.depths.size} of "
            f"{m.n_epipolar} epipolar matches triangulate behind the cameras; are the "
            "LEFT and RIGHT cameras swapped?"
        )


def estimate_depth_range(
    matches: CameraMatches, margin: float = 0.15, min_matches: int = 20
) -> tuple[float, float, int]:
    """Depth range of the reference view from its matches triangulated with the cameras
    (:func:`camera_matches`): their 2nd–98th depth percentiles widened by ``margin`` on
    each side.

    Returns:
        ``(depth_min, depth_max, n_matches)`` in metres.
    """
    depths = matches.depths
    if depths.size < min_matches:
        raise StereoError(
            f"only {depths.size} geometrically consistent matches: too few to "
            "estimate the depth range; give it with --depth-range MIN MAX"
        )
    lo, hi = np.percentile(depths, [2, 98])
    return float(lo * (1 - margin)), float(hi * (1 + margin)), int(depths.size)


def volume_bytes(n_labels: int, height: int, width: int, lr_check: bool = False) -> int:
    """Peak memory of a run's cost volume and MRF, bytes: about seven float32 copies of the
    ``(L, h, w)`` volume at once (raw, normalised, the MRF's integer terms and gco's own)
    plus 512 float32 feature maps (descriptors of both images); twice the volume part with
    the left-right check."""
    volume = 7 * (2 if lr_check else 1) * n_labels
    return 4 * height * width * (volume + 512)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_volume_fits(cfg: StereoConfig, height: int, width: int) -> None:
    """Refuse, before anything is allocated, a volume that would not fit in memory."""
    need = volume_bytes(cfg.n_labels, height, width, cfg.lr_check)
    free = available_memory()
    if free is not None and need > free:
        raise StereoError(
            f"{cfg.n_labels} labels at {width}x{height} need about {need / 2**30:.1f} GiB of "
            f"memory, more than the {free / 2**30:.1f} GiB available; lower --labels or --size"
        )


def informative_confidence(volume: np.ndarray) -> np.ndarray:
    """:func:`confidence_map` of a normalised volume, refusing a volume in which no pixel
    prefers one hypothesis (blank or identical images, a range that misses the scene)."""
    confidence = confidence_map(volume)
    if not (confidence > 0).any():
        raise StereoError(
            "the cost volume carries no information: no pixel prefers one hypothesis; "
            "check that the images show the same textured scene and the depth range"
        )
    return confidence


def confidence_map(volume: np.ndarray) -> np.ndarray:
    """``(h, w)`` margin between the best and second-best normalised cost, in [0, 1]."""
    v = np.where(np.isfinite(volume), volume, np.inf)
    best, second = np.partition(v, 1, axis=0)[:2]
    both = np.isfinite(best) & np.isfinite(second)
    margin = np.zeros(best.shape, np.float32)
    margin[both] = second[both] - best[both]
    return np.clip(margin, 0, 1)


def default_smoothness(model: str) -> float:
    """The smoothness weight λ of a matching cost: the value chosen for it on castle-P19 by
    ``benchmarks/tune_smoothness.py --install`` (``models/smoothness.json``; registry names
    resolve to their shipped weights file), else :data:`FALLBACK_SMOOTHNESS`."""
    from stereo.patchnet.weights import models_dir, shipped_weights

    path = models_dir() / "smoothness.json"
    if not path.is_file():
        return FALLBACK_SMOOTHNESS
    try:
        table = json.loads(path.read_text())["smoothness"]
    except (ValueError, KeyError, TypeError):
        raise StereoError(
            f"{path} is not a smoothness table (needs {{'smoothness': {{cost: λ}}}}); "
            "rewrite it with benchmarks/tune_smoothness.py --install or delete it"
        ) from None
    if model in table:
        return float(table[model])
    shipped = shipped_weights(model)
    if shipped is not None and shipped.stem in table:
        return float(table[shipped.stem])
    return FALLBACK_SMOOTHNESS


def resolved_mrf(cfg: StereoConfig) -> MRFConfig:
    """``cfg.mrf`` with the smoothness weight filled in (the cost's default when unset)."""
    if cfg.mrf.smoothness is not None:
        return cfg.mrf
    return replace(cfg.mrf, smoothness=default_smoothness(cfg.model))


def optimise(
    volume: np.ndarray,
    image: np.ndarray,
    values: np.ndarray,
    cfg: StereoConfig,
    inverse: bool = False,
):
    """Labels of a normalised volume by graph cut or winner-take-all.

    Args:
        values: ``(L,)`` the hypotheses; ``inverse``: they are uniform in ``1 / value``
            (plane-sweep depths) rather than in value (disparities).

    Returns:
        ``(labels (h, w), energy_wta, energy_final, value map (h, w) float32)``; the value map
        holds ``values[label]`` — refined below the label step when ``cfg.sublabel``
        (:mod:`stereo.refine`) — and NaN where the chosen hypothesis leaves the second image
        (unless ``cfg.invalid == "fill"``).
    """
    if cfg.optimizer == "graphcut":  # StereoConfig refused any other name when made
        mrf = solve(volume, image, resolved_mrf(cfg))
        labels, energy_wta, energy_final = mrf.labels, mrf.energy_wta, mrf.energy
    else:
        labels, energy_wta, energy_final = winner_take_all(volume), None, None
    if cfg.sublabel:
        offsets = sublabel_offsets(volume, labels)
        value_map = refined_values(values, labels, offsets, inverse)
    else:
        value_map = values[labels].astype(np.float32)
    chosen_invalid = ~np.isfinite(np.take_along_axis(volume, labels[None], axis=0)[0])
    if cfg.invalid == "nan":
        value_map[chosen_invalid] = np.nan
    return labels, energy_wta, energy_final, value_map


def run_report(
    cfg: StereoConfig,
    cost: Cost,
    working: np.ndarray,
    image: np.ndarray,
    times: dict[str, float],
    energy_wta: int | None,
    energy_final: int | None,
    value_map: np.ndarray,
) -> dict[str, Any]:
    """The report keys every matching mode shares."""
    return {
        "model": cfg.model,
        "cost": cost.name,
        "n_labels": cfg.n_labels,
        "working_size": [int(working.shape[1]), int(working.shape[0])],
        "image_size": [int(image.shape[1]), int(image.shape[0])],
        "optimizer": cfg.optimizer,
        "sublabel": cfg.sublabel,
        "mrf": asdict(resolved_mrf(cfg)),
        "device": cfg.device,
        "threads": torch.get_num_threads(),
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "energy_wta": energy_wta,
        "energy_final": energy_final,
        "unknown_fraction": float(np.isnan(value_map).mean()),
        **getattr(cost, "info", {}),
    }


def depth_left_right_consistent(
    depth: np.ndarray,
    depth_other: np.ndarray,
    camera: Camera,
    other_camera: Camera,
    inverse_tolerance: float,
) -> np.ndarray:
    """``(h, w)`` bool: pixels whose 3D point, seen from the second camera, has the depth
    the second view's own depth map gives there (``|1/z − 1/z_other| ≤ inverse_tolerance``,
    1/metres; nearest pixel). Unknown depths and points leaving the second view fail.

    Args:
        depth, depth_other: depth maps (metres, NaN = unknown) of the two working views.
        camera, other_camera: their working cameras.
    """
    h, w = depth.shape
    ys, xs = np.mgrid[0:h, 0:w]
    finite = np.isfinite(depth)
    X = backproject(camera, np.c_[xs[finite], ys[finite]], depth[finite])
    xy, z = other_camera.project(X)
    ix, iy = np.rint(xy[:, 0]), np.rint(xy[:, 1])
    ho, wo = depth_other.shape
    inside = (z > 0) & (ix >= 0) & (ix < wo) & (iy >= 0) & (iy < ho)
    seen = np.full(len(z), np.nan)
    seen[inside] = depth_other[iy[inside].astype(int), ix[inside].astype(int)]
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.abs(1 / z - 1 / seen) <= inverse_tolerance
    keep = np.zeros((h, w), bool)
    keep[finite] = agree & np.isfinite(seen)
    return keep


def disparity_left_right_consistent(
    disparity: np.ndarray, disparity_right: np.ndarray, scale: float, tolerance: float
) -> np.ndarray:
    """``(h, w)`` bool: left pixels ``x`` whose match ``x − d`` in the right image has a
    right disparity within ``tolerance`` of ``d`` (disparities in input pixels, maps at the
    working resolution ``scale`` × input; nearest pixel)."""
    h, w = disparity.shape
    xs = np.arange(w)[None, :].repeat(h, 0)
    ys = np.arange(h)[:, None].repeat(w, 1)
    finite = np.isfinite(disparity)
    target = np.rint(xs - np.where(finite, disparity, 0) * scale).astype(int)
    inside = finite & (target >= 0) & (target < w)
    seen = np.full((h, w), np.nan)
    seen[inside] = disparity_right[ys[inside], target[inside]]
    with np.errstate(invalid="ignore"):
        return inside & (np.abs(seen - disparity) <= tolerance)


def match_calibrated(
    reference: np.ndarray,
    other: np.ndarray,
    reference_camera: Camera,
    other_camera: Camera,
    config: StereoConfig | None = None,
    progress: bool = False,
) -> StereoResult:
    """Depth map of ``reference`` (grey uint8, ``(H, W)``) from ``other`` and both cameras.

    Returns:
        A :class:`StereoResult` with ``depth`` in the reference's pixel grid (metres).
    """
    cfg = config or StereoConfig()
    times: dict[str, float] = {}
    t = time.time()
    check_camera_pair(reference_camera, other_camera)
    (ref_w, other_w), (ref_cam, other_cam) = working_pair(
        [reference, other], [reference_camera, other_camera], cfg.working_size
    )
    check_volume_fits(cfg, *ref_w.shape)
    # bad names fail before any work
    cost = cost_of(cfg)
    matches = camera_matches(ref_w, other_w, ref_cam, other_cam)
    check_cameras_fit(matches)
    n_matches = None
    if cfg.depth_range is None:
        d_min, d_max, n_matches = estimate_depth_range(matches)
    else:
        d_min, d_max = cfg.depth_range
    depths = inverse_depth_labels(d_min, d_max, cfg.n_labels)
    check_sweep_geometry(ref_cam, other_cam, d_min, d_max)
    times["geometry"] = time.time() - t
    t = time.time()
    sweep = Sweep.planes(ref_cam, other_cam, depths)
    if cfg.lr_check:  # both directions at once: descriptor costs describe each image once
        backward = Sweep.planes(other_cam, ref_cam, depths)
        raw, raw_other = cost.volume_pair(ref_w, other_w, sweep, backward, progress=progress)
    else:
        raw = cost.volume(ref_w, other_w, sweep, progress=progress)
    volume = normalise_volume(raw)
    confidence_w = informative_confidence(volume)
    times["cost_volume"] = time.time() - t
    t = time.time()
    labels, energy_wta, energy_final, depth_w = optimise(volume, ref_w, depths, cfg, True)
    times["mrf"] = time.time() - t
    lr_rejected = None
    if cfg.lr_check:
        t = time.time()
        depth_other_w = optimise(normalise_volume(raw_other), other_w, depths, cfg, True)[3]
        step = (1 / depths.min() - 1 / depths.max()) / max(len(depths) - 1, 1)
        keep = depth_left_right_consistent(
            depth_w, depth_other_w, ref_cam, other_cam, cfg.lr_tolerance * step
        )
        lr_rejected = float((np.isfinite(depth_w) & ~keep).mean())
        depth_w = np.where(keep, depth_w, np.nan).astype(np.float32)
        times["lr_check"] = time.time() - t
    h, w = reference.shape[:2]
    depth = cv2.resize(depth_w, (w, h), interpolation=cv2.INTER_NEAREST)
    confidence = cv2.resize(confidence_w, (w, h), interpolation=cv2.INTER_LINEAR)
    report = {
        **run_report(cfg, cost, ref_w, reference, times, energy_wta, energy_final, depth_w),
        "depth_range_m": [d_min, d_max],
        "depth_range_source": "given" if cfg.depth_range else f"{n_matches} matches",
        "lr_rejected_fraction": lr_rejected,
    }
    return StereoResult(depth, confidence, depth_w, labels, depths, volume, ref_w, ref_cam, report)


def sift_matches(
    a: np.ndarray,
    b: np.ndarray,
    n: int = 4000,
    ratio: float = 0.8,
    max_side: int = SIFT_MAX_SIDE,
):
    """Ratio-test SIFT matches: ``(M, 2)`` points in ``a`` and in ``b`` (pixels of each).

    Images larger than ``max_side`` on the long side are matched reduced to it (time and
    memory stay bounded whatever the input size) and the points scaled back."""
    small_a, scale_a = _reduced(a, max_side)
    small_b, scale_b = _reduced(b, max_side)
    x1, x2 = _sift_matches(small_a, small_b, n, ratio)
    return (x1 + 0.5) / scale_a - 0.5, (x2 + 0.5) / scale_b - 0.5


def _reduced(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale == 1.0:
        return image, 1.0
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), size[0] / w


def _sift_matches(a: np.ndarray, b: np.ndarray, n: int, ratio: float):
    sift = cv2.SIFT_create(n)
    k1, d1 = sift.detectAndCompute(a, None)
    k2, d2 = sift.detectAndCompute(b, None)
    if d1 is None or d2 is None or len(k1) < 2 or len(k2) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pairs = [
        (m.queryIdx, m.trainIdx)
        for m, n_ in cv2.BFMatcher().knnMatch(d1, d2, k=2)
        if m.distance < ratio * n_.distance
    ]
    x1 = np.array([k1[i].pt for i, _ in pairs]).reshape(-1, 2)
    x2 = np.array([k2[j].pt for _, j in pairs]).reshape(-1, 2)
    return x1, x2


def estimate_disparity_range(
    left: np.ndarray, right: np.ndarray, margin: float = 0.25, min_matches: int = 20
) -> tuple[float, float, int]:
    """Disparity range ``x_left − x_right`` of a rectified pair from row-consistent SIFT
    matches (|Δy| ≤ 1.5 px): 5th–95th percentiles widened by ``margin`` of the span + 2 px
    on each side (robust to the few matches between repeated structures)."""
    x1, x2 = sift_matches(left, right)
    keep = np.abs(x1[:, 1] - x2[:, 1]) <= 1.5 if len(x1) else np.zeros(0, bool)
    d = (x1[keep, 0] - x2[keep, 0]) if len(x1) else np.zeros(0)
    if d.size < min_matches:
        raise StereoError(
            f"only {d.size} row-aligned matches: too few to estimate the "
            "disparity range (is the pair rectified?); give --disparity-range"
        )
    lo, hi = np.percentile(d, [5, 95])
    pad = margin * (hi - lo) + 2.0
    return float(lo - pad), float(hi + pad), int(d.size)


def match_rectified(
    left: np.ndarray,
    right: np.ndarray,
    config: StereoConfig | None = None,
    disparity_range: tuple[float, float] | None = None,
    progress: bool = False,
) -> StereoResult:
    """Disparity map of ``left`` (grey uint8) for a rectified pair: ``x_right = x_left − d``.

    Returns:
        A :class:`StereoResult` with ``kind == "disparity"``: ``depth`` holds disparities in
        pixels of the input images.
    """
    cfg = config or StereoConfig()
    if left.shape != right.shape:
        raise StereoError(
            f"the images differ in size ({left.shape[1]}x{left.shape[0]} and "
            f"{right.shape[1]}x{right.shape[0]}): a rectified pair without "
            "cameras needs equal sizes; give cameras or rectify them"
        )
    times: dict[str, float] = {}
    t = time.time()
    h, w = left.shape
    scale = min(1.0, cfg.working_size / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resize = (
        (lambda im: im)
        if scale == 1.0
        else (lambda im: cv2.resize(im, size, interpolation=cv2.INTER_AREA))
    )
    left_w, right_w = resize(left), resize(right)
    check_volume_fits(cfg, *left_w.shape)
    # bad names fail before any work
    cost = cost_of(cfg)
    n_matches = None
    if disparity_range is None:
        d_min, d_max, n_matches = estimate_disparity_range(left_w, right_w)
        d_min, d_max = d_min / scale, d_max / scale
    else:
        d_min, d_max = disparity_range
        if d_min >= d_max:
            raise StereoError(f"disparity range min {d_min} must be below max {d_max}")
    disparities = np.linspace(d_min, d_max, cfg.n_labels)
    times["geometry"] = time.time() - t
    t = time.time()
    sweep = Sweep.disparities(left_w.shape[0], left_w.shape[1], disparities * scale)
    if cfg.lr_check:  # the right image's match of x is x + d: negative shifts
        backward = Sweep.disparities(left_w.shape[0], left_w.shape[1], -disparities * scale)
        raw, raw_right = cost.volume_pair(left_w, right_w, sweep, backward, progress=progress)
    else:
        raw = cost.volume(left_w, right_w, sweep, progress=progress)
    volume = normalise_volume(raw)
    confidence_w = informative_confidence(volume)
    times["cost_volume"] = time.time() - t
    t = time.time()
    labels, energy_wta, energy_final, disp_w = optimise(volume, left_w, disparities, cfg)
    times["mrf"] = time.time() - t
    lr_rejected = None
    if cfg.lr_check:  # the right image's own disparities must agree
        t = time.time()
        disp_right_w = optimise(normalise_volume(raw_right), right_w, disparities, cfg)[3]
        step = (d_max - d_min) / max(cfg.n_labels - 1, 1)
        keep = disparity_left_right_consistent(disp_w, disp_right_w, scale, cfg.lr_tolerance * step)
        lr_rejected = float((np.isfinite(disp_w) & ~keep).mean())
        disp_w = np.where(keep, disp_w, np.nan).astype(np.float32)
        times["lr_check"] = time.time() - t
    report = {
        **run_report(cfg, cost, left_w, left, times, energy_wta, energy_final, disp_w),
        "disparity_range_px": [d_min, d_max],
        "disparity_range_source": "given" if disparity_range else f"{n_matches} matches",
        "lr_rejected_fraction": lr_rejected,
    }
    return StereoResult(
        cv2.resize(disp_w, (w, h), interpolation=cv2.INTER_NEAREST),
        cv2.resize(confidence_w, (w, h), interpolation=cv2.INTER_LINEAR),
        disp_w,
        labels,
        disparities,
        volume,
        left_w,
        None,
        report,
        kind="disparity",
    )


def rectify_uncalibrated(
    left: np.ndarray, right: np.ndarray, min_inliers: int = 30
) -> dict[str, Any]:
    """Epipolar geometry from SIFT matches (RANSAC) and rectifying homographies.

    Returns:
        ``{"F", "H1", "H2" (3×3 lists), "inliers", "epipole_left"}``; raises when the
        matches are too few or the epipole lies inside the left image (the camera moves
        toward the scene: no useful rectification exists).
    """
    x1, x2 = sift_matches(left, right)
    if len(x1) < min_inliers:
        raise StereoError(
            f"only {len(x1)} matches between the images: too few to estimate "
            "their geometry; give cameras, or check that they overlap"
        )
    F, mask = cv2.findFundamentalMat(x1, x2, cv2.FM_RANSAC, 1.0, 0.999)
    if F is None or F.shape != (3, 3) or mask is None or int(mask.sum()) < min_inliers:
        found = 0 if mask is None else int(mask.sum())
        raise StereoError(
            f"only {found} matches agree on an epipolar geometry: too few; "
            "give cameras, or check that the images overlap"
        )
    inl = mask.ravel().astype(bool)
    h, w = left.shape
    _, vt = np.linalg.svd(F)[1:]  # right null vector of F: the left epipole
    e = vt[-1]
    epipole = e[:2] / e[2] if abs(e[2]) > 1e-12 else np.array([np.inf, np.inf])
    margin = 0.1 * max(h, w)
    if (-margin <= epipole[0] <= w + margin) and (-margin <= epipole[1] <= h + margin):
        raise StereoError(
            f"the epipole lies inside the image (at {epipole[0]:.0f}, "
            f"{epipole[1]:.0f}): the camera moves toward the scene and the pair "
            "cannot be rectified; give cameras to use the plane sweep"
        )
    ok, H1, H2 = cv2.stereoRectifyUncalibrated(x1[inl], x2[inl], F, (w, h))
    if not ok:
        raise StereoError("OpenCV could not rectify the pair; give cameras instead")
    return {
        "F": F.tolist(),
        "H1": H1.tolist(),
        "H2": H2.tolist(),
        "inliers": int(inl.sum()),
        "epipole_left": epipole.tolist(),
    }


def match_uncalibrated(
    left: np.ndarray, right: np.ndarray, config: StereoConfig | None = None, progress: bool = False
) -> StereoResult:
    """Rectify an uncalibrated pair (:func:`rectify_uncalibrated`) and match it.

    Returns:
        A disparity :class:`StereoResult` *of the rectified pair* (``rectification`` holds
        the homographies mapping each input image to its rectified image).
    """
    rect = rectify_uncalibrated(left, right)
    h, w = left.shape
    H1, H2 = np.array(rect["H1"]), np.array(rect["H2"])
    left_r = cv2.warpPerspective(left, H1, (w, h))
    right_r = cv2.warpPerspective(right, H2, (w, h))
    result = match_rectified(left_r, right_r, config, progress=progress)
    result.rectification = rect
    result.report["rectification"] = {k: rect[k] for k in ("inliers", "epipole_left")}
    result.report["note"] = (
        "uncalibrated pair: disparity map of the RECTIFIED left image "
        "(rectification.json maps input pixels to it), not metric depth"
    )
    return result
