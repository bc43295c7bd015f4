"""Patch-comparison networks: one file per family, one registry of names."""

from stereo.patchnet.models.base import DescriptorNet, PatchNet
from stereo.patchnet.models.registry import MODELS, build_model, check_model_name, count_parameters

__all__ = [
    "MODELS",
    "DescriptorNet",
    "PatchNet",
    "build_model",
    "check_model_name",
    "count_parameters",
]
