"""The stereo pipeline as plain functions: geometry → cost volume → MRF → depth map.

:func:`match_calibrated` computes the depth map of a reference image from a second image and
both cameras; notebooks, tests and the ``stereo-match`` command call it directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch

from stereo.cascade import cascades, sweep_volume
from stereo.config import EDGE_OFF, StereoConfig, check_volume_fits
from stereo.cost.base import Cost
from stereo.cost.factory import cost_of
from stereo.edge_fusion import (
    edge_cost_name,
    edge_fused_volume,
    edge_fusion_config,
)
from stereo.errors import StereoError
from stereo.geometry.camera import (
    Camera,
)
from stereo.geometry.matches import (
    camera_matches,
    check_camera_pair,
    check_cameras_fit,
    estimate_depth_range,
    estimate_disparity_range,
    working_pair,
)
from stereo.geometry.planesweep import backproject, check_sweep_geometry, inverse_depth_labels
from stereo.geometry.rectify import rectify_uncalibrated, warped_onto_canvas
from stereo.geometry.sweep import Sweep
from stereo.mrf.graphcut import (
    MRFConfig,
    normalise_volume,
)
from stereo.mrf.optimise import informative_confidence, optimise, resolved_mrf
from stereo.progress import stage_done, stage_started

#: an uncalibrated pair's rectified canvas, larger than the input where the rectification
#: turns an image, is matched at up to this many times --size (castle-P19 views 0 and 1: a
#: 1439×1037 canvas from a 768×512 image; time grows with the square)
MAX_CANVAS_DENSITY_GROWTH = 1.5


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
    # uncalibrated pairs: (H, W) float32 the rectified disparity of each input left pixel
    disparity_left: np.ndarray | None = None


def run_report(
    cfg: StereoConfig,
    cost: Cost,
    working: np.ndarray,
    image: np.ndarray,
    times: dict[str, float],
    solved: Solved,
) -> dict[str, Any]:
    """The report keys every matching mode shares."""
    return {
        "config": asdict(cfg),  # the whole configuration: stereo-match --config re-runs it
        "model": cfg.model,
        "cost": cost.name,
        "n_labels": cfg.n_labels,
        "working_size": [int(working.shape[1]), int(working.shape[0])],
        "image_size": [int(image.shape[1]), int(image.shape[0])],
        "optimizer": cfg.optimizer,
        "sublabel": cfg.sublabel,
        "mrf": asdict(solved.mrf),
        "device": cfg.device,
        "threads": torch.get_num_threads(),
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "energy_wta": solved.energy_wta,
        "energy_final": solved.energy_final,
        "unknown_fraction": float(np.isnan(solved.values).mean()),
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


@dataclass
class Search:
    """What geometry decides for one pair: the hypotheses in both directions and how the
    two directions' maps are checked against each other.

    ``values`` are the hypotheses the map reports (depths in metres, or disparities in
    pixels of the input pair); ``inverse`` says whether sub-label refinement runs in their
    inverse (depths); ``consistent(map, other_map, tolerance)`` is the left-right check and
    ``step`` one label's width in the units its tolerance takes.
    """

    forward: Sweep
    backward: Sweep
    values: np.ndarray
    inverse: bool
    consistent: Callable[[np.ndarray, np.ndarray, float], np.ndarray]
    step: float


@dataclass
class Solved:
    """The volume and map of one pair at the working resolution."""

    volume: np.ndarray  # (L, h, w) normalised costs
    confidence: np.ndarray  # (h, w)
    labels: np.ndarray  # (h, w)
    values: np.ndarray  # (h, w) depth or disparity, NaN = unknown
    energy_wta: int | None
    energy_final: int | None
    lr_rejected: float | None
    mrf: MRFConfig  # the MRF's settings as it ran (the cost's λ and cycles filled in)


def final_volume(
    cfg: StereoConfig,
    cost: Cost,
    raw: np.ndarray,
    images: tuple[np.ndarray, np.ndarray],
    sweep: Sweep,
    search: Search,
    proposal: tuple[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, StereoConfig, dict[str, Any] | None]:
    """The ``(L, h, w)`` normalised volume the MRF solves from the cost's raw volume of
    ``images`` (reference, other) under ``sweep``, the configuration it solves it with, and
    what edge fusion did (None without it): with edge fusion (:mod:`stereo.edge_fusion`)
    where the run asks for it, the hand-made cost near depth edges and its expansion
    cycles. ``proposal``: the cascade's proposal cost and normalised volume at full size
    (:class:`~stereo.cascade.SweptVolume`), reused when it is the edge cost."""
    volume = normalise_volume(raw)
    edge_cost = edge_cost_name(cfg, cost, sweep)
    if edge_cost == EDGE_OFF:
        return volume, cfg, None
    handmade = proposal[1] if proposal is not None and proposal[0] == edge_cost else None
    volume, info = edge_fused_volume(
        cfg, volume, images, sweep, search.values, search.inverse, edge_cost, handmade
    )
    return volume, edge_fusion_config(cfg, edge_cost), info


def solve_pair(
    cfg: StereoConfig,
    cost: Cost,
    images: tuple[np.ndarray, np.ndarray],
    search: Search,
    times: dict[str, float],
    progress: bool = False,
) -> Solved:
    """Cost volume, MRF (+ sub-label refinement) and, with ``cfg.lr_check``, the left-right
    check of a working-resolution pair; stage times go to ``times`` (seconds)."""
    reference, other = images
    t = time.time()
    stage_started(
        "cost_volume",
        f"{len(search.values)} hypotheses, {reference.shape[1]}x{reference.shape[0]} px, "
        f"{cost.name}",
    )
    proposal = proposal_other = None  # a cascade's proposal volumes, for edge fusion
    if cfg.lr_check and not cascades(cfg, cost, search.forward):  # each image described once
        raw, raw_other = cost.volume_pair(
            reference, other, search.forward, search.backward, progress=progress
        )
    else:
        raw, cascade_info, proposal = sweep_volume(cfg, cost, images, search.forward, progress)
        if cfg.lr_check:
            swept_other = sweep_volume(cfg, cost, images[::-1], search.backward, progress)
            raw_other, proposal_other = swept_other.raw, swept_other.proposal
        if cascade_info is not None:
            cost.info["cascade"] = cascade_info
    volume, mrf_cfg, fusion_info = final_volume(
        cfg, cost, raw, images, search.forward, search, proposal
    )
    if fusion_info is not None:  # the reference image's, as the cascade's
        cost.info["edge_fusion"] = fusion_info
    confidence = informative_confidence(volume)
    t = stage_done(times, "cost_volume", t)
    labels, energy_wta, energy_final, values = optimise(
        volume, reference, search.values, mrf_cfg, search.inverse
    )
    stage_done(times, "mrf", t)
    lr_rejected = None
    if cfg.lr_check:
        t = time.time()
        other_volume, mrf_cfg, _ = final_volume(
            cfg, cost, raw_other, images[::-1], search.backward, search, proposal_other
        )
        other_values = optimise(other_volume, other, search.values, mrf_cfg, search.inverse)[3]
        keep = search.consistent(values, other_values, cfg.lr_tolerance * search.step)
        lr_rejected = float((np.isfinite(values) & ~keep).mean())
        values = np.where(keep, values, np.nan).astype(np.float32)
        stage_done(times, "lr_check", t)
    return Solved(
        volume,
        confidence,
        labels,
        values,
        energy_wta,
        energy_final,
        lr_rejected,
        resolved_mrf(mrf_cfg),
    )


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
    check_volume_fits(cfg, *ref_w.shape, row_search=False)
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
    stage_done(times, "geometry", t)
    search = Search(
        Sweep.planes(ref_cam, other_cam, depths),
        Sweep.planes(other_cam, ref_cam, depths),
        depths,
        True,
        lambda a, b, tol: depth_left_right_consistent(a, b, ref_cam, other_cam, tol),
        (1 / depths.min() - 1 / depths.max()) / max(len(depths) - 1, 1),
    )
    solved = solve_pair(cfg, cost, (ref_w, other_w), search, times, progress)
    h, w = reference.shape[:2]
    depth = cv2.resize(solved.values, (w, h), interpolation=cv2.INTER_NEAREST)
    confidence = cv2.resize(solved.confidence, (w, h), interpolation=cv2.INTER_LINEAR)
    report = {
        **run_report(cfg, cost, ref_w, reference, times, solved),
        "depth_range_m": [d_min, d_max],
        "depth_range_source": "given" if cfg.depth_range else f"{n_matches} matches",
        "lr_rejected_fraction": solved.lr_rejected,
    }
    return StereoResult(
        depth,
        confidence,
        solved.values,
        solved.labels,
        depths,
        solved.volume,
        ref_w,
        ref_cam,
        report,
    )


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
    check_volume_fits(cfg, *left_w.shape, row_search=True)
    # bad names fail before any work
    cost = cost_of(cfg)
    n_matches = None
    if disparity_range is None:
        disparity_range = cfg.disparity_range
    if disparity_range is None:
        d_min, d_max, n_matches = estimate_disparity_range(left_w, right_w)
        d_min, d_max = d_min / scale, d_max / scale
    else:
        d_min, d_max = disparity_range
        if d_min >= d_max:
            raise StereoError(f"disparity range min {d_min} must be below max {d_max}")
    disparities = np.linspace(d_min, d_max, cfg.n_labels)
    stage_done(times, "geometry", t)
    height, width = left_w.shape
    search = Search(  # the right image's match of x is x + d: negative shifts backward
        Sweep.disparities(height, width, disparities * scale),
        Sweep.disparities(height, width, -disparities * scale),
        disparities,
        False,
        lambda a, b, tol: disparity_left_right_consistent(a, b, scale, tol),
        (d_max - d_min) / max(cfg.n_labels - 1, 1),
    )
    solved = solve_pair(cfg, cost, (left_w, right_w), search, times, progress)
    report = {
        **run_report(cfg, cost, left_w, left, times, solved),
        "disparity_range_px": [d_min, d_max],
        "disparity_range_source": "given" if disparity_range else f"{n_matches} matches",
        "lr_rejected_fraction": solved.lr_rejected,
    }
    return StereoResult(
        cv2.resize(solved.values, (w, h), interpolation=cv2.INTER_NEAREST),
        cv2.resize(solved.confidence, (w, h), interpolation=cv2.INTER_LINEAR),
        solved.values,
        solved.labels,
        disparities,
        solved.volume,
        left_w,
        None,
        report,
        kind="disparity",
    )


def match_uncalibrated(
    left: np.ndarray, right: np.ndarray, config: StereoConfig | None = None, progress: bool = False
) -> StereoResult:
    """Rectify an uncalibrated pair (:func:`rectify_uncalibrated`) and match it.

    Returns:
        A disparity :class:`StereoResult` *of the rectified pair* (``rectification`` holds
        the homographies mapping each input image to its rectified image;
        ``disparity_left`` the same disparities at each pixel of the input left image).
    """
    cfg = config or StereoConfig()
    rect = rectify_uncalibrated(left, right, cfg.rectification)
    H1, canvas = np.array(rect["H1"]), tuple(rect["size"])
    left_r, right_r = warped_onto_canvas(left, right, rect)
    # the canvas is matched at the input's pixel density (up to a working size
    # MAX_CANVAS_DENSITY_GROWTH times --size), not squeezed into --size; a given
    # --disparity-range is in pixels of the input pair, not of the rectified one: the
    # inliers' rectified disparities give the range (rectify_uncalibrated)
    growth = min(max(canvas) / max(left.shape), MAX_CANVAS_DENSITY_GROWTH)
    cfg = replace(cfg, working_size=max(cfg.working_size, round(cfg.working_size * growth)))
    result = match_rectified(
        left_r, right_r, cfg, tuple(rect["disparity_range_px"]), progress=progress
    )
    outside = cv2.warpPerspective(np.ones_like(left), H1, canvas, flags=cv2.INTER_NEAREST) == 0
    result.depth[outside] = np.nan  # the canvas around the rectified left image
    result.confidence[outside] = 0.0
    result.disparity_left = cv2.warpPerspective(
        result.depth,
        H1,
        (left.shape[1], left.shape[0]),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=np.nan,
    )
    result.rectification = rect
    result.report["disparity_range_source"] = f"{rect['inliers']} inlier matches"
    result.report["rectification"] = {
        k: rect[k] for k in ("method", "inliers", "epipole_left", "size", "row_residual_px")
    }
    result.report["note"] = (
        "uncalibrated pair: disparity map of the RECTIFIED left image "
        "(rectification.json maps input pixels to it), not metric depth"
    )
    return result
