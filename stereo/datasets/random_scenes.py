"""Random synthetic wide-baseline scenes: textured planes seen by two calibrated cameras.

Training data for stereo costs that no benchmark image enters (issue 12). A scene is a back
wall, sometimes a ground plane, and 3–8 panels at random depths, slants and sizes, textured
with crops of real photographs (scikit-image's samples, plus any folders given: castle-P19,
the Oxford sequences) or procedural fractal noise, rendered by :func:`render` (ray casting,
2× supersampled) with exact depth in both views. The rig is one of

* ``rectified`` — the second camera shifted along the first's x axis (a rectified pair),
* ``convergent`` — both cameras looking at one point, 3°–30° apart,
* ``forward`` — the second camera moved along the viewing direction,

and each view gets its own exposure, gamma, vignetting, blur, noise and JPEG compression.
Everything is drawn from a NumPy generator: one seed gives one scene, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from stereo.datasets.synthetic import TexturedPlane, look_at, render
from stereo.errors import StereoError
from stereo.geometry.camera import Camera

#: rigs :func:`random_rig` draws from
RIGS = ("rectified", "convergent", "forward")
#: texture pixels per image pixel a texture is resized to (at the plane's centre)
TEXELS_PER_PIXEL = (0.6, 1.6)
#: longest side of a texture, pixels (bounds memory for planes close to the camera)
MAX_TEXTURE_SIDE = 1536
#: photographs read from texture folders are reduced to this longest side, pixels
POOL_IMAGE_SIDE = 1024
#: a faint texture keeps this share of its contrast about its mean (weakly textured walls)
FAINT_CONTRAST = (0.03, 0.25)
#: long side / short side of a thin panel (bars, poles, frames)
THIN_ASPECT = (6.0, 20.0)
#: a relief's largest height, as a share of its plane's depth (at the centre) …
RELIEF_DEPTH_SHARE = (0.01, 0.08)
#: … and at most this share of the plane's shorter side
RELIEF_SIZE_SHARE = 0.15
#: relief grid samples along a plane's longer side
RELIEF_GRID = (48, 160)
#: a relief's shading: the light's largest angle from the plane's normal, degrees, and the
#: share of the light that is ambient (Lambertian, so alike in every view)
LIGHT_ANGLE_DEG = 60.0
AMBIENT = (0.3, 0.7)
#: the smallest angle between a convergent rig's optical axes, degrees
MIN_CONVERGENCE_DEG = 3.0
#: image suffixes read from texture folders
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp")


@dataclass(frozen=True)
class SceneSpec:
    """What :func:`random_view_pair` draws."""

    width: int = 384  # rendered image size, pixels
    height: int = 256
    supersample: int = 2  # rays per pixel along each axis (anti-aliasing)
    min_panels: int = 3
    max_panels: int = 8
    max_convergence_deg: float = 30.0  # convergent rigs: angle between the optical axes
    procedural_share: float = 0.25  # share of textures that are fractal noise
    rigs: tuple[str, ...] = RIGS
    faint_share: float = 0.0  # share of textures whose contrast is cut to FAINT_CONTRAST
    thin_share: float = 0.0  # share of panels drawn as thin bars (aspect THIN_ASPECT)
    roll_deg: float = 0.0  # the second camera turns about its axis by up to ± this, degrees
    relief_share: float = 0.0  # share of the planes given relief (random_relief)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rigs) - set(RIGS))
        if unknown or not self.rigs:
            raise StereoError(f"unknown rig(s) {unknown}; valid rigs: {', '.join(RIGS)}")
        if min(self.width, self.height) < 32 or self.supersample < 1:
            raise StereoError("synthetic views need at least 32×32 pixels and supersample ≥ 1")
        if not MIN_CONVERGENCE_DEG < self.max_convergence_deg < 90.0:
            raise StereoError(
                f"max_convergence_deg must lie in ({MIN_CONVERGENCE_DEG:g}, 90) degrees, "
                f"not {self.max_convergence_deg}"
            )
        for name in ("procedural_share", "faint_share", "thin_share", "relief_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise StereoError(f"{name} must lie in [0, 1], not {getattr(self, name)}")


@dataclass
class ViewPair:
    """Two rendered views: grey uint8 images, cameras, exact z-depth maps (NaN: nothing)."""

    images: tuple[np.ndarray, np.ndarray]
    cameras: tuple[Camera, Camera]
    depths: tuple[np.ndarray, np.ndarray]
    rig: str


def texture_pool(folders: Sequence[str | Path] = ()) -> list[np.ndarray]:
    """Grey uint8 photographs: scikit-image's samples and every image in ``folders``
    (sorted by name, reduced to :data:`POOL_IMAGE_SIDE`)."""
    from stereo.patchnet.data.warped import sample_photographs

    pool = sample_photographs()
    for folder in folders:
        if not Path(folder).is_dir():
            raise StereoError(f"texture folder {folder} does not exist; give a folder of images")
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise StereoError(f"no images in texture folder {folder}; give a folder of images")
        for path in files:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise StereoError(f"cannot read texture image {path}; remove it or fix it")
            scale = POOL_IMAGE_SIDE / max(image.shape)
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            pool.append(image)
    return pool


def fractal_noise(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """``(height, width)`` uint8 noise with a random power-law spectrum (octaves of
    upsampled Gaussian noise), full contrast."""
    out = np.zeros((height, width), np.float32)
    slope = rng.uniform(0.2, 1.0)
    for octave in range(6):
        h, w = max(2, height >> octave), max(2, width >> octave)
        layer = rng.standard_normal((h, w)).astype(np.float32)
        out += (2.0 ** (octave * slope)) * cv2.resize(
            layer, (width, height), interpolation=cv2.INTER_CUBIC
        )
    out -= out.min()
    return (255 * out / max(float(out.max()), 1e-6)).astype(np.uint8)


def random_texture(
    rng: np.random.Generator, pool: Sequence[np.ndarray], width: int, height: int, share: float
) -> np.ndarray:
    """A ``(height, width)`` uint8 texture: a random crop of a pool photograph resized to
    that size, or (with probability ``share``) fractal noise."""
    if rng.random() < share:
        return fractal_noise(rng, width, height)
    photo = pool[int(rng.integers(len(pool)))]
    ph, pw = photo.shape
    aspect = width / height
    side = rng.uniform(0.25, 1.0)
    crop_h = max(8, int(min(ph, pw / aspect) * side))
    crop_w = max(8, min(pw, int(crop_h * aspect)))
    y0, x0 = int(rng.integers(ph - crop_h + 1)), int(rng.integers(pw - crop_w + 1))
    crop = photo[y0 : y0 + crop_h, x0 : x0 + crop_w]
    flags = cv2.INTER_AREA if crop_w > width else cv2.INTER_CUBIC
    return cv2.resize(crop, (width, height), interpolation=flags)


def faint(texture: np.ndarray, contrast: float) -> np.ndarray:
    """``texture`` (uint8) with its deviations from its mean scaled by ``contrast``."""
    mean = float(texture.mean())
    return np.clip(np.rint(mean + contrast * (texture - mean)), 0, 255).astype(np.uint8)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation about y (yaw), then x (pitch), then z (roll), radians."""
    cy, sy, cp, sp, cr, sr = (f(a) for a in (yaw, pitch, roll) for f in (np.cos, np.sin))
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    Rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return Ry @ Rx @ Rz


