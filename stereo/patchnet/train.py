"""One training entry point for every model / loss / sampler combination.

:func:`train` runs a :class:`~stereo.patchnet.recipes.Recipe` on a :class:`PatchSet`:
progress bar with loss and rate, periodic validation (FPR95 on held-out pairs), checkpoints
and resume, seed, device choice (mixed precision on CUDA), a JSON-lines log, and at the end
the weights with a model card. A non-finite loss stops training with a one-line error and
leaves the last good checkpoint in place.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from stereo.errors import StereoError
from stereo.io.files import atomic_path
from stereo.patchnet import losses as L
from stereo.patchnet.data.patchset import PairSet, PatchSet, make_pairs
from stereo.patchnet.devices import check_device
from stereo.patchnet.metrics import pair_metrics
from stereo.patchnet.models import DescriptorNet, PatchNet, build_model
from stereo.patchnet.models.base import pair_distance
from stereo.patchnet.recipes import DISTANCE_LOSSES, SCORE_LOSSES, Recipe
from stereo.patchnet.sampling import (
    PointIndex,
    ProgressiveSampler,
    augment_pairs,
    dihedral,
    fracking_select,
    near_triplets,
    random_pairs,
    semi_hard_negatives,
)
from stereo.patchnet.weights import save_weights


@dataclass
class TrainResult:
    """What a run produced."""

    weights: Path  # final weights file
    card: dict[str, Any]  # its model card
    losses: list[float]  # mean loss of each logging interval
    first_loss: float  # mean loss over the first logging interval
    last_loss: float  # mean loss over the last logging interval


def check_compatible(model: PatchNet, recipe: Recipe) -> None:
    """Raise if the recipe's loss/sampler cannot train this model."""
    l2_descriptor = isinstance(model, DescriptorNet) and model.metric == "l2"
    if recipe.loss in (*DISTANCE_LOSSES, "triplet") and not l2_descriptor:
        raise StereoError(
            f"recipe loss {recipe.loss!r} needs a descriptor compared by L2 distance "
            "(siam-l2, siam-2stream-l2, cnn3, l2net, cs-l2net); "
            f"{model.name!r} is not one — use the deepcompare recipe"
        )
    if recipe.loss == "l2net" and not hasattr(model, "embed_with_intermediates"):
        raise StereoError(f"the l2net loss needs l2net or cs-l2net, not {model.name!r}")
    if recipe.loss not in SCORE_LOSSES + DISTANCE_LOSSES + ("triplet", "l2net", "ranking"):
        raise StereoError(f"unknown loss {recipe.loss!r} in recipe {recipe.name!r}")
    pair_losses = SCORE_LOSSES + DISTANCE_LOSSES
    expected = {
        "random": pair_losses,
        "fracking": pair_losses,
        "semi_hard": ("triplet",),
        "progressive": ("l2net",),
        "near_triplet": ("ranking",),
    }
    if recipe.sampler not in expected:
        raise StereoError(f"unknown sampler {recipe.sampler!r}; valid: {', '.join(expected)}")
    if recipe.loss not in expected[recipe.sampler]:
        raise StereoError(f"sampler {recipe.sampler!r} does not go with loss {recipe.loss!r}")
    if not 0.0 <= recipe.near_negatives <= 1.0:
        raise StereoError(f"near_negatives must lie in [0, 1], not {recipe.near_negatives}")
    if recipe.near_negatives > 0 and recipe.sampler not in ("random", "fracking", "near_triplet"):
        raise StereoError(
            "near_negatives needs the random, fracking or near_triplet sampler, "
            f"not {recipe.sampler!r}"
        )
    if recipe.hardest_in_batch and (
        recipe.sampler != "near_triplet" or not isinstance(model, DescriptorNet)
    ):
        raise StereoError(
            "hardest_in_batch needs the near_triplet sampler and a descriptor model "
            f"(siam, siam-l2, cnn3, l2net …), not {recipe.sampler!r} with {model.name!r}"
        )


