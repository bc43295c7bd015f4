"""8-bit integer arithmetic for the 2-channel networks on the CPU.

At its full output stride a 2-channel network's dense pass is a plain convolutional network
(its trunk, then its decision layer as one convolution over the trunk's output map), so
PyTorch's post-training static quantization applies as is: weights per output channel and
activations per tensor in 8 bits, the activation ranges observed on the pair being matched
(:func:`quantized_network`). On a CPU with AVX-512 VNNI the pass runs about 5× faster than
in float32 (2ch-deep, 2-core Intel Xeon, session 21).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn

from stereo.errors import StereoError
from stereo.patchnet.models.deepcompare import TwoChannel


def full_stride(model: nn.Module) -> int:
    """The product of the strides of a 2-channel trunk's layers (2ch-deep: 6, 2ch: 12)."""
    stride = 1
    for layer in model.trunk:
        if isinstance(layer, nn.Conv2d):
            stride *= layer.stride[0]
        elif isinstance(layer, nn.MaxPool2d):
            stride *= layer.stride
    return stride


def quantizable(model: nn.Module, output_stride: int) -> bool:
    """Whether the dense pass of ``model`` at ``output_stride`` is a plain network that
    :func:`quantized_network` can convert: a one-stream 2-channel model with a fixed input
    size, scored at its trunk's full stride (no dilated layers)."""
    plain = isinstance(model, TwoChannel) and model.input_size is not None
    return plain and output_stride == full_stride(model)


def plain_network(model: TwoChannel, trunk_output: tuple[int, int, int]) -> nn.Sequential:
    """``model``'s dense pass at full stride as one network: ``(B, 2, H, W)`` padded
    normalised pair → ``(B, 1, h, w)`` scores on the stride grid. ``trunk_output``:
    ``(C, h, w)`` of the trunk on one window; the decision layer becomes an ``h × w``
    convolution with the same weights."""
    decision = model.head[0]
    if len(model.head) != 1 or decision.out_features != 1:
        raise StereoError(f"no plain dense form for model {model.name!r}'s decision layers")
    head = nn.Conv2d(trunk_output[0], 1, trunk_output[1:])
    with torch.no_grad():
        head.weight.copy_(decision.weight.reshape(1, *trunk_output))
        head.bias.copy_(decision.bias)
    layers = [floor_pool(layer) for layer in copy.deepcopy(list(model.trunk))]
    return nn.Sequential(*layers, head).eval()


def floor_pool(layer: nn.Module) -> nn.Module:
    """A ceil-mode max pool as a floor-mode one (the dense pass's grid: a block's last
    partial window is not scored); any other layer as it is."""
    if isinstance(layer, nn.MaxPool2d) and layer.ceil_mode:
        return nn.MaxPool2d(layer.kernel_size, layer.stride)
    return layer


def quantized_network(network: nn.Sequential, calibration: list[Tensor]) -> nn.Module:
    """``network`` (float32, CPU) in 8-bit integer arithmetic: activation ranges observed
    on the ``calibration`` inputs (each ``(1, C, H, W)``; histograms, full 8 bits where the
    CPU has VNNI), weights per output channel (symmetric). Its first and last layers stay
    float32: they are a tiny share of the work (2 input channels; one output) and in 8
    bits they account for most of the error (2ch-deep on the embedded scene: mean score
    error 1.4 % of the scores' spread, against 4.5 % all in 8 bits; the best hypothesis the
    same at 98.6 % of pixels). Same input and output as ``network``, float32."""
    from torch.ao.quantization import QConfig, QConfigMapping
    from torch.ao.quantization.observer import HistogramObserver, PerChannelMinMaxObserver
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = quantization_engine()
    qconfig = QConfig(
        activation=HistogramObserver.with_args(reduce_range=not cpu_has_vnni()),
        weight=PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        ),
    )
    names = [name for name, _ in network.named_children()]
    mapping = QConfigMapping().set_global(qconfig)
    for name in (names[0], names[-1]):
        mapping = mapping.set_module_name(name, None)
    with warnings.catch_warnings():  # FX quantization announces its move to torchao
        warnings.simplefilter("ignore")
        observed = prepare_fx(copy.deepcopy(network), mapping, (calibration[0],))
        with torch.no_grad():
            for x in calibration:
                observed(x)
        return convert_fx(observed).eval()


def cpu_has_vnni() -> bool:
    """Whether this CPU multiplies 8-bit integers with VNNI (AVX-512 VNNI or AVX-VNNI), so
    8-bit activations may use their full range; without it they keep 7 bits (FBGEMM's
    guard against 16-bit overflow). Read from ``/proc/cpuinfo``; False where it is absent."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def quantization_engine() -> str:
    """The CPU's quantized engine: ``x86`` (oneDNN and FBGEMM), else ``fbgemm``."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm"):
        if engine in engines:
            return engine
    raise StereoError(
        "this PyTorch build has no x86 quantized engine for --precision int8; "
        "use --precision float32"
    )
