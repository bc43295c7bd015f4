"""Training: every architecture learns on real patches, recipes, resume, NaN stop, weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stereo.errors import StereoError
from stereo.patchnet.data import make_pairs
from stereo.patchnet.models import MODELS, build_model
from stereo.patchnet.recipes import checked_overrides, default_recipe, get_recipe
from stereo.patchnet.train import Trainer, score_pairs, train
from stereo.patchnet.weights import load_model, load_weights_file, save_weights

SHORT = {
    "steps": "30",
    "batch_size": "32",
    "points_sequential": "16",
    "points_random": "16",
    "log_every": "10",
    "val_every": "0",
    "checkpoint_every": "100",
    "val_pairs": "100",
}


def _run(tmp_path, model, recipe, data, **kw):
    return train(model, recipe.with_overrides(SHORT), data, tmp_path, progress=False, **kw)


@pytest.mark.parametrize("name", list(MODELS))
def test_short_training_lowers_loss(tmp_path, warped_small, name):
    """30 steps on a few hundred real patch pairs with the recipe of the model's own paper:
    the mean loss of the last 10 steps is below that of the first 10."""
    result = _run(tmp_path, name, default_recipe(name), warped_small)
    assert result.last_loss < result.first_loss, result.losses


@pytest.mark.parametrize("recipe", ["contrastive", "triplet", "margin", "dbl", "deepdesc"])
def test_descriptor_recipes_lower_loss(tmp_path, warped_small, recipe):
    result = _run(tmp_path, "siam-l2", get_recipe(recipe), warped_small)
    assert result.last_loss < result.first_loss, result.losses


def test_training_improves_held_out_fpr95(tmp_path, warped_small):
    data, held = warped_small.split_by_points(0.3, seed=0)
    pairs = make_pairs(held, 400, seed=0)
    model = build_model("siam-l2")
    torch.manual_seed(0)
    before = score_pairs(model, pairs)
    recipe = get_recipe("contrastive").with_overrides({**SHORT, "steps": "60"})
    result = train("siam-l2", recipe, data, tmp_path, val_pairs=pairs, progress=False)
    from stereo.patchnet.metrics import fpr95

    assert result.card["validation"]["fpr95"] < fpr95(before, pairs.label)


@pytest.mark.parametrize(("model", "recipe"), [("siam-l2", "deepcompare-adam"), ("l2net", "l2net")])
def test_resume_equals_uninterrupted_run(tmp_path, warped_small, model, recipe):
    """Random pairs and L2-Net's progressive sampler (its order and cursor live in the
    checkpoint): 10 + 10 steps give the weights of 20 straight steps."""
    short = get_recipe(recipe).with_overrides({**SHORT, "steps": "20", "checkpoint_every": "10"})
    straight = train(model, short, warped_small, tmp_path / "a", progress=False)
    half = short.with_overrides({"steps": "10"})
    train(model, half, warped_small, tmp_path / "b", progress=False)
    resumed = train(model, short, warped_small, tmp_path / "b", resume=True, progress=False)
    a = load_weights_file(straight.weights).state_dict()
    b = load_weights_file(resumed.weights).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_time_limit_stops_with_the_steps_done_and_a_resumable_checkpoint(tmp_path, warped_small):
    """A run given no time stops after its first step with weights, a validated card that
    says so, and a checkpoint from which --resume finishes the planned steps."""
    recipe = get_recipe("deepcompare-adam").with_overrides({**SHORT, "steps": "5"})
    stopped = train(
        "siam-l2", recipe, warped_small, tmp_path / "run", progress=False, time_limit_s=0.0
    )
    assert stopped.card["steps"] == 1 and stopped.card["stopped_by_time_limit"] is True
    assert stopped.weights.is_file() and "fpr95" in stopped.card["validation"]
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 1 and checkpoint["train_seconds"] > 0
    finished = train("siam-l2", recipe, warped_small, tmp_path / "run", resume=True, progress=False)
    assert finished.card["steps"] == 5 and "stopped_by_time_limit" not in finished.card
    assert finished.card["train_seconds"] >= round(checkpoint["train_seconds"], 1)  # both runs


class _Payload:
    """Unpickling this object would create ``marker`` (what a crafted checkpoint does)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_never_runs_code_from_a_checkpoint(tmp_path, warped_small):
    """A crafted checkpoint.pt whose unpickling would create a file: --resume refuses it in
    one line and the file is never created; a corrupt checkpoint is refused the same way."""
    marker = tmp_path / "pwned"
    recipe = get_recipe("deepcompare-adam").with_overrides(SHORT)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"step": 1, "model": {}, "payload": _Payload(marker)}, run / "checkpoint.pt")
    with pytest.raises(StereoError, match="cannot read checkpoint") as info:
        train("siam-l2", recipe, warped_small, run, resume=True, progress=False)
    assert not marker.exists() and "\n" not in str(info.value)
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(StereoError, match="cannot read checkpoint"):
        train("siam-l2", recipe, warped_small, run, resume=True, progress=False)
    torch.save({"step": 3, "model": {"w": torch.zeros(2)}}, run / "checkpoint.pt")
    with pytest.raises(StereoError, match="does not fit this run"):
        train("siam-l2", recipe, warped_small, run, resume=True, progress=False)


