"""Markov random field over a label volume, solved by alpha-expansion (gco-wrapper).

Energy of a labelling ``f`` on the 4-connected pixel grid:

    E(f) = Σ_p U_p(f_p) + λ · Σ_(p,q) w_pq · V(f_p, f_q)

* ``U`` — the normalised cost volume (:func:`normalise_volume`), in [0, 1]; hypotheses that
  leave the second image cost ``invalid_cost``.
* ``V`` — truncated linear ``min(|f_p − f_q|, T)`` (default) or Potts ``[f_p ≠ f_q]``.
* ``w_pq`` — contrast weight ``max(exp(−|I_p − I_q| / σ), w_min)``: smoothing is weaker
  across strong image edges, where depth edges are likely.

gco works on integers: unary and pairwise terms are scaled by ``scale`` and rounded, and
:func:`energy` evaluates exactly the integer energy gco minimises.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import gco
import numpy as np

from stereo.errors import StereoError
from stereo.settings import setting

#: λ of a cost without a tuned default (and of the MRF used on its own)
FALLBACK_SMOOTHNESS = 0.1
#: larger λ would overflow gco's 32-bit energy terms (λ · scale · truncation < 2³¹)
MAX_SMOOTHNESS = 1e5


#: rows each band of a banded solve (``MRFConfig.threads`` > 1) reaches past its share
BAND_OVERLAP = 32

#: alpha-expansion cycles of a cost without its own number: on the Strecha pairs (768×512,
#: 64 labels) two give an energy within 0.03-0.2 % of convergence
DEFAULT_CYCLES = 2


@dataclass(frozen=True)
class MRFConfig:
    """Smoothness model (defaults suit normalised costs in [0, 1])."""

    smoothness: float | None = setting(
        None,
        flag="--smoothness",
        kind=float,
        help="Weight λ of the pairwise term (unary costs are normalised to [0, 1]); default: "
        "the cost's λ chosen on castle-P19 (models/smoothness.json), else 0.1.",
    )
    truncation: int = setting(
        4, flag="--truncation", kind=int, help="Truncation of the linear pairwise term, labels."
    )
    potts: bool = setting(
        False, flag="--potts", help="Potts pairwise term instead of truncated linear."
    )
    contrast_sigma: float = setting(12.0, help="σ of the contrast weight, grey levels")
    min_edge_weight: float = setting(0.15, help="w_min: smoothing never vanishes completely")
    invalid_cost: float = setting(1.0, help="unary of a hypothesis that leaves the second image")
    scale: float = setting(1000.0, help="integer scale of all terms")
    iterations: int | None = setting(
        None,
        flag="--mrf-iterations",
        kind=int,
        help="Alpha-expansion cycles over all labels (-1: until the energy stops falling); "
        "default: the number chosen for the cost on castle-P19 (models/smoothness.json), "
        f"else {DEFAULT_CYCLES}.",
    )
    # the same energy after two cycles in about half the time (results/mrf_speed.md)
    warm_start: bool = setting(
        True,
        flag="--mrf-warm-start",
        negative="--mrf-cold-start",
        help="Start the expansion moves from the winner-take-all labels (about twice as fast "
        "for the same energy) or from label 0 everywhere.",
    )

    # 2: castle-P19 (four pairs, the default cost) the same correctness to the digit after one
    # cycle, MRF 7.5 s against 12.0 s a pair on 2 cores (benchmarks/results/castle_share.md)
    threads: int = setting(
        2,
        flag="--mrf-threads",
        kind=int,
        help="Solve N horizontal bands of the image at once, one thread each, each reaching "
        f"{BAND_OVERLAP} rows into its neighbours (2 bands on 2 cores: 1.2-1.6x faster in "
        "session 17's runs; a slightly different local minimum near the joins); 1 = the whole "
        f"image as one MRF. Images under {4 * BAND_OVERLAP} rows are always one MRF.",
    )

    def __post_init__(self) -> None:
        """Refuse settings gco cannot take, before any work is done."""
        lam = self.smoothness
        if lam is not None and not (np.isfinite(lam) and 0 <= lam <= MAX_SMOOTHNESS):
            raise StereoError(
                f"--smoothness must be a finite weight in [0, {MAX_SMOOTHNESS:g}], not {lam} "
                "(gco works on 32-bit integers)"
            )
        if self.truncation < 1:
            raise StereoError(f"--truncation must be at least 1 label, not {self.truncation}")
        if self.threads < 1:
            raise StereoError(f"--mrf-threads must be at least 1, not {self.threads}")
        if self.iterations is not None and self.iterations < 1 and self.iterations != -1:
            raise StereoError(
                f"--mrf-iterations must be at least 1 (or -1: until convergence), not "
                f"{self.iterations}"
            )


def normalise_volume(cost: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Map a cost volume to [0, 1] by its ``low``/``high`` percentiles (over valid entries),
    so that one smoothness weight suits every model. NaN (invalid) entries stay NaN."""
    valid = cost[np.isfinite(cost)]
    if valid.size == 0:
        raise StereoError(
            "the cost volume has no valid entry: no hypothesis lands inside the "
            "second image; check the cameras and the depth range"
        )
    # valid is a copy (boolean indexing): the percentile may partition it in place (0.56 ->
    # 0.39 s on a 64×512×768 volume, the same values)
    lo, hi = (float(p) for p in np.percentile(valid, [low, high], overwrite_input=True))
    out = cost.astype(np.float32)  # a new array, mapped in place in float32 arithmetic
    out -= lo
    out *= 1.0 / max(hi - lo, 1e-12)
    return np.clip(out, 0.0, 1.0, out=out)


