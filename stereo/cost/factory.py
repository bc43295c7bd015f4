"""One factory from a model name to a matching cost: a registry model, a weights file, a
baseline name, or several joined by commas."""

from __future__ import annotations

from stereo.config import StereoConfig
from stereo.cost.base import PRECISIONS, Cost
from stereo.cost.descriptor import DescriptorCost
from stereo.cost.fused import FusedCost
from stereo.cost.handmade import CensusCost, DaisyCost, DenseSiftCost, ZNCCCost
from stereo.cost.two_channel import TwoChannelCost
from stereo.errors import StereoError
from stereo.patchnet.models import DescriptorNet

#: costs that need no network, by the name ``--model`` takes.
BASELINE_COSTS = {
    "zncc": lambda device: ZNCCCost(9, device),
    "census": lambda device: CensusCost(7, device),
    "daisy": lambda device: DaisyCost(device=device),
    "dsift": lambda device: DenseSiftCost(device=device),
}


def make_cost(
    name: str,
    device: str = "cpu",
    untrained: bool = False,
    descriptor_variance: float = DescriptorCost.variance_kept,
    prewarp: bool = DescriptorCost.prewarp,
    prewarp_planes: int = DescriptorCost.prewarp_planes,
    replicated_upsampling: bool = DescriptorCost.replicated_upsampling,
    precision: str = DescriptorCost.precision,
    score_stride: int = 0,
    window_scale: int = 0,
) -> Cost:
    """The matching cost of a registry model, a weights file, a baseline name, or several of
    these joined by commas (their mean normalised volume, :class:`~stereo.cost.fused.FusedCost`)
    (``descriptor_variance``, ``prewarp``, ``prewarp_planes``, ``replicated_upsampling``,
    ``precision``: see :class:`~stereo.cost.descriptor.DescriptorCost`; ``score_stride``,
    ``window_scale``: see :class:`~stereo.cost.two_channel.TwoChannelCost`)."""
    if not 0.0 < descriptor_variance <= 1.0:
        raise StereoError(f"descriptor variance kept must lie in (0, 1], not {descriptor_variance}")
    if prewarp_planes < 1:
        raise StereoError(f"pre-warp planes must be at least 1, not {prewarp_planes}")
    if precision not in PRECISIONS:
        raise StereoError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    cost = _make_cost(name, device, untrained, score_stride, window_scale)
    for part in cost.components if isinstance(cost, FusedCost) else [cost]:
        if isinstance(part, DescriptorCost):
            part.variance_kept = descriptor_variance
            part.prewarp = prewarp
            part.prewarp_planes = prewarp_planes
            part.replicated_upsampling = replicated_upsampling
        if isinstance(part, (DescriptorCost, TwoChannelCost)):
            part.precision = precision
    return cost


def cost_of(cfg: StereoConfig) -> Cost:
    """The matching cost a run's configuration asks for (:func:`make_cost`)."""
    return make_cost(
        cfg.model,
        cfg.device,
        cfg.untrained,
        cfg.descriptor_variance,
        cfg.prewarp,
        cfg.prewarp_planes,
        precision=cfg.precision,
        score_stride=cfg.score_stride,
        window_scale=cfg.window_scale,
    )


def _make_cost(
    name: str, device: str, untrained: bool, score_stride: int = 0, window_scale: int = 0
) -> Cost:
    if "," in name:  # a fused cost: "zncc,l2net.castle-fixed"
        parts = [part.strip() for part in name.split(",")]
        return FusedCost(
            [_make_cost(part, device, untrained, score_stride, window_scale) for part in parts]
        )
    if name in BASELINE_COSTS:
        return BASELINE_COSTS[name](device)
    from stereo.patchnet.weights import load_model

    if not untrained:
        name = stereo_weights_name(name)
    try:
        model = load_model(name, device=device, untrained=untrained)
    except StereoError as error:
        if "unknown model" in str(error):
            raise StereoError(f"{error}; or a baseline: {', '.join(BASELINE_COSTS)}") from None
        raise
    if isinstance(model, DescriptorNet):
        return DescriptorCost(model, device)
    return TwoChannelCost(model, device, score_stride, window_scale)


def stereo_weights_name(name: str) -> str:
    """A registry family name (``l2net``, ``2ch-deep`` …) → the stem of its shipped stereo
    weights (``models/stereo_defaults.json``); any other name unchanged. A family without
    stereo weights is refused, naming its keypoint-patch weights."""
    from stereo.patchnet.models import MODELS
    from stereo.patchnet.weights import default_weights_table, models_dir, shipped_weights

    if name not in MODELS:
        return name
    path = shipped_weights(name, "stereo")
    if path is not None and path.is_file():
        return path.stem
    families = ", ".join(sorted(default_weights_table("stereo"))) or "none"
    patch = shipped_weights(name, "patch")
    hint = (
        f"; its keypoint-patch weights load as --model {patch.stem} (trained on "
        "scale-normalised keypoint patches: a poor stereo cost)"
        if patch is not None and patch.is_file()
        else ""
    )
    raise StereoError(
        f"no stereo weights ship for {name!r} yet (families with stereo weights: {families}; "
        f"files in {models_dir()}){hint}"
    )
