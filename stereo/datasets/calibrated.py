"""Training patches from a calibrated multi-view scene (Strecha layout).

1. DoG keypoints with scale and orientation (OpenCV SIFT) in every view.
2. Matches between nearby views (ratio test), kept only within ``max_epipolar_px`` of the
   epipolar lines of the ground-truth cameras — or, with ``matcher="geometry"``, pairs found
   by the true cameras alone, no descriptor compared (:mod:`stereo.datasets.geometric_matches`).
3. Matches joined into tracks (union-find); a track that claims two keypoints in one view is
   dropped.
4. Each track triangulated from all its views (DLT) and kept only if it lies in front of
   every camera, reprojects within ``max_reprojection_px`` in *every* view, has
   ``min_views`` views and a triangulation angle of at least ``min_angle_deg``.
5. One 64×64 patch per observation, normalised for the keypoint's scale and orientation as
   in the Brown set: the patch covers a window of ``scale_factor × keypoint size`` image
   pixels (OpenCV's size is the keypoint diameter, 2σ; the default factor 5 gives a window
   of 10σ), rotated to the keypoint's orientation. With ``normalise="fixed"`` patches are
   instead upright windows of ``64 / fixed_scale`` pixels — what a dense stereo matcher sees
   at an image scale of ``fixed_scale``.
6. Optionally (``near_misses > 0``, fixed windows only) each observation also gets near
   misses: windows shifted along the epipolar line of another view of its track by
   ``near_shift_px`` pixels at the working scale (random length and sign). They match
   nothing and are stored with ``near_of`` = the point they miss — the hard negatives of
   stereo, where the wrong hypotheses lie a few pixels away along the epipolar line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations, pairwise

import cv2
import numpy as np
from tqdm.auto import tqdm

from stereo.datasets.geometric_matches import (
    GeometricRule,
    View,
    angle_error,
    carried_angles,
    geometric_matches,
)
from stereo.datasets.patches import PATCH, cut_patch, footprint_inside, keypoint_frame, pyramid
from stereo.errors import StereoError
from stereo.geometry.camera import Camera, epipolar_distance, fundamental_matrix, triangulate
from stereo.geometry.scene import Scene
from stereo.patchnet.data.patchset import PatchSet

#: how the builder finds its tracks' first correspondences (SceneBuildConfig.matcher)
MATCHERS = ("descriptors", "geometry")


@dataclass(frozen=True)
class SceneBuildConfig:
    """Knobs of the calibrated-scene builder (pixels are those of the scene's images)."""

    max_keypoints: int = 8000  # SIFT keypoints per view
    neighbours: int = 2  # match each view with the next `neighbours` views in name order
    ratio: float = 0.8  # Lowe's ratio test
    max_epipolar_px: float = 1.0  # symmetric epipolar distance to the true cameras
    max_reprojection_px: float = 1.0  # reprojection error of the track, in every view
    min_views: int = 2  # observations a track needs
    min_angle_deg: float = 2.0  # largest angle between two rays of the track
    normalise: str = "keypoint"  # "keypoint" (scale + orientation) | "fixed"
    scale_factor: float = 5.0  # window side = scale_factor × keypoint size (diameter)
    fixed_scale: float = 0.5  # "fixed": image scale at which a 64×64 window is cut
    min_window_px: float = 16.0  # drop keypoints whose window is smaller (too blurry)
    near_misses: int = 0  # "fixed": shifted windows per observation (hard negatives)
    near_shift_px: tuple[float, float] = (2.0, 6.0)  # their shift, pixels at fixed_scale
    extend_tracks: bool = True  # add the detections of every view near the projection
    max_scale_octaves: float = 0.25  # extension: |log2(size / predicted size)| limit
    # extension of keypoint-normalised patches: orientation error allowed (Brown et al.'s
    # π/8), degrees; 180: no rule. Upright windows ("fixed") do not turn with the keypoint:
    # no rule for them.
    max_orientation_deg: float = 22.5
    # "descriptors": SIFT matches (ratio test) on the true epipolar lines; "geometry": pairs
    # found by the true cameras alone, each confirmed in a third view (geometric_matches)
    matcher: str = "descriptors"
    roi: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) detection window
    views: tuple[int, ...] | None = None  # subset of view indices (default: all)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_orientation_deg <= 180.0:
            raise StereoError(
                f"max_orientation_deg {self.max_orientation_deg} must lie in [0, 180] degrees"
            )
        if self.matcher not in MATCHERS:
            raise StereoError(f"unknown matcher {self.matcher!r}; valid: {', '.join(MATCHERS)}")

    @property
    def orientation_rule_deg(self) -> float:
        """The orientation error the track extension allows, degrees: ``max_orientation_deg``
        for keypoint-normalised patches, 180 (none) for upright windows."""
        return self.max_orientation_deg if self.normalise == "keypoint" else 180.0


