"""Training-pair sampling, hard-example mining and augmentation.

* :class:`PointIndex` — patches grouped by 3D point; draws positive / negative index pairs.
* :func:`random_pairs` — balanced random pairs (DeepCompare).
* :func:`fracking_select` — DeepDesc "fracking": of ``B_P`` positives and ``B_N`` negatives
  forwarded, keep the hardest ``B_P / R_P`` and ``B_N / R_N`` for back-propagation.
* :func:`semi_hard_negatives` — FaceNet-style semi-hard negatives within a batch.
* :class:`ProgressiveSampler` — L2-Net: ``p₁`` points taken in order + ``p₂`` at random from
  the rest, one matching pair each (all ``p² − p`` in-batch pairs are the negatives).
* :func:`augment_pairs` — flips and 90° rotations, the same for both patches of a pair.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from stereo.errors import StereoError


class PointIndex:
    """Patch indices grouped by 3D point.

    Args:
        point_ids: ``(N,)`` the 3D point of each patch.
        near_of: ``(N,)`` optional: for a near-miss patch (a window cut a few pixels off a
            point's projection) the id of the point it misses, else ``-1``.
        view_ids: ``(N,)`` optional: the image of each patch. With it, a near miss cut in
            view ``v`` is set against an anchor from another view and (triplets) the
            point's own patch in ``v`` — the comparison a stereo matcher makes.
    """

    def __init__(
        self,
        point_ids: np.ndarray,
        near_of: np.ndarray | None = None,
        view_ids: np.ndarray | None = None,
    ) -> None:
        point_ids = np.asarray(point_ids).ravel()
        self.order = np.argsort(point_ids, kind="stable")
        sorted_ids = point_ids[self.order]
        unique_ids = sorted_ids[np.r_[0, np.nonzero(np.diff(sorted_ids))[0] + 1]]
        boundaries = np.r_[0, np.nonzero(np.diff(sorted_ids))[0] + 1, sorted_ids.size]
        self.starts = boundaries[:-1]
        self.counts = np.diff(boundaries)
        self.point_of_patch = point_ids
        #: groups (points) with at least two patches — the ones that give positives
        self.matchable = np.nonzero(self.counts >= 2)[0]
        if self.matchable.size == 0:
            raise StereoError("no 3D point has two patches: cannot form matching pairs")
        if self.counts.size < 2:
            raise StereoError("all patches show one 3D point: cannot form non-matching pairs")
        #: near-miss patches whose point is present, and the group (point) each one misses
        self.near_patches = np.zeros(0, np.int64)
        self.near_groups = np.zeros(0, np.int64)
        if near_of is not None:
            near_of = np.asarray(near_of).ravel()
            candidates = np.nonzero(near_of >= 0)[0]
            groups = np.searchsorted(unique_ids, near_of[candidates]).clip(0, unique_ids.size - 1)
            present = unique_ids[groups] == near_of[candidates]
            self.near_patches, self.near_groups = candidates[present], groups[present]
        self.view_of_patch = None if view_ids is None else np.asarray(view_ids).ravel()

    def _member(self, group: int, view: int, same_view: bool, rng: np.random.Generator) -> int:
        """A random patch of ``group`` in (``same_view``) or outside ``view``; −1 if none."""
        members = self.order[self.starts[group] : self.starts[group] + self.counts[group]]
        assert self.view_of_patch is not None
        in_view = self.view_of_patch[members] == view
        candidates = members[in_view if same_view else ~in_view]
        return int(rng.choice(candidates)) if candidates.size else -1

    def _anchors_in_other_views(
        self, near: np.ndarray, groups: np.ndarray, anchors: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Replace each anchor by a patch of its group from a view other than its near
        miss's, where view ids are known and such a patch exists."""
        if self.view_of_patch is None:
            return anchors
        for i, (k, g) in enumerate(zip(near, groups, strict=True)):
            other = self._member(int(g), int(self.view_of_patch[k]), False, rng)
            if other >= 0:
                anchors[i] = other
        return anchors

    @property
    def n_points(self) -> int:
        """Number of distinct points."""
        return int(self.counts.size)

    def two_patches_of(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Two different patches of each group (point) in ``groups``: ``(len(groups), 2)``."""
        counts = self.counts[groups]
        first = rng.integers(0, counts)
        second = (first + 1 + rng.integers(0, counts - 1)) % counts
        starts = self.starts[groups]
        return np.stack([self.order[starts + first], self.order[starts + second]], axis=1)

    def all_positive_pairs(self) -> np.ndarray:
        """``(M, 2)`` every unordered pair of distinct patches of one point (i < j in the
        point's patch order)."""
        out = []
        for group in self.matchable:
            members = self.order[self.starts[group] : self.starts[group] + self.counts[group]]
            i, j = np.triu_indices(members.size, k=1)
            out.append(np.stack([members[i], members[j]], axis=1))
        return np.concatenate(out)

    def positive_pairs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, 2)`` indices of matching pairs, points drawn uniformly."""
        groups = self.matchable[rng.integers(0, self.matchable.size, n)]
        return self.two_patches_of(groups, rng)

    def negative_pairs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, 2)`` indices of patches of different points (uniform over patches)."""
        pairs = rng.integers(0, self.point_of_patch.size, (n, 2))
        pairs[:, 1] = self.redraw_same_point(pairs[:, 0], pairs[:, 1], rng)
        return pairs

    def redraw_same_point(
        self, anchors: np.ndarray, others: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """``others`` with every patch that shows its anchor's point redrawn uniformly until
        none does (in place; returned)."""
        same = self.point_of_patch[anchors] == self.point_of_patch[others]
        while same.any():
            others[same] = rng.integers(0, self.point_of_patch.size, int(same.sum()))
            same = self.point_of_patch[anchors] == self.point_of_patch[others]
        return others

    def near_negative_pairs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, 2)`` hard negatives: a patch of a point and a near miss of the same point
        (a window a few pixels off its projection); near misses drawn uniformly."""
        if self.near_patches.size == 0:
            raise StereoError(
                "the recipe asks for near-miss negatives but the patch set has none; build "
                "it with `stereo-dataset build --normalise fixed --near-misses N` or set "
                "near_negatives=0"
            )
        k = rng.integers(0, self.near_patches.size, n)
        groups = self.near_groups[k]
        anchors = self.order[self.starts[groups] + rng.integers(0, self.counts[groups])]
        anchors = self._anchors_in_other_views(self.near_patches[k], groups, anchors, rng)
        return np.stack([anchors, self.near_patches[k]], axis=1)

    def mixed_negative_pairs(
        self, n: int, rng: np.random.Generator, near_fraction: float = 0.0
    ) -> np.ndarray:
        """``(n, 2)`` negatives, ``round(near_fraction · n)`` of them near misses."""
        n_near = round(near_fraction * n)
        if n_near == 0:
            return self.negative_pairs(n, rng)
        return np.concatenate(
            [self.near_negative_pairs(n_near, rng), self.negative_pairs(n - n_near, rng)]
        )


def near_triplets(
    index: PointIndex, n: int, rng: np.random.Generator, near_fraction: float = 0.5
) -> np.ndarray:
    """``(n, 3)`` indices ``(anchor, positive, negative)``: anchor and positive show one
    point; ``round(near_fraction · n)`` negatives are near misses of that point (windows a
    few pixels off it), the others patches of other points. With view ids, the positive of
    a near-miss triplet is the point's patch in the near miss's view and the anchor comes
    from another view: the match and the near miss differ only by the shift."""
    n_near = round(near_fraction * n)
    out = np.empty((n, 3), np.int64)
    if n_near:
        if index.near_patches.size == 0:
            index.near_negative_pairs(1, rng)  # raises the explanatory error
        # near misses of points that have two patches (an anchor and a positive)
        usable = np.isin(index.near_groups, index.matchable)
        if not usable.any():
            raise StereoError("no near miss belongs to a point with two patches")
        k = rng.choice(np.nonzero(usable)[0], n_near)
        out[:n_near, :2] = index.two_patches_of(index.near_groups[k], rng)
        out[:n_near, 2] = index.near_patches[k]
        if index.view_of_patch is not None:
            for i, j in enumerate(k):
                group, view = int(index.near_groups[j]), int(index.view_of_patch[out[i, 2]])
                positive = index._member(group, view, True, rng)
                anchor = index._member(group, view, False, rng)
                if positive >= 0 and anchor >= 0:
                    out[i, :2] = anchor, positive
    rest = n - n_near
    if rest:
        out[n_near:, :2] = index.positive_pairs(rest, rng)
        negatives = index.negative_pairs(rest, rng)[:, 1]
        out[n_near:, 2] = index.redraw_same_point(out[n_near:, 0], negatives, rng)
    return out


def random_pairs(
    index: PointIndex, batch_size: int, rng: np.random.Generator, near_fraction: float = 0.0
):
    """Balanced random batch: ``(batch_size, 2)`` indices and ``(batch_size,)`` labels;
    ``near_fraction`` of the negatives are near misses (see :class:`PointIndex`)."""
    n_pos = batch_size // 2
    pairs = np.concatenate(
        [
            index.positive_pairs(n_pos, rng),
            index.mixed_negative_pairs(batch_size - n_pos, rng, near_fraction),
        ]
    )
    labels = np.r_[np.ones(n_pos), np.zeros(batch_size - n_pos)].astype(np.int64)
    return pairs, labels


def fracking_select(
    losses: Tensor, labels: Tensor, keep_positive: int, keep_negative: int
) -> Tensor:
    """Indices of the hardest (highest-loss) ``keep_positive`` positives and
    ``keep_negative`` negatives of a mined batch.

    Args:
        losses: ``(B,)`` per-pair loss of the forwarded candidates.
        labels: ``(B,)`` 1 / 0.

    Returns:
        ``(≤ keep_positive + keep_negative,)`` long indices into the batch.
    """
    chosen = []
    for value, keep in ((1, keep_positive), (0, keep_negative)):
        members = torch.nonzero(labels == value).flatten()
        k = min(keep, members.numel())
        if k > 0:
            chosen.append(members[torch.topk(losses[members], k).indices])
    return torch.cat(chosen)


def semi_hard_negatives(anchor: Tensor, positive: Tensor, margin: float) -> Tensor:
    """In-batch negative for each anchor: the closest other-point positive that is farther
    than the anchor's own positive (semi-hard, ``d(a,p) < d(a,n) < d(a,p) + m`` preferred);
    where none is farther, the farthest available one (the easiest negative) is used.

    Args:
        anchor, positive: ``(p, D)`` descriptors; row ``i`` of both shows point ``i``.
        margin: triplet margin ``m``.

    Returns:
        ``(p,)`` long: index ``j ≠ i`` of the row of ``positive`` used as negative for ``i``.
    """
    distance = torch.cdist(anchor, positive)
    d_pos = torch.diagonal(distance)[:, None]
    eye = torch.eye(distance.shape[0], dtype=torch.bool, device=distance.device)
    farther = (distance > d_pos) & ~eye
    semi_hard = farther & (distance < d_pos + margin)
    inf = torch.full_like(distance, float("inf"))
    closest_semi = torch.where(semi_hard, distance, inf).min(dim=1)
    closest_farther = torch.where(farther, distance, inf).min(dim=1)
    fallback = torch.where(eye, -inf, distance).max(dim=1).indices
    return torch.where(
        torch.isfinite(closest_semi.values),
        closest_semi.indices,
        torch.where(torch.isfinite(closest_farther.values), closest_farther.indices, fallback),
    )


class ProgressiveSampler:
    """L2-Net progressive sampling over the matchable points.

    Each batch takes the next ``p1`` points in a fixed shuffled order (so an epoch visits
    every point) and ``p2`` more drawn at random from the rest, then one matching pair per
    point: ``(p1 + p2, 2)`` patch indices whose row ``i`` is a positive and whose
    cross rows are the ``p² − p`` negatives.
    """

    def __init__(self, index: PointIndex, p1: int, p2: int, seed: int = 0) -> None:
        if index.matchable.size < p1 + p2:
            raise StereoError(
                f"progressive sampling needs {p1 + p2} points with two patches, the data "
                f"has {index.matchable.size}; lower p1/p2 or add data"
            )
        self.index, self.p1, self.p2 = index, p1, p2
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(index.matchable)
        self.cursor = 0

    def state(self) -> dict:
        """The sampler's position (for checkpoints: a tensor, numbers and strings)."""
        return {
            "rng": self.rng.bit_generator.state,
            "order": torch.from_numpy(self.order.copy()),
            "cursor": self.cursor,
        }

    def restore(self, state: dict) -> None:
        """Continue from a :meth:`state`."""
        self.rng.bit_generator.state = state["rng"]
        self.order = state["order"].numpy().astype(self.order.dtype)
        self.cursor = int(state["cursor"])

    def next_batch(self) -> np.ndarray:
        """``(p1 + p2, 2)`` patch indices, one matching pair per distinct point."""
        if self.cursor + self.p1 > self.order.size:
            self.order = self.rng.permutation(self.index.matchable)
            self.cursor = 0
        sequential = self.order[self.cursor : self.cursor + self.p1]
        self.cursor += self.p1
        rest = np.setdiff1d(self.index.matchable, sequential, assume_unique=True)
        extra = self.rng.choice(rest, size=self.p2, replace=False)
        return self.index.two_patches_of(np.r_[sequential, extra], self.rng)


def dihedral(x: Tensor, transform: int) -> Tensor:
    """One of the 8 flips/90° rotations of ``(..., H, W)``: ``transform`` in 0…7 —
    ``transform % 4`` quarter turns, then a horizontal flip if ``transform ≥ 4``."""
    x = torch.rot90(x, transform % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if transform >= 4 else x


def augment_pairs(a: Tensor, b: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Apply a random dihedral transform per pair, identical for both patches.

    Args:
        a, b: ``(B, ..., H, W)`` with ``H = W``.

    Returns:
        The transformed ``a, b`` (new tensors).
    """
    transforms = torch.as_tensor(rng.integers(0, 8, a.shape[0]))
    a, b = a.clone(), b.clone()
    for t in range(1, 8):
        members = torch.nonzero(transforms == t).flatten()
        if members.numel():
            a[members] = dihedral(a[members], t)
            b[members] = dihedral(b[members], t)
    return a, b
