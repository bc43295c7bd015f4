"""One stereo run from files to a result folder: read the pair and its cameras, match it in
the mode it calls for (calibrated, rectified, uncalibrated), write every output as one unit."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from stereo.config import StereoConfig
from stereo.errors import StereoError
from stereo.progress import stage_done


def find_cameras(
    left: Path, right: Path, left_camera: str | None = None, right_camera: str | None = None
):
    """Both cameras and their files (given, or found beside the images), or None when
    neither image has one."""
    from stereo.geometry.camera import read_camera
    from stereo.geometry.scene import find_camera

    paths = [
        Path(left_camera) if left_camera else find_camera(left),
        Path(right_camera) if right_camera else find_camera(right),
    ]
    if paths[0] is None and paths[1] is None:
        return None
    if paths[0] is None or paths[1] is None:
        missing = left if paths[0] is None else right
        raise StereoError(
            f"found a camera file for one image but not for {missing}; give "
            "--left-camera and --right-camera, or neither"
        )
    return [read_camera(p) for p in paths], paths


#: fewest SIFT matches for the row-alignment test of a pair without cameras
MIN_ROW_MATCHES = 20


def row_misalignment(left: np.ndarray, right: np.ndarray) -> tuple[float | None, int]:
    """Median |Δy| (pixels) of the pair's SIFT matches and their count (None with fewer than
    :data:`MIN_ROW_MATCHES`)."""
    from stereo.geometry.matches import sift_matches

    x1, x2 = sift_matches(left, right, n=1500)
    if len(x1) < MIN_ROW_MATCHES:
        return None, len(x1)
    return float(np.median(np.abs(x1[:, 1] - x2[:, 1]))), len(x1)


def run_match(
    left: Path,
    right: Path,
    config: StereoConfig,
    out_dir: Path,
    left_camera: str | None = None,
    right_camera: str | None = None,
    progress: bool = True,
    rectified: bool = False,
    overwrite: bool = False,
    colmap: Path | None = None,
    keep_inputs: Path | None = None,
) -> dict:
    """Match a pair (calibrated, rectified or uncalibrated) and write every output into
    ``out_dir`` as one unit (:class:`~stereo.io.outputs.OutputFolder`: claimed before any
    work, published only when complete; an earlier result is replaced only with
    ``overwrite``). ``colmap``: a COLMAP sparse model folder to take both cameras from (and,
    unless the configuration sets one, the depth range of its 3D points). ``keep_inputs``: a
    folder copied into the result as ``inputs/`` (the demo's scene and its exact depth).

    Returns:
        The run's report (also written as ``report.json``).
    """
    from stereo.io.outputs import OutputFolder, copy_folder, write_result

    pair = _read_pair(left, right, (left_camera, right_camera, colmap), rectified)
    if pair["depth_range"] is not None and config.depth_range is None:
        config = replace(config, depth_range=pair["depth_range"])
    with OutputFolder(out_dir, overwrite) as folder:
        result, report, extra = _match_pair(pair, config, progress, rectified)
        report.update(pair["source"])
        start = time.time()
        arrays, pictures, cloud = _outputs(result, report, left)
        write_result(folder.staging, arrays, pictures, report, cloud, extra)
        if keep_inputs is not None:
            copy_folder(keep_inputs, folder.staging / "inputs")
        stage_done({}, "writing", start)
        folder.commit()
    return report


def _colmap_cameras(folder: Path, left: Path, right: Path) -> tuple[tuple, dict, tuple | None]:
    """Cameras of the pair from a COLMAP model: ``(found, report entries, depth range)``."""
    from stereo.geometry.colmap import read_colmap_pair

    pair = read_colmap_pair(folder, left.name, right.name)
    source = {"cameras": f"COLMAP model {folder}", "colmap_shared_points": pair.n_points}
    if pair.depth_range is not None:
        source["depth_range_from"] = f"COLMAP: {pair.n_points} 3D points seen by both images"
    return (list(pair.cameras), [folder, folder]), source, pair.depth_range


def _read_pair(left: Path, right: Path, cameras: tuple, rectified: bool) -> dict:
    """Both images (grey) and, when found, their cameras, checked against each other.
    ``cameras`` = (left camera file, right camera file, COLMAP model folder), each or None."""
    from stereo.geometry.scene import check_image_size
    from stereo.io.images import read_image

    left_camera, right_camera, colmap = cameras
    if colmap is not None and (left_camera or right_camera or rectified):
        raise StereoError(
            "--colmap gives both cameras: drop --left-camera, --right-camera and --rectified"
        )
    reference, other = read_image(left), read_image(right)
    source, depth_range = {}, None
    if colmap is not None:
        found, source, depth_range = _colmap_cameras(Path(colmap), left, right)
    else:
        found = None if rectified else find_cameras(left, right, left_camera, right_camera)
    if found is not None:
        for image, camera, image_path, camera_path in zip(
            (reference, other), found[0], (left, right), found[1], strict=True
        ):
            check_image_size(image, camera, image_path, camera_path)
    elif reference.shape != other.shape:
        raise StereoError(
            f"{left} and {right} differ in size and have no cameras; give "
            "cameras, or resize/rectify the pair"
        )
    return {
        "paths": (left, right),
        "images": (reference, other),
        "cameras": found,
        "source": source,
        "depth_range": depth_range,
    }


def _match_pair(pair: dict, config, progress: bool, rectified: bool):
    """Match a read pair in the mode it calls for: ``(result, report, extra json files)``."""
    from stereo.pipeline import match_calibrated, match_rectified, match_uncalibrated

    (reference, other), extra = pair["images"], {}
    mode, why = _choose_mode(pair, rectified)
    if mode == "calibrated":
        ref_cam, other_cam = pair["cameras"][0]
        result = match_calibrated(reference, other, ref_cam, other_cam, config, progress)
    elif mode == "rectified":
        result = match_rectified(reference, other, config, progress=progress)
    else:
        result = match_uncalibrated(reference, other, config, progress)
        extra["rectification.json"] = result.rectification
    left, right = pair["paths"]
    report = {"left": str(left), "right": str(right), "mode": mode, "mode_reason": why}
    return result, {**report, **result.report}, extra


#: largest median |Δy| (pixels) of SIFT matches for a pair without cameras to be matched
#: along rows as it is
ROW_TOLERANCE_PX = 1.0


def _choose_mode(pair: dict, rectified: bool) -> tuple[str, str]:
    """The matching mode of a read pair and why (the report's ``mode_reason``)."""
    if pair["cameras"] is not None:
        files = pair["cameras"][1]
        return "calibrated", f"cameras from {', '.join(sorted({str(f) for f in files}))}"
    if rectified:
        return "rectified", "--rectified given"
    dy, n = row_misalignment(*pair["images"])
    if dy is not None and dy <= ROW_TOLERANCE_PX:
        return "rectified", (
            f"no cameras; the {n} SIFT matches are row-aligned (median |dy| {dy:.2f} px "
            f"<= {ROW_TOLERANCE_PX:g})"
        )
    seen = f"median |dy| {dy:.2f} px" if dy is not None else f"only {n} SIFT matches"
    return "uncalibrated", f"no cameras and rows not aligned ({seen}): rectified from matches"


def _outputs(result, report: dict, left: Path):
    """Arrays, pictures and point cloud of a result (the report gains its ``output`` key)."""
    import cv2

    from stereo.geometry.planesweep import point_cloud
    from stereo.io.images import read_image

    pictures = {
        "cost_confidence": (
            result.confidence,
            "confidence: margin of the best hypothesis",
            "normalised cost margin",
            "viridis",
        )
    }
    mode = report["mode"]
    if result.kind == "depth":
        report["output"] = "depth.npy: metres, reference pixel grid, NaN = unknown"
        arrays = {"depth": result.depth, "confidence": result.confidence}
        pictures["depth"] = (result.depth, f"depth ({report['cost']})", "depth (m)", "turbo_r")
        h, w = result.depth_working.shape
        colour = cv2.resize(read_image(left, grey=False), (w, h), interpolation=cv2.INTER_AREA)
        cloud = point_cloud(result.depth_working, result.camera_working, colour)
        return arrays, pictures, cloud
    grid = "the RECTIFIED left image" if mode == "uncalibrated" else "the left image"
    report["output"] = f"disparity.npy: pixels (x_left - x_right) in {grid}, NaN = unknown"
    arrays = {"disparity": result.depth, "confidence": result.confidence}
    pictures["disparity"] = (
        result.depth,
        f"disparity ({report['cost']}, {mode})",
        "disparity (px)",
        "turbo",
    )
    if result.disparity_left is not None:
        report["output_left"] = (
            "disparity_left.npy: the same disparities in the input left image's pixel grid"
        )
        arrays["disparity_left"] = result.disparity_left
        pictures["disparity_left"] = (
            result.disparity_left,
            f"disparity on the left image ({report['cost']}, {mode})",
            "rectified disparity (px)",
            "turbo",
        )
    return arrays, pictures, None
