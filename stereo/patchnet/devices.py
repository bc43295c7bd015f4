"""Where the networks run: a device name checked before any work."""

from __future__ import annotations

import torch

from stereo.errors import StereoError


def available_devices() -> list[str]:
    """The device names this machine can run on: ``cpu``, and ``cuda``/``cuda:N`` per GPU."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    return names


def check_device(name: str) -> torch.device:
    """The torch device ``name`` names, or a one-line error listing the usable ones."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise StereoError(
            f"unknown device {name!r}; valid here: {', '.join(available_devices())}"
        ) from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise StereoError(
            f"device {name!r} is not supported; valid here: {', '.join(available_devices())}"
        )
    if not torch.cuda.is_available():
        raise StereoError(
            f"device {name!r} asked but no CUDA GPU is usable here (torch {torch.__version__}"
            f"{'' if torch.version.cuda else ', a CPU-only build'}); use --device cpu"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise StereoError(
            f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s); "
            f"valid here: {', '.join(available_devices())}"
        )
    return device
