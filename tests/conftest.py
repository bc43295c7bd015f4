"""Shared fixtures. Data from ``../shared/data`` is optional: tests using it skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``, or skip the test when it is absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data set at {SHARED_DATA} (absent on a fresh clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def warped_small():
    """300 points × 3 views of real photographs under known warps (about 0.2 s)."""
    from stereo.patchnet.data.warped import warped_patch_set

    return warped_patch_set(300, 3, seed=0)
