"""Calibrated image collections: find each image's camera file and check they agree.

Camera files are looked up beside the image (``IMG.camera``, ``IMG.jpg.camera``) or in a
sibling ``cameras/`` folder (the Strecha layout: ``scene/images/NAME.jpg`` with
``scene/cameras/NAME.jpg.camera``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stereo.errors import StereoError
from stereo.geometry.camera import Camera, read_camera
from stereo.io.images import IMAGE_SUFFIXES, read_image


def camera_candidates(image: Path) -> list[Path]:
    """Where the camera file of ``image`` may be, in lookup order."""
    names = [image.name + ".camera", image.stem + ".camera"]
    folders = [image.parent, image.parent.parent / "cameras", image.parent / "cameras"]
    return [folder / name for folder in folders for name in names]


def find_camera(image: str | Path) -> Path | None:
    """The camera file of ``image``, or None."""
    return next((p for p in camera_candidates(Path(image)) if p.is_file()), None)


def check_image_size(
    image: np.ndarray, camera: Camera, image_path: Path, camera_path: Path
) -> None:
    """Raise if the image and its camera disagree on the size."""
    h, w = image.shape[:2]
    if (w, h) != (camera.width, camera.height):
        raise StereoError(
            f"image {image_path} is {w}x{h} but its camera {camera_path} says "
            f"{camera.width}x{camera.height}; use the image the camera belongs "
            "to or rescale the camera"
        )


@dataclass
class Scene:
    """A calibrated scene: image paths and their cameras, in name order."""

    root: Path
    names: list[str]
    image_paths: list[Path]
    cameras: list[Camera]

    def image(self, index: int) -> np.ndarray:
        """Grey image ``index``, checked against its camera's size."""
        image = read_image(self.image_paths[index])
        check_image_size(
            image,
            self.cameras[index],
            self.image_paths[index],
            find_camera(self.image_paths[index]) or self.root,
        )
        return image


def load_scene(root: str | Path) -> Scene:
    """Load a Strecha-layout scene (``images/`` + ``cameras/``, or cameras beside images)."""
    root = Path(root)
    if not root.is_dir():
        raise StereoError(f"scene folder {root} does not exist")
    image_dir = root / "images" if (root / "images").is_dir() else root
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise StereoError(f"scene {root} has no images (looked in {image_dir})")
    cameras, names = [], []
    for image in images:
        camera_file = find_camera(image)
        if camera_file is None:
            raise StereoError(
                f"scene {root}: no camera file for {image.name} (looked for "
                f"{image.name}.camera beside it and in {root / 'cameras'}); "
                "a calibrated scene needs one camera per image"
            )
        cameras.append(read_camera(camera_file))
        names.append(image.name)
    return Scene(root, names, images, cameras)
