"""Helpers the benchmark scripts share."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def saved_results(out: Path, required: bool = False) -> dict:
    """The JSON a benchmark saved beside its table (``out`` + ``.json``); ``{}`` when there is
    none yet, or exit with a one-line error when ``required`` (``--table-only`` runs)."""
    path = out.with_suffix(".json")
    if path.is_file():
        return json.loads(path.read_text())
    if required:
        sys.exit(f"error: {path} does not exist; run the benchmark first")
    return {}