#: tracks for sparse ground truth, as the data README makes the Strecha ``gt_sparse`` files:
#: within 1 px of the true epipolar lines and reprojecting within 1 px in every one of at least
#: 3 views at full resolution (0.5 px in the 1536-px images), 2° of triangulation angle; no
#: track extension (only matched detections).
TRUTH_CONFIG = SceneBuildConfig(
    max_epipolar_px=0.5, max_reprojection_px=0.5, min_views=3, extend_tracks=False
)


@dataclass
class BuiltScene:
    """Patches of a scene with their geometry."""

    patches: PatchSet
    image_index: np.ndarray  # (N,) view of each patch
    xy: np.ndarray  # (N, 2) keypoint position, pixels
    points: np.ndarray  # (P, 3) triangulated 3D point of each point id, world units
    reprojection_px: np.ndarray  # (N,) reprojection error of each observation
    stats: dict = field(default_factory=dict)


class _UnionFind:
    """Disjoint sets of keypoints. Kept instead of scipy's connected_components: track order
    follows these roots, and with it every built patch set (and the shipped weights trained
    on them) bit for bit."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def detect(image: np.ndarray, cfg: SceneBuildConfig):
    """SIFT keypoints ``(x, y, size, angle)`` ``(K, 4)`` and descriptors ``(K, 128)``."""
    mask = None
    if cfg.roi is not None:
        x0, y0, x1, y1 = cfg.roi
        mask = np.zeros_like(image)
        mask[y0:y1, x0:x1] = 255
    keypoints, desc = cv2.SIFT_create(cfg.max_keypoints).detectAndCompute(image, mask)
    if desc is None:
        return np.zeros((0, 4)), np.zeros((0, 128), np.float32)
    kp = np.array([(k.pt[0], k.pt[1], k.size, k.angle) for k in keypoints], np.float64)
    return kp, desc


def _match(d1: np.ndarray, d2: np.ndarray, ratio: float) -> np.ndarray:
    if len(d1) < 2 or len(d2) < 2:
        return np.zeros((0, 2), np.int64)
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    good = [(m.queryIdx, m.trainIdx) for m, n in knn if m.distance < ratio * n.distance]
    return np.array(good, np.int64).reshape(-1, 2)


def carried_angle(X: np.ndarray, keypoint: np.ndarray, camera: Camera, other: Camera) -> float:
    """Orientation (degrees, OpenCV's convention) in ``other``'s image of ``keypoint``
    ``(x, y, size, angle)`` seen by ``camera`` at the 3D point ``X`` (world units): one row
    of :func:`~stereo.datasets.geometric_matches.carried_angles`."""
    return float(carried_angles(np.asarray(X)[None], np.asarray(keypoint)[None], camera, other)[0])


def _track_angle(X, nodes, kp_all, view_of, cameras, other: Camera) -> float:
    """The orientation (degrees) a track's keypoints ``nodes`` predict in ``other``: the
    circular mean of each one's :func:`carried_angle`."""
    angles = np.deg2rad([carried_angle(X, kp_all[n], cameras[view_of[n]], other) for n in nodes])
    return float(np.degrees(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())))


def _candidates(tree, point: np.ndarray, cfg: SceneBuildConfig) -> list[int]:
    """Keypoints (indices into ``tree``'s view) that may extend a track projecting to
    ``point``: all within ``cfg.max_reprojection_px``; without an orientation rule
    (:attr:`SceneBuildConfig.orientation_rule_deg` 180) the nearest alone, exactly as the
    builder before session 30 (so its patch sets can be rebuilt)."""
    if cfg.orientation_rule_deg >= 180.0:
        distance, j = tree.query(point, distance_upper_bound=cfg.max_reprojection_px)
        return [int(j)] if np.isfinite(distance) else []
    return tree.query_ball_point(point, cfg.max_reprojection_px)