def _plane(
    rng: np.random.Generator,
    centre: np.ndarray,
    size: tuple[float, float],
    rotation: np.ndarray,
    texture_scale: float,
    pool: Sequence[np.ndarray],
    spec: SceneSpec,
) -> TexturedPlane:
    """A rectangle of ``size`` (world units) centred at ``centre``, its axes the first two
    columns of ``rotation``, textured at ``texture_scale`` texture pixels per world unit."""
    u_axis, v_axis = rotation[:, 0], rotation[:, 1]
    tex_w = int(np.clip(size[0] * texture_scale, 16, MAX_TEXTURE_SIDE))
    tex_h = int(np.clip(size[1] * texture_scale, 16, MAX_TEXTURE_SIDE))
    texture = random_texture(rng, pool, tex_w, tex_h, spec.procedural_share)
    if spec.faint_share > 0 and rng.random() < spec.faint_share:
        texture = faint(texture, rng.uniform(*FAINT_CONTRAST))
    origin = centre - 0.5 * size[0] * u_axis - 0.5 * size[1] * v_axis
    relief = None
    if spec.relief_share > 0 and rng.random() < spec.relief_share:  # drawn only when asked
        relief = random_relief(rng, size, float(centre[2]))
        texture = shaded(rng, texture, relief, size)
    return TexturedPlane(origin, u_axis, v_axis, size[0], size[1], texture, relief)