def blended(learned: np.ndarray, handmade: np.ndarray, weight: np.ndarray | float) -> np.ndarray:
    """``(L, h, w)`` float32 ``(1 − weight) · learned + weight · handmade`` of two normalised
    volumes; ``weight`` a number or an ``(h, w)`` map. NaN where a volume with a share is
    (a weight of 1 is the hand-made volume alone, NaN where it is NaN)."""
    weight = np.broadcast_to(np.asarray(weight, np.float32), learned.shape[1:])
    mix = np.subtract(handmade, learned, dtype=np.float32)  # learned + w · (handmade − learned)
    mix *= weight
    mix += learned
    for share, volume in ((1, handmade), (0, learned)):  # NaN only where the volume used is
        only = weight == share
        mix[:, only] = volume[:, only]
    return mix


def edge_weights(image: np.ndarray, cfg: MRFConfig) -> tuple[np.ndarray, np.ndarray]:
    """Contrast weights of vertical ``(H−1, W)`` and horizontal ``(H, W−1)`` edges."""
    img = image.astype(np.float64)
    w_v = np.exp(-np.abs(np.diff(img, axis=0)) / cfg.contrast_sigma)
    w_h = np.exp(-np.abs(np.diff(img, axis=1)) / cfg.contrast_sigma)
    return np.maximum(w_v, cfg.min_edge_weight), np.maximum(w_h, cfg.min_edge_weight)


def label_distance(n_labels: int, cfg: MRFConfig) -> np.ndarray:
    """``(L, L)`` pairwise table ``V`` (before λ and the edge weights)."""
    idx = np.arange(n_labels)
    diff = np.abs(idx[:, None] - idx[None, :])
    return (diff > 0).astype(np.float64) if cfg.potts else np.minimum(diff, cfg.truncation)


@dataclass
class IntegerProblem:
    """The integer terms handed to gco."""

    unary: np.ndarray  # (H, W, L) int32
    pairwise: np.ndarray  # (L, L) int32
    cost_v: np.ndarray  # (H−1, W) int32
    cost_h: np.ndarray  # (H, W−1) int32

    def rows(self, start: int, stop: int) -> IntegerProblem:
        """The problem of the image rows ``start:stop`` alone (views, no copies)."""
        return IntegerProblem(
            self.unary[start:stop],
            self.pairwise,
            self.cost_v[start : stop - 1],
            self.cost_h[start:stop],
        )


