"""Training windows cut exactly as the plane sweep compares them.

For a :class:`~stereo.datasets.random_scenes.ViewPair` with exact depth, reference pixels
visible in the second view are drawn; around each, the reference window (centred half a
pixel up-left of the pixel, as the dense l2net tower at ``input_scale`` 2 sees it) and the
second view's window at the true hypothesis, cut from the image the cost describes:

* ``warp="prewarp"`` (descriptor costs) — the second view pre-warped onto the reference by
  the plane of the sweep's middle label (:class:`~stereo.geometry.sweep.Prewarp`), the window
  centred where the hypothesis lands on that canvas;
* ``warp="label"`` (2-channel costs) — the second view warped by the hypothesis' own plane,
  the window at the reference pixel.

Near misses are the same cut at hypotheses 1–6 labels off the true one — or at every
``near_step`` labels (0.5, 1, …, 6: what sub-label precision needs) — (a sweep of
``n_labels`` planes uniform in inverse depth over the pair's 2nd–98th depth percentiles
widened by 15 %, as the matcher estimates it), moving the window by at least
``min_near_shift`` pixels. Windows are replicated to the network's 64×64 input
(``patch_scale``). With ``edge_share`` > 0, that share of the points is drawn where the
window straddles a depth edge, and each such point also gets the window at the other
surface's hypothesis as a negative (:func:`other_surface_depths`). The result is a
:class:`~stereo.patchnet.data.patchset.PatchSet` whose view ids make every near miss a
negative of the match in its own view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from stereo.datasets.random_scenes import SceneSpec, ViewPair, random_view_pair
from stereo.datasets.worker_pool import TEXTURES, map_pairs
from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.matches import percentile_depth_range
from stereo.geometry.planesweep import (
    backproject,
    depth_agrees,
    inverse_depth_labels,
    plane_homography,
)
from stereo.patchnet.data.patchset import PATCH_SIZE, PatchSet

#: how the second view's window is resampled (see the module docstring)
WARPS = ("prewarp", "label")
#: OpenCV's remap takes maps of fewer than 2**15 rows: windows are cut in calls this tall
REMAP_MAX_ROWS = 32_000
#: a point is visible in the second view when the depth rendered there is within this share
#: of the point's own depth
VISIBLE_TOLERANCE = 0.01


@dataclass(frozen=True)
class WindowSpec:
    """How windows are cut from a view pair."""

    window: int = 32  # side of the compared window, working-image pixels
    warp: str = "prewarp"  # prewarp | label
    n_labels: int = 64  # labels of the sweep the near misses are counted in
    near_labels: int = 6  # near misses lie near_step..near_labels labels off the truth
    near_step: float = 1.0  # near misses lie at multiples of this many labels off the truth
    near_per_point: int = 2  # near-miss windows per point
    min_near_shift: float = 1.0  # a near miss moves the window by at least this, pixels
    points_per_pair: int = 96
    #: False: ``window`` samples a side, replicated ``patch_scale``× to the network's input;
    #: True: the network's 64 samples a side spread over the window (bicubic), as a
    #: 2-channel cost at ``--window-scale 64 / window`` reads its enlarged images
    enlarged: bool = False
    #: share of the points drawn where the window straddles a depth edge (another surface
    #: more than ``near_labels`` labels off lies in it); each of them gets one more
    #: negative, the window at that surface's hypothesis (what fattens foreground edges)
    edge_share: float = 0.0

    def __post_init__(self) -> None:
        if self.warp not in WARPS:
            raise StereoError(f"unknown warp {self.warp!r}; valid: {', '.join(WARPS)}")
        if not 0 < self.near_step <= self.near_labels:
            raise StereoError(
                f"near_step {self.near_step} must lie in (0, near_labels = {self.near_labels}]"
            )
        if not 0.0 <= self.edge_share <= 1.0:
            raise StereoError(f"edge_share must lie in [0, 1], not {self.edge_share}")
        if self.window < 4 or PATCH_SIZE % self.window:
            raise StereoError(f"window {self.window} must divide {PATCH_SIZE} (e.g. 16, 32, 64)")

    @property
    def patch_scale(self) -> int:
        """Replication factor from the cut samples to the network's input."""
        return 1 if self.enlarged else PATCH_SIZE // self.window

    @property
    def samples(self) -> int:
        """Samples a side of a cut window."""
        return PATCH_SIZE if self.enlarged else self.window


