"""The stereo pipeline as plain functions: geometry → cost volume → MRF → depth map.

:func:`match_calibrated` computes the depth map of a reference image from a second image and
both cameras; notebooks, tests and the ``stereo-match`` command call it directly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from stereo.cost.volume import (
    CensusCost,
    Cost,
    DaisyCost,
    DescriptorCost,
    Sweep,
    TwoChannelCost,
    ZNCCCost,
)
from stereo.errors import StereoError
from stereo.geometry.camera import Camera, epipolar_distance, fundamental_matrix, triangulate
from stereo.geometry.planesweep import inverse_depth_labels
from stereo.mrf.graphcut import MRFConfig, normalise_volume, solve, winner_take_all
from stereo.patchnet.models import DescriptorNet

#: costs that need no network, by the name ``--model`` takes.
BASELINE_COSTS = {
    "zncc": lambda: ZNCCCost(9),
    "census": lambda: CensusCost(7),
    "daisy": lambda: DaisyCost(),
}
DEFAULT_MODEL = "siam-l2"


@dataclass(frozen=True)
class StereoConfig:
    """Every knob of a run, with its unit."""

    model: str = DEFAULT_MODEL  # registry name, weights file, or zncc | census | daisy
    n_labels: int = 64  # depth hypotheses, uniform in inverse depth
    depth_range: tuple[float, float] | None = None  # metres; None: estimated from matches
    working_size: int = 768  # long side of the working resolution, pixels (never upsampled)
    optimizer: str = "graphcut"  # graphcut | wta
    mrf: MRFConfig = field(default_factory=MRFConfig)
    invalid: str = "nan"  # pixels whose depth leaves the second image: nan | fill
    device: str = "cpu"
    untrained: bool = False  # random network weights (tests and timing only)


@dataclass
class StereoResult:
    """A depth map in the reference image's pixel grid and what made it."""

    depth: np.ndarray  # (H, W) float32 metres, NaN = unknown
    confidence: np.ndarray  # (H, W) float32 in [0, 1]: margin of the best hypothesis
    depth_working: np.ndarray  # (h, w) at the working resolution
    labels: np.ndarray  # (h, w) chosen hypothesis index
    depths: np.ndarray  # (L,) metres of the hypotheses
    volume: np.ndarray  # (L, h, w) normalised costs (NaN = leaves the second image)
    reference_working: np.ndarray  # (h, w) grey reference at the working resolution
    camera_working: Camera
    report: dict[str, Any]


def make_cost(name: str, device: str = "cpu", untrained: bool = False) -> Cost:
    """The matching cost of a registry model, a weights file, or a baseline name."""
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


def estimate_depth_range(
    reference: np.ndarray,
    other: np.ndarray,
    ref_cam: Camera,
    other_cam: Camera,
    margin: float = 0.15,
    min_matches: int = 20,
) -> tuple[float, float, int]:
    """Depth range of the reference view from SIFT matches triangulated with the cameras.

    Matches pass the ratio test and lie within 2 px of the epipolar lines; the range spans
    their 2nd–98th depth percentiles widened by ``margin`` on each side.

    Returns:
        ``(depth_min, depth_max, n_matches)`` in metres.
    """
    sift = cv2.SIFT_create(4000)
    k1, d1 = sift.detectAndCompute(reference, None)
    k2, d2 = sift.detectAndCompute(other, None)
    if d1 is None or d2 is None or len(k1) < 2 or len(k2) < 2:
        raise StereoError(
            "too few keypoints to estimate the depth range; give it with --depth-range MIN MAX"
        )
    pairs = [
        (m.queryIdx, m.trainIdx)
        for m, n in cv2.BFMatcher().knnMatch(d1, d2, k=2)
        if m.distance < 0.8 * n.distance
    ]
    x1 = np.array([k1[i].pt for i, _ in pairs]).reshape(-1, 2)
    x2 = np.array([k2[j].pt for _, j in pairs]).reshape(-1, 2)
    if len(x1):
        keep = epipolar_distance(fundamental_matrix(ref_cam, other_cam), x1, x2) < 2.0
        x1, x2 = x1[keep], x2[keep]
    depths = np.zeros(0)
    if len(x1):
        P = np.broadcast_to(np.stack([ref_cam.P, other_cam.P]), (len(x1), 2, 3, 4))
        X = triangulate(P, np.stack([x1, x2], axis=1))
        depths = ref_cam.to_camera(X)[:, 2]
        depths = depths[(depths > 0) & (other_cam.to_camera(X)[:, 2] > 0)]
    if depths.size < min_matches:
        raise StereoError(
            f"only {depths.size} geometrically consistent matches: too few to "
            "estimate the depth range; give it with --depth-range MIN MAX"
        )
    lo, hi = np.percentile(depths, [2, 98])
    return float(lo * (1 - margin)), float(hi * (1 + margin)), int(depths.size)