def build_problem(unary: np.ndarray, image: np.ndarray, cfg: MRFConfig) -> IntegerProblem:
    """Integer terms of the energy for a normalised volume ``(L, H, W)`` and the reference
    grey image ``(H, W)``."""
    if unary.ndim != 3 or unary.shape[1:] != image.shape[:2]:
        raise StereoError(f"cost volume {unary.shape} does not fit image {image.shape}")
    u = np.where(np.isfinite(unary), unary, cfg.invalid_cost)
    w_v, w_h = edge_weights(image, cfg)
    lam = (FALLBACK_SMOOTHNESS if cfg.smoothness is None else cfg.smoothness) * cfg.scale
    return IntegerProblem(
        unary=np.ascontiguousarray(np.rint(u.transpose(1, 2, 0) * cfg.scale).astype(np.int32)),
        pairwise=np.rint(label_distance(unary.shape[0], cfg)).astype(np.int32),
        cost_v=np.rint(w_v * lam).astype(np.int32),
        cost_h=np.rint(w_h * lam).astype(np.int32),
    )


def energy(labels: np.ndarray, problem: IntegerProblem) -> int:
    """The integer energy gco minimises, of a labelling ``(H, W)``."""
    h, w = labels.shape
    rows, cols = np.mgrid[0:h, 0:w]
    data = int(problem.unary[rows, cols, labels].sum(dtype=np.int64))
    v = problem.pairwise[labels[:-1, :], labels[1:, :]].astype(np.int64)
    hz = problem.pairwise[labels[:, :-1], labels[:, 1:]].astype(np.int64)
    return data + int((v * problem.cost_v).sum()) + int((hz * problem.cost_h).sum())


def winner_take_all(unary: np.ndarray) -> np.ndarray:
    """``(H, W)`` label of the lowest cost (invalid entries never win unless all are)."""
    return np.argmin(np.where(np.isfinite(unary), unary, np.inf), axis=0)


@dataclass
class MRFResult:
    """Labels and energies of the MRF solution."""

    labels: np.ndarray  # (H, W) int
    energy_wta: int  # energy of the winner-take-all labelling
    energy: int  # energy after alpha-expansion


def start_labels(graph: gco.GCO, labels: np.ndarray) -> None:
    """Set gco's starting labelling to ``labels`` (``(sites,)`` ints in [0, labels)): gco's
    C call per site with a non-zero label (gco starts every site at 0), without pygco's
    per-call Python checks (about 3× faster: ~0.5 s of each 768×512 solve)."""
    if labels.size and (labels.min() < 0 or labels.max() >= graph.nb_labels):
        raise StereoError(f"starting labels outside [0, {graph.nb_labels})")
    set_label, handle = gco.pygco._cgco.gcoInitLabelAtSite, int(graph.handle)
    sites = np.flatnonzero(labels)
    for site, label in zip(sites.tolist(), labels[sites].tolist(), strict=True):
        set_label(handle, site, label)


def solve(
    unary: np.ndarray,
    image: np.ndarray,
    config: MRFConfig | None = None,
    algorithm: str = "expansion",
) -> MRFResult:
    """Minimise the energy with alpha-expansion (or alpha-beta swap) on the 4-connected grid,
    from the winner-take-all labelling when ``config.warm_start`` (moves never raise the
    energy, so the result is then never worse than winner-take-all).

    Args:
        unary: ``(L, H, W)`` normalised costs (NaN = invalid hypothesis).
        image: ``(H, W)`` reference grey image (contrast weights).
    """
    cfg = config or MRFConfig()
    if algorithm not in ("expansion", "swap"):
        raise StereoError(f"unknown MRF algorithm {algorithm!r}; valid: expansion, swap")
    problem = build_problem(unary, image, cfg)
    wta = winner_take_all(unary)
    bands = row_bands(wta.shape[0], cfg.threads)
    graphs = new_graphs([(stop - start) * wta.shape[1] for start, stop, _ in bands], problem)
    try:
        with ThreadPoolExecutor(len(bands)) as pool:  # gco's C calls release the GIL (ctypes)
            parts = list(
                pool.map(
                    lambda job: _solve_band(job[0], problem, wta, job[1], cfg, algorithm),
                    zip(graphs, bands, strict=True),
                )
            )
    finally:
        destroy_graphs(graphs)
    labels = np.concatenate(parts)
    return MRFResult(labels, energy(wta, problem), energy(labels, problem))


Band = tuple[int, int, tuple[int, int]]