def _extend_tracks(tracks, points, kp_all, view_of, offsets, cameras, cfg):
    """Add to each track the keypoint of every other view that lies within
    ``max_reprojection_px`` of the 3D point's projection, whose size agrees with the size
    predicted from the track within ``max_scale_octaves`` and whose orientation agrees with
    the track's (:func:`_track_angle`) within ``orientation_rule_deg`` (Brown et al.'s rule; of
    several such — SIFT repeats a keypoint for each strong orientation — the nearest in
    orientation): positives then include views whose descriptors did not match, as in the
    Brown set."""
    from scipy.spatial import cKDTree

    X = np.array(points)
    focal = np.array([np.sqrt(c.K[0, 0] * c.K[1, 1]) for c in cameras])
    depth = np.stack([c.project(X)[1] for c in cameras], axis=1)  # (T, V)
    world_size = np.array(
        [
            np.mean(kp_all[t, 2] * depth[k, view_of[t]] / focal[view_of[t]])
            for k, t in enumerate(tracks)
        ]
    )
    members = [dict(zip(view_of[t].tolist(), t.tolist(), strict=True)) for t in tracks]
    used = {int(n) for t in tracks for n in t}
    for vi, cam in enumerate(cameras):
        own = kp_all[offsets[vi] : offsets[vi + 1]]
        if not len(own):
            continue
        tree = cKDTree(own[:, :2])
        xy, z = cam.project(X)
        inside = (z > 0) & (xy[:, 0] >= 0) & (xy[:, 1] >= 0)
        inside &= (xy[:, 0] <= cam.width - 1) & (xy[:, 1] <= cam.height - 1)
        for k in np.nonzero(inside)[0]:
            if vi in members[k]:
                continue
            predicted = world_size[k] * focal[vi] / z[k]
            near = [
                j
                for j in _candidates(tree, xy[k], cfg)
                if int(offsets[vi] + j) not in used
                and abs(np.log2(own[j, 2] / predicted)) <= cfg.max_scale_octaves
            ]
            if near and cfg.orientation_rule_deg < 180.0:
                angle = _track_angle(X[k], tracks[k], kp_all, view_of, cameras, cam)
                errors = angle_error(own[near, 3], angle)
                best = int(errors.argmin())
                near = [near[best]] if errors[best] <= cfg.orientation_rule_deg else []
            if near:
                members[k][vi] = int(offsets[vi] + near[0])
                used.add(members[k][vi])
    new_tracks, new_errors = [], []
    for k, m in enumerate(members):
        nodes = np.array(sorted(m.values()))
        xy = np.stack([cameras[view_of[n]].project(X[k : k + 1])[0][0] for n in nodes])
        new_tracks.append(nodes)
        new_errors.append(np.linalg.norm(xy - kp_all[nodes, :2], axis=1))
    return new_tracks, new_errors


def _epipolar_direction(X: np.ndarray, camera: Camera, other: Camera) -> np.ndarray:
    """Unit ``(2,)`` direction, in ``camera``'s image, of the epipolar line through the
    projection of ``X`` induced by ``other`` (the image of ``other``'s ray through ``X``)."""
    ray = np.stack([X, X + 0.05 * (X - other.C)])
    xy, _ = camera.project(ray)
    d = xy[1] - xy[0]
    norm = np.linalg.norm(d)
    return d / norm if norm > 1e-9 else np.array([1.0, 0.0])


@dataclass
class SceneTracks:
    """Triangulated keypoint tracks of a calibrated scene (steps 1–4 of the module docstring).

    Views are indexed ``0…V−1`` in the order of ``views`` (scene view indices)."""

    views: list[int]  # scene index of each view
    images: list[np.ndarray]  # grey images of the views
    cameras: list[Camera]
    keypoints: np.ndarray  # (K, 4) x, y, size, angle of all views' keypoints, pixels
    view_of: np.ndarray  # (K,) view (0…V−1) of each keypoint
    tracks: list[np.ndarray]  # keypoint indices of each kept track
    points: list[np.ndarray]  # (3,) triangulated point of each track, world units
    errors: list[np.ndarray]  # reprojection error of each track's keypoints, pixels
    stats: dict = field(default_factory=dict)


