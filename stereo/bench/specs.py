"""The one parser of the benchmarks' method specs (``NAME[:OPTION]...``) and pair specs
(``SCENE:r:k``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from stereo.config import StereoConfig
from stereo.mrf.graphcut import MRFConfig


@dataclass(frozen=True)
class MethodSpec:
    """A benchmark row's method: ``NAME[:OPTION]...`` with options ``wta`` (winner-take-all),
    a number (graph cuts at that smoothness weight λ), ``flat`` (descriptor costs describe
    the raw second image, not the one pre-warped by the middle plane) and ``bilinear``
    (a network with ``input_scale`` 2 runs on the image upsampled bilinearly, not by pixel
    replication: ``DescriptorCost.replicated_upsampling``; ``cost_sweep.py`` only) and
    ``float32`` / ``bfloat16`` / ``int8`` (the network's arithmetic, instead of ``auto``) and
    ``nosub`` (depth at the labels only: no sub-label refinement, as before session 7);
    2-channel costs: ``sN`` (score every Nth pixel, ``--score-stride N``), ``wsN`` (the
    network reads the images enlarged N times, ``--window-scale N``), ``full`` (the full
    sweep, ``--cascade none``), ``zncc`` (the ZNCC cascade on rectified pairs too,
    ``--cascade zncc``), ``census`` (census proposes and is blended, ``--cascade
    census``), ``zc`` (the mean of ZNCC and census does, ``--cascade zncc,census``),
    ``bandN`` (``--cascade-band N``) and ``pN`` (the proposal on images resized by 1/N,
    ``--cascade-scale``) and ``poolN`` (the proposal's MRF on its volume averaged over N × N
    pixel blocks, ``--cascade-pool N``) and ``cN`` (N expansion cycles of the proposal's MRF, 0
    = its winner-take-all labels: ``--cascade-cycles``) and ``fN`` (the MRF on the blend of N %
    proposal cost, ``--cascade-fuse N/100``) and ``tN`` (a label is scored in a tile where N %
    of its pixels propose it, ``--cascade-share N/100``) and ``cfN`` (the proposal alone where
    the reference is flat, ``--cascade-flat-std N``, ``cf0`` off); edge fusion:
    ``edge`` (census near depth edges on any search, ``--edge-cost census``), ``ezncc``
    (ZNCC there, ``--edge-cost zncc``), ``noedge``
    (``--edge-cost none``), ``erN`` (``--edge-radius N``), ``ebN`` (``--edge-blend N/100``),
    ``fsN`` (``--edge-flat-std N``, ``fs0`` off); every cost: ``mtN`` (the MRF solved in N
    bands at once, ``--mrf-threads N``) and ``mrfN`` (N expansion cycles, ``--mrf-iterations
    N``); uncalibrated pairs: ``rotation`` / ``projective``
    (``--rectification``)."""

    name: str
    optimizer: str = "graphcut"
    smoothness: float | None = None  # None: the cost's λ from models/smoothness.json
    prewarp: bool = True
    replicated_upsampling: bool = True
    precision: str = "auto"
    sublabel: bool = True
    score_stride: int = StereoConfig.score_stride
    window_scale: int = StereoConfig.window_scale
    cascade: str = StereoConfig.cascade
    cascade_band: int = StereoConfig.cascade_band
    cascade_scale: float = StereoConfig.cascade_scale
    cascade_pool: int = StereoConfig.cascade_pool
    cascade_cycles: int = StereoConfig.cascade_cycles
    cascade_fuse: float | None = StereoConfig.cascade_fuse
    cascade_share: float = StereoConfig.cascade_share
    cascade_flat_std: float = StereoConfig.cascade_flat_std
    edge_cost: str = StereoConfig.edge_cost
    edge_blend: float = StereoConfig.edge_blend
    edge_radius: int = StereoConfig.edge_radius
    edge_flat_std: float = StereoConfig.edge_flat_std
    mrf_threads: int = MRFConfig.threads
    mrf_iterations: int | None = MRFConfig.iterations
    rectification: str = StereoConfig.rectification

    def config(self, **settings) -> StereoConfig:
        """The run's :class:`StereoConfig`: this method's settings and ``settings`` (the
        benchmark's size, labels, depth range …)."""
        return StereoConfig(
            model=self.name,
            optimizer=self.optimizer,
            mrf=MRFConfig(
                smoothness=self.smoothness, threads=self.mrf_threads, iterations=self.mrf_iterations
            ),
            prewarp=self.prewarp,
            precision=self.precision,
            sublabel=self.sublabel,
            score_stride=self.score_stride,
            window_scale=self.window_scale,
            cascade=self.cascade,
            cascade_band=self.cascade_band,
            cascade_scale=self.cascade_scale,
            cascade_pool=self.cascade_pool,
            cascade_cycles=self.cascade_cycles,
            cascade_fuse=self.cascade_fuse,
            cascade_share=self.cascade_share,
            cascade_flat_std=self.cascade_flat_std,
            edge_cost=self.edge_cost,
            edge_blend=self.edge_blend,
            edge_radius=self.edge_radius,
            edge_flat_std=self.edge_flat_std,
            rectification=self.rectification,
            **settings,
        )


def parse_method(spec: str) -> MethodSpec:
    """The :class:`MethodSpec` of a ``--methods`` entry; exits with a one-line error on an
    unknown option."""
    name, *options = spec.split(":")
    flags = {
        "nosub": {"sublabel": False},
        "float32": {"precision": "float32"},
        "bfloat16": {"precision": "bfloat16"},
        "int8": {"precision": "int8"},
        "wta": {"optimizer": "wta"},
        "flat": {"prewarp": False},
        "bilinear": {"replicated_upsampling": False},
        "full": {"cascade": "none"},
        "zncc": {"cascade": "zncc"},
        "census": {"cascade": "census"},
        "zc": {"cascade": "zncc,census"},
        "edge": {"edge_cost": "census"},
        "ezncc": {"edge_cost": "zncc"},
        "noedge": {"edge_cost": "none"},
        "rotation": {"rectification": "rotation"},
        "projective": {"rectification": "projective"},
    }
    numbered = {
        "s": "score_stride",
        "ws": "window_scale",
        "band": "cascade_band",
        "p": "cascade_scale",
        "pool": "cascade_pool",
        "c": "cascade_cycles",
        "f": "cascade_fuse",
        "t": "cascade_share",
        "cf": "cascade_flat_std",
        "er": "edge_radius",
        "eb": "edge_blend",
        "fs": "edge_flat_std",
        "mt": "mrf_threads",
        "mrf": "mrf_iterations",
    }
    values: dict = {}
    for option in options:
        prefix = option.rstrip("0123456789")
        if option in flags:
            values.update(flags[option])
        elif prefix in numbered and option != prefix:
            number = int(option[len(prefix) :])
            if prefix == "p" and number == 0:
                sys.exit(f"error: method {spec!r}: p0 is no resize factor; p2 halves the images")
            value: float = number
            if prefix == "p":
                value = 1.0 / number
            elif prefix in ("f", "t", "eb"):
                value = number / 100  # a percentage
            values[numbered[prefix]] = value
        else:
            try:
                values["smoothness"] = float(option)
            except ValueError:
                sys.exit(
                    f"error: method {spec!r}: option {option!r} is not {', '.join(flags)}, "
                    "sN, wsN, bandN, pN, poolN, cN, fN, tN, cfN, erN, ebN, fsN, mtN, mrfN or a λ"
                )
    return MethodSpec(name, **values)


def parse_pair(spec: str) -> tuple[str, int, int]:
    """``SCENE:r:k`` → ``(scene, r, k)``: reference view r and second view r + k; exits
    with a one-line error on another form."""
    parts = spec.split(":")
    try:
        scene, r, k = parts
        return scene, int(r), int(k)
    except ValueError:
        sys.exit(f"error: pair {spec!r} is not SCENE:r:k (e.g. fountain-P11:5:1)")