def test_weights_file_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": "siam-l2", "state_dict": {}, "x": _Payload(marker)}, path)
    with pytest.raises(StereoError, match="cannot read weights file"):
        load_weights_file(path)
    assert not marker.exists()


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, warped_small, monkeypatch):
    calls = {"n": 0}
    original = Trainer.compute_loss

    def poisoned(self):
        calls["n"] += 1
        loss = original(self)
        return loss * float("nan") if calls["n"] > 12 else loss

    monkeypatch.setattr(Trainer, "compute_loss", poisoned)
    recipe = get_recipe("deepcompare-adam").with_overrides({**SHORT, "checkpoint_every": "5"})
    with pytest.raises(StereoError, match="NaN") as info:
        train("2ch", recipe, warped_small, tmp_path, progress=False)
    assert "checkpoint.pt" in str(info.value) and "\n" not in str(info.value)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_training_with_near_miss_negatives(tmp_path, warped_small):
    """Near misses (here: each point's first patch shifted 4 px) take half the negatives; the
    held-out validation pairs use true points only, and the loss falls."""
    from stereo.patchnet.data import PatchSet

    first = np.unique(warped_small.point_ids, return_index=True)[1]
    shifted = np.roll(warped_small.patches[first], 4, axis=2)
    top = int(warped_small.point_ids.max()) + 1
    data = PatchSet(
        np.concatenate([warped_small.patches, shifted]),
        np.r_[warped_small.point_ids, top + np.arange(first.size)],
        {},
        np.r_[np.full(len(warped_small), -1), warped_small.point_ids[first]],
    )
    recipe = get_recipe("deepcompare-adam").with_overrides({"near_negatives": "0.5"})
    result = _run(tmp_path, "siam-l2", recipe, data)
    assert result.last_loss < result.first_loss, result.losses
    for name in ("siam-l2", "2ch"):  # the stereo ranking recipe, descriptor and 2-channel
        result = _run(tmp_path / name, name, get_recipe("stereo"), data)
        assert result.last_loss < result.first_loss, (name, result.losses)
    with pytest.raises(StereoError, match="near-miss"):
        _run(tmp_path / "plain", "siam-l2", recipe, warped_small)
    with pytest.raises(StereoError, match="near_negatives"):
        Trainer(
            build_model("l2net"),
            get_recipe("l2net").with_overrides({"near_negatives": "0.5"}),
            data,
            torch.device("cpu"),
            0,
        )