def random_relief(rng: np.random.Generator, size: tuple[float, float], depth: float) -> np.ndarray:
    """``(gh, gw)`` heights (world units) over a plane of ``size`` at ``depth``: fractal bumps
    plus raised and sunken rectangles and mouldings (sharp steps, as on a façade), the
    largest height :data:`RELIEF_DEPTH_SHARE` of the depth and at most
    :data:`RELIEF_SIZE_SHARE` of the shorter side."""
    long_side = int(rng.integers(*RELIEF_GRID))
    gw, gh = (
        (long_side, max(8, round(long_side * size[1] / size[0])))
        if size[0] >= size[1]
        else (max(8, round(long_side * size[0] / size[1])), long_side)
    )
    heights = rng.uniform(0.0, 1.0) * (fractal_noise(rng, gw, gh) / 255.0 - 0.5)
    for _ in range(int(rng.integers(2, 12))):
        w, h = (max(1, int(n * rng.uniform(0.05, 0.5))) for n in (gw, gh))
        if rng.random() < 0.3:  # a moulding or pilaster: across the whole plane
            w, h = (gw, h) if rng.random() < 0.5 else (w, gh)
        x0, y0 = int(rng.integers(gw - w + 1)), int(rng.integers(gh - h + 1))
        heights[y0 : y0 + h, x0 : x0 + w] += rng.uniform(-1.0, 1.0)
    heights -= np.median(heights)
    largest = min(rng.uniform(*RELIEF_DEPTH_SHARE) * depth, RELIEF_SIZE_SHARE * min(size))
    return (largest * heights / max(float(np.abs(heights).max()), 1e-9)).astype(np.float32)


def shaded(
    rng: np.random.Generator,
    texture: np.ndarray,
    relief: np.ndarray,
    size: tuple[float, float],
) -> np.ndarray:
    """``texture`` (uint8) lit by a distant light over a plane of ``size`` with ``relief``:
    Lambertian, with a random ambient share, a flat patch keeping its grey. (Seen from the
    other side, the same shading is that of a light mirrored across the normal.)"""
    gh, gw = relief.shape
    dh_dr, dh_ds = np.gradient(relief.astype(np.float64), size[1] / (gh - 1), size[0] / (gw - 1))
    normals = np.dstack([-dh_ds, -dh_dr, np.ones_like(dh_ds)])
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    tilt, turn = np.radians(rng.uniform(0, LIGHT_ANGLE_DEG)), rng.uniform(0, 2 * np.pi)
    light = np.array([np.sin(tilt) * np.cos(turn), np.sin(tilt) * np.sin(turn), np.cos(tilt)])
    ambient = rng.uniform(*AMBIENT)
    lit = ambient + (1 - ambient) * np.clip(normals @ light, 0, None)
    shade = lit / (ambient + (1 - ambient) * light[2])
    th, tw = texture.shape
    shade = cv2.resize(shade.astype(np.float32), (tw, th), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.rint(texture * shade), 0, 255).astype(np.uint8)