def confidence_map(volume: np.ndarray) -> np.ndarray:
    """``(h, w)`` margin between the best and second-best normalised cost, in [0, 1]."""
    v = np.where(np.isfinite(volume), volume, np.inf)
    best, second = np.partition(v, 1, axis=0)[:2]
    both = np.isfinite(best) & np.isfinite(second)
    margin = np.zeros(best.shape, np.float32)
    margin[both] = second[both] - best[both]
    return np.clip(margin, 0, 1)


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
    if cfg.n_labels < 2:
        raise StereoError(f"need at least 2 depth labels, got {cfg.n_labels}")
    times: dict[str, float] = {}
    t = time.time()
    (ref_w, other_w), (ref_cam, other_cam) = working_pair(
        [reference, other], [reference_camera, other_camera], cfg.working_size
    )
    n_matches = None
    if cfg.depth_range is None:
        d_min, d_max, n_matches = estimate_depth_range(ref_w, other_w, ref_cam, other_cam)
    else:
        d_min, d_max = cfg.depth_range
    depths = inverse_depth_labels(d_min, d_max, cfg.n_labels)
    times["geometry"] = time.time() - t
    t = time.time()
    cost = make_cost(cfg.model, cfg.device, cfg.untrained)
    sweep = Sweep.planes(ref_cam, other_cam, depths)
    raw = cost.volume(ref_w, other_w, sweep, progress=progress)
    volume = normalise_volume(raw)
    times["cost_volume"] = time.time() - t
    t = time.time()
    if cfg.optimizer == "graphcut":
        mrf = solve(volume, ref_w, cfg.mrf)
        labels, energy_wta, energy_final = mrf.labels, mrf.energy_wta, mrf.energy
    elif cfg.optimizer == "wta":
        labels, energy_wta, energy_final = winner_take_all(volume), None, None
    else:
        raise StereoError(f"unknown optimizer {cfg.optimizer!r}; valid: graphcut, wta")
    times["mrf"] = time.time() - t
    depth_w = depths[labels].astype(np.float32)
    chosen_invalid = ~np.isfinite(np.take_along_axis(volume, labels[None], axis=0)[0])
    if cfg.invalid == "nan":
        depth_w[chosen_invalid] = np.nan
    elif cfg.invalid != "fill":
        raise StereoError(f"unknown --invalid {cfg.invalid!r}; valid: nan, fill")
    confidence_w = confidence_map(volume)
    h, w = reference.shape[:2]
    depth = cv2.resize(depth_w, (w, h), interpolation=cv2.INTER_NEAREST)
    confidence = cv2.resize(confidence_w, (w, h), interpolation=cv2.INTER_LINEAR)
    report = {
        "model": cfg.model,
        "cost": cost.name,
        "n_labels": cfg.n_labels,
        "depth_range_m": [d_min, d_max],
        "depth_range_source": "given" if cfg.depth_range else f"{n_matches} matches",
        "working_size": [int(ref_w.shape[1]), int(ref_w.shape[0])],
        "image_size": [int(w), int(h)],
        "optimizer": cfg.optimizer,
        "mrf": asdict(cfg.mrf),
        "device": cfg.device,
        "threads": torch.get_num_threads(),
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "energy_wta": energy_wta,
        "energy_final": energy_final,
        "unknown_fraction": float(np.isnan(depth_w).mean()),
    }
    return StereoResult(depth, confidence, depth_w, labels, depths, volume, ref_w, ref_cam, report)