def test_hardest_in_batch_negatives(tmp_path, warped_small):
    """Each anchor's mined negative is its highest score (−L2) against the positives of the
    batch's other points, its own point's positives masked; 2-channel models are refused."""
    recipe = get_recipe("stereo").with_overrides({"hardest_in_batch": "true"})
    trainer = Trainer(build_model("siam-l2"), recipe, warped_small, torch.device("cpu"), 0)
    ids = trainer.index.point_of_patch
    a, b, c = (int(np.nonzero(ids == point)[0][0]) for point in np.unique(ids)[:3])
    triplets = np.array([[a, a, b], [b, b, a], [c, a, b]])  # point of c's anchor ≠ a's
    da = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    dp = torch.tensor([[1.0, 0.0], [4.0, 0.0], [0.0, 7.0]], dtype=torch.float64)
    hardest = trainer._hardest_other_point(da, dp, triplets)
    # anchor 0 (point a): positives 1 (b, distance 4) and 2 (a, masked) → −4
    # anchor 1 (point b): positives 0 (a, 9) and 2 (a, √149) → −9
    # anchor 2 (point c): positives 0 (√10), 1 (5), 2 (4) → −√10
    expected = torch.tensor([-4.0, -9.0, -(10.0**0.5)], dtype=torch.float64)
    torch.testing.assert_close(hardest, expected, atol=1e-6, rtol=0)
    with pytest.raises(StereoError, match="hardest_in_batch"):
        Trainer(build_model("2ch"), recipe, warped_small, torch.device("cpu"), 0)
    mined = recipe.with_overrides({"near_negatives": "0"})  # no near misses in this set
    result = _run(tmp_path, "siam", mined, warped_small)  # a learned decision head
    assert result.last_loss < result.first_loss, result.losses


def test_incompatible_and_unknown_recipes(warped_small):
    with pytest.raises(StereoError, match="descriptor compared by L2"):
        Trainer(build_model("2ch"), get_recipe("contrastive"), warped_small, torch.device("cpu"), 0)
    with pytest.raises(StereoError, match="valid recipes"):
        get_recipe("fast")
    with pytest.raises(StereoError, match="valid fields"):
        get_recipe("deepcompare").with_overrides({"learning_rate": "1"})
    with pytest.raises(StereoError, match="takes a float"):
        get_recipe("deepcompare").with_overrides({"lr": "fast"})


def test_model_card_and_weights_round_trip(tmp_path, warped_small):
    result = _run(tmp_path, "cnn3", get_recipe("deepdesc"), warped_small, seed=3)
    card = json.loads(result.weights.with_suffix(".json").read_text())
    for key in (
        "model",
        "recipe",
        "data",
        "steps",
        "seed",
        "wall_time_s",
        "hardware",
        "validation",
    ):
        assert key in card
    assert card["model"] == "cnn3" and card["seed"] == 3 and card["steps"] == 30
    assert 0 <= card["validation"]["fpr95"] <= 1
    model = load_model(result.weights)
    half = save_weights(model, tmp_path / "cnn3.half.pt", {"note": "fp16"}, half=True)
    assert half.stat().st_size < 0.6 * result.weights.stat().st_size
    x = torch.randint(0, 256, (4, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(
            load_model(half).score(x, x.flip(0)), model.score(x, x.flip(0)), atol=2e-2, rtol=2e-3
        )


def test_bad_weights_files(tmp_path):
    model = build_model("2ch")
    with torch.no_grad():
        model.head[0].weight[0, 0] = float("nan")
    save_weights(model, tmp_path / "nan.pt", {})
    with pytest.raises(StereoError, match="NaN"):
        load_model(tmp_path / "nan.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(StereoError, match="cannot read"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(StereoError, match="valid names"):
        load_model("2ch-deeper")
    with pytest.raises(StereoError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_registry_name_without_shipped_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("STEREO_MODELS_DIR", str(tmp_path))
    with pytest.raises(StereoError, match="no shipped weights for model 'siam'"):
        load_model("siam")
    model = build_model("siam")
    save_weights(model, tmp_path / "siam.test.pt", {})
    (tmp_path / "defaults.json").write_text(json.dumps({"siam": "siam.test.pt"}))
    loaded = load_model("siam")
    assert not loaded.training
    assert np.allclose(loaded.head[0].bias.detach().numpy(), model.head[0].bias.detach().numpy())


def test_checked_overrides_parse_and_refuse_what_the_recipe_lacks():
    assert checked_overrides(["lr=0.01", " steps = 5 "], "stereo") == {"lr": "0.01", "steps": "5"}
    with pytest.raises(StereoError, match="KEY=VALUE"):
        checked_overrides(["lr"], "stereo")
    with pytest.raises(StereoError, match="nope"):
        checked_overrides(["nope=1"], "stereo")