def random_planes(
    rng: np.random.Generator, pool: Sequence[np.ndarray], focal: float, spec: SceneSpec
) -> list[TexturedPlane]:
    """A back wall 7–14 units away, a ground plane half the time, and
    ``min_panels``–``max_panels`` slanted panels between 2.5 units and the wall, in the frame
    of a camera at the origin looking along +z with focal length ``focal`` pixels."""
    half_w, half_h = spec.width / (2 * focal), spec.height / (2 * focal)  # tan of half-fov
    density = lambda z: rng.uniform(*TEXELS_PER_PIXEL) * focal / z  # noqa: E731
    z_wall = rng.uniform(7.0, 14.0)
    wall_rot = _rotation(rng.uniform(-0.45, 0.45), rng.uniform(-0.25, 0.25), 0.0)
    wall_size = (3.6 * half_w * z_wall, 3.6 * half_h * z_wall)
    planes = [
        _plane(rng, np.array([0, 0, z_wall]), wall_size, wall_rot, density(z_wall), pool, spec)
    ]
    if rng.random() < 0.5:  # a ground plane y = const below the optical axis, in depth
        y = rng.uniform(0.6, 1.0) * half_h * z_wall * 0.5
        ground_rot = _rotation(0.0, -np.pi / 2, 0.0)
        size = (3.0 * half_w * z_wall, z_wall)
        centre = np.array([0.0, y, 0.5 * z_wall + 0.5])
        planes.append(_plane(rng, centre, size, ground_rot, density(0.6 * z_wall), pool, spec))
    for _ in range(int(rng.integers(spec.min_panels, spec.max_panels + 1))):
        z = 1.0 / rng.uniform(1.0 / (0.85 * z_wall), 1.0 / 2.5)
        centre = np.array(
            [rng.uniform(-0.8, 0.8) * half_w * z, rng.uniform(-0.8, 0.8) * half_h * z, z]
        )
        extent = rng.uniform(0.15, 0.7) * half_w * z
        aspect = np.exp(rng.uniform(-0.7, 0.7))
        if spec.thin_share > 0 and rng.random() < spec.thin_share:
            aspect = np.sqrt(rng.uniform(*THIN_ASPECT)) ** rng.choice([-1.0, 1.0])
        rotation = _rotation(
            rng.uniform(-1.05, 1.05), rng.uniform(-0.7, 0.7), rng.uniform(-0.5, 0.5)
        )
        size = (extent * aspect, extent / aspect)
        planes.append(_plane(rng, centre, size, rotation, density(z), pool, spec))
    return planes


def random_rig(
    rng: np.random.Generator, kind: str, spec: SceneSpec, target_depth: float
) -> tuple[Camera, Camera]:
    """Reference and second camera of rig ``kind`` (:data:`RIGS`); the reference sits at the
    origin looking near +z, ``target_depth`` is the depth the rig is built around (units)."""
    focal = spec.width * rng.uniform(0.8, 1.3)
    K = np.array([[focal, 0, (spec.width - 1) / 2], [0, focal, (spec.height - 1) / 2], [0, 0, 1.0]])
    jitter = lambda amount: rng.uniform(-amount, amount, 3)  # noqa: E731
    target = np.array([0.0, 0.0, target_depth]) + jitter(0.05 * target_depth)
    C1 = np.zeros(3)
    R1 = look_at(C1, target) @ _rotation(0.0, 0.0, rng.uniform(-0.05, 0.05))
    if kind == "rectified":  # disparity 8–40 px at the target depth
        baseline = rng.uniform(8.0, 40.0) * target_depth / focal
        C2, R2 = C1 + baseline * R1[:, 0] * rng.choice([-1.0, 1.0]), R1
    elif kind == "convergent":
        angle = np.radians(rng.uniform(MIN_CONVERGENCE_DEG, spec.max_convergence_deg))
        baseline = 2 * np.linalg.norm(target) * np.tan(angle / 2)
        direction = R1 @ np.array([rng.choice([-1.0, 1.0]), rng.uniform(-0.25, 0.25), 0.0])
        C2 = baseline * direction / np.linalg.norm(direction)
        R2 = look_at(C2, target) @ _rotation(0.0, 0.0, rng.uniform(-0.05, 0.05))
    elif kind == "forward":
        step = R1 @ np.array([*rng.uniform(-0.08, 0.08, 2), rng.uniform(0.04, 0.15)])
        C2 = step * target_depth
        R2 = R1 @ _rotation(*rng.uniform(-0.05, 0.05, 3))
    else:
        raise StereoError(f"unknown rig {kind!r}; valid rigs: {', '.join(RIGS)}")
    if spec.roll_deg > 0:  # drawn only when asked: the other sets' streams stay as they were
        R2 = R2 @ _rotation(0.0, 0.0, np.radians(rng.uniform(-spec.roll_deg, spec.roll_deg)))
    cams = [Camera(K, R, C, spec.width, spec.height) for R, C in ((R1, C1), (R2, C2))]
    if rng.random() < 0.5:  # either view may be the reference (forward: ahead or behind)
        cams.reverse()
    return cams[0], cams[1]


def photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A view's own camera response applied to a grey ``(H, W)`` uint8 image: gain and
    bias, gamma, vignetting, blur, sensor noise and JPEG compression, each drawn at random."""
    x = image.astype(np.float32) / 255.0
    h, w = x.shape
    x = np.clip(x * rng.uniform(0.7, 1.3) + rng.uniform(-0.08, 0.08), 0, 1) ** rng.uniform(
        0.75, 1.33
    )
    ys, xs = np.mgrid[0:h, 0:w]
    radius2 = ((xs - w / 2) ** 2 + (ys - h / 2) ** 2) / (0.25 * (w * w + h * h))
    x = x * (1 - rng.uniform(0.0, 0.3) * radius2)
    if rng.random() < 0.5:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.0))
    x = x + rng.normal(0.0, rng.uniform(0.0, 4.0) / 255.0, x.shape)
    out = np.clip(np.rint(255 * x), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        quality = int(rng.integers(40, 96))
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if ok else out
    return out


def render_view(planes: list[TexturedPlane], camera: Camera, supersample: int):
    """Grey uint8 image (rendered at ``supersample``× and area-averaged) and exact z-depth
    ``(H, W)`` (NaN where no plane) of ``camera``."""
    if supersample == 1:
        return render(planes, camera)
    fine, _ = render(planes, camera.scaled(supersample))
    _, depth = render(planes, camera)
    size = (camera.width, camera.height)
    return cv2.resize(fine, size, interpolation=cv2.INTER_AREA), depth


def random_view_pair(
    seed: int | Sequence[int], pool: Sequence[np.ndarray], spec: SceneSpec | None = None
) -> ViewPair:
    """The scene and rig drawn from ``seed``, rendered and photometrically changed."""
    spec = spec or SceneSpec()
    rng = np.random.default_rng(seed)
    kind = spec.rigs[int(rng.integers(len(spec.rigs)))]
    target = rng.uniform(4.0, 8.0)
    reference, other = random_rig(rng, kind, spec, target)
    # the scene is laid out in the frame of the rig's first camera, wherever it sits
    frame = reference if np.allclose(reference.C, 0) else other
    planes = [
        replace(
            p,
            origin=frame.R @ p.origin + frame.C,
            u_axis=frame.R @ p.u_axis,
            v_axis=frame.R @ p.v_axis,
        )
        for p in random_planes(rng, pool, float(frame.K[0, 0]), spec)
    ]
    rendered = [render_view(planes, cam, spec.supersample) for cam in (reference, other)]
    images = tuple(photometric(rng, image) for image, _ in rendered)
    return ViewPair(images, (reference, other), (rendered[0][1], rendered[1][1]), kind)