def sweep_depths(depth: np.ndarray, n_labels: int) -> np.ndarray:
    """The ``n_labels`` depth labels the matcher would sweep for a reference depth map."""
    return inverse_depth_labels(*percentile_depth_range(depth[np.isfinite(depth)]), n_labels)


def visible_points(pair: ViewPair, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference pixels ``(N, 2)`` (x, y integers) whose surface point the second view sees
    at least ``margin`` pixels inside its border, and their depths ``(N,)``."""
    reference, other = pair.cameras
    depth = pair.depths[0]
    h, w = depth.shape
    ys, xs = np.nonzero(np.isfinite(depth))
    inner = (xs >= margin) & (xs < w - margin) & (ys >= margin) & (ys < h - margin)
    xy, z = np.c_[xs, ys][inner].astype(np.float64), depth[ys[inner], xs[inner]]
    keep = depth_agrees(
        backproject(reference, xy, z), other, pair.depths[1], VISIBLE_TOLERANCE, margin
    )
    return xy[keep].astype(int), z[keep]


def _map(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Homography ``H`` applied to ``(..., 2)`` points."""
    p = np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1) @ H.T
    return p[..., :2] / p[..., 2:3]


def window_offsets(window: int, samples: int | None = None) -> np.ndarray:
    """``(samples, samples, 2)`` offsets ``(x, y)`` of the samples of a window of ``window``
    pixels centred half a pixel up-left of its pixel: ``−window/2 … window/2 − 1`` when
    ``samples`` is ``window`` (the default). More samples (f = samples / window) lie where
    the pixels of the image enlarged f× lie around the first enlarged pixel of the reference
    pixel (enlarged ``j`` at working ``(j + 0.5) / f − 0.5``): what a 2-channel cost at
    window scale f scores there."""
    samples = samples or window
    f = samples / window
    offsets = (np.arange(samples) - samples // 2 + 0.5) / f - 0.5
    return np.stack(np.meshgrid(offsets, offsets), axis=-1).astype(float)


def window_grids(
    xy: np.ndarray,
    depths: np.ndarray,
    reference: Camera,
    other: Camera,
    middle_depth: float,
    spec: WindowSpec,
) -> np.ndarray:
    """``(N, window, window, 2)`` second-view coordinates of the window of reference pixel
    ``xy[i]`` under the hypothesis ``depths[i]`` (metres)."""
    grid = window_offsets(spec.window, spec.samples)
    grids = np.empty((len(xy), spec.samples, spec.samples, 2))
    H_mid = plane_homography(reference, other, middle_depth)
    H_back = np.linalg.inv(H_mid)
    for i, (p, d) in enumerate(zip(xy, depths, strict=True)):
        H = plane_homography(reference, other, float(d))
        if spec.warp == "label":
            grids[i] = _map(H, p + grid)
        else:  # where the hypothesis lands on the pre-warp canvas, then back to the view
            centre = _map(H_back, _map(H, p[None].astype(float)))[0]
            grids[i] = _map(H_mid, centre + grid)
    return grids


def cut(
    image: np.ndarray, grids: np.ndarray, scale: int, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """Windows ``(N, window·scale, window·scale)`` uint8 sampled at ``grids (N, window,
    window, 2)`` (bilinearly unless ``interpolation``; border replicated), replicated
    ``scale``× per axis."""
    n, s = grids.shape[:2]
    if n == 0:
        return np.zeros((0, s * scale, s * scale), image.dtype)
    flat = grids.reshape(n * s, s, 2).astype(np.float32)
    rows = (REMAP_MAX_ROWS // s) * s  # whole windows per remap call
    windows = np.concatenate(
        [
            cv2.remap(
                image,
                flat[start : start + rows, :, 0],
                flat[start : start + rows, :, 1],
                interpolation,
                borderMode=cv2.BORDER_REPLICATE,
            )
            for start in range(0, n * s, rows)
        ]
    ).reshape(n, s, s)
    return windows.repeat(scale, axis=1).repeat(scale, axis=2)


def near_miss_depths(
    rng: np.random.Generator,
    xy: np.ndarray,
    depths: np.ndarray,
    labels: np.ndarray,
    reference: Camera,
    other: Camera,
    spec: WindowSpec,
) -> tuple[np.ndarray, np.ndarray]:
    """``(M,)`` indices into ``xy`` and ``(M,)`` hypotheses (depths) off the truth in inverse
    depth by a multiple of ``near_step`` labels up to ``near_labels``, ``near_per_point`` per
    point where enough of them move the window by ``min_near_shift`` pixels or more."""
    step = (1 / labels[0] - 1 / labels[-1]) / (len(labels) - 1)
    offsets = spec.near_step * np.arange(1, int(spec.near_labels / spec.near_step + 1e-9) + 1)
    ks = np.r_[-offsets[::-1], offsets]
    inverse = 1 / depths[:, None] + ks[None] * step  # (N, len(ks))
    valid = inverse > 0.25 / labels[-1]
    hypo = np.where(valid, 1 / np.where(valid, inverse, 1.0), np.nan)
    true_xy, _ = other.project(backproject(reference, xy.astype(float), depths))
    shift = np.full(hypo.shape, -1.0)
    for j in range(hypo.shape[1]):
        ok = valid[:, j]
        moved, z = other.project(backproject(reference, xy[ok].astype(float), hypo[ok, j]))
        shift[ok, j] = np.where(z > 0, np.linalg.norm(moved - true_xy[ok], axis=1), -1.0)
    usable = shift >= spec.min_near_shift
    picks_point, picks_depth = [], []
    for i in np.nonzero(usable.sum(axis=1) >= spec.near_per_point)[0]:
        chosen = rng.choice(np.nonzero(usable[i])[0], spec.near_per_point, replace=False)
        picks_point += [i] * spec.near_per_point
        picks_depth += hypo[i, chosen].tolist()
    return np.asarray(picks_point, int), np.asarray(picks_depth, float)


def other_surface_depths(
    depth: np.ndarray, xy: np.ndarray, labels: np.ndarray, spec: WindowSpec
) -> np.ndarray:
    """``(N,)`` for each reference pixel ``xy (N, 2)``: the depth of the surface in its
    window (side ``spec.window``) farthest from its own in inverse depth, where that lies
    more than ``spec.near_labels`` label steps off (a depth edge in the window — or a slant
    that steep), else NaN."""
    inverse = 1.0 / depth  # NaN where nothing was rendered
    kernel = np.ones((spec.window + 1, spec.window + 1), np.uint8)
    highest = cv2.dilate(np.where(np.isnan(inverse), -np.inf, inverse).astype(np.float32), kernel)
    lowest = cv2.erode(np.where(np.isnan(inverse), np.inf, inverse).astype(np.float32), kernel)
    cols, rows = xy[:, 0], xy[:, 1]
    own, high, low = inverse[rows, cols], highest[rows, cols], lowest[rows, cols]
    other = np.where(high - own >= own - low, high, low)
    step = (1 / labels[0] - 1 / labels[-1]) / (len(labels) - 1)
    edge = np.isfinite(other) & (other > 0) & (np.abs(other - own) > spec.near_labels * step)
    return np.where(edge, 1.0 / np.where(edge, other, 1.0), np.nan)


def drawn_points(rng: np.random.Generator, edge: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Indices of ``spec.points_per_pair`` candidate points (fewer if fewer exist), a share
    ``spec.edge_share`` of them among the ``edge`` ones ``(N,)`` bool, the rest uniform."""
    n = min(spec.points_per_pair, edge.size)
    edges = np.nonzero(edge)[0]
    n_edge = min(round(spec.edge_share * n), edges.size)
    first = rng.choice(edges, n_edge, replace=False)
    rest = np.setdiff1d(np.arange(edge.size), first)
    return np.r_[first, rng.choice(rest, n - n_edge, replace=False)].astype(int)


def pair_windows(
    pair: ViewPair, rng: np.random.Generator, spec: WindowSpec
) -> dict[str, np.ndarray]:
    """Windows of one view pair: ``reference``, ``match`` ``(N, 64, 64)`` and ``near``
    ``(M, 64, 64)`` with ``near_point (M,)``, the index of the point each misses."""
    reference, other = pair.cameras
    xy, z = visible_points(pair, spec.window // 2 + 1)
    if len(xy) == 0:
        empty = np.zeros((0, PATCH_SIZE, PATCH_SIZE), np.uint8)
        return {"reference": empty, "match": empty, "near": empty, "near_point": np.zeros(0, int)}
    labels = sweep_depths(pair.depths[0], spec.n_labels)
    # the other surface's depth at each point (NaN: none), where edge points are drawn
    far = other_surface_depths(pair.depths[0], xy, labels, spec) if spec.edge_share > 0 else None
    if far is not None:
        take = drawn_points(rng, np.isfinite(far), spec)
        far = far[take]
    else:
        take = rng.choice(len(xy), min(spec.points_per_pair, len(xy)), replace=False)
    xy, z = xy[take], z[take]
    middle = float(labels[len(labels) // 2])
    ref_grids = xy[:, None, None, :] + window_offsets(spec.window, spec.samples)
    near_point, near_depth = near_miss_depths(rng, xy, z, labels, reference, other, spec)
    if far is not None:  # one more negative per edge point: the other surface's depth
        edge_points = np.nonzero(np.isfinite(far))[0]
        near_point = np.r_[near_point, edge_points].astype(int)
        near_depth = np.r_[near_depth, far[edge_points]]
    grids = window_grids(
        np.r_[xy, xy[near_point]], np.r_[z, near_depth], reference, other, middle, spec
    )
    how = cv2.INTER_CUBIC if spec.enlarged else cv2.INTER_LINEAR
    other_windows = cut(pair.images[1], grids, spec.patch_scale, how)
    return {
        "reference": cut(pair.images[0], ref_grids, spec.patch_scale, how),
        "match": other_windows[: len(xy)],
        "near": other_windows[len(xy) :],
        "near_point": near_point,
    }


def _pair_task(args: tuple[int, int, SceneSpec, WindowSpec]) -> dict[str, np.ndarray]:
    """Windows of view pair ``i`` of ``seed`` (run in a worker)."""
    seed, i, scene, windows = args
    pair = random_view_pair((seed, i), TEXTURES, scene)
    return pair_windows(pair, np.random.default_rng((seed, i, 1)), windows)


def synthetic_stereo_windows(
    n_pairs: int,
    texture_folders: Sequence[str | Path] = (),
    seed: int = 0,
    scene: SceneSpec | None = None,
    windows: WindowSpec | None = None,
    workers: int = 1,
    progress: bool = True,
) -> PatchSet:
    """Stereo training windows of ``n_pairs`` random view pairs textured from
    :func:`~stereo.datasets.random_scenes.texture_pool` ``(texture_folders)``; pair ``i`` is
    drawn from ``(seed, i)``, so the same arguments give the same set, bit for bit, with any
    number of ``workers`` (processes).

    Every point has its reference window (view ``2i``) and its match (view ``2i + 1``);
    near misses carry ``near_of`` = the point's id and the match's view. With ``workers`` > 1
    the workers are spawned, not forked: a script calling this must guard its entry point
    with ``if __name__ == "__main__":``.
    """
    if n_pairs < 1:
        raise StereoError(f"need at least one view pair, not {n_pairs}")
    scene, windows = scene or SceneSpec(), windows or WindowSpec()
    tasks = [(seed, i, scene, windows) for i in range(n_pairs)]
    results = map_pairs(_pair_task, tasks, texture_folders, workers, progress, "synthetic pairs")
    meta = {
        "source": f"synthetic stereo windows: {n_pairs} random view pairs, seed {seed}",
        "texture_folders": [Path(f).name for f in texture_folders],
        "scene": asdict(scene),
        "windows": asdict(windows),
    }
    return windows_patchset(results, meta)


def windows_patchset(results: Sequence[dict[str, np.ndarray]], meta: dict) -> PatchSet:
    """The :func:`pair_windows` of view pairs ``i = 0, 1 …`` as one patch set: a point per
    reference window (its match shares the id), a point of its own per near miss with
    ``near_of`` = the point it misses; views ``2i`` (reference) and ``2i + 1``."""
    patches, point_ids, near_of, view_ids = [], [], [], []
    next_id = 0
    for i, cut_windows in enumerate(results):
        n, m = len(cut_windows["reference"]), len(cut_windows["near"])
        ids = next_id + np.arange(n)
        patches += [cut_windows["reference"], cut_windows["match"], cut_windows["near"]]
        point_ids += [ids, ids, next_id + n + np.arange(m)]
        near_of += [np.full(2 * n, -1), ids[cut_windows["near_point"]]]
        view_ids += [np.full(n, 2 * i), np.full(n + m, 2 * i + 1)]
        next_id += n + m
    return PatchSet(
        np.concatenate(patches),
        np.concatenate(point_ids),
        meta,
        near_of=np.concatenate(near_of),
        view_ids=np.concatenate(view_ids),
    )


def real_stereo_windows(
    folder: str | Path,
    offsets: Sequence[int] = (1, 2, 3),
    seed: int = 0,
    windows: WindowSpec | None = None,
    views: Sequence[int] | None = None,
) -> PatchSet:
    """Stereo training windows of a scene fused by ``stereo-dataset dense-truth``
    (``folder/STEM.npz``): every view paired with the views ``offsets`` after it (a negative
    offset: before it), windows cut at its fused depths exactly as
    :func:`synthetic_stereo_windows` cuts them (pair ``i`` with the generator ``(seed, i)``).
    ``views``: indices into the sorted stems that may take part (default all), so that the
    other views stay unseen (e.g. to choose the smoothness weight on them)."""
    from stereo.datasets.fusion import real_view_pair

    stems = sorted(p.stem for p in Path(folder).glob("*.npz"))
    if views is not None:
        outside = [v for v in views if not 0 <= v < len(stems)]
        if outside:
            raise StereoError(f"{folder} holds views 0-{len(stems) - 1}, not {outside}")
        stems = [stems[v] for v in sorted(set(views))]
    if len(stems) < 2:
        raise StereoError(f"{folder} holds {len(stems)} fused view(s); run dense-truth first")
    windows = windows or WindowSpec()
    pairs = [
        (stems[i], stems[i + k])
        for i in range(len(stems))
        for k in sorted(set(offsets))
        if k != 0 and 0 <= i + k < len(stems)
    ]
    results = [
        pair_windows(real_view_pair(folder, a, b), np.random.default_rng((seed, i, 1)), windows)
        for i, (a, b) in enumerate(pairs)
    ]
    meta = {
        "source": f"real stereo windows: {len(pairs)} fused view pairs of {Path(folder).name}",
        "offsets": list(offsets),
        "windows": asdict(windows),
    }
    return windows_patchset(results, meta)
