"""In-memory patch collections and their compact ``.npz`` files.

* :class:`PatchSet` — ``patches`` ``(N, 64, 64)`` uint8 and ``point_ids`` ``(N,)`` int64 (the
  3D point each patch shows). Saved as ``.npz`` with those two arrays (plus optional
  ``meta`` JSON).
* :class:`PairSet` — a benchmark pair file: ``a``, ``b`` ``(N, 64, 64)`` uint8 and ``label``
  ``(N,)`` (1 = same 3D point, 0 = not).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stereo.errors import StereoError
from stereo.io.files import atomic_path

PATCH_SIZE = 64


def check_patch_array(patches: np.ndarray, what: str, size: int | None = PATCH_SIZE) -> np.ndarray:
    """Check ``(N, S, S)`` uint8 patches (``S = size`` unless ``size`` is None)."""
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1] != patches.shape[2]:
        raise StereoError(f"{what}: expected patches of shape (N, S, S), got {patches.shape}")
    if size is not None and patches.shape[1] != size:
        raise StereoError(
            f"{what}: patches are {patches.shape[1]}x{patches.shape[2]}, expected "
            f"{size}x{size}; resample them"
        )
    if patches.dtype != np.uint8:
        raise StereoError(f"{what}: patches have dtype {patches.dtype}, expected uint8 grey levels")
    return patches


def check_labels(label: np.ndarray) -> np.ndarray:
    """Pair labels as int64 ``(N,)``: numbers that are exactly 0 or 1 (never truncated)."""
    label = np.asarray(label).ravel()
    if label.dtype.kind not in "biuf":
        raise StereoError(f"pair set labels must be numbers, not {label.dtype} values")
    if not np.isin(label, (0, 1)).all():
        raise StereoError("pair set labels must be 1 (same 3D point) or 0 (different)")
    return label.astype(np.int64)


def _load_npz(path: Path, keys: tuple[str, ...], kind: str) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"{kind} file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise StereoError(
                    f"{path} is not a {kind} file: it lacks {', '.join(missing)} "
                    f"(has {', '.join(npz.files) or 'nothing'})"
                )
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise StereoError(f"cannot read {kind} file {path}: {reason}") from None


@dataclass
class PatchSet:
    """Patches with the 3D point id of each; ``patches (N, 64, 64) uint8``, ``point_ids (N,)``.

    ``near_of (N,)`` (optional) marks *near misses*: windows cut a few pixels off a point's
    true projection (stereo builders). Such a patch has a point id of its own (it matches
    nothing) and ``near_of`` holds the id of the point it narrowly misses; ``-1`` elsewhere.
    Samplers pair them with their point's patches as hard negatives. ``view_ids (N,)``
    (optional) is the image each patch was cut from, so that a near miss can be set against
    a patch of *another* view, as in stereo.
    """

    patches: np.ndarray
    point_ids: np.ndarray
    meta: dict = field(default_factory=dict)
    near_of: np.ndarray | None = None
    view_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.patches = check_patch_array(self.patches, "patch set")
        self.point_ids = np.asarray(self.point_ids, dtype=np.int64).ravel()
        if self.point_ids.size != self.patches.shape[0]:
            raise StereoError(
                f"patch set has {self.patches.shape[0]} patches but {self.point_ids.size} "
                "point ids; give one id per patch"
            )
        self.near_of = self._per_patch(
            self.near_of, "near_of entries", " (-1 for ordinary patches)"
        )
        self.view_ids = self._per_patch(self.view_ids, "view ids")

    def _per_patch(self, values: np.ndarray | None, what: str, hint: str = "") -> np.ndarray | None:
        """An optional per-patch int array, checked to hold one entry per patch."""
        if values is None:
            return None
        values = np.asarray(values, dtype=np.int64).ravel()
        if values.size != self.point_ids.size:
            raise StereoError(
                f"patch set has {self.point_ids.size} patches but {values.size} {what}; "
                f"give one per patch{hint}"
            )
        return values

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    @property
    def n_points(self) -> int:
        """Number of distinct 3D points."""
        return int(np.unique(self.point_ids).size)

    def subset(self, index: np.ndarray) -> PatchSet:
        """The patches at ``index`` (bool mask or integer indices)."""
        optional = [None if a is None else a[index] for a in (self.near_of, self.view_ids)]
        return PatchSet(self.patches[index], self.point_ids[index], dict(self.meta), *optional)

    def split_by_points(self, fraction: float, seed: int = 0) -> tuple[PatchSet, PatchSet]:
        """Split into two sets with disjoint 3D points; the second gets ``fraction`` of them."""
        points = np.unique(self.point_ids)
        rng = np.random.default_rng(seed)
        held = rng.choice(points, size=max(1, round(fraction * points.size)), replace=False)
        mask = np.isin(self.point_ids, held)
        if self.near_of is not None:  # near misses follow the point they miss
            near = self.near_of >= 0
            mask[near] = np.isin(self.near_of[near], held)
        return self.subset(~mask), self.subset(mask)

    def save(self, path: str | Path) -> Path:
        """Write the compact ``.npz`` (uncompressed: patches barely compress)."""
        path = Path(path)
        optional = {"near_of": self.near_of, "view_ids": self.view_ids}
        extra = {key: values for key, values in optional.items() if values is not None}
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(
                f,
                patches=self.patches,
                point_ids=self.point_ids,
                meta=np.array(json.dumps(self.meta)),
                **extra,
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> PatchSet:
        """Read a compact ``.npz`` written by :meth:`save`."""
        arrays = _load_npz(Path(path), ("patches", "point_ids"), "patch set")
        try:
            meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
        except ValueError:
            raise StereoError(f"{path}: its 'meta' entry is not JSON; rewrite the file") from None
        if not len(arrays["patches"]):
            raise StereoError(f"patch set {path} holds no patches; rebuild it")
        try:
            return cls(
                arrays["patches"],
                arrays["point_ids"],
                meta,
                arrays.get("near_of"),
                arrays.get("view_ids"),
            )
        except StereoError as error:
            raise StereoError(f"{path}: {error}") from None


@dataclass
class PairSet:
    """A benchmark pair file: ``a``, ``b`` ``(N, 64, 64)`` uint8, ``label`` ``(N,)`` in {0, 1}."""

    a: np.ndarray
    b: np.ndarray
    label: np.ndarray

    def __post_init__(self) -> None:
        self.a = check_patch_array(self.a, "pair set 'a'")
        self.b = check_patch_array(self.b, "pair set 'b'")
        self.label = check_labels(self.label)
        n = self.a.shape[0]
        if self.b.shape[0] != n or self.label.size != n:
            raise StereoError(
                f"pair set has {n} 'a', {self.b.shape[0]} 'b' patches and {self.label.size} "
                "labels; they must be equal in number"
            )
        if n == 0:
            raise StereoError("pair set holds no pairs; give at least one positive and negative")

    def __len__(self) -> int:
        return int(self.label.size)

    def save(self, path: str | Path) -> Path:
        """Write the pair ``.npz``."""
        path = Path(path)
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(f, a=self.a, b=self.b, label=self.label.astype(np.uint8))
        return path

    @classmethod
    def load(cls, path: str | Path) -> PairSet:
        """Read a pair ``.npz`` (arrays ``a``, ``b``, ``label``)."""
        arrays = _load_npz(Path(path), ("a", "b", "label"), "pair")
        try:
            return cls(arrays["a"], arrays["b"], arrays["label"])
        except StereoError as error:
            raise StereoError(f"{path}: {error}") from None


def make_pairs(patchset: PatchSet, n_pairs: int, seed: int = 0) -> PairSet:
    """Half positive, half negative pairs drawn from a patch set.

    Positives: distinct pairs of patches of one 3D point, drawn without replacement from all
    such pairs (all of them when ``n_pairs / 2`` reaches their number; asking for more is an
    error). Negatives: patches of two different points, uniform over patches.
    """
    index_pairs, labels = sample_pair_indices(patchset.point_ids, n_pairs, seed)
    return PairSet(patchset.patches[index_pairs[:, 0]], patchset.patches[index_pairs[:, 1]], labels)


def sample_pair_indices(point_ids: np.ndarray, n_pairs: int, seed: int = 0):
    """Indices ``(n_pairs, 2)`` of half positive / half negative pairs and their labels."""
    from stereo.patchnet.sampling import PointIndex

    rng = np.random.default_rng(seed)
    index = PointIndex(point_ids)
    n_pos = n_pairs // 2
    every = index.all_positive_pairs()
    if n_pos > len(every):
        raise StereoError(
            f"asked for {n_pos} positive pairs but the patches give only "
            f"{len(every)} distinct ones; ask for at most {2 * len(every)} pairs"
        )
    pos = every[rng.choice(len(every), n_pos, replace=False)]
    neg = index.negative_pairs(n_pairs - n_pos, rng)
    pairs = np.concatenate([pos, neg])
    labels = np.r_[np.ones(n_pos, np.int64), np.zeros(n_pairs - n_pos, np.int64)]
    order = rng.permutation(n_pairs)
    return pairs[order], labels[order]