def row_bands(height: int, n_bands: int) -> list[Band]:
    """``(start, stop, (keep_start, keep_stop))`` of ``n_bands`` horizontal bands of an image
    of ``height`` rows: each band is solved on rows ``start:stop`` — its share of the rows and
    :data:`BAND_OVERLAP` more on each inner side — and gives the rows ``keep_start:keep_stop``
    (its share; the shares tile the image). Fewer bands where shares would be shorter than
    the overlap."""
    n_bands = max(1, min(n_bands, height // (2 * BAND_OVERLAP)))
    edges = np.linspace(0, height, n_bands + 1).round().astype(int)
    return [
        (max(0, int(lo) - BAND_OVERLAP), min(height, int(hi) + BAND_OVERLAP), (int(lo), int(hi)))
        for lo, hi in itertools.pairwise(edges)
    ]


class SharedLock:
    """A lock held by many at once (:meth:`shared`) or by one alone (:meth:`exclusive`)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holders = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock beside other shared holders; waits out an exclusive holder."""
        with self._changed:
            self._changed.wait_for(lambda: not self._exclusive)
            self._holders += 1
        try:
            yield
        finally:
            with self._changed:
                self._holders -= 1
                self._changed.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock alone; waits until no one else holds it."""
        with self._changed:
            self._changed.wait_for(lambda: not self._exclusive and not self._holders)
            self._exclusive = True
        try:
            yield
        finally:
            with self._changed:
                self._exclusive = False
                self._changed.notify_all()


#: gco-wrapper keeps its graphs in one C++ ``std::map`` without a lock, and exits the
#: process ("Invalid instance handle") when a lookup misses: graphs are created and destroyed
#: holding this lock alone, and used holding it shared (lookups only), so that two bands (or
#: two solves in different threads) never touch the map while it changes
GCO_REGISTRY = SharedLock()


def new_graphs(sizes: list[int], problem: IntegerProblem) -> list[gco.GCO]:
    """One gco general graph per entry of ``sizes`` (sites), over ``problem``'s labels."""
    n_labels = problem.unary.shape[2]
    graphs = []
    with GCO_REGISTRY.exclusive():
        for sites in sizes:
            graph = gco.GCO()
            graph.create_general_graph(sites, n_labels, False)
            graphs.append(graph)
    return graphs


def destroy_graphs(graphs: list[gco.GCO]) -> None:
    """Free gco's graphs (:func:`new_graphs`)."""
    with GCO_REGISTRY.exclusive():
        for graph in graphs:
            graph.destroy_graph()


def _solve_band(
    graph: gco.GCO,
    problem: IntegerProblem,
    wta: np.ndarray,
    band: Band,
    cfg: MRFConfig,
    algorithm: str,
) -> np.ndarray:
    """The kept rows of ``band`` (:func:`row_bands`) of the labels of ``problem`` solved on
    the band's rows alone, in ``graph`` (sized for them)."""
    start, stop, (keep_start, keep_stop) = band
    with GCO_REGISTRY.shared():
        labels = _solve_problem(graph, problem.rows(start, stop), wta[start:stop], cfg, algorithm)
    return labels[keep_start - start : keep_stop - start]


def _solve_problem(
    graph: gco.GCO, problem: IntegerProblem, wta: np.ndarray, cfg: MRFConfig, algorithm: str
) -> np.ndarray:
    """``(H, W)`` labels of gco's moves on ``problem`` in ``graph`` (created with ``H · W``
    sites and the problem's labels), from ``wta`` when warm-started."""
    h, w, n_labels = problem.unary.shape
    graph.set_data_cost(problem.unary.reshape(h * w, n_labels))
    v_from, h_from, v_to, h_to = gco.get_images_edges_vh(h, w)
    graph.set_all_neighbors(
        np.r_[v_from, h_from],
        np.r_[v_to, h_to],
        np.r_[problem.cost_v.ravel(), problem.cost_h.ravel()],
    )
    graph.set_smooth_cost(problem.pairwise)
    if cfg.warm_start:
        start_labels(graph, wta.ravel())
    cycles = DEFAULT_CYCLES if cfg.iterations is None else cfg.iterations
    if algorithm == "expansion":
        graph.expansion(cycles)
    else:
        graph.swap(cycles)
    return np.asarray(graph.get_labels(), dtype=np.int64).reshape(h, w)
