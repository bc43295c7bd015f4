"""A run's result folder, written as one unit: arrays, pictures, report, point cloud.

:class:`OutputFolder` claims ``--out`` before any work: a hidden staging folder beside it
(``.NAME.stereo-writing``, holding the owner's process id) is the lock that keeps two runs
from writing one folder. Every file is written into the staging folder and the folder is
moved into place only when all are complete, so a failure, a full disk or a SIGTERM leaves
``--out`` as it was. An earlier result in ``--out`` is replaced only with ``overwrite``, and
only when it holds nothing but the files a run writes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from stereo.errors import StereoError
from stereo.io.jsonfile import dumps

#: the files a stereo-match run writes; only a folder of these may be overwritten
RESULT_FILES = frozenset(
    {
        "depth.npy",
        "disparity.npy",
        "disparity_left.npy",
        "disparity_left.png",
        "confidence.npy",
        "depth.png",
        "disparity.png",
        "cost_confidence.png",
        "report.json",
        "points.ply",
        "rectification.json",
    }
)
#: the folders a run may write: ``inputs`` = the demo's rendered scene (images, cameras,
#: exact depth), kept so that its result can be scored again
RESULT_FOLDERS = frozenset({"inputs"})
#: pictures are drawn from maps of at most this many pixels on the long side
PICTURE_MAX_SIDE = 2048
_OWNER = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputFolder:
    """Claim, fill and publish a result folder (a context manager).

    ``with OutputFolder(out, overwrite) as folder:`` checks ``out`` and takes the lock;
    write into ``folder.staging``, then call :meth:`commit`. Leaving the block without
    committing (an error, Ctrl-C, SIGTERM turned into ``SystemExit``) removes the staging
    folder and leaves ``out`` untouched.
    """

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.staging = self.path.parent / f".{self.path.name}.stereo-writing"
        self.committed = False

    def check_target(self) -> None:
        """Raise unless ``path`` is absent, empty, or (with ``overwrite``) an earlier result."""
        if self.path.exists() and not self.path.is_dir():
            raise StereoError(f"output folder {self.path} is a file; choose another --out")
        entries = sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []
        if not entries:
            return
        foreign = [name for name in entries if not self._is_result_entry(name)]
        if foreign or "report.json" not in entries:
            raise StereoError(
                f"output folder {self.path} holds files a run did not write (e.g. "
                f"{(foreign or entries)[0]}); choose another --out (or an empty folder)"
            )
        if not self.overwrite:
            raise StereoError(
                f"output folder {self.path} already holds a result; give --overwrite to "
                "replace it, or choose another --out"
            )

    def _is_result_entry(self, name: str) -> bool:
        is_dir = (self.path / name).is_dir()
        return name in RESULT_FOLDERS if is_dir else name in RESULT_FILES

    def __enter__(self) -> OutputFolder:
        self.check_target()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._claim()
        except OSError as error:
            raise StereoError(
                f"cannot write to output folder {self.path}: {error.strerror}; choose another --out"
            ) from None
        return self

    def _claim(self) -> None:
        for _ in range(2):
            try:
                self.staging.mkdir()
                (self.staging / _OWNER).write_text(str(os.getpid()))
                return
            except FileExistsError:
                owner = self.staging / _OWNER
                text = owner.read_text().strip() if owner.is_file() else ""
                pid = int(text) if text.isdigit() else 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise StereoError(
                        f"another run (process {pid}) is writing {self.path}; wait for it "
                        "or choose another --out"
                    ) from None
                shutil.rmtree(self.staging, ignore_errors=True)  # left by a killed run
        raise StereoError(f"cannot claim output folder {self.path}; choose another --out")

    def commit(self) -> Path:
        """Move the complete staging folder into place (replacing an earlier result)."""
        self.check_target()
        (self.staging / _OWNER).unlink()
        old = self.path.parent / f".{self.path.name}.stereo-old"
        try:
            if self.path.is_dir() and any(self.path.iterdir()):
                shutil.rmtree(old, ignore_errors=True)
                os.rename(self.path, old)
            os.replace(self.staging, self.path)
        except OSError as error:
            raise StereoError(
                f"cannot move the results into {self.path}: {error.strerror}"
            ) from None
        shutil.rmtree(old, ignore_errors=True)
        self.committed = True
        return self.path

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            shutil.rmtree(self.staging, ignore_errors=True)


def picture_map(values: np.ndarray, max_side: int = PICTURE_MAX_SIDE) -> np.ndarray:
    """``values`` subsampled (nearest) so its long side is at most ``max_side`` pixels."""
    step = max(1, int(np.ceil(max(values.shape) / max_side)))
    return values[::step, ::step]


def save_map_png(path: Path, values: np.ndarray, title: str, label: str, cmap: str) -> None:
    """A colour-mapped picture of a map with a colour bar (NaN shown grey)."""
    values = picture_map(values)
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


def write_result(
    folder: Path,
    arrays: dict[str, np.ndarray],
    pictures: dict[str, tuple[np.ndarray, str, str, str]],
    report: dict[str, Any],
    cloud: tuple[np.ndarray, np.ndarray] | None,
    extra_json: dict[str, Any] | None = None,
) -> None:
    """Write ``NAME.npy`` arrays, ``NAME.png`` pictures ``(values, title, label, cmap)``,
    ``report.json`` (strict JSON), ``points.ply`` and any ``extra_json`` files into
    ``folder`` (an :class:`OutputFolder`'s staging folder)."""
    try:
        for name, array in arrays.items():
            np.save(folder / f"{name}.npy", array.astype(np.float32))
        for name, (values, title, label, cmap) in pictures.items():
            save_map_png(folder / f"{name}.png", values, title, label, cmap)
        if cloud is not None:
            write_ply(folder / "points.ply", *cloud)
        (folder / "report.json").write_text(dumps(report) + "\n")
        for name, content in (extra_json or {}).items():
            (folder / name).write_text(dumps(content) + "\n")
    except OSError as error:
        raise StereoError(
            f"could not write the results ({error.strerror or error}); free some space or "
            "choose another --out — nothing was written"
        ) from None


def copy_folder(source: Path, target: Path) -> None:
    """Copy ``source`` (a folder of inputs) to ``target`` inside a staging folder."""
    try:
        shutil.copytree(source, target)
    except OSError as error:
        raise StereoError(
            f"could not write the results ({error.strerror or error}); free some space or "
            "choose another --out — nothing was written"
        ) from None