def _geometric_pair(
    keypoints: list[np.ndarray], cameras: list[Camera], i: int, j: int, cfg: SceneBuildConfig
) -> np.ndarray:
    """``(M, 2)`` keypoint pairs of views ``i`` and ``j`` found by the true cameras alone
    (:func:`~stereo.datasets.geometric_matches.geometric_matches`), confirmed in any other
    view within ``cfg.neighbours`` of either."""
    rule = GeometricRule(
        cfg.max_epipolar_px,
        cfg.max_reprojection_px,
        cfg.max_scale_octaves,
        cfg.orientation_rule_deg,
    )
    views = [View(k, c) for k, c in zip(keypoints, cameras, strict=True)]
    thirds = [
        views[k]
        for k in range(len(views))
        if k not in (i, j) and min(abs(k - i), abs(k - j)) <= cfg.neighbours
    ]
    return geometric_matches(views[i], views[j], thirds, rule)


def _join_matches(
    uf: _UnionFind,
    keypoints: list[np.ndarray],
    descriptors: list[np.ndarray],
    cameras: list[Camera],
    cfg: SceneBuildConfig,
    progress: bool,
) -> tuple[int, int]:
    """Match every pair of views at most ``cfg.neighbours`` apart, keep the matches within
    ``cfg.max_epipolar_px`` of the true epipolar lines and join them in ``uf`` (keypoint
    ``a`` of view ``i`` is node ``offset_i + a``). Returns the match counts before and after
    the epipolar check (equal for ``cfg.matcher`` "geometry", whose matches lie on the
    lines by construction)."""
    offsets = np.r_[0, np.cumsum([len(k) for k in keypoints])]
    n_matches = n_epipolar = 0
    n_views = len(keypoints)
    pairs = [(i, j) for i, j in combinations(range(n_views), 2) if j - i <= cfg.neighbours]
    for i, j in tqdm(pairs, desc="match", disable=not progress, leave=False):
        if cfg.matcher == "geometry":
            matches = _geometric_pair(keypoints, cameras, i, j, cfg)
            n_matches += len(matches)
        else:
            matches = _match(descriptors[i], descriptors[j], cfg.ratio)
            n_matches += len(matches)
            if not len(matches):
                continue
            F = fundamental_matrix(cameras[i], cameras[j])
            dist = epipolar_distance(
                F, keypoints[i][matches[:, 0], :2], keypoints[j][matches[:, 1], :2]
            )
            matches = matches[dist <= cfg.max_epipolar_px]
        n_epipolar += len(matches)
        for a, b in matches:
            uf.union(offsets[i] + a, offsets[j] + b)
    return n_matches, n_epipolar


