"""Photographs: strict decoding, bounded size.

OpenCV decodes a truncated JPEG or PNG without complaint and fills the missing part with
grey; :func:`read_image` first has Pillow decode the file completely (JPEG at ⅛ scale, which
still reads every byte of it) and refuses it when the data stops early or is corrupt. Images
above :data:`MAX_IMAGE_PIXELS` are refused from their header, before anything is decoded.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from stereo.errors import StereoError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".ppm", ".pgm")
#: larger images are refused before decoding (a 16-bit 200-megapixel image needs 1.2 GB)
MAX_IMAGE_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow warns above it and refuses twice it


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file's header, checked against :data:`MAX_IMAGE_PIXELS`."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own check, at twice our limit
        raise StereoError(
            f"image {path} has over {2 * MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, above the "
            f"limit of {MAX_IMAGE_PIXELS / 1e6:.0f}; downscale it first"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise StereoError(f"cannot decode image {path}: corrupt or not an image") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise StereoError(
            f"image {path} is {width}x{height} ({width * height / 1e6:.0f} megapixels), above "
            f"the limit of {MAX_IMAGE_PIXELS / 1e6:.0f}; downscale it first"
        )
    return width, height


def check_complete(path: Path) -> None:
    """Raise unless the whole file decodes (no truncation, no broken data stream)."""
    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("L", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except (OSError, ValueError, SyntaxError) as error:
        reason = str(error).split("(")[0].strip() or type(error).__name__
        raise StereoError(f"image {path} is damaged ({reason}): re-export or re-copy it") from None


def read_image(path: str | Path, grey: bool = True) -> np.ndarray:
    """Read a photograph strictly: ``(H, W)`` uint8 grey, or ``(H, W, 3)`` uint8 RGB.

    Raises:
        StereoError: the file is missing, not an image, truncated or corrupt, or too large.
    """
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"image {path} does not exist")
    image_size(path)
    check_complete(path)
    try:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV 5 raises where 4 returned None (its own size limit)
        image = None
    if image is None:
        raise StereoError(f"cannot decode image {path}: corrupt or not an image")
    return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
