"""Trained weights: files, model cards and loading by name.

A weights file ``NAME.DATA.pt`` holds ``{"model": registry name, "state_dict": …,
"format": 1}``; the model card ``NAME.DATA.json`` beside it says what data and recipe made it
and what it scores. Loading maps to CPU first, is ``strict``, and refuses non-finite weights.

Shipped weights live in the repository's ``models/`` folder, installed with the package as
``stereo/shipped`` (or in ``$STEREO_MODELS_DIR``); :mod:`stereo.patchnet.manifest` checks
every shipped file's sha256 when it is loaded.
Two tables map a registry name to a file, one per task (:data:`TASK_TABLES`):
``models/defaults.json`` the keypoint-patch weights (``load_model``, ``stereo-patches``),
``models/stereo_defaults.json`` the stereo weights (``stereo-match --model NAME``).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from stereo.errors import StereoError
from stereo.io.files import atomic_path
from stereo.io.jsonfile import dumps
from stereo.patchnet.devices import check_device
from stereo.patchnet.manifest import check_against_manifest
from stereo.patchnet.models import MODELS, PatchNet, build_model

FORMAT_VERSION = 1


def models_dir() -> Path:
    """Folder of shipped weights: ``$STEREO_MODELS_DIR``, else the installed package's
    ``stereo/shipped`` (a wheel or sdist install), else the repository's ``models/`` (a
    checkout or an editable install)."""
    env = os.environ.get("STEREO_MODELS_DIR")
    if env:
        return Path(env)
    installed = Path(__file__).resolve().parents[1] / "shipped"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "models"


def card_path(weights: Path) -> Path:
    """The model card beside a weights file (``x.pt`` → ``x.json``)."""
    return weights.with_suffix(".json")


def read_card(weights: Path) -> dict[str, Any]:
    """The model card of a weights file (``{}`` when it has none or it is not JSON)."""
    path = card_path(weights)
    try:
        card = json.loads(path.read_text()) if path.is_file() else {}
    except (ValueError, OSError):
        return {}
    return card if isinstance(card, dict) else {}


def save_weights(
    model: PatchNet, path: str | Path, card: dict[str, Any], half: bool = False
) -> Path:
    """Write ``model``'s weights (fp16 if ``half``) and its JSON model card.

    Returns:
        The weights path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
        for k, v in model.state_dict().items()
    }
    with atomic_path(path) as tmp:
        torch.save({"model": model.name, "state_dict": state, "format": FORMAT_VERSION}, tmp)
    full_card = {"model": model.name, "weights": path.name, "fp16": half, **card}
    with atomic_path(card_path(path)) as tmp:
        tmp.write_text(dumps(full_card) + "\n")
    return path


#: task → the table of shipped default weights: "patch" = trained on keypoint patches
#: (scale- and orientation-normalised), "stereo" = trained on windows cut as the plane sweep
#: compares them
TASK_TABLES = {"patch": "defaults.json", "stereo": "stereo_defaults.json"}


def default_weights_table(task: str = "patch") -> dict[str, str]:
    """Registry name → shipped weights file name for ``task`` (:data:`TASK_TABLES`)."""
    if task not in TASK_TABLES:
        raise StereoError(f"unknown weights task {task!r}; valid: {', '.join(TASK_TABLES)}")
    path = models_dir() / TASK_TABLES[task]
    if not path.is_file():
        return {}
    try:
        table = json.loads(path.read_text())
    except ValueError:
        raise StereoError(f"{path} is not valid JSON; restore it from the package") from None
    return {str(k): str(v) for k, v in table.items()} if isinstance(table, dict) else {}


def shipped_weights(name: str, task: str = "patch") -> Path | None:
    """The shipped default weights file of registry ``name`` for ``task``, if any."""
    file = default_weights_table(task).get(name)
    return models_dir() / file if file else None


def check_archive(path: Path) -> None:
    """Refuse a weights file whose zip archive (torch's format) fails its CRC checks: a
    damaged copy would otherwise load as plausible but wrong weights."""
    if not zipfile.is_zipfile(path):
        return  # not an archive: torch.load refuses it (legacy files are not written here)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
        bad = "its directory"
    if bad is not None:
        raise StereoError(
            f"weights file {path} is damaged (checksum of {bad} fails); copy it again or retrain"
        )


def load_weights_file(path: str | Path, device: str | torch.device = "cpu") -> PatchNet:
    """Build the model a weights file names and load it strictly (CPU first, then device)."""
    device = check_device(str(device))
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"weights file {path} does not exist")
    check_archive(path)
    check_against_manifest(path, models_dir())
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise StereoError(f"cannot read weights file {path}: {type(error).__name__}") from None
    if not isinstance(blob, dict) or "model" not in blob or "state_dict" not in blob:
        raise StereoError(f"{path} is not a weights file of this project (no model name)")
    model = build_model(str(blob["model"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise StereoError(
            f"{path} holds NaN or infinite weights (in {bad[0]}); retrain or "
            "use an earlier checkpoint"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise StereoError(f"{path} does not fit model {blob['model']!r}: {first}") from None
    card = card_path(path)
    try:
        model.card = json.loads(card.read_text()) if card.is_file() else {}
    except (OSError, ValueError):
        raise StereoError(f"cannot read the model card {card}: fix or delete it") from None
    return model.to(device).eval()


def load_model(
    name_or_path: str | Path, device: str | torch.device = "cpu", untrained: bool = False
) -> PatchNet:
    """A ready model (eval mode) from a weights file or a registry name.

    Args:
        name_or_path: a ``.pt`` file, a registry name whose shipped default is loaded, or
            the stem of any shipped weights file (``siam-l2.castle-stereo`` →
            ``models/siam-l2.castle-stereo.pt``).
        device: ``"cpu"``, ``"cuda"`` …
        untrained: with a registry name, return a randomly initialised network instead
            (for tests and timing, never for results).
    """
    text = str(name_or_path)
    if text.endswith(".pt") or Path(text).is_file():
        return load_weights_file(Path(text), device)
    named = models_dir() / f"{text}.pt"
    if "." in text and "/" not in text and named.is_file():
        return load_weights_file(named, device)
    if text not in MODELS:
        stems = sorted(p.stem for p in models_dir().glob("*.pt"))
        raise StereoError(
            f"unknown model {text!r}; valid names: {', '.join(MODELS)}"
            + (f"; shipped weights: {', '.join(stems)}" if stems else "")
        )
    if untrained:
        return build_model(text).to(check_device(str(device))).eval()
    path = shipped_weights(text)
    if path is None or not path.is_file():
        shipped = ", ".join(sorted(_shipped_names())) or "none yet"
        raise StereoError(
            f"no shipped weights for model {text!r} (shipped: {shipped}); pass a weights file "
            "(.pt) or train one with `stereo-patches train`"
        )
    return load_weights_file(path, device)


def _shipped_names() -> list[str]:
    defaults = models_dir() / "defaults.json"
    if not defaults.is_file():
        return []
    return [
        n
        for n, f in json.loads(defaults.read_text()).items()
        if n in MODELS and (models_dir() / f).is_file()
    ]
