"""JSON that stays valid: NaN and infinities become ``null`` (plain ``json.dumps`` writes
``NaN`` / ``Infinity``, which no strict JSON reader accepts), NumPy values plain numbers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, NumPy scalars and arrays as
    Python numbers and lists, tuples as lists (recursively)."""
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``value`` (see :func:`finite`)."""
    return json.dumps(finite(value), indent=indent, allow_nan=False)