class Trainer:
    """Holds the state of one run; :meth:`step` does one optimisation step."""

    def __init__(
        self, model: PatchNet, recipe: Recipe, data: PatchSet, device: torch.device, seed: int
    ) -> None:
        check_compatible(model, recipe)
        self.model, self.recipe, self.device = model.to(device), recipe, device
        self.patches = torch.from_numpy(data.patches)
        self.index = PointIndex(data.point_ids, data.near_of, data.view_ids)
        self.rng = np.random.default_rng(seed)
        self.progressive = (
            ProgressiveSampler(self.index, recipe.points_sequential, recipe.points_random, seed)
            if recipe.sampler in ("progressive", "semi_hard")
            else None
        )
        params = [p for p in model.parameters() if p.requires_grad]
        if recipe.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
            )
        elif recipe.optimizer == "adam":
            self.optimizer = torch.optim.Adam(
                params, lr=recipe.lr, weight_decay=recipe.weight_decay
            )
        else:
            raise StereoError(f"unknown optimizer {recipe.optimizer!r}; valid: sgd, adam")
        self.amp = device.type == "cuda"
        #: seconds of training steps the runs before a resume spent (from the checkpoint)
        self.seconds_before = 0.0

    # ----- batches ---------------------------------------------------------------------
    def _pair_tensors(self, pairs: np.ndarray) -> tuple[Tensor, Tensor]:
        a = self.patches[torch.as_tensor(pairs[:, 0])]
        b = self.patches[torch.as_tensor(pairs[:, 1])]
        if self.recipe.augment:
            a, b = augment_pairs(a, b, self.rng)
        return a, b

    def _pair_losses(self, a: Tensor, b: Tensor, labels: Tensor) -> Tensor:
        """Per-pair loss ``(B,)`` of raw patches ``a, b``."""
        r = self.recipe
        if r.loss == "hinge":
            return L.hinge_loss(self.model.score(a, b), labels, reduction="none")
        model: DescriptorNet = self.model  # type: ignore[assignment]
        d = pair_distance(model.describe(a), model.describe(b))
        if r.loss == "contrastive":
            return L.contrastive_loss(d, labels, r.margin, reduction="none")
        if r.loss == "hinge_embedding":
            return L.hinge_embedding_loss(d, labels, r.margin, reduction="none")
        if r.loss == "margin":
            return L.margin_loss(d, labels, r.margin, r.boundary, reduction="none")
        return L.dbl_loss(d, labels, r.margin, reduction="none")

    def compute_loss(self) -> Tensor:
        """Draw a batch as the recipe says and return its (differentiable) loss."""
        r = self.recipe
        if r.sampler == "random":
            pairs, labels = random_pairs(self.index, r.batch_size, self.rng, r.near_negatives)
            a, b = self._pair_tensors(pairs)
            return self._pair_losses(a, b, torch.as_tensor(labels, device=self.device)).mean()
        if r.sampler == "fracking":
            keep_pos, keep_neg = r.batch_size // 2, r.batch_size - r.batch_size // 2
            n_pos, n_neg = keep_pos * r.mine_positive, keep_neg * r.mine_negative
            pairs = np.concatenate(
                [
                    self.index.positive_pairs(n_pos, self.rng),
                    self.index.mixed_negative_pairs(n_neg, self.rng, r.near_negatives),
                ]
            )
            labels = torch.as_tensor(np.r_[np.ones(n_pos), np.zeros(n_neg)], device=self.device)
            a, b = self._pair_tensors(pairs)
            with torch.no_grad():
                candidate = self._pair_losses(a, b, labels)
            hard = fracking_select(candidate, labels, keep_pos, keep_neg).cpu()
            return self._pair_losses(a[hard], b[hard], labels[hard.to(self.device)]).mean()
        if r.sampler == "near_triplet":
            triplets = near_triplets(self.index, r.batch_size, self.rng, r.near_negatives)
            a, p, n = (self.patches[torch.as_tensor(triplets[:, i])] for i in range(3))
            if r.augment:  # one transform per triplet: augment (a, p) and (a, n) alike
                transforms = self.rng.integers(0, 8, len(a))
                a, p, n = (
                    torch.stack(
                        [dihedral(x, int(t)) for x, t in zip(batch, transforms, strict=True)]
                    )
                    for batch in (a, p, n)
                )
            if isinstance(self.model, DescriptorNet):
                da, dp, dn = self.model.describe(torch.cat([a, p, n])).split(len(a))
                s_pos, s_neg = self.model.compare(da, dp), self.model.compare(da, dn)
                if r.hardest_in_batch:
                    s_neg = torch.maximum(s_neg, self._hardest_other_point(da, dp, triplets))
            else:
                s_pos, s_neg = self.model.score(a, p), self.model.score(a, n)
            return L.ranking_loss(s_pos, s_neg, r.margin)
        assert self.progressive is not None
        pairs = self.progressive.next_batch()
        a, b = self._pair_tensors(pairs)
        model: DescriptorNet = self.model  # type: ignore[assignment]
        if r.sampler == "semi_hard":
            da, db = model.describe(a), model.describe(b)
            negatives = semi_hard_negatives(da.detach(), db.detach(), r.margin)
            return L.triplet_loss(pair_distance(da, db), pair_distance(da, db[negatives]), r.margin)
        # progressive + l2net loss: both sides in one forward, so batch norm sees 2p patches
        p = a.shape[0]
        desc, firsts, lasts = model.embed_with_intermediates(model.prepare(torch.cat([a, b])))
        split = lambda ts: ([t[:p] for t in ts], [t[p:] for t in ts])  # noqa: E731
        return L.l2net_loss(desc[:p], desc[p:], split(firsts), split(lasts)) / p

    def _hardest_other_point(self, da: Tensor, dp: Tensor, triplets: np.ndarray) -> Tensor:
        """``(B,)``: each anchor's best score against the positives ``dp`` ``(B, D)`` of the
        batch's other points (``-inf`` where every positive shows the anchor's own point)."""
        model: DescriptorNet = self.model  # type: ignore[assignment]
        b = len(da)
        scores = model.compare(da.repeat_interleave(b, dim=0), dp.repeat(b, 1)).view(b, b)
        points = torch.as_tensor(self.index.point_of_patch[triplets[:, :2]], device=da.device)
        same_point = points[:, 0, None] == points[None, :, 1]
        return scores.masked_fill(same_point, float("-inf")).amax(dim=1)

    def step(self) -> float:
        """One optimisation step; returns the loss (raises on a non-finite loss)."""
        self.model.train()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            loss = self.compute_loss()
        value = float(loss.detach())
        if not np.isfinite(value):
            raise StereoError(
                "training loss became NaN/infinite; lower the learning rate "
                "(--set lr=…) and resume from the last good checkpoint"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.recipe.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.optimizer.step()
        return value

    def state(self) -> dict[str, Any]:
        """Everything a bit-exact resume needs, as tensors, numbers and strings only (a
        checkpoint is read with ``torch.load(weights_only=True)``: it cannot run code)."""
        state: dict[str, Any] = {
            "model_name": self.model.name,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }
        if self.progressive is not None:
            state["progressive"] = self.progressive.state()
        return state

    def restore(self, state: dict[str, Any], source: Path) -> int:
        """Load a :meth:`state` (from ``source``); returns the step it was saved at."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.rng.bit_generator.state = state["numpy_rng"]
            torch.set_rng_state(state["torch_rng"])
            if self.progressive is not None and "progressive" in state:
                self.progressive.restore(state["progressive"])
            self.seconds_before = float(state.get("train_seconds", 0.0))
            return int(state["step"])
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise StereoError(
                f"checkpoint {source} does not fit this run ({first}); resume with the "
                "model, recipe and data it was made with, or drop --resume"
            ) from None

    def set_lr(self, step: int) -> float:
        """Step schedule: ``lr / gamma^(step // lr_step)``."""
        r = self.recipe
        lr = r.lr / (r.lr_gamma ** (step // r.lr_step)) if r.lr_step > 0 else r.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr


@torch.no_grad()
def score_pairs(
    model: PatchNet, pairs: PairSet, batch_size: int = 512, progress: bool = False
) -> np.ndarray:
    """Scores ``(N,)`` float64 of every pair of a pair set (model in eval mode)."""
    was_training = model.training
    model.eval()
    out = []
    starts = range(0, len(pairs), batch_size)
    for s in tqdm(starts, desc=f"scoring {model.name}", disable=not progress, leave=False):
        a = torch.from_numpy(pairs.a[s : s + batch_size])
        b = torch.from_numpy(pairs.b[s : s + batch_size])
        out.append(model.score(a, b).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out).astype(np.float64)


def read_checkpoint(path: Path, model_name: str) -> dict[str, Any]:
    """A training checkpoint, read without executing anything from the file
    (``weights_only=True``: tensors, numbers, strings and containers only)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure: refuse the file, run nothing
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise StereoError(
            f"cannot read checkpoint {path} ({reason}); it is corrupt or not a checkpoint "
            "of this project: delete it or drop --resume"
        ) from None
    if not isinstance(state, dict) or "step" not in state or "model" not in state:
        raise StereoError(f"{path} is not a training checkpoint; delete it or drop --resume")
    if state.get("model_name", model_name) != model_name:
        raise StereoError(
            f"checkpoint {path} is of model {state['model_name']!r}, not {model_name!r}; "
            "use another --out or drop --resume"
        )
    return state


def _atomic_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(
    model_name: str,
    recipe: Recipe,
    data: PatchSet,
    out_dir: str | Path,
    val_pairs: PairSet | None = None,
    seed: int = 0,
    device: str = "cpu",
    resume: bool = False,
    init_weights: PatchNet | None = None,
    weights_name: str | None = None,
    half: bool = False,
    data_description: str = "",
    progress: bool = True,
    time_limit_s: float | None = None,
) -> TrainResult:
    """Train ``model_name`` with ``recipe`` on ``data``.

    Args:
        model_name: registry name.
        recipe: the recipe (after overrides).
        data: training patches with point ids.
        out_dir: run folder: ``checkpoint.pt``, ``log.jsonl``, final weights and card.
        val_pairs: validation pairs; if None, ``recipe.val_pairs`` pairs are made from 10 % of
            the points of ``data``, held out of training.
        seed: seeds torch, NumPy and the samplers.
        device: ``"cpu"`` or ``"cuda"`` (mixed precision on CUDA).
        resume: continue from ``out_dir/checkpoint.pt`` if present.
        init_weights: start from these weights instead of a fresh network.
        weights_name: file name of the final weights (default ``MODEL.RECIPE.pt``).
        half: store the final weights in fp16.
        data_description: what the data is, for the model card.
        progress: show a progress bar.
        time_limit_s: stop after the step that ends this many seconds after the first step
            (validation, checkpoint and weights as at the last step; the card's ``steps`` is
            the number done and ``stopped_by_time_limit`` says so). None: run every step.
            The card's ``wall_time_s`` is this call's; ``train_seconds`` adds the runs a
            resumed checkpoint came from.

    Returns:
        A :class:`TrainResult`.
    """
    out = Path(out_dir)
    dev = _check_run(out, recipe, data, device)
    torch.manual_seed(seed)
    if val_pairs is None:
        data, val_pairs = _held_out_pairs(data, recipe, seed)
    model = init_weights if init_weights is not None else build_model(model_name)
    trainer = Trainer(model, recipe, data, dev, seed)
    checkpoint = out / "checkpoint.pt"
    log_path = out / "log.jsonl"
    start = 0
    if resume and checkpoint.is_file():
        start = trainer.restore(read_checkpoint(checkpoint, model_name), checkpoint)
    elif log_path.exists():
        log_path.unlink()
    t0 = time.time()
    deadline = None if time_limit_s is None else t0 + time_limit_s
    interval_means, metrics, done = _run_steps(
        trainer, val_pairs, start, (checkpoint, log_path), f"train {model_name}", progress, deadline
    )
    card = {
        "recipe": recipe.as_dict(),
        "data": data_description or data.meta.get("source", "unspecified"),
        "train_patches": len(data),
        "train_points": data.n_points,
        "steps": done,
        **({"stopped_by_time_limit": True} if done < recipe.steps else {}),
        "seed": seed,
        "wall_time_s": round(time.time() - t0, 1),
        "train_seconds": round(trainer.seconds_before + time.time() - t0, 1),
        "hardware": _hardware(dev),
        "validation": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()},
    }
    weights = save_weights(
        model, out / (weights_name or f"{model_name}.{recipe.name}.pt"), card, half=half
    )
    first = interval_means[0] if interval_means else float("nan")
    last = interval_means[-1] if interval_means else float("nan")
    return TrainResult(weights, card, interval_means, first, last)


def _check_run(out: Path, recipe: Recipe, data: PatchSet, device: str) -> torch.device:
    """Refuse a run that cannot start (output folder, steps, data, device) before any work;
    returns the device."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StereoError(f"cannot create output folder {out}: {error.strerror}") from None
    dev = check_device(device)
    if recipe.steps < 1:
        raise StereoError(f"training needs at least 1 step, not {recipe.steps} (--steps)")
    if len(data) == 0 or data.n_points < 2:
        raise StereoError(
            f"the training data holds {len(data)} patches of {data.n_points} point(s); "
            "training needs patches of at least two 3D points (more data)"
        )
    return dev


def _held_out_pairs(data: PatchSet, recipe: Recipe, seed: int) -> tuple[PatchSet, PairSet]:
    """10 % of the points of ``data`` held out of training, and ``recipe.val_pairs``
    validation pairs made from their true (not near-miss) patches."""
    data, held = data.split_by_points(0.1, seed)
    if held.near_of is not None:  # validation pairs: true points only
        held = held.subset(held.near_of < 0)
    n_positive = len(PointIndex(held.point_ids).all_positive_pairs())
    return data, make_pairs(held, min(recipe.val_pairs, 2 * n_positive), seed + 1)


def _run_steps(
    trainer: Trainer,
    val_pairs: PairSet,
    start: int,
    files: tuple[Path, Path],
    description: str,
    progress: bool,
    deadline: float | None = None,
) -> tuple[list[float], dict[str, Any], int]:
    """Steps ``start`` … ``recipe.steps`` of ``trainer`` (fewer if ``time.time()`` passes
    ``deadline``): JSON log lines to ``files[1]``, validations and checkpoints (``files[0]``)
    as the recipe says. Returns the mean loss of each logged interval, the last validation's
    metrics and the number of steps done."""
    recipe = trainer.recipe
    checkpoint, log_path = files
    done = start
    interval: list[float] = []
    interval_means: list[float] = []
    metrics: dict[str, Any] = {}
    t0 = time.time()
    pairs_per_step = (
        recipe.points_sequential + recipe.points_random
        if recipe.sampler in ("progressive", "semi_hard")
        else recipe.batch_size
    )
    bar = tqdm(
        range(start, recipe.steps),
        initial=start,
        total=recipe.steps,
        desc=description,
        disable=not progress,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
    )
    with log_path.open("a") as log:
        for step in bar:
            lr = trainer.set_lr(step)
            try:
                interval.append(trainer.step())
            except StereoError as error:
                log.write(json.dumps({"step": step, "error": str(error)}) + "\n")
                raise StereoError(
                    f"step {step}: {error} (last good checkpoint: "
                    f"{checkpoint if checkpoint.exists() else 'none yet'})"
                ) from None
            done = step + 1
            is_last = done == recipe.steps or (deadline is not None and time.time() >= deadline)
            if done % recipe.log_every == 0 or is_last:
                rate = (done - start) * pairs_per_step / max(time.time() - t0, 1e-9)
                mean = float(np.mean(interval))
                interval_means.append(mean)
                interval = []
                bar.set_postfix(loss=f"{mean:.4f}", pairs_s=f"{rate:.0f}")
                log.write(
                    json.dumps({"step": done, "loss": mean, "lr": lr, "pairs_per_s": rate}) + "\n"
                )
            if (recipe.val_every and done % recipe.val_every == 0) or is_last:
                metrics = pair_metrics(score_pairs(trainer.model, val_pairs), val_pairs.label)
                log.write(json.dumps({"step": done, "validation": metrics}) + "\n")
                bar.set_postfix(
                    loss=f"{interval_means[-1] if interval_means else 0:.4f}",
                    val_fpr95=f"{100 * metrics['fpr95']:.2f}%",
                )
            if done % recipe.checkpoint_every == 0 or is_last:
                state = {**trainer.state(), "step": done, "recipe": recipe.as_dict()}
                state["train_seconds"] = trainer.seconds_before + time.time() - t0
                _atomic_save(state, checkpoint)
            log.flush()
            if is_last:
                break
    return interval_means, metrics, done


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
