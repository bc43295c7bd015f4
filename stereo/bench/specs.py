"""The one parser of the benchmarks' method specs (``NAME[:OPTION]...``) and pair specs
(``SCENE:r:k``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class MethodSpec:
    """A benchmark row's method: ``NAME[:OPTION]...`` with options ``wta`` (winner-take-all),
    a number (graph cuts at that smoothness weight λ), ``flat`` (descriptor costs describe
    the raw second image, not the one pre-warped by the middle plane) and ``bilinear``
    (a network with ``input_scale`` 2 runs on the image upsampled bilinearly, not by pixel
    replication: ``DescriptorCost.replicated_upsampling``; ``cost_sweep.py`` only) and
    ``float32`` / ``bfloat16`` (the descriptor network's arithmetic, instead of ``auto``) and
    ``nosub`` (depth at the labels only: no sub-label refinement, as before session 7)."""

    name: str
    optimizer: str = "graphcut"
    smoothness: float | None = None  # None: the cost's λ from models/smoothness.json
    prewarp: bool = True
    replicated_upsampling: bool = True
    precision: str = "auto"
    sublabel: bool = True


def parse_method(spec: str) -> MethodSpec:
    """The :class:`MethodSpec` of a ``--methods`` entry; exits with a one-line error on an
    unknown option."""
    name, *options = spec.split(":")
    optimizer, smoothness, prewarp, replicated = "graphcut", None, True, True
    precision, sublabel = "auto", True
    for option in options:
        if option == "nosub":
            sublabel = False
        elif option in ("float32", "bfloat16"):
            precision = option
        elif option == "wta":
            optimizer = "wta"
        elif option == "flat":
            prewarp = False
        elif option == "bilinear":
            replicated = False
        else:
            try:
                smoothness = float(option)
            except ValueError:
                sys.exit(
                    f"error: method {spec!r}: option {option!r} is not wta, flat, bilinear, "
                    "float32, bfloat16, nosub or a λ"
                )
    return MethodSpec(name, optimizer, smoothness, prewarp, replicated, precision, sublabel)


def parse_pair(spec: str) -> tuple[str, int, int]:
    """``SCENE:r:k`` → ``(scene, r, k)``: reference view r and second view r + k; exits
    with a one-line error on another form."""
    parts = spec.split(":")
    try:
        scene, r, k = parts
        return scene, int(r), int(k)
    except ValueError:
        sys.exit(f"error: pair {spec!r} is not SCENE:r:k (e.g. fountain-P11:5:1)")
