"""Writing a stereo result: arrays, pictures, report and point cloud — atomically.

Everything is written into a hidden temporary folder beside the output folder and moved into
place only when all files are complete, so a failure never leaves half-written results.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from stereo.errors import StereoError
from stereo.geometry.camera import Camera
from stereo.geometry.planesweep import backproject


def check_writable(out_dir: str | Path) -> Path:
    """Create ``out_dir`` if needed and check it can be written; raise a one-line error."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".probe", delete=True)
        probe.close()
    except OSError as error:
        raise StereoError(
            f"cannot write to output folder {out}: {error.strerror}; choose another --out"
        ) from None
    return out


def save_map_png(path: Path, values: np.ndarray, title: str, label: str, cmap: str) -> None:
    """A colour-mapped picture of a map with a colour bar (NaN shown grey)."""
    h, w = values.shape
    fig, ax = plt.subplots(figsize=(8, 8 * h / w + 0.6), dpi=100)
    cm = plt.get_cmap(cmap).with_extremes(bad="0.5")
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0, 1)
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cm, vmin=lo, vmax=hi)
    ax.set_title(title)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.035, pad=0.02, label=label)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """Binary little-endian PLY of ``(N, 3)`` float points with ``(N, 3)`` uint8 colours."""
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    record = np.dtype(
        [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")]
    )
    data = np.empty(len(points), record)
    data["x"], data["y"], data["z"] = points.T.astype(np.float32)
    data["r"], data["g"], data["b"] = colours.T
    with path.open("wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())


def point_cloud(
    depth: np.ndarray, camera: Camera, colour: np.ndarray, step: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """World points and colours of every ``step``-th pixel with a depth."""
    ys, xs = np.nonzero(np.isfinite(depth[::step, ::step]))
    ys, xs = ys * step, xs * step
    points = backproject(camera, np.stack([xs, ys], axis=1).astype(float), depth[ys, xs])
    rgb = colour[ys, xs] if colour.ndim == 3 else np.repeat(colour[ys, xs, None], 3, axis=1)
    return points, rgb.astype(np.uint8)


def write_result(
    out_dir: str | Path,
    arrays: dict[str, np.ndarray],
    pictures: dict[str, tuple[np.ndarray, str, str, str]],
    report: dict[str, Any],
    cloud: tuple[np.ndarray, np.ndarray] | None,
    extra_json: dict[str, Any] | None = None,
) -> Path:
    """Write ``NAME.npy`` arrays, ``NAME.png`` pictures ``(values, title, label, cmap)``,
    ``report.json``, ``points.ply`` and any ``extra_json`` files into ``out_dir``, all or
    nothing."""
    out = check_writable(out_dir)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".writing-"))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array.astype(np.float32))
        for name, (values, title, label, cmap) in pictures.items():
            save_map_png(tmp / f"{name}.png", values, title, label, cmap)
        if cloud is not None:
            write_ply(tmp / "points.ply", *cloud)
        (tmp / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
        for name, content in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(content, indent=2) + "\n")
        for item in tmp.iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
