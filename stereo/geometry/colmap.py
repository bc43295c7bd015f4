"""Cameras and a depth range from a COLMAP sparse model (``cameras``, ``images``,
``points3D``; ``.txt`` or ``.bin``), read with pycolmap (``pip install "stereo[colmap]"``).

Conventions: COLMAP's ``cam_from_world`` maps world to camera (``x_cam = R_cw X + t``), so
the project's camera-to-world ``R = R_cwᵀ`` and centre ``C = −R_cwᵀ t``; COLMAP puts the
centre of the top-left pixel at (0.5, 0.5), the project at (0, 0), so the principal point
moves by −½ px. Only undistorted models are taken (PINHOLE, SIMPLE_PINHOLE): a model with
lens distortion is refused, with the COLMAP command that undistorts the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.matches import percentile_depth_range

#: COLMAP camera models taken as they are (parameters in COLMAP's order)
PINHOLE_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")
#: fewest 3D points seen by both images for their depths to set the sweep's range
MIN_RANGE_POINTS = 20
#: the model's files, in either of COLMAP's formats
MODEL_FILES = ("cameras", "images", "points3D")


@dataclass(frozen=True)
class ColmapPair:
    """Both cameras of a pair from a COLMAP model and the depth range of its 3D points.

    Attributes:
        cameras: reference and other :class:`~stereo.geometry.camera.Camera`.
        depth_range: ``(near, far)`` metres (model units) of the points both images see, in
            the reference camera, as the matcher widens SIFT depths; None with fewer than
            :data:`MIN_RANGE_POINTS` such points.
        n_points: how many 3D points both images see.
    """

    cameras: tuple[Camera, Camera]
    depth_range: tuple[float, float] | None
    n_points: int


def _import_pycolmap() -> Any:
    try:
        import pycolmap
    except ImportError:
        raise StereoError(
            "--colmap needs pycolmap: pip install pycolmap (or the project's [colmap] extra)"
        ) from None
    return pycolmap


def read_model(folder: Path) -> Any:
    """The ``pycolmap.Reconstruction`` of a sparse model folder (text or binary files)."""
    if not folder.is_dir():
        raise StereoError(f"COLMAP model folder {folder} does not exist")
    for kind in MODEL_FILES:
        if not any((folder / f"{kind}{ext}").is_file() for ext in (".bin", ".txt")):
            raise StereoError(
                f"{folder} is not a COLMAP sparse model: no {kind}.bin or {kind}.txt (give the "
                "folder that holds them, e.g. sparse/0)"
            )
    pycolmap = _import_pycolmap()
    try:
        return pycolmap.Reconstruction(str(folder))
    except Exception as error:  # pycolmap raises plain exceptions on unreadable files
        first = str(error).strip().split("\n")[0][:200]
        raise StereoError(f"cannot read the COLMAP model in {folder}: {first}") from None


def find_image(model: Any, name: str, folder: Path) -> Any:
    """The model's image called ``name`` (exactly, or by its file name alone if unique)."""
    images = list(model.images.values())
    exact = [image for image in images if image.name == name]
    by_file = [image for image in images if Path(image.name).name == Path(name).name]
    found = exact or by_file
    if len(found) != 1:
        what = "no image" if not found else f"{len(found)} images"
        known = ", ".join(sorted(image.name for image in images)[:8])
        raise StereoError(
            f"the COLMAP model in {folder} has {what} named {Path(name).name!r} (its images: "
            f"{known}{', …' if len(images) > 8 else ''}); give the images the model was made from"
        )
    if not found[0].has_pose:
        raise StereoError(f"image {name!r} of the COLMAP model in {folder} is not registered")
    return found[0]


def intrinsics(camera: Any) -> np.ndarray:
    """``(3, 3)`` K of a PINHOLE / SIMPLE_PINHOLE COLMAP camera, pixel centres at integers."""
    model = str(camera.model_name)
    if model not in PINHOLE_MODELS:
        raise StereoError(
            f"COLMAP camera {camera.camera_id} is {model}, with lens distortion; undistort the "
            "images first (`colmap image_undistorter`, which writes PINHOLE cameras) and "
            "give that model and its images"
        )
    params = [float(v) for v in camera.params]
    fx, fy, cx, cy = params if model == "PINHOLE" else (params[0], *params)
    return np.array([[fx, 0.0, cx - 0.5], [0.0, fy, cy - 0.5], [0.0, 0.0, 1.0]])


def project_camera(model: Any, image: Any) -> Camera:
    """The project's :class:`Camera` of a registered COLMAP image."""
    colmap_camera = model.cameras[image.camera_id]
    pose = image.cam_from_world()
    world_to_camera = np.asarray(pose.rotation.matrix(), np.float64)
    translation = np.asarray(pose.translation, np.float64)
    return Camera(
        intrinsics(colmap_camera),
        world_to_camera.T,
        -world_to_camera.T @ translation,
        int(colmap_camera.width),
        int(colmap_camera.height),
    )


def shared_points(model: Any, first: Any, second: Any) -> np.ndarray:
    """``(N, 3)`` world points of the model seen by both images."""
    ids = {first.image_id, second.image_id}
    points = [
        point.xyz
        for point in model.points3D.values()
        if ids <= {element.image_id for element in point.track.elements}
    ]
    return np.asarray(points, np.float64).reshape(-1, 3)


def read_colmap_pair(folder: str | Path, reference: str | Path, other: str | Path) -> ColmapPair:
    """Cameras of images ``reference`` and ``other`` (found by name) from the COLMAP model in
    ``folder``, and the depth range of the 3D points both see."""
    folder = Path(folder)
    model = read_model(folder)
    images = [find_image(model, str(name), folder) for name in (reference, other)]
    cameras = (project_camera(model, images[0]), project_camera(model, images[1]))
    points = shared_points(model, *images)
    depths = cameras[0].to_camera(points)[:, 2] if len(points) else np.zeros(0)
    depths = depths[depths > 0]
    depth_range = percentile_depth_range(depths) if len(depths) >= MIN_RANGE_POINTS else None
    return ColmapPair(cameras, depth_range, len(points))
