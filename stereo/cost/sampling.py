"""Reading a map at the coordinates a hypothesis gives: bilinear sampling with PyTorch
(any device) or OpenCV (CPU, channel groups)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stereo.geometry.sweep import inside_image

#: reference rows processed at once when sampling the second image (bounds memory).
ROW_CHUNK = 128
#: channels per ``cv2.remap`` call: OpenCV 5.0 crashes on more than 128 channels when
#: coordinates leave the image (a known limit of its generic remap), 64 is as fast
REMAP_CHANNELS = 64


def sample(image: Tensor, xy: np.ndarray) -> tuple[Tensor, Tensor]:
    """Bilinearly sample ``(C, Hs, Ws)`` at pixel coordinates ``(h, w, 2)``.

    Returns:
        ``(C, h, w)`` values and ``(h, w)`` bool: inside the image.
    """
    _, hs, ws = image.shape
    grid = torch.from_numpy(xy).to(image.device)
    inside = (grid[..., 0] >= 0) & (grid[..., 0] <= ws - 1) & (grid[..., 1] >= 0)
    inside &= grid[..., 1] <= hs - 1
    norm = torch.stack(
        [2 * grid[..., 0] / max(ws - 1, 1) - 1, 2 * grid[..., 1] / max(hs - 1, 1) - 1], dim=-1
    )
    values = F.grid_sample(
        image[None], norm[None], mode="bilinear", padding_mode="border", align_corners=True
    )[0]
    return values, inside


def channel_groups(image: Tensor) -> list[np.ndarray]:
    """A ``(C, H, W)`` CPU map as channel-last float32 arrays ``(H, W, ≤ REMAP_CHANNELS)``,
    the layout :func:`remap_sample` reads."""
    hwc = image.permute(1, 2, 0).float().numpy()
    return [
        np.ascontiguousarray(hwc[..., c : c + REMAP_CHANNELS])
        for c in range(0, hwc.shape[-1], REMAP_CHANNELS)
    ]


def remap_sample(groups: list[np.ndarray], xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample` on the CPU with OpenCV: bilinear with weights rounded to 1/32 pixel
    (``cv2.remap``), 3–4× faster than ``grid_sample`` on many channels, border replicated.

    Args:
        groups: :func:`channel_groups` of a ``(C, Hs, Ws)`` map.
        xy: ``(h, w, 2)`` float32 pixel coordinates.

    Returns:
        ``(h, w, C)`` values and ``(h, w)`` bool: inside the map.
    """
    hs, ws = groups[0].shape[:2]
    x, y = np.ascontiguousarray(xy[..., 0]), np.ascontiguousarray(xy[..., 1])
    parts = []
    for group in groups:
        warped = cv2.remap(group, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        parts.append(warped.reshape(*xy.shape[:2], group.shape[-1]))
    values = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    return values, inside_image(xy, hs, ws)


def to_tensor(image: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)[None, None]
