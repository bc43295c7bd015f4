"""A benchmark's results: the JSON it saves beside its Markdown table, merged across runs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from stereo.bench.machine import hardware


def saved_results(out: Path, required: bool = False) -> dict:
    """The JSON a benchmark saved beside its table (``out`` + ``.json``); ``{}`` when there is
    none yet, or exit with a one-line error when ``required`` (``--table-only`` runs)."""
    path = out.with_suffix(".json")
    if path.is_file():
        return json.loads(path.read_text())
    if required:
        sys.exit(f"error: {path} does not exist; run the benchmark first")
    return {}


def save_results(out: Path, summary: dict, write_table: Callable[[dict, Path], None]) -> None:
    """Write a benchmark's ``summary`` as ``out`` + ``.json`` and its table as ``out`` +
    ``.md`` (the pair :func:`saved_results` reads back)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    write_table(summary, out.with_suffix(".md"))


def common_methods(results: dict[str, dict[str, dict]]) -> list[str]:
    """The methods of ``results`` (``{pair: {method: scores}}``) that ran on every pair, in
    the first pair's order: those a table's means may average."""
    first = next(iter(results.values()), {})
    return [method for method in first if all(method in rows for rows in results.values())]


def merge_scores(results: dict, pair: str, rows: dict[str, dict]) -> None:
    """Add one pair's ``{method: scores}`` to ``results`` (``{pair: {method: scores}}``): a
    method's new keys (e.g. λ values) join the ones an earlier run left."""
    for method, scores in rows.items():
        results.setdefault(pair, {}).setdefault(method, {}).update(scores)


def run_pairs(
    out: Path,
    pairs: list[str],
    run_pair: Callable[[str], dict[str, dict]],
    write_table: Callable[[dict, Path], None],
    table_only: bool = False,
    **fields,
) -> None:
    """Run a benchmark pair by pair on 2 threads: each pair's ``{method: scores}``
    (``run_pair``) merged into the results saved at ``out`` (:func:`merge_scores`) and saved
    at once, with the machine, the date and ``fields``, so that a stopped run keeps its
    finished pairs; ``table_only``: rewrite the Markdown from the saved results alone."""
    if table_only:
        save_results(out, saved_results(out, required=True), write_table)
        return
    torch.set_num_threads(2)
    results = saved_results(out).get("results", {})
    for pair in pairs:
        merge_scores(results, pair, run_pair(pair))
        summary = {"hardware": hardware(), "date": time.strftime("%Y-%m-%d"), **fields}
        save_results(out, {**summary, "results": results}, write_table)
