"""One run's configuration: :class:`StereoConfig` (every knob, its unit, checked when made)
and the memory a run will need, refused before anything is allocated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stereo.cost.base import PRECISIONS
from stereo.cost.descriptor import DescriptorCost
from stereo.errors import StereoError
from stereo.mrf.graphcut import (
    MRFConfig,
)
from stereo.patchnet.devices import check_device

#: the default cost: L2-Net trained on upright windows of 32 working pixels (castle-P19), the
#: most accurate learned cost in benchmarks/results/strecha.md, about 50 s a pair end to end
#: at 768×512 × 64 labels on 2 CPU cores; ``l2net`` alone loads the keypoint-patch weights.
DEFAULT_MODEL = "l2net.castle-fixed-s1"
OPTIMIZERS = ("graphcut", "wta")
INVALID_MODES = ("nan", "fill")  # pixels whose match leaves the second image: NaN or kept
MAX_LABELS = 4096  # hypotheses per pixel (memory is checked too: check_volume_fits)
MIN_WORKING_SIZE = 32  # pixels on the long side


@dataclass(frozen=True)
class StereoConfig:
    """Every knob of a run, with its unit."""

    model: str = DEFAULT_MODEL  # registry name, weights file, or zncc | census | daisy | dsift
    n_labels: int = 64  # depth hypotheses, uniform in inverse depth
    depth_range: tuple[float, float] | None = None  # metres; None: estimated from matches
    working_size: int = 768  # long side of the working resolution, pixels (never upsampled)
    optimizer: str = "graphcut"  # graphcut | wta
    mrf: MRFConfig = field(default_factory=MRFConfig)
    invalid: str = "nan"  # pixels whose depth leaves the second image: nan | fill
    device: str = "cpu"
    untrained: bool = False  # random network weights (tests and timing only)
    # L2 descriptor costs: share of the variance the principal-component projection keeps
    descriptor_variance: float = DescriptorCost.variance_kept
    # descriptor costs on plane sweeps: describe the second image pre-warped by the middle plane
    prewarp: bool = DescriptorCost.prewarp
    prewarp_planes: int = DescriptorCost.prewarp_planes  # label runs with their own pre-warp
    precision: str = DescriptorCost.precision  # descriptor networks: auto | float32 | bfloat16
    lr_check: bool = False  # also match the second image against the first; NaN where they disagree
    lr_tolerance: float = 1.0  # left-right agreement, in label steps
    # refine each pixel below the label step (parabola through its costs, stereo.refine)
    sublabel: bool = True

    def __post_init__(self) -> None:
        """Refuse a configuration that cannot run, before any work is done."""
        _check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("--invalid", self.invalid, INVALID_MODES)
        _check_choice("--precision", self.precision, PRECISIONS)
        if not 2 <= self.n_labels <= MAX_LABELS:
            raise StereoError(f"--labels must lie in [2, {MAX_LABELS}], not {self.n_labels}")
        if self.working_size < MIN_WORKING_SIZE:
            raise StereoError(
                f"--size (the working long side) must be at least {MIN_WORKING_SIZE} px, "
                f"not {self.working_size}"
            )
        if self.depth_range is not None:
            lo, hi = self.depth_range
            if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0):
                raise StereoError(f"--depth-range {lo} {hi} must be positive finite metres")
            if lo >= hi:
                raise StereoError(
                    f"--depth-range min {lo} must be below max {hi}; swap them or widen it"
                )
        if not 0.0 < self.descriptor_variance <= 1.0:
            raise StereoError(
                f"--descriptor-variance must lie in (0, 1], not {self.descriptor_variance}"
            )
        if self.prewarp_planes < 1:
            raise StereoError(f"--prewarp-planes must be at least 1, not {self.prewarp_planes}")
        if not (np.isfinite(self.lr_tolerance) and self.lr_tolerance > 0):
            raise StereoError(f"left-right tolerance must be > 0 labels, not {self.lr_tolerance}")
        check_device(self.device)


def _check_choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise StereoError(f"unknown {option} {value!r}; valid: {', '.join(valid)}")


def volume_bytes(n_labels: int, height: int, width: int, lr_check: bool = False) -> int:
    """Peak memory of a run's cost volume and MRF, bytes: about seven float32 copies of the
    ``(L, h, w)`` volume at once (raw, normalised, the MRF's integer terms and gco's own)
    plus 512 float32 feature maps (descriptors of both images); twice the volume part with
    the left-right check."""
    volume = 7 * (2 if lr_check else 1) * n_labels
    return 4 * height * width * (volume + 512)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_volume_fits(cfg: StereoConfig, height: int, width: int) -> None:
    """Refuse, before anything is allocated, a volume that would not fit in memory."""
    need = volume_bytes(cfg.n_labels, height, width, cfg.lr_check)
    free = available_memory()
    if free is not None and need > free:
        raise StereoError(
            f"{cfg.n_labels} labels at {width}x{height} need about {need / 2**30:.1f} GiB of "
            f"memory, more than the {free / 2**30:.1f} GiB available; lower --labels or --size"
        )
