"""Named training recipes: every knob of a training run in one commented dataclass.

A recipe fixes the loss, the sampler and the optimiser; any field can be overridden
(``stereo-patches train --set lr=0.01 --set steps=2000``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace

from stereo.errors import StereoError

#: losses on network scores (any model) and on descriptor distances (L2 descriptor models).
SCORE_LOSSES = ("hinge",)
DISTANCE_LOSSES = ("contrastive", "hinge_embedding", "margin", "dbl")


@dataclass(frozen=True)
class Recipe:
    """How to train a patch network."""

    name: str = "custom"
    # what is optimised
    # hinge | contrastive | hinge_embedding | margin | dbl | triplet | l2net | ranking
    loss: str = "hinge"
    margin: float = 1.0  # loss margin m (contrastive, hinge embedding, margin α, DBL, triplet)
    boundary: float = 1.2  # margin loss β
    # how pairs are drawn
    sampler: str = "random"  # random | fracking | semi_hard | progressive | near_triplet
    batch_size: int = 128  # pairs per step (random); kept positives + negatives (fracking)
    mine_positive: int = 1  # fracking R_P: positives forwarded per positive kept
    mine_negative: int = 2  # fracking R_N: negatives forwarded per negative kept
    points_sequential: int = 64  # progressive p1
    points_random: int = 64  # progressive p2
    augment: bool = True  # random flips / 90° rotations, same for both patches of a pair
    # share of negatives that are near misses (random, fracking, near_triplet)
    near_negatives: float = 0.0
    # near_triplet, descriptor models: each triplet's negative score is raised to the anchor's
    # best score against the positives of the batch's other points (HardNet-style mining)
    hardest_in_batch: bool = False
    # optimiser
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_step: int = 0  # divide lr by lr_gamma every lr_step steps (0 = constant)
    lr_gamma: float = 10.0
    steps: int = 20000
    # bookkeeping
    log_every: int = 50  # steps between JSON log lines
    val_every: int = 1000  # steps between validations (0 = only at the end)
    checkpoint_every: int = 500  # steps between checkpoints
    val_pairs: int = 10000  # pairs of the held-out validation set when none is given
    grad_clip: float = 0.0  # clip gradient norm (0 = off)
    extra: dict = field(default_factory=dict)  # free-form notes carried into the model card

    def with_overrides(self, overrides: dict[str, str]) -> Recipe:
        """A copy with fields set from ``key → text`` pairs, converted to the field's type."""
        types = {f.name: f.type for f in fields(self)}
        values = {}
        for key, text in overrides.items():
            if key not in types or key in ("extra", "name"):
                valid = ", ".join(k for k in types if k not in ("extra", "name"))
                raise StereoError(f"unknown recipe field {key!r}; valid fields: {valid}")
            kind = types[key]
            try:
                if kind == "bool":
                    if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError(text)
                    values[key] = text.lower() in ("1", "true", "yes")
                else:
                    values[key] = {"int": int, "float": float, "str": str}[kind](text)
            except ValueError:
                raise StereoError(f"recipe field {key} takes a {kind}, got {text!r}") from None
        return replace(self, **values)

    def as_dict(self) -> dict:
        """JSON-ready view."""
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {
    # Zagoruyko & Komodakis: hinge on ±1 labels, weight decay 5e-4, SGD lr 0.1 without
    # momentum (ASGD in the release), balanced random pairs, flips/rotations.
    "deepcompare": Recipe(
        name="deepcompare",
        loss="hinge",
        sampler="random",
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        momentum=0.0,
        weight_decay=5e-4,
        lr_step=10000,
    ),
    # the same loss and sampling with Adam: converges in far fewer steps, for CPU budgets.
    "deepcompare-adam": Recipe(
        name="deepcompare-adam",
        loss="hinge",
        sampler="random",
        batch_size=128,
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
        weight_decay=0.0,
        lr_step=10000,
    ),
    # Simo-Serra et al.: hinge embedding on L2 distance, fracking with R_P/R_N = 2/2, SGD lr
    # 0.01 divided by 10 every 10,000 iterations, momentum.
    "deepdesc": Recipe(
        name="deepdesc",
        loss="hinge_embedding",
        margin=4.0,
        sampler="fracking",
        batch_size=256,
        mine_positive=2,
        mine_negative=2,
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        lr_step=10000,
    ),
    # Tian et al.: E1 + E2 + E3, progressive sampling p1 = p2 = 64, SGD lr 0.01, momentum
    # 0.9, weight decay 1e-4, lr / 10 every 20 epochs.
    # Stereo (this project): upright fixed-scale windows with near misses; the match must
    # outscore a window a few pixels off it (half the triplets) or another point's window.
    # No flips / rotations: a plane sweep compares upright windows.
    "stereo": Recipe(
        name="stereo",
        loss="ranking",
        sampler="near_triplet",
        near_negatives=0.5,
        augment=False,
        batch_size=128,
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
        weight_decay=0.0,
        lr_step=10000,
    ),
    "l2net": Recipe(
        name="l2net",
        loss="l2net",
        sampler="progressive",
        points_sequential=64,
        points_random=64,
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-4,
        lr_step=10000,
    ),
    # descriptor recipes of the lecture notes (unit descriptors: distances in [0, 2])
    "contrastive": Recipe(
        name="contrastive", loss="contrastive", margin=1.0, optimizer="adam", lr=1e-3, momentum=0.0
    ),
    "triplet": Recipe(
        name="triplet",
        loss="triplet",
        margin=0.5,
        sampler="semi_hard",
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
    ),
    "margin": Recipe(
        name="margin",
        loss="margin",
        margin=0.2,
        boundary=1.2,
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
    ),
    "dbl": Recipe(name="dbl", loss="dbl", margin=1.0, optimizer="adam", lr=1e-3, momentum=0.0),
}

#: the recipe used when none is named, per model family.
DEFAULT_RECIPE = {"cnn3": "deepdesc", "l2net": "l2net", "cs-l2net": "l2net"}


def parse_overrides(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``KEY=VALUE`` texts (``--set``) → ``{key: value}``; raises on a text without ``=``."""
    out = {}
    for item in items:
        if "=" not in item:
            raise StereoError(f"--set takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def checked_overrides(items: tuple[str, ...] | list[str], recipe: str) -> dict[str, str]:
    """:func:`parse_overrides` of ``items``, each key and value checked against the recipe
    called ``recipe``; raises :class:`StereoError` on an unknown key or a bad value."""
    overrides = parse_overrides(items)
    get_recipe(recipe).with_overrides(overrides)
    return overrides


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name fails listing the valid ones."""
    if name not in RECIPES:
        raise StereoError(f"unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}")
    return RECIPES[name]


def default_recipe(model_name: str) -> Recipe:
    """The recipe of the model's own paper (DeepCompare for the DeepCompare models)."""
    return get_recipe(DEFAULT_RECIPE.get(model_name, "deepcompare"))
