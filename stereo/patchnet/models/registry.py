"""One registry of every patch network, by the name used on the command line and in weight
file names. :func:`build_model` makes a freshly initialised network; loading trained weights
is :func:`stereo.patchnet.weights.load_model`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from stereo.errors import StereoError
from stereo.patchnet.models.base import PatchNet
from stereo.patchnet.models.deepcompare import (
    TRUNK_2CH,
    TRUNK_2CH_DEEP,
    Siamese,
    TwoChannel,
    TwoChannel2Stream,
)
from stereo.patchnet.models.deepdesc import CNN3
from stereo.patchnet.models.l2net import CSL2Net, L2Net


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registry model and what the literature says of it."""

    build: Callable[[], PatchNet]
    summary: str
    #: parameter count given in REFERENCE.md (None where it gives none).
    reference_parameters: int | None = None


MODELS: dict[str, ModelSpec] = {
    "2ch": ModelSpec(
        partial(TwoChannel, TRUNK_2CH, 256),
        "2-channel, C(96,7,3) P C(192,5) P C(256,3) F(1)",
        913_377,
    ),
    "2ch-deep": ModelSpec(
        partial(TwoChannel, TRUNK_2CH_DEEP, 768), "2-channel, 7 small convolutions, F(1)", 1_083_073
    ),
    "2ch-2stream": ModelSpec(
        TwoChannel2Stream, "2-channel central-surround, F(768) F(1)", 2_353_153
    ),
    "2ch-spp": ModelSpec(
        partial(TwoChannel, TRUNK_2CH, 256 * 5, (1, 2)),
        "2-channel + spatial pyramid pooling (levels 1, 2): any patch size ≥ 64",
    ),
    "siam": ModelSpec(
        partial(Siamese, two_stream=False, head=True), "siamese, 256-D, F(512) F(1)", 1_171_585
    ),
    "pseudo-siam": ModelSpec(
        partial(Siamese, two_stream=False, head=True, shared=False),
        "pseudo-siamese (unshared branches), F(512) F(1)",
        2_080_001,
    ),
    "siam-l2": ModelSpec(
        partial(Siamese, two_stream=False, head=False),
        "siamese, 256-D unit descriptor, L2",
        908_416,
    ),
    "siam-2stream": ModelSpec(
        partial(Siamese, two_stream=True, head=True),
        "siamese central-surround, 512-D, F(1024) F(1)",
        3_451_457,
    ),
    "siam-2stream-l2": ModelSpec(
        partial(Siamese, two_stream=True, head=False),
        "siamese central-surround, 512-D unit descriptor, L2",
        2_400_832,
    ),
    "cnn3": ModelSpec(CNN3, "DeepDesc CNN3, tanh + L2 pooling + subtractive norm, 128-D, L2"),
    "l2net": ModelSpec(L2Net, "L2-Net, 32×32 inside, 128-D unit descriptor, L2", 1_334_560),
    "cs-l2net": ModelSpec(CSL2Net, "CS L2-Net, two L2-Net towers, 256-D unit descriptor"),
}


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a registry name, else raise listing the valid ones."""
    if name not in MODELS:
        raise StereoError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return name


def build_model(name: str) -> PatchNet:
    """A freshly initialised network of registry model ``name`` (CPU, train mode)."""
    model = MODELS[check_model_name(name)].build()
    model.name = name
    return model


def count_parameters(model: PatchNet) -> int:
    """Number of learnable parameters (weights and biases)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
