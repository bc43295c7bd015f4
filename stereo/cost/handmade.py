"""Hand-made costs, the baselines: ZNCC, census, dense DAISY and dense SIFT."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stereo.cost.base import Cost
from stereo.cost.dense import box_mean
from stereo.cost.descriptor import DescriptorCost
from stereo.cost.sampling import sample, sweep_grid, to_tensor
from stereo.errors import StereoError


class ZNCCCost(Cost):
    """``1 − ZNCC`` over a ``window × window`` neighbourhood of the reference and the warped
    second image (costs in [0, 2])."""

    def __init__(self, window: int = 9, device: str | torch.device = "cpu") -> None:
        self.window = window
        self.name = f"zncc{window}"
        self.device = torch.device(device)
        self.info: dict[str, Any] = {}

    def volume(self, reference, other, sweep, progress=False):
        ref = to_tensor(reference, self.device)
        src = to_tensor(other, self.device)[0]
        k = self.window
        box = lambda t: box_mean(F.pad(t, (k // 2,) * 4, mode="replicate"), k)  # noqa: E731
        mu_r = box(ref)
        var_r = (box(ref * ref) - mu_r**2).clamp(min=0)
        out = torch.empty((len(sweep), sweep.height, sweep.width), device=self.device)
        for label in range(len(sweep)):
            warped, inside = sample(src, sweep_grid(sweep, label, self.device))
            w = warped[None]
            mu_w, mean_square, mean_product = box(torch.cat([w, w * w, ref * w], dim=1))[0]
            var_w = (mean_square - mu_w**2).clamp(min=0)
            cov = mean_product - mu_r * mu_w
            ncc = cov / torch.sqrt(var_r * var_w + 1e-6)
            out[label] = (1 - ncc)[0, 0]
            out[label][~inside] = float("nan")
        return out.cpu().numpy()


#: grey levels by which a census neighbour must be darker than the centre to set its bit:
#: bilinear sampling rounds differently on CUDA and the CPU (values 1e-5 apart where the
#: sample falls on a pixel), and an exact ``<`` flipped bits between equal grey levels
CENSUS_TOLERANCE = 1e-3


class CensusCost(Cost):
    """Hamming distance of ``window × window`` census transforms, averaged over a 5×5
    neighbourhood (costs in [0, 1]: share of differing bits). A bit says the neighbour is
    darker than the centre by more than :data:`CENSUS_TOLERANCE` grey levels."""

    def __init__(self, window: int = 7, device: str | torch.device = "cpu") -> None:
        self.window = window
        self.name = f"census{window}"
        self.device = torch.device(device)
        self.info: dict[str, Any] = {}

    def _census(self, image: Tensor) -> Tensor:
        k, r = self.window, self.window // 2
        padded = F.pad(image, (r, r, r, r), mode="replicate")
        patches = F.unfold(padded, k)  # (1, k², H·W)
        centre = image.reshape(1, 1, -1)
        return (patches < centre - CENSUS_TOLERANCE).reshape(k * k, *image.shape[-2:])

    def volume(self, reference, other, sweep, progress=False):
        ref = self._census(to_tensor(reference, self.device))
        src = to_tensor(other, self.device)[0]
        out = torch.empty((len(sweep), sweep.height, sweep.width), device=self.device)
        for label in range(len(sweep)):
            warped, inside = sample(src, sweep_grid(sweep, label, self.device))
            bits = self._census(warped[None])
            ham = (bits != ref).float().mean(dim=0)[None, None]
            out[label] = F.avg_pool2d(F.pad(ham, (2, 2, 2, 2), mode="replicate"), 5, 1)[0, 0]
            out[label][~inside] = float("nan")
        return out.cpu().numpy()


class HandMadeDescriptorCost(DescriptorCost):
    """A descriptor cost whose per-pixel features come from a fixed algorithm (no network):
    subclasses set ``name`` and implement :meth:`features`, which return the descriptors on
    ``device`` (where the volume is sampled)."""

    def __init__(self, name: str, device: str | torch.device = "cpu") -> None:
        self.name = name
        self.model = None
        self.device = torch.device(device)
        self.info = {}


class DaisyCost(HandMadeDescriptorCost):
    """L2 distance of dense DAISY descriptors (opencv-contrib; Tola et al.: radius 15,
    3 rings × 8 histograms × 8 orientations = 200-D, full normalisation).

    Kept on OpenCV (one keypoint per pixel) rather than ``skimage.feature.daisy``: the
    benchmark's DAISY + graph cuts baseline is Tola's descriptor with its full
    normalisation, which skimage's dense form (other smoothing, per-histogram
    normalisation, no border pixels) does not reproduce."""

    def __init__(self, radius: float = 15.0, device: str | torch.device = "cpu") -> None:
        super().__init__("daisy", device)
        self.radius = radius

    def features(self, image: np.ndarray) -> Tensor:
        if not hasattr(cv2, "xfeatures2d"):
            raise StereoError("DAISY needs opencv-contrib-python-headless (cv2.xfeatures2d)")
        daisy = cv2.xfeatures2d.DAISY_create(
            radius=self.radius, q_radius=3, q_theta=8, q_hist=8, norm=cv2.xfeatures2d.DAISY_NRM_FULL
        )
        h, w = image.shape
        ys, xs = np.mgrid[0:h, 0:w]
        keypoints = [
            cv2.KeyPoint(float(x), float(y), 1) for y, x in zip(ys.ravel(), xs.ravel(), strict=True)
        ]
        _, desc = daisy.compute(image, keypoints)
        if desc is None or len(desc) != h * w:
            raise StereoError("OpenCV DAISY did not describe every pixel")
        # OpenCV describes on the CPU; the volume is sampled on the cost's device
        return torch.from_numpy(desc.reshape(h, w, -1).transpose(2, 0, 1).copy()).to(self.device)


class DenseSiftCost(HandMadeDescriptorCost):
    """L2 distance of dense SIFT descriptors (kornia's ``DenseSIFTDescriptor``: 4×4 cells of
    ``cell`` pixels × 8 orientations = 128-D, clipped at 0.2, RootSIFT), one per pixel.

    kornia's cell grid is centred between pixels for 4 cells; the descriptor of pixel ``x``
    here describes the window centred at ``x + ½`` (both images alike, so costs compare
    like with like).
    """

    def __init__(self, cell: int = 8, device: str | torch.device = "cpu") -> None:
        super().__init__(f"dsift{cell}", device)
        self.cell = cell

    @torch.no_grad()
    def features(self, image: np.ndarray) -> Tensor:
        try:
            from kornia.feature import DenseSIFTDescriptor
        except ImportError:  # pragma: no cover - kornia is a dependency
            raise StereoError("dense SIFT needs kornia: pip install kornia") from None
        bins = 4
        extent = bins * self.cell  # pixels the 4×4 cells span
        pad = extent // 2
        sift = DenseSIFTDescriptor(
            num_ang_bins=8, num_spatial_bins=bins, spatial_bin_size=self.cell, padding=0
        ).to(self.device)
        h, w = image.shape
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32) / 255.0)[None, None]
        x = F.pad(x.to(self.device), (pad, pad, pad, pad), mode="reflect")
        desc = sift(x)[0]
        # output j is centred at input j + (bins − 1)·cell/2 − e/2 of the padded image
        e = 1 if self.cell % 2 == 0 else 0
        first = pad - ((bins - 1) * self.cell - e) // 2
        return desc[:, first : first + h, first : first + w].contiguous()