def _checked_tracks(
    tracks: list[np.ndarray],
    kp_all: np.ndarray,
    view_of: np.ndarray,
    cameras: list[Camera],
    cfg: SceneBuildConfig,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Triangulate the tracks of ``cfg.min_views`` or more views with the true cameras and
    keep those in front of every camera, reprojecting within ``cfg.max_reprojection_px``
    and seen under ``cfg.min_angle_deg`` or more: their nodes, 3D points and errors."""
    kept_tracks, kept_points, kept_errors = [], [], []
    P = np.stack([c.P for c in cameras])
    by_length: dict[int, list[np.ndarray]] = {}
    for t in tracks:
        if len(t) >= cfg.min_views:
            by_length.setdefault(len(t), []).append(t)
    for _length, group in by_length.items():
        nodes = np.stack(group)  # (T, V)
        X = triangulate(P[view_of[nodes]], kp_all[nodes, :2])
        errors = np.zeros(nodes.shape)
        in_front = np.ones(len(nodes), bool)
        for col in range(nodes.shape[1]):
            for vi in range(len(cameras)):
                sel = view_of[nodes[:, col]] == vi
                if not sel.any():
                    continue
                xy, depth = cameras[vi].project(X[sel])
                errors[sel, col] = np.linalg.norm(xy - kp_all[nodes[sel, col], :2], axis=1)
                in_front[sel] &= depth > 0
        centres = np.stack([c.C for c in cameras])[view_of[nodes]]  # (T, V, 3)
        rays = X[:, None, :] - centres
        rays /= np.linalg.norm(rays, axis=2, keepdims=True)
        cosines = np.einsum("tid,tjd->tij", rays, rays)
        angle = np.degrees(np.arccos(np.clip(cosines.min(axis=(1, 2)), -1, 1)))
        good = in_front & (errors.max(axis=1) <= cfg.max_reprojection_px)
        good &= angle >= cfg.min_angle_deg
        for k in np.nonzero(good)[0]:
            kept_tracks.append(nodes[k])
            kept_points.append(X[k])
            kept_errors.append(errors[k])
    return kept_tracks, kept_points, kept_errors


def build_tracks(
    scene: Scene, config: SceneBuildConfig | None = None, progress: bool = True
) -> SceneTracks:
    """Detect, match, join and triangulate keypoint tracks checked against the true cameras."""
    cfg = config or SceneBuildConfig()
    views = list(cfg.views) if cfg.views is not None else list(range(len(scene.names)))
    if any(not 0 <= v < len(scene.names) for v in views):
        raise StereoError(
            f"scene {scene.root} has views 0-{len(scene.names) - 1}; asked for views "
            f"{views}: pick indices in that range"
        )
    if len(views) < 2:
        raise StereoError(f"scene {scene.root} needs at least two views to build patches")
    images, keypoints, descriptors = [], [], []
    for v in tqdm(views, desc=f"detect {scene.root.name}", disable=not progress, leave=False):
        image = scene.image(v)
        kp, desc = detect(image, cfg)
        images.append(image)
        keypoints.append(kp)
        descriptors.append(desc)
    cameras = [scene.cameras[v] for v in views]
    offsets = np.r_[0, np.cumsum([len(k) for k in keypoints])]
    uf = _UnionFind(int(offsets[-1]))
    n_matches, n_epipolar = _join_matches(uf, keypoints, descriptors, cameras, cfg, progress)
    roots = np.array([uf.find(k) for k in range(offsets[-1])], np.int64)
    view_of = np.repeat(np.arange(len(views)), np.diff(offsets))
    kp_all = np.concatenate(keypoints) if offsets[-1] else np.zeros((0, 4))
    # group nodes into tracks
    order = np.argsort(roots, kind="stable")
    sorted_roots = roots[order]
    bounds = np.r_[0, np.nonzero(np.diff(sorted_roots))[0] + 1, len(order)]
    tracks = [order[s:e] for s, e in pairwise(bounds) if e - s >= 2]
    consistent = [t for t in tracks if len(np.unique(view_of[t])) == len(t)]
    kept_tracks, kept_points, kept_errors = _checked_tracks(
        consistent, kp_all, view_of, cameras, cfg
    )
    if cfg.extend_tracks:
        kept_tracks, kept_errors = _extend_tracks(
            kept_tracks, kept_points, kp_all, view_of, offsets, cameras, cfg
        )
    stats = {
        "views": len(views),
        "keypoints": int(offsets[-1]),
        "matches": n_matches,
        "epipolar_matches": n_epipolar,
        "tracks": len(tracks),
        "consistent_tracks": len(consistent),
    }
    return SceneTracks(
        views, images, cameras, kp_all, view_of, kept_tracks, kept_points, kept_errors, stats
    )


def sparse_truth(
    scene: Scene, config: SceneBuildConfig | None = None, progress: bool = True
) -> dict[int, dict[str, np.ndarray]]:
    """Sparse depth ground truth of every view from tracks checked against the true cameras —
    the recipe of the Strecha ``gt_sparse`` files of ``../shared/data`` (see
    :data:`TRUTH_CONFIG`), for scenes that have cameras but no ground truth.

    Returns:
        scene view index → ``{"xy": (N, 2) keypoint pixels, "depth": (N,) metres (z in that
        camera), "point_id": (N,) row of the track in the returned order}``.
    """
    found = build_tracks(scene, config or TRUTH_CONFIG, progress)
    per_view: dict[int, dict[str, list]] = {
        v: {"xy": [], "depth": [], "point_id": []} for v in found.views
    }
    for pid, (track, X) in enumerate(zip(found.tracks, found.points, strict=True)):
        for node in track:
            vi = int(found.view_of[node])
            _, depth = found.cameras[vi].project(X[None])
            entry = per_view[found.views[vi]]
            entry["xy"].append(found.keypoints[node, :2])
            entry["depth"].append(float(depth[0]))
            entry["point_id"].append(pid)
    return {
        v: {
            "xy": np.array(e["xy"], np.float64).reshape(-1, 2),
            "depth": np.array(e["depth"], np.float64),
            "point_id": np.array(e["point_id"], np.int64),
        }
        for v, e in per_view.items()
    }


def _track_frames(
    track: np.ndarray,
    kp_all: np.ndarray,
    view_of: np.ndarray,
    images: list[np.ndarray],
    cfg: SceneBuildConfig,
) -> list[tuple[int, int, np.ndarray]]:
    """``(node, view, window frame)`` of each keypoint of a track whose window (keypoint-
    normalised, or upright at ``cfg.fixed_scale``) is large enough and inside its image."""
    frames = []
    for node in track:
        x, y, size, angle = kp_all[node]
        vi = view_of[node]
        if cfg.normalise == "keypoint":
            side = cfg.scale_factor * size
            T = keypoint_frame(x, y, side, angle)
        else:
            side = PATCH / cfg.fixed_scale
            T = keypoint_frame(x, y, side, 0.0)
        if side < cfg.min_window_px:
            continue
        if not footprint_inside(T, images[vi].shape[1], images[vi].shape[0]):
            continue
        frames.append((node, vi, T))
    return frames


def build_scene_patches(
    scene: Scene, config: SceneBuildConfig | None = None, progress: bool = True
) -> BuiltScene:
    """Build patches of the 3D points of a calibrated scene (see the module docstring)."""
    cfg = config or SceneBuildConfig()
    found = build_tracks(scene, cfg, progress)
    views, images, cameras = found.views, found.images, found.cameras
    kp_all, view_of = found.keypoints, found.view_of
    kept_tracks, kept_points, kept_errors = found.tracks, found.points, found.errors
    # cut patches
    if cfg.near_misses and cfg.normalise != "fixed":
        raise StereoError("near misses need fixed windows: add --normalise fixed")
    levels = [pyramid(image) for image in images]
    patches, ids, image_index, xys, reproj = [], [], [], [], []
    point_xyz = []
    near_patches: list[np.ndarray] = []
    near_points: list[int] = []
    near_views: list[int] = []
    rng = np.random.default_rng(0)
    for track, X, errs in zip(kept_tracks, kept_points, kept_errors, strict=True):
        frames = _track_frames(track, kp_all, view_of, images, cfg)
        if len(frames) < 2:
            continue
        pid = len(point_xyz)
        point_xyz.append(X)
        for (node, vi, T), err in zip(
            frames, errs[[list(track).index(f[0]) for f in frames]], strict=True
        ):
            patches.append(cut_patch(levels[vi], T))
            ids.append(pid)
            image_index.append(views[vi])
            xys.append(kp_all[node, :2])
            reproj.append(err)
            others = [f[1] for f in frames if f[1] != vi]
            for _ in range(cfg.near_misses):
                direction = _epipolar_direction(X, cameras[vi], cameras[rng.choice(others)])
                length = rng.uniform(*cfg.near_shift_px) / cfg.fixed_scale
                x, y = kp_all[node, :2] + rng.choice([-1, 1]) * length * direction
                T_near = keypoint_frame(x, y, PATCH / cfg.fixed_scale, 0.0)
                if footprint_inside(T_near, images[vi].shape[1], images[vi].shape[0]):
                    near_patches.append(cut_patch(levels[vi], T_near))
                    near_points.append(pid)
                    near_views.append(views[vi])
    if len(point_xyz) < 2:
        raise StereoError(
            f"scene {scene.root}: only {len(point_xyz)} 3D points survived the "
            "geometric checks; check the cameras or loosen the thresholds"
        )
    stats = {
        **found.stats,
        "points": len(point_xyz),
        "patches": len(patches),
        "config": asdict(cfg),
    }
    near_of = None
    view_ids = list(image_index)
    if cfg.near_misses:
        stats["near_misses"] = len(near_patches)
        n = len(point_xyz)
        ids += list(range(n, n + len(near_patches)))  # each near miss: a point of its own
        patches += near_patches
        near_of = np.r_[np.full(len(patches) - len(near_patches), -1), near_points]
        view_ids += near_views
    meta = {"source": f"calibrated scene {scene.root.name}", "builder": stats}
    patchset = PatchSet(np.stack(patches), np.array(ids), meta, near_of, np.array(view_ids))
    return BuiltScene(
        patchset, np.array(image_index), np.array(xys), np.array(point_xyz), np.array(reproj), stats
    )
