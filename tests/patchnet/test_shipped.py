"""Shipped weights load by registry name with no network and no ../shared."""

from __future__ import annotations

import json

import pytest
import torch

from stereo.patchnet.weights import load_model, models_dir

DEFAULTS = models_dir() / "defaults.json"
SHIPPED = json.loads(DEFAULTS.read_text()) if DEFAULTS.is_file() else {}


@pytest.mark.skipif(not SHIPPED, reason="no shipped weights listed in models/defaults.json")
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_loads_by_name_and_has_a_card(name):
    model = load_model(name)
    card = json.loads((models_dir() / SHIPPED[name]).with_suffix(".json").read_text())
    assert card["model"] == name
    for key in ("recipe", "data", "steps", "seed", "wall_time_s", "hardware", "command"):
        assert key in card, key
    x = torch.randint(0, 256, (6, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        same = model.score(x, x)
        other = model.score(x, x.roll(1, dims=0))
    assert torch.isfinite(same).all()
    assert (same > other).float().mean() >= 0.5  # a patch resembles itself more than others


ALL_WEIGHTS = sorted(p.stem for p in models_dir().glob("*.pt"))


@pytest.mark.skipif(not ALL_WEIGHTS, reason="no weights in models/")
@pytest.mark.parametrize("stem", ALL_WEIGHTS)
def test_every_weights_file_loads_by_its_stem_and_has_a_card(stem):
    model = load_model(stem)
    card = json.loads((models_dir() / f"{stem}.json").read_text())
    assert card["model"] == model.name == stem.split(".")[0]
    for key in ("recipe", "data", "steps", "seed", "command"):
        assert key in card, key
    by_path = load_model(models_dir() / f"{stem}.pt")
    for a, b in zip(model.state_dict().values(), by_path.state_dict().values(), strict=True):
        assert torch.equal(a, b)
