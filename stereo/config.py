"""One run's configuration: :class:`StereoConfig` (every knob, its unit, checked when made)
and the memory a run will need, refused before anything is allocated."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from stereo.cost.base import PRECISIONS
from stereo.cost.descriptor import DescriptorCost
from stereo.errors import StereoError
from stereo.mrf.graphcut import (
    MRFConfig,
)
from stereo.patchnet.devices import check_device
from stereo.settings import setting

#: the default cost: the 2ch-deep network fine-tuned on 64-px windows of synthetic
#: wide-baseline pairs with half-label near misses (models/2ch-deep.synthetic-stereo-2ch-fine
#: .json; its card sets window scale 2, stride 6 and a 15 % ZNCC blend). Calibrated pairs:
#: scored in a band of 2 labels around the ZNCC proposal's winner-take-all labels
#: (stereo.cascade); rectified pairs: the full sweep (``--cascade auto``). Each choice made on
#: castle-P19 (results/castle_variants.md, castle_window.md, castle_rectified_full.md).
#: ``--model 2ch-deep`` means the same weights.
DEFAULT_MODEL = "2ch-deep"
OPTIMIZERS = ("graphcut", "wta")
#: ``--edge-cost`` values: the search decides (stereo.edge_fusion.AUTO_EDGE_COST), off, or a
#: small-window hand-made cost
EDGE_AUTO = "auto"
EDGE_OFF = "none"
EDGE_COSTS = (EDGE_AUTO, EDGE_OFF, "census", "zncc")
#: ``--rectification`` values for uncalibrated pairs (stereo.geometry.rectify)
RECTIFICATIONS = ("auto", "rotation", "projective")
INVALID_MODES = ("nan", "fill")  # pixels whose match leaves the second image: NaN or kept
MAX_LABELS = 4096  # hypotheses per pixel (memory is checked too: check_volume_fits)
MIN_WORKING_SIZE = 32  # pixels on the long side
MAX_CASCADE_POOL = 8  # pixels a side of the blocks the cascade's proposal MRF averages


@dataclass(frozen=True)
class StereoConfig:
    """Every knob of a run, with its unit; ``stereo-match`` builds its options from these
    declarations (:func:`~stereo.settings.setting`)."""

    model: str = setting(
        DEFAULT_MODEL,
        flag="--model",
        help="Family name (its stereo weights), weights file or stem, or a baseline (zncc, "
        "census, daisy, dsift); several joined by commas average their normalised volumes "
        "(e.g. zncc,l2net.castle-fixed).",
    )
    n_labels: int = setting(
        64,
        flag="--labels",
        kind=int,
        help="Depth (or disparity) hypotheses; depths are uniform in inverse depth.",
    )
    depth_range: tuple[float, float] | None = setting(
        None,
        flag="--depth-range",
        nargs=2,
        kind=float,
        metavar="MIN MAX",
        help="Metres (default: estimated from triangulated matches).",
    )
    disparity_range: tuple[float, float] | None = setting(
        None,
        flag="--disparity-range",
        nargs=2,
        kind=float,
        metavar="MIN MAX",
        help="Pairs without cameras, pixels of the input pair (default: estimated from matches).",
    )
    working_size: int = setting(
        768,
        flag="--size",
        kind=int,
        help="Long side of the working resolution, pixels (images are never upsampled).",
    )
    optimizer: str = setting(
        "graphcut",
        flag="--optimizer",
        choices=OPTIMIZERS,
        help="graphcut: alpha-expansion on the MRF; wta: winner-take-all per pixel.",
    )
    mrf: MRFConfig = field(default_factory=MRFConfig)
    invalid: str = setting(
        "nan",
        flag="--invalid",
        choices=INVALID_MODES,
        help="Pixels whose match leaves the second image: unknown (NaN) or filled.",
    )
    device: str = setting("cpu", flag="--device", kind=str, help="cpu, cuda or cuda:N.")
    untrained: bool = setting(False, help="random network weights (tests and timing only)")
    descriptor_variance: float = setting(
        DescriptorCost.variance_kept,
        flag="--descriptor-variance",
        kind=float,
        help="Descriptor models: share of the descriptor variance the cost volume keeps "
        "(principal components; 1 = exact, slower).",
    )
    prewarp: bool = setting(
        DescriptorCost.prewarp,
        flag="--prewarp",
        negative="--no-prewarp",
        help="Descriptor models, calibrated pairs: describe RIGHT after warping it into LEFT's "
        "view by the middle depth plane, which undoes most of the perspective between the "
        "views.",
    )
    prewarp_planes: int = setting(
        DescriptorCost.prewarp_planes,
        flag="--prewarp-planes",
        kind=int,
        help="Split the depth labels into this many runs, each pre-warped by its own middle "
        "plane (one more network pass over RIGHT each; slightly better on very wide "
        "baselines).",
    )
    precision: str = setting(
        DescriptorCost.precision,
        flag="--precision",
        choices=PRECISIONS,
        help="Arithmetic of the networks. bfloat16 is about twice as fast on CPUs with "
        "AVX-512 BF16 and on GPUs (descriptors differ by about 1e-3); int8 (CPU, 2-channel "
        "networks at their full score stride) runs the network about 3x faster than float32 "
        "(scores within ~1.5 % of their spread). auto: int8 for 2-channel networks on the "
        "CPU, bfloat16 where the device supports it, float32 elsewhere.",
    )
    score_stride: int = setting(
        0,
        flag="--score-stride",
        kind=int,
        help="2-channel models: score every Nth pixel of each hypothesis (2ch, 2ch-deep: 2, "
        "3 or 6; 2ch-2stream: 2 or 4; about 1/N² of the network's work) and interpolate the "
        "scores between; "
        "1 = every pixel; 0 = the weights' own choice (their model card's score_stride, "
        "else 1).",
    )
    window_scale: int = setting(
        0,
        flag="--window-scale",
        kind=int,
        help="2-channel models: the network reads both images enlarged N times, so its "
        "64-pixel window spans 64/N image pixels (about N² times the network's work at the "
        "same --score-stride); 0 = the weights' own choice (their model card's "
        "window_scale, else 1).",
    )
    cascade: str = setting(
        "auto",
        flag="--cascade",
        kind=str,
        help="2-channel models: a cheap cost (zncc, census or a descriptor model) proposes "
        "each pixel's label (see --cascade-cycles) and the network scores only the "
        "--cascade-band labels either side of it; none = the full sweep (one network pass "
        "per label); auto = zncc for calibrated plane sweeps, none for rectified pairs "
        "(chosen on castle-P19's rectified validation pairs).",
    )
    cascade_band: int = setting(
        2,
        flag="--cascade-band",
        kind=int,
        help="2-channel cascade: labels scored either side of the proposed one.",
    )
    cascade_scale: float = setting(
        1.0,
        flag="--cascade-scale",
        kind=float,
        help="2-channel cascade: the proposal cost and its MRF run on the images resized by "
        "this factor (0.5: a quarter of the pixels) and its labels are upsampled; 1 = full "
        "resolution.",
    )
    cascade_pool: int = setting(
        1,
        flag="--cascade-pool",
        kind=int,
        help="2-channel cascade: the proposal's MRF runs on its full-size volume averaged "
        "over N x N pixel blocks (about N² times less MRF work) and its labels are repeated "
        "back; the volume blended with the network stays full size. 1 = the MRF at full "
        "size.",
    )
    # 1: the proposal's MRF labels put the true label in the scored band far more often than
    # its winner-take-all labels on the held-out synthetic calibrated pairs (pair 0: 87 %
    # against 78 %, pair 3: 99 % against 76 %) with fewer labels scored;
    # synthetic pairs 0–11 mean correctness@0.05 0.783 against 0.753 (with the flat rule at 2
    # levels); castle-P19 0.980 against 0.982: results/synthetic_calibrated_s34_rule.md
    cascade_cycles: int = setting(
        1,
        flag="--cascade-cycles",
        kind=int,
        help="2-channel cascade: alpha-expansion cycles of the proposal cost's MRF (0: its "
        "winner-take-all labels, no MRF).",
    )
    cascade_fuse: float | None = setting(
        None,
        flag="--cascade-fuse",
        kind=float,
        help="2-channel cascade: the MRF solves (1 − W)·network + W·proposal cost (both "
        "normalised volumes) for this W in [0, 1); 0 = the network's volume alone. Default: "
        "the weights' model card's cascade_fuse, else 0.5.",
    )
    cascade_share: float = setting(
        0.02,
        flag="--cascade-share",
        kind=float,
        help="2-channel cascade: a label is scored in a tile of the image when at least this "
        "share of the tile's pixels propose it (isolated wrong proposals add no labels; "
        "higher: fewer network passes).",
    )
    # 4: held-out synthetic calibrated pairs 0–11 mean correctness@0.05 0.798 (measured with 2
    # MRF cycles, which moved 2 levels' mean by 0.001; 2 levels: 0.783; the former default
    # 0.753, ZNCC 0.801) — the network had left pair 0's 40 % flat dark sky to the smoothness
    # term, 0.59 against ZNCC's 0.87; castle-P19's four pairs 0.980 (2: 0.980, former default
    # 0.982): results/synthetic_calibrated_s34_*.md, castle_variants_s34.md
    cascade_flat_std: float = setting(
        4.0,
        flag="--cascade-flat-std",
        kind=float,
        help="2-channel cascade: where the reference image's 9x9 grey-level standard "
        "deviation (0-255 levels) is below this, the proposal cost alone decides: a network's "
        "normalised window has no texture to compare there; 0 = off.",
    )
    # census near depth edges, half census elsewhere: mean bad-2 on the held-out synthetic
    # rectified scenes 0.092 (network alone 0.142, census 0.106), on castle-P19's rectified
    # pairs 0.034 (0.021, 0.037): results/edge_fusion_synthetic.md, edge_fusion_castle.md
    edge_cost: str = setting(
        EDGE_AUTO,
        flag="--edge-cost",
        choices=EDGE_COSTS,
        help="Network costs: a small-window hand-made cost (census or zncc) replaces the "
        "network's within --edge-radius pixels of the depth edges of a first pass, which "
        "keeps the network's large window from fattening foreground edges; none = off; "
        "auto = census on rectified and uncalibrated pairs with a 2-channel network, off "
        "elsewhere (it lost on castle-P19's plane sweeps).",
    )
    rectification: str = setting(
        "auto",
        flag="--rectification",
        choices=RECTIFICATIONS,
        help="Uncalibrated pairs: rotation = each image as the view of a turned camera "
        "(quasi-Euclidean: windows keep their shape); projective = Hartley's method (OpenCV; "
        "may stretch, shear or crop an image); auto = rotation, projective where the "
        "rotation fit leaves the matches more than 1.5 px apart across rows.",
    )
    edge_blend: float = setting(
        0.5,
        flag="--edge-blend",
        kind=float,
        help="Edge fusion: the hand-made cost's share of the volume away from depth edges "
        "(and of the first pass that finds them), in [0, 1].",
    )
    edge_radius: int = setting(
        32,
        flag="--edge-radius",
        kind=int,
        help="Edge fusion: working-image pixels either side of a depth edge where the "
        "hand-made cost alone decides (the default network's window: half of it for a "
        "window to straddle the edge, half for how far the first pass may misplace it).",
    )
    # census alone where flat too: mean bad-2 on the held-out synthetic rectified scenes
    # 0.0893 against 0.0915 without (1 / 3 levels: 0.0895 / 0.0893), castle-P19's rectified
    # pairs 0.0334 against 0.0337: results/flat_rule_synthetic.md, flat_rule_castle.md
    edge_flat_std: float = setting(
        2.0,
        flag="--edge-flat-std",
        kind=float,
        help="Edge fusion: where the reference image's 9x9 grey-level standard deviation "
        "(0-255 levels) is below this, the hand-made cost alone decides too: a network's "
        "normalised window has no texture to compare there; 0 = off.",
    )
    lr_check: bool = setting(
        False,
        flag="--lr-check",
        help="Also match RIGHT against LEFT and mark pixels where the two disagree by more "
        "than --lr-tolerance labels as unknown (about doubles the run time).",
    )
    lr_tolerance: float = setting(
        1.0, flag="--lr-tolerance", kind=float, help="Left-right agreement, in label steps."
    )
    sublabel: bool = setting(
        True,
        flag="--sublabel",
        negative="--no-sublabel",
        help="Refine each pixel's depth (disparity) below the label step by a parabola "
        "through its costs at the chosen label and its two neighbours; off: the label "
        "values only.",
    )

    def __post_init__(self) -> None:
        """Refuse a configuration that cannot run, before any work is done."""
        _check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("--invalid", self.invalid, INVALID_MODES)
        _check_choice("--precision", self.precision, PRECISIONS)
        _check_choice("--edge-cost", self.edge_cost, EDGE_COSTS)
        _check_choice("--rectification", self.rectification, RECTIFICATIONS)
        if not 2 <= self.n_labels <= MAX_LABELS:
            raise StereoError(f"--labels must lie in [2, {MAX_LABELS}], not {self.n_labels}")
        if self.working_size < MIN_WORKING_SIZE:
            raise StereoError(
                f"--size (the working long side) must be at least {MIN_WORKING_SIZE} px, "
                f"not {self.working_size}"
            )
        if self.depth_range is not None:
            lo, hi = self.depth_range
            if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0):
                raise StereoError(f"--depth-range {lo} {hi} must be positive finite metres")
            if lo >= hi:
                raise StereoError(
                    f"--depth-range min {lo} must be below max {hi}; swap them or widen it"
                )
        if self.disparity_range is not None:
            lo, hi = self.disparity_range
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise StereoError(
                    f"--disparity-range min {lo} must be below max {hi} (finite pixels)"
                )
        if not 0.0 < self.descriptor_variance <= 1.0:
            raise StereoError(
                f"--descriptor-variance must lie in (0, 1], not {self.descriptor_variance}"
            )
        if self.cascade_cycles < 0:
            raise StereoError(
                f"--cascade-cycles must be 0 (winner-take-all) or more, not {self.cascade_cycles}"
            )
        fuse = self.cascade_fuse
        if fuse is not None and not (np.isfinite(fuse) and 0.0 <= fuse < 1.0):
            raise StereoError(f"--cascade-fuse must lie in [0, 1), not {fuse}")
        if not (np.isfinite(self.cascade_share) and 0.0 <= self.cascade_share < 1.0):
            raise StereoError(f"--cascade-share must lie in [0, 1), not {self.cascade_share}")
        if not (np.isfinite(self.edge_blend) and 0.0 <= self.edge_blend <= 1.0):
            raise StereoError(f"--edge-blend must lie in [0, 1], not {self.edge_blend}")
        for flag, level in (
            ("--edge-flat-std", self.edge_flat_std),
            ("--cascade-flat-std", self.cascade_flat_std),
        ):
            if not (np.isfinite(level) and level >= 0.0):
                raise StereoError(f"{flag} must be 0 (off) or more grey levels, not {level}")
        if self.edge_radius < 0:
            raise StereoError(f"--edge-radius must be 0 or more pixels, not {self.edge_radius}")
        if self.prewarp_planes < 1:
            raise StereoError(f"--prewarp-planes must be at least 1, not {self.prewarp_planes}")
        if self.score_stride < 0:
            raise StereoError(
                f"--score-stride must be 0 (the weights' own) or at least 1, not "
                f"{self.score_stride}"
            )
        if not 0 <= self.window_scale <= 4:
            raise StereoError(
                f"--window-scale must be 0 (the weights' own) or 1 to 4, not {self.window_scale}"
            )
        if self.cascade_band < 0:
            raise StereoError(f"--cascade-band must be at least 0 labels, not {self.cascade_band}")
        if not 1 <= self.cascade_pool <= MAX_CASCADE_POOL:
            raise StereoError(
                f"--cascade-pool must be 1 (off) to {MAX_CASCADE_POOL} pixels, not "
                f"{self.cascade_pool}"
            )
        if not (np.isfinite(self.cascade_scale) and 0.1 <= self.cascade_scale <= 1.0):
            raise StereoError(f"--cascade-scale must lie in [0.1, 1], not {self.cascade_scale}")
        if not (np.isfinite(self.lr_tolerance) and self.lr_tolerance > 0):
            raise StereoError(f"left-right tolerance must be > 0 labels, not {self.lr_tolerance}")
        check_device(self.device)


def _check_choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise StereoError(f"unknown {option} {value!r}; valid: {', '.join(valid)}")


#: ``(L, h, w)`` float32 volumes edge fusion holds beside a run's own (the hand-made cost's,
#: the first pass's blend, the final blend)
EDGE_FUSION_VOLUMES = 3


def volume_bytes(
    n_labels: int, height: int, width: int, lr_check: bool = False, edge_fusion: bool = False
) -> int:
    """Peak memory of a run's cost volume and MRF, bytes: about seven float32 copies of the
    ``(L, h, w)`` volume at once (raw, normalised, the MRF's integer terms and gco's own),
    :data:`EDGE_FUSION_VOLUMES` more with edge fusion, plus 512 float32 feature maps
    (descriptors of both images); twice the volume part with the left-right check."""
    copies = 7 + (EDGE_FUSION_VOLUMES if edge_fusion else 0)
    volume = copies * (2 if lr_check else 1) * n_labels
    return 4 * height * width * (volume + 512)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_volume_fits(cfg: StereoConfig, height: int, width: int, row_search: bool) -> None:
    """Refuse, before anything is allocated, a volume that would not fit in memory; edge
    fusion counted wherever it may run (``row_search``: a rectified pair's disparities, where
    ``--edge-cost auto`` may turn it on; plane sweeps only when ``--edge-cost`` names a cost)."""
    fusion = cfg.edge_cost != EDGE_OFF and (row_search or cfg.edge_cost != EDGE_AUTO)
    need = volume_bytes(cfg.n_labels, height, width, cfg.lr_check, fusion)
    free = available_memory()
    if free is not None and need > free:
        raise StereoError(
            f"{cfg.n_labels} labels at {width}x{height} need about {need / 2**30:.1f} GiB of "
            f"memory, more than the {free / 2**30:.1f} GiB available; lower --labels or --size"
        )


#: the most a configuration file may hold, bytes (a report.json is a few kB)
MAX_CONFIG_BYTES = 1 << 20
#: field type (as declared) → what a configuration file may give for it
_FILE_TYPES = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "float | None": (int, float, type(None)),
    "tuple[float, float] | None": (list, tuple, type(None)),
}


def read_config_file(path: Path) -> StereoConfig:
    """The configuration in a file: an earlier run's ``report.json`` (its ``config``) or a
    TOML / JSON file of :class:`StereoConfig` keys (an ``mrf`` table for the MRF). Unknown
    keys and wrong types are refused with one line naming them."""
    import json

    path = Path(path)
    if not path.is_file():
        raise StereoError(f"config file {path} does not exist; give a report.json or a .toml file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise StereoError(f"config file {path} is over {MAX_CONFIG_BYTES >> 10} kB: not a config")
    text = path.read_text(errors="replace")
    toml = path.suffix.lower() == ".toml"
    if toml and sys.version_info < (3, 11):
        raise StereoError(f"{path}: TOML needs Python 3.11 or newer; give a JSON file instead")
    try:
        if toml:
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as error:  # tomllib.TOMLDecodeError is a ValueError
        raise StereoError(f"config file {path} cannot be parsed: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]  # a report.json
    if not isinstance(data, dict):
        raise StereoError(f"config file {path} holds no table of settings")
    return config_from_dict(data, str(path))


def config_from_dict(values: dict, source: str = "configuration") -> StereoConfig:
    """A :class:`StereoConfig` from plain values (``asdict`` of one, or a parsed file)."""
    values = dict(values)
    mrf_values = values.pop("mrf", {})
    if not isinstance(mrf_values, dict):
        raise StereoError(f"{source}: mrf must be a table of MRF settings")
    settings = _checked_values(StereoConfig, values, source)
    mrf = MRFConfig(**_checked_values(MRFConfig, mrf_values, f"{source} [mrf]"))
    return StereoConfig(**settings, mrf=mrf)


def _checked_values(cls: type, values: dict, source: str) -> dict:
    """``values`` for the fields of ``cls``: known names, values of the declared types."""
    declared = {f.name: f for f in fields(cls) if f.name != "mrf"}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise StereoError(
            f"{source}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(declared)}"
        )
    out = {}
    for name, value in values.items():
        kind = str(declared[name].type)
        allowed = _FILE_TYPES.get(kind, (object,))
        wrong_bool = isinstance(value, bool) and bool not in allowed
        if not isinstance(value, allowed) or wrong_bool:
            raise StereoError(f"{source}: {name} must be {kind}, not {value!r}")
        if kind.startswith("tuple") and value is not None:
            if len(value) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                raise StereoError(f"{source}: {name} must be two numbers, not {value!r}")
            value = (float(value[0]), float(value[1]))
        out[name] = float(value) if kind == "float" else value
    return out
