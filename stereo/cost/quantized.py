"""8-bit integer arithmetic for the 2-channel networks on the CPU.

At its full output stride a 2-channel network's dense pass is a plain convolutional network
(its trunk, then its decision layer as one convolution over the trunk's output map), so
PyTorch's post-training static quantization applies as is: weights per output channel and
activations per tensor in 8 bits, the activation ranges observed on the pair being matched
(:func:`quantized_network`, built directly from PyTorch's quantized modules: FX graph-mode
quantization imported some 1,200 modules, 1.3 s, on first use). On a 2-core Intel Xeon with
AVX-512 VNNI the network's pass runs about 3× faster than in float32 (session 21).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn
from torch.ao.nn.intrinsic.quantized import ConvReLU2d
from torch.ao.nn.quantized import Conv2d as QuantizedConv2d
from torch.ao.quantization.observer import HistogramObserver, PerChannelMinMaxObserver

from stereo.errors import StereoError
from stereo.patchnet.models.deepcompare import TwoChannel

#: the start of PyTorch 2.13's warning that quantized tensors will go in a later release
#: (``constraints.txt`` pins 2.13; :func:`int8_available` turns ``auto`` to float32 without them).
#: PyTorch gives it once a process, at the first quantized tensor made: in
#: :func:`quantized_network`, which silences it.
DEPRECATION_NOTICE = "torch.quantize_per_tensor, torch.quantize_per_channel"

#: PyTorch's quantized CPU engines that run these networks, preferred first: FBGEMM (``x86``,
#: which picks oneDNN for some shapes, ran 2ch-deep's blocks 1.6–4× slower than FBGEMM at
#: widths 500–1607 px, session 21, and its time varied with the width; FBGEMM's stayed at
#: about 100 ns a pixel, 3× faster than float32)
ENGINES = ("fbgemm", "x86")


def int8_available() -> bool:
    """Whether this PyTorch build runs 8-bit quantized convolutions on the CPU."""
    engines = torch.backends.quantized.supported_engines
    return hasattr(torch, "quantize_per_tensor") and any(e in engines for e in ENGINES)


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


def int8_refusal(model: nn.Module, output_stride: int) -> str:
    """The one-line reason ``--precision int8`` cannot run ``model`` at ``output_stride``."""
    if not isinstance(model, TwoChannel) or model.input_size is None:
        return (
            f"--precision int8 runs the one-stream 2-channel networks (2ch, 2ch-deep) only, "
            f"not {model.name}; use --precision float32"
        )
    return (
        f"--precision int8 runs {model.name} at its full score stride "
        f"({full_stride(model)}) only, not {output_stride}; "
        "use --precision float32 or --score-stride 0"
    )


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
    """``network`` (float32, CPU; convolutions each followed or not by a ReLU, and max
    pools) in 8-bit integer arithmetic: activation ranges observed on the ``calibration``
    inputs (each ``(1, C, H, W)``; histograms, full 8 bits where the CPU has VNNI), weights
    per output channel (symmetric). Its first and last convolutions stay float32: they are
    a tiny share of the work (2 input channels; one output) and in 8 bits they account for
    most of the error (2ch-deep at window scale 1 on the embedded scene: mean score error
    1.4 % of the scores' spread, against 4.5 % all in 8 bits; the best hypothesis the same at
    98.5 % of pixels). Same input and output as ``network``, float32."""
    torch.backends.quantized.engine = quantization_engine()
    units = network_units(network)
    first, middle, last = units[0], units[1:-1], units[-1]
    observers = observed_ranges(first, middle, calibration)
    scale, zero_point = observers[0].calculate_qparams()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", DEPRECATION_NOTICE)
        quantized = [
            quantized_unit(unit, observer)
            for unit, observer in zip(middle, observers[1:], strict=True)
        ]
    return QuantizedNetwork(first, float(scale), int(zero_point), nn.Sequential(*quantized), last)


class QuantizedNetwork(nn.Module):
    """A float first stage, 8-bit middle stages, a float last stage (:func:`quantized_network`)."""

    def __init__(
        self, first: nn.Module, scale: float, zero_point: int, middle: nn.Module, last: nn.Module
    ) -> None:
        super().__init__()
        self.first, self.middle, self.last = first, middle, last
        self.scale, self.zero_point = scale, zero_point

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` float32 → the float network's output, float32."""
        x = torch.quantize_per_tensor(self.first(x), self.scale, self.zero_point, torch.quint8)
        return self.last(self.middle(x).dequantize())


def network_units(network: nn.Sequential) -> list[nn.Sequential]:
    """The layers of ``network`` grouped as each convolution with the ReLU after it (if
    any), and each max pool alone; anything else is refused."""
    units: list[list[nn.Module]] = []
    for layer in network:
        if isinstance(layer, nn.ReLU) and units and isinstance(units[-1][-1], nn.Conv2d):
            units[-1].append(nn.ReLU())
        elif isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            units.append([layer])
        else:
            raise StereoError(f"no 8-bit form for layer {type(layer).__name__}")
    return [nn.Sequential(*unit) for unit in units]


def observed_ranges(
    first: nn.Module, middle: list[nn.Sequential], calibration: list[Tensor]
) -> list[nn.Module]:
    """Histogram observers of the output of ``first`` and of each convolution unit of
    ``middle`` (pools keep their input's range), fed the float network on ``calibration``."""
    seven_bits = {} if cpu_has_vnni() else {"quant_min": 0, "quant_max": 127}
    observers = [HistogramObserver(**seven_bits) for _ in range(len(middle) + 1)]
    with torch.no_grad():
        for x in calibration:
            x = first(x)
            observers[0](x)
            for unit, observer in zip(middle, observers[1:], strict=True):
                x = unit(x)
                observer(x)
    return observers


def quantized_unit(unit: nn.Sequential, observer: nn.Module) -> nn.Module:
    """A unit of :func:`network_units` in 8 bits: a max pool as it is (it runs on quantized
    tensors), a convolution (+ ReLU) with per-channel symmetric 8-bit weights and the output
    range ``observer`` saw."""
    conv = unit[0]
    if isinstance(conv, nn.MaxPool2d):
        return conv
    kind = ConvReLU2d if len(unit) == 2 else QuantizedConv2d
    layer = kind(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
    )
    weights = PerChannelMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    weight = conv.weight.detach()
    weights(weight)
    scales, zero_points = weights.calculate_qparams()
    layer.set_weight_bias(
        torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8),
        None if conv.bias is None else conv.bias.detach(),
    )
    scale, zero_point = observer.calculate_qparams()
    layer.scale, layer.zero_point = float(scale), int(zero_point)
    return layer


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
    """The first of :data:`ENGINES` this PyTorch build has."""
    engines = torch.backends.quantized.supported_engines
    for engine in ENGINES:
        if engine in engines:
            return engine
    raise StereoError(
        "this PyTorch build has no x86 quantized engine for --precision int8; "
        "use --precision float32"
    )
