"""Helpers the benchmark scripts share."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
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


def save_results(out: Path, summary: dict, write_table: Callable[[dict, Path], None]) -> None:
    """Write a benchmark's ``summary`` as ``out`` + ``.json`` and its table as ``out`` +
    ``.md`` (the pair :func:`saved_results` reads back)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    write_table(summary, out.with_suffix(".md"))


def merge_scores(results: dict, pair: str, rows: dict[str, dict]) -> None:
    """Add one pair's ``{method: scores}`` to ``results`` (``{pair: {method: scores}}``): a
    method's new keys (e.g. λ values) join the ones an earlier run left."""
    for method, scores in rows.items():
        results.setdefault(pair, {}).setdefault(method, {}).update(scores)


@dataclass(frozen=True)
class MethodSpec:
    """A benchmark row's method: ``NAME[:OPTION]...`` with options ``wta`` (winner-take-all),
    a number (graph cuts at that smoothness weight λ), ``flat`` (descriptor costs describe
    the raw second image, not the one pre-warped by the middle plane) and ``bilinear``
    (a network with ``input_scale`` 2 runs on the image upsampled bilinearly, not by pixel
    replication: ``DescriptorCost.replicated_upsampling``; ``cost_sweep.py`` only) and
    ``float32`` / ``bfloat16`` (the descriptor network's arithmetic, instead of ``auto``)."""

    name: str
    optimizer: str = "graphcut"
    smoothness: float | None = None  # None: the cost's λ from models/smoothness.json
    prewarp: bool = True
    replicated_upsampling: bool = True
    precision: str = "auto"


def parse_method(spec: str) -> MethodSpec:
    """The :class:`MethodSpec` of a ``--methods`` entry; exits with a one-line error on an
    unknown option."""
    name, *options = spec.split(":")
    optimizer, smoothness, prewarp, replicated = "graphcut", None, True, True
    precision = "auto"
    for option in options:
        if option in ("float32", "bfloat16"):
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
                    "float32, bfloat16 or a λ"
                )
    return MethodSpec(name, optimizer, smoothness, prewarp, replicated, precision)
