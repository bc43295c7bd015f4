"""Download the Brown / UBC patch data sets (for users with internet access).

Nothing in the project downloads at run time on its own: this runs only when asked
(``stereo-patches download-brown NAME``). The archive is fetched to ``DEST/NAME.zip``,
extracted to ``DEST/NAME`` and checked by reading it; a finished download is not repeated.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from stereo.errors import StereoError
from stereo.patchnet.data.brown import read_info

#: where the authors' archives have been published (override with ``url=``).
BROWN_URLS = {
    name: f"http://matthewalunbrown.com/patchdata/{name}.zip"
    for name in (
        "liberty",
        "notredame",
        "yosemite",
        "liberty_harris",
        "notredame_harris",
        "yosemite_harris",
    )
}


def _fetch(url: str, target: Path) -> None:
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url) as response, partial.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise StereoError(
            f"cannot download {url}: {reason}; check the connection or pass another --url"
        ) from None
    partial.replace(target)


def download_brown(name: str, dest: str | Path, url: str | None = None) -> Path:
    """Fetch and extract one Brown data set; returns the folder holding ``info.txt``."""
    if url is None:
        if name not in BROWN_URLS:
            raise StereoError(f"unknown Brown set {name!r}; valid: {', '.join(BROWN_URLS)}")
        url = BROWN_URLS[name]
    dest = Path(dest)
    folder = dest / name
    if (folder / "info.txt").is_file():
        return folder
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"{name}.zip"
    if not archive.is_file():
        _fetch(url, archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            tmp = dest / f".{name}.extracting"
            shutil.rmtree(tmp, ignore_errors=True)
            zf.extractall(tmp)
    except zipfile.BadZipFile:
        archive.unlink()
        raise StereoError(f"{archive} is not a zip archive (deleted); download again") from None
    infos = sorted(tmp.rglob("info.txt"))
    if not infos:
        shutil.rmtree(tmp)
        raise StereoError(f"{archive} holds no info.txt: not a Brown data set")
    read_info(infos[0])
    shutil.rmtree(folder, ignore_errors=True)
    infos[0].parent.replace(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    return folder
