"""Synthetic calibrated scenes of textured planes, rendered with exact depth.

Real photographs (scikit-image's samples, shipped with the package) are pasted on planar
rectangles in space and ray-cast into pinhole cameras; every pixel's depth is exact. This
gives calibrated multi-view data with perfect ground truth and no download: the builders'
end-to-end tests and the embedded stereo demo use it. Scenes are written in the Strecha
layout (``images/NNNN.png`` + ``cameras/NNNN.png.camera``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import map_coordinates

from stereo.geometry.camera import Camera


@dataclass
class TexturedPlane:
    """A rectangle ``origin + s·u_axis + t·v_axis``, ``s ∈ [0, width]``, ``t ∈ [0, height]``
    (world units), showing ``texture`` (grey uint8) stretched over it."""

    origin: np.ndarray
    u_axis: np.ndarray  # unit vector
    v_axis: np.ndarray  # unit vector
    width: float
    height: float
    texture: np.ndarray
    #: ``(gh, gw)`` heights (world units) along ``u_axis × v_axis``, a grid spanning the
    #: rectangle (bilinear between samples); None: the rectangle is flat
    relief: np.ndarray | None = None

    @property
    def normal(self) -> np.ndarray:
        """``u_axis × v_axis``: the unit normal the relief's heights run along."""
        return np.cross(self.u_axis, self.v_axis)

    def holds(self, s: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Whether plane coordinates ``(s, r)`` (world units) lie on the rectangle."""
        return (s >= 0) & (s <= self.width) & (r >= 0) & (r <= self.height)


@dataclass
class SyntheticScene:
    """Rendered views: grey images, cameras and exact z-depth maps (NaN where no surface)."""

    images: list[np.ndarray]
    cameras: list[Camera]
    depths: list[np.ndarray]
    planes: list[TexturedPlane] = field(default_factory=list)

    def save(self, root: str | Path) -> Path:
        """Write ``images/NNNN.png``, ``cameras/NNNN.png.camera``, ``depth/NNNN.npy``."""
        root = Path(root)
        for sub in ("images", "cameras", "depth"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for i, (image, cam, depth) in enumerate(
            zip(self.images, self.cameras, self.depths, strict=True)
        ):
            name = f"{i:04d}.png"
            cv2.imwrite(str(root / "images" / name), image)
            write_camera(root / "cameras" / f"{name}.camera", cam)
            np.save(root / "depth" / f"{i:04d}.npy", depth.astype(np.float32))
        return root


def write_camera(path: str | Path, camera: Camera, number_format: str = ".9f") -> None:
    """Write a camera in the Strecha text format, each value with ``number_format``
    (``".17g"``: every digit of a float64, read back exactly)."""
    rows = [
        *camera.K.tolist(),
        [0, 0, 0],
        *camera.R.tolist(),
        camera.C.tolist(),
        [camera.width, camera.height],
    ]
    Path(path).write_text(
        "\n".join(
            " ".join(f"{v:{number_format}}" if isinstance(v, float) else str(v) for v in row)
            for row in rows
        )
        + "\n"
    )


UP = np.array([0.0, -1.0, 0.0])  # world "up" of the synthetic scenes (image y points down)


def look_at(centre: np.ndarray, target: np.ndarray, up: np.ndarray = UP) -> np.ndarray:
    """Camera-to-world rotation of a camera at ``centre`` looking at ``target`` (image y
    points along −``up``)."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


#: samples along each ray through a relief's slab (then one secant step)
RELIEF_STEPS = 32
#: cv2.remap reads maps of at most this many columns
REMAP_COLUMNS = 4096


def _bilinear(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``grid`` (float32 ``(h, w)``) at the points ``(x, y)`` (``(N,)`` grid pixels),
    bilinear, clamped at the border."""
    n = len(x)
    if n == 0:
        return np.zeros(0, np.float32)
    rows = -(-n // REMAP_COLUMNS)
    maps = np.zeros((2, rows * REMAP_COLUMNS), np.float32)
    maps[0, :n] = np.clip(x, -1, grid.shape[1])
    maps[1, :n] = np.clip(y, -1, grid.shape[0])
    shape = (rows, REMAP_COLUMNS)
    out = cv2.remap(
        grid,
        maps[0].reshape(shape),
        maps[1].reshape(shape),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out.reshape(-1)[:n]


def _flat_hits(
    plane: TexturedPlane, camera: Camera, rays: np.ndarray, nearest: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, s, r)`` of each ray ``C + t·ray`` on the flat rectangle; t = inf where none."""
    normal = plane.normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((plane.origin - camera.C) @ normal) / (rays @ normal)
    hit = camera.C + t[:, None] * rays
    s = (hit - plane.origin) @ plane.u_axis
    r = (hit - plane.origin) @ plane.v_axis
    return np.where((t > 0) & plane.holds(s, r), t, np.inf), s, r


@dataclass
class _ReliefRays:
    """Rays ``C + t·ray`` in a relief plane's frame: ``s``, ``r`` and the height ``g`` above
    the base plane are linear in t (``s0 + t·ds`` …); ``side`` is the camera's side (±1)."""

    plane: TexturedPlane
    s0: float
    r0: float
    g0: float
    ds: np.ndarray
    dr: np.ndarray
    dg: np.ndarray
    side: float
    heights: np.ndarray  # the relief, float32

    @classmethod
    def of(cls, plane: TexturedPlane, camera: Camera, rays: np.ndarray) -> _ReliefRays:
        start = camera.C - plane.origin
        axes = (plane.u_axis, plane.v_axis, plane.normal)
        s0, r0, g0 = (float(start @ axis) for axis in axes)
        ds, dr, dg = (rays @ axis for axis in axes)
        heights = np.ascontiguousarray(plane.relief, np.float32)
        return cls(plane, s0, r0, g0, ds, dr, dg, 1.0 if g0 >= 0 else -1.0, heights)

    def sr(self, t: np.ndarray, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """Plane coordinates ``(s, r)`` of rays ``rows`` at ``t``."""
        return self.s0 + t * self.ds[rows], self.r0 + t * self.dr[rows]

    def gap(self, t: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Height of rays ``rows`` at ``t`` above the surface (camera side positive), inf
        off the rectangle."""
        plane, (gh, gw) = self.plane, self.heights.shape
        s, r = self.sr(t, rows)
        h = _bilinear(self.heights, s / plane.width * (gw - 1), r / plane.height * (gh - 1))
        return np.where(plane.holds(s, r), self.side * (self.g0 + t * self.dg[rows] - h), np.inf)


def _relief_hits(
    plane: TexturedPlane, camera: Camera, rays: np.ndarray, nearest: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, s, r)`` of each ray's first hit on the displaced surface ``origin + s·u + r·v +
    relief(s, r)·n`` (a solid block: a ray entering through its side hits the side), sampled
    :data:`RELIEF_STEPS` times through the slab ``|offset| ≤ max |relief|`` from the
    camera's side, then a secant step; t = inf where none or not before ``nearest``."""
    lines = _ReliefRays.of(plane, camera, rays)
    amplitude = max(float(np.abs(plane.relief).max()), 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_near = (lines.side * amplitude - lines.g0) / lines.dg
        t_far = (-lines.side * amplitude - lines.g0) / lines.dg
    crosses = (lines.side * lines.dg < 0) & (t_near > 0) & (t_near < nearest)
    (s_near, r_near), (s_far, r_far) = (lines.sr(t, slice(None)) for t in (t_near, t_far))
    for a, b, size in ((s_near, s_far, plane.width), (r_near, r_far, plane.height)):
        crosses &= (np.maximum(a, b) >= 0) & (np.minimum(a, b) <= size)  # the slab's ends
    active = np.flatnonzero(crosses)
    t_hit = np.full(len(rays), np.inf)
    before_t, before = t_near[active], lines.gap(t_near[active], active)
    for k in range(1, RELIEF_STEPS + 1):
        t = t_near[active] + (t_far[active] - t_near[active]) * k / RELIEF_STEPS
        now = lines.gap(t, active)
        crossed = now <= 0
        g_0, g_1, t_0 = before[crossed], now[crossed], before_t[crossed]
        with np.errstate(invalid="ignore"):  # g_0 = inf: entered through the side, hit there
            fraction = np.where(np.isfinite(g_0), g_0 / np.maximum(g_0 - g_1, 1e-12), 1.0)
        t_hit[active[crossed]] = t_0 + (t[crossed] - t_0) * np.clip(fraction, 0, 1)
        active, before_t, before = active[~crossed], t[~crossed], now[~crossed]
    s_hit, r_hit = lines.sr(np.where(np.isfinite(t_hit), t_hit, 0.0), slice(None))
    return t_hit, np.clip(s_hit, 0, plane.width), np.clip(r_hit, 0, plane.height)


def render(planes: list[TexturedPlane], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the planes (flat or with relief): grey image ``(H, W)`` uint8 and z-depth
    ``(H, W)`` (NaN = none)."""
    h, w = camera.height, camera.width
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pix = np.stack([xs, ys, np.ones_like(xs)], axis=-1).reshape(-1, 3)
    rays = pix @ np.linalg.inv(camera.K).T @ camera.R.T  # world directions, z-depth 1
    best_t = np.full(len(rays), np.inf)
    image = np.zeros(len(rays), np.float32)
    # flat planes first: their depths spare the relief's marching wherever they are nearer
    for plane in sorted(planes, key=lambda plane: plane.relief is not None):
        hits = _flat_hits if plane.relief is None else _relief_hits
        t, s, r = hits(plane, camera, rays, best_t)
        closer = t < best_t
        if not closer.any():
            continue
        th, tw = plane.texture.shape
        coords = np.stack([r[closer] / plane.height * (th - 1), s[closer] / plane.width * (tw - 1)])
        image[closer] = map_coordinates(
            plane.texture.astype(np.float32), coords, order=1, mode="nearest"
        )
        best_t[closer] = t[closer]
    depth = np.where(np.isfinite(best_t), best_t, np.nan)  # rays have unit z-depth
    return (np.clip(np.rint(image), 0, 255).astype(np.uint8).reshape(h, w), depth.reshape(h, w))


def default_planes() -> list[TexturedPlane]:
    """A back wall, a slanted panel and a box front, textured with sample photographs."""
    from stereo.patchnet.data.warped import sample_photographs

    wall_left, wall_right, panel, box = sample_photographs(
        ("astronaut", "camera", "coffee", "chelsea")
    )
    wall = np.concatenate([wall_left, wall_right], axis=1)  # no repeated texture
    return [
        TexturedPlane(
            np.array([-6.0, -4.0, 8.5]),
            np.array([1.0, 0, 0]),
            np.array([0, 1.0, 0]),
            12.0,
            8.0,
            np.tile(wall, (1, 2)),
        ),
        TexturedPlane(
            np.array([-2.6, -1.2, 5.5]),
            np.array([np.cos(0.5), 0, -np.sin(0.5)]),
            np.array([0, 1.0, 0]),
            2.2,
            2.4,
            panel,
        ),
        TexturedPlane(
            np.array([0.6, -0.4, 5.0]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 1.8, 1.3, box
        ),
    ]


def make_scene(
    n_views: int = 3,
    width: int = 640,
    height: int = 480,
    baseline: float = 0.6,
    planes: list[TexturedPlane] | None = None,
) -> SyntheticScene:
    """Render ``n_views`` cameras on a horizontal arc, all looking at the scene centre.

    Args:
        baseline: distance between neighbouring camera centres, world units (the planes are
            5–8 units away).
    """
    planes = planes if planes is not None else default_planes()
    f = 0.9 * width
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
    target = np.array([0.0, 0.0, 6.5])
    images, cameras, depths = [], [], []
    for i in range(n_views):
        centre = np.array([(i - (n_views - 1) / 2) * baseline, -0.1 * i, 0.0])
        cam = Camera(K, look_at(centre, target), centre, width, height)
        image, depth = render(planes, cam)
        images.append(image)
        cameras.append(cam)
        depths.append(depth)
    return SyntheticScene(images, cameras, depths, planes)
