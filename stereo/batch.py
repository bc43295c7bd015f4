"""Many pairs as tasks on Ray (``stereo-batch``): one result folder per pair, a summary table,
failures listed without stopping the others, finished pairs skipped on a rerun.

The pairs file is a CSV with columns ``left,right`` and optionally ``name`` (default
``LEFTSTEM-RIGHTSTEM``); relative paths are read from the CSV's folder. Ray is an optional
dependency (``pip install ".[distributed]"``): a local instance by default, or an existing
cluster by address; when the cluster has GPUs and no device was asked for, every task takes
one GPU and runs on CUDA.
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stereo.config import StereoConfig
from stereo.errors import StereoError
from stereo.io.files import atomic_path
from stereo.io.jsonfile import dumps

#: columns of the summary table, in order
SUMMARY_COLUMNS = ("pair", "status", "seconds", "coverage", "model", "left", "right", "error")
#: characters kept in a pair's default name (its result folder)
NAME_PATTERN = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PairTask:
    """One pair of a batch: its name (result folder), images and result folder."""

    name: str
    left: Path
    right: Path
    out_dir: Path


def read_pairs(csv_path: Path, out_dir: Path) -> list[PairTask]:
    """The pairs of a CSV file (``left,right[,name]``), each with its result folder."""
    if not csv_path.is_file():
        raise StereoError(f"pairs file {csv_path} does not exist")
    try:
        with csv_path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
            header = rows[0].keys() if rows else []
    except (UnicodeDecodeError, csv.Error) as error:
        raise StereoError(f"pairs file {csv_path} is not a CSV file: {error}") from None
    if not rows or not {"left", "right"} <= set(header):
        raise StereoError(
            f"pairs file {csv_path} needs a header with columns left,right (optional name) and "
            "one row per pair"
        )
    tasks = [_task(row, line, csv_path.parent, out_dir) for line, row in enumerate(rows, 2)]
    names = [t.name for t in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StereoError(
            f"pairs file {csv_path} names several pairs {', '.join(repeated)}; give each a "
            "distinct name column"
        )
    return tasks


def _task(row: dict, line: int, base: Path, out_dir: Path) -> PairTask:
    left, right = (str(row.get(k) or "").strip() for k in ("left", "right"))
    if not left or not right:
        raise StereoError(f"line {line} of the pairs file lacks a left or right image")
    paths = [Path(p) if Path(p).is_absolute() else base / p for p in (left, right)]
    name = str(row.get("name") or "").strip() or f"{paths[0].stem}-{paths[1].stem}"
    name = NAME_PATTERN.sub("_", name)
    return PairTask(name, paths[0], paths[1], out_dir / name)


def is_finished(task: PairTask) -> bool:
    """Whether the pair's result folder holds a complete result (its report is written last,
    published with the folder)."""
    return (task.out_dir / "report.json").is_file()


def match_task(
    task: PairTask, config: StereoConfig, use_gpu: bool, overwrite: bool = False
) -> dict[str, Any]:
    """Run one pair (in a Ray worker): its summary row; errors become a ``failed`` row."""
    from stereo.run import run_match

    start = time.time()
    try:
        cfg = replace(config, device="cuda") if use_gpu else config
        report = run_match(
            task.left, task.right, cfg, task.out_dir, progress=False, overwrite=overwrite
        )
    except StereoError as error:
        return {**_row(task, "failed", _since(start)), "error": str(error)}
    except Exception as error:  # one pair's crash must not stop the others
        message = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
        return {**_row(task, "failed", _since(start)), "error": message}
    return _row(task, "done", _since(start), report)


def _since(start: float) -> float:
    return round(time.time() - start, 2)


def _row(
    task: PairTask, status: str, seconds: float | None, report: dict | None = None
) -> dict[str, Any]:
    """A summary row; with the pair's ``report``, its coverage and model too."""
    row: dict[str, Any] = {
        "pair": task.name,
        "left": str(task.left),
        "right": str(task.right),
        "status": status,
        "seconds": seconds,
    }
    if report is not None:
        row["coverage"] = round(1.0 - float(report.get("unknown_fraction", 0.0)), 4)
        row["model"] = report.get("cost")
    return row


def skipped_row(task: PairTask) -> dict[str, Any]:
    """The summary row of a pair finished by an earlier run (from its report)."""
    import json

    report = json.loads((task.out_dir / "report.json").read_text())
    seconds = report.get("seconds", {})
    total = round(sum(seconds.values()), 2) if isinstance(seconds, dict) else None
    return _row(task, "skipped", total, report)


def status_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many rows are ``done``, ``skipped`` and ``failed``."""
    return {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}


def write_summary(rows: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """``summary.csv`` and ``summary.json`` of a batch (one row per pair, CSV order)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = [{k: row.get(k) for k in SUMMARY_COLUMNS} for row in rows]
    csv_path, json_path = out_dir / "summary.csv", out_dir / "summary.json"
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in table)
    with atomic_path(json_path) as tmp:
        tmp.write_text(dumps({"counts": status_counts(table), "pairs": table}) + "\n")
    return csv_path, json_path


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise StereoError(
            'stereo-batch runs pairs on Ray: pip install ray (or the project\'s "[distributed]" '
            "extra)"
        ) from None
    return ray


#: object store of a local Ray instance: results are small rows, the images travel as paths
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20


def _start_ray(ray: Any, address: str | None, workers: int | None) -> None:
    """Connect to the cluster at ``address``, or start a local instance of ``workers`` CPUs."""
    options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers, object_store_memory=LOCAL_OBJECT_STORE_BYTES, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise StereoError(f"cannot start {where}: {first}") from None


def run_batch(
    tasks: list[PairTask],
    config: StereoConfig,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_task: float = 1.0,
    device_given: bool = False,
    overwrite: bool = False,
    on_row: Any = None,
) -> list[dict[str, Any]]:
    """Run every unfinished pair of ``tasks`` as a Ray task; the summary rows in the tasks'
    order (``skipped`` for pairs an earlier run finished). ``on_row(row)`` is called as each
    pair ends. Tasks take one GPU each when the cluster has GPUs and ``device_given`` is
    False; ``overwrite`` runs finished pairs again."""
    rows = {t.name: skipped_row(t) for t in tasks if not overwrite and is_finished(t)}
    pending = [t for t in tasks if t.name not in rows]
    if pending:
        ray = _import_ray()
        _start_ray(ray, address, workers)
        try:
            use_gpu = ray.cluster_resources().get("GPU", 0) >= 1 and not device_given
            remote = ray.remote(num_cpus=cpus_per_task, num_gpus=1 if use_gpu else 0)(match_task)
            futures = {remote.remote(t, config, use_gpu, overwrite): t for t in pending}
            while futures:
                done, _ = ray.wait(list(futures), num_returns=1)
                task = futures.pop(done[0])
                rows[task.name] = ray.get(done[0])
                if on_row is not None:
                    on_row(rows[task.name])
        finally:
            ray.shutdown()
    return [rows[t.name] for t in tasks]
