"""Helpers the benchmark scripts share."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path


def saved_results(out: Path, required: bool = False) -> dict:
    """The JSON a benchmark saved beside its table (``out`` + ``.json``); ``{}`` when there is
    none yet, or exit with a one-line error when ``required`` (``--table-only`` runs)."""
    path = out.with_suffix(".json")
    if path.is_file():
        return json.loads(path.read_text())
    if required:
        sys.exit(f"error: {path} does not exist; run the benchmark first")
    return {}


@dataclass(frozen=True)
class MethodSpec:
    """A benchmark row's method: ``NAME[:OPTION]...`` with options ``wta`` (winner-take-all),
    a number (graph cuts at that smoothness weight λ), ``flat`` (descriptor costs describe
    the raw second image, not the one pre-warped by the middle plane) and ``bilinear``
    (a network with ``input_scale`` 2 runs on the image upsampled bilinearly, not by pixel
    replication: ``DescriptorCost.replicated_upsampling``; ``cost_sweep.py`` only)."""

    name: str
    optimizer: str = "graphcut"
    smoothness: float | None = None  # None: the cost's λ from models/smoothness.json
    prewarp: bool = True
    replicated_upsampling: bool = True


def parse_method(spec: str) -> MethodSpec:
    """The :class:`MethodSpec` of a ``--methods`` entry; exits with a one-line error on an
    unknown option."""
    name, *options = spec.split(":")
    optimizer, smoothness, prewarp, replicated = "graphcut", None, True, True
    for option in options:
        if option == "wta":
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
                    f"error: method {spec!r}: option {option!r} is not wta, flat, bilinear or a λ"
                )
    return MethodSpec(name, optimizer, smoothness, prewarp, replicated)
