"""``stereo-match`` and ``stereo-eval``: thin commands over :mod:`stereo.pipeline` and
:mod:`stereo.evaluation`. Bad input ends with a one-line ``Error: …``, never a traceback."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from stereo.config import DEFAULT_MODEL, INVALID_MODES, OPTIMIZERS, StereoConfig
from stereo.cost.base import PRECISIONS
from stereo.cost.factory import BASELINE_COSTS
from stereo.errors import StereoError, exit_on_sigterm, one_line_errors
from stereo.io.jsonfile import dumps
from stereo.mrf.graphcut import MRFConfig


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


def looks_rectified(left: np.ndarray, right: np.ndarray, tolerance_px: float = 1.0) -> bool:
    """Whether SIFT matches of the pair are row-aligned (median |Δy| within tolerance)."""
    from stereo.geometry.matches import sift_matches

    x1, x2 = sift_matches(left, right, n=1500)
    if len(x1) < 20:
        return False
    return bool(np.median(np.abs(x1[:, 1] - x2[:, 1])) <= tolerance_px)


def run_match(
    left: Path,
    right: Path,
    config: StereoConfig,
    out_dir: Path,
    left_camera: str | None = None,
    right_camera: str | None = None,
    progress: bool = True,
    rectified: bool = False,
    disparity_range: tuple[float, float] | None = None,
    overwrite: bool = False,
) -> dict:
    """Match a pair (calibrated, rectified or uncalibrated) and write every output into
    ``out_dir`` as one unit (:class:`~stereo.io.outputs.OutputFolder`: claimed before any
    work, published only when complete; an earlier result is replaced only with
    ``overwrite``).

    Returns:
        The run's report (also written as ``report.json``).
    """
    from stereo.io.outputs import OutputFolder, write_result

    pair = _read_pair(left, right, left_camera, right_camera, rectified)
    with OutputFolder(out_dir, overwrite) as folder:
        result, report, extra = _match_pair(pair, config, progress, rectified, disparity_range)
        arrays, pictures, cloud = _outputs(result, report, left)
        write_result(folder.staging, arrays, pictures, report, cloud, extra)
        folder.commit()
    return report


def _read_pair(left: Path, right: Path, left_camera, right_camera, rectified: bool) -> dict:
    """Both images (grey) and, when found, their cameras, checked against each other."""
    from stereo.geometry.scene import check_image_size
    from stereo.io.images import read_image

    reference, other = read_image(left), read_image(right)
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
    return {"paths": (left, right), "images": (reference, other), "cameras": found}


def _match_pair(pair: dict, config, progress: bool, rectified: bool, d_range):
    """Match a read pair in the mode it calls for: ``(result, report, extra json files)``."""
    from stereo.pipeline import match_calibrated, match_rectified, match_uncalibrated

    (reference, other), extra = pair["images"], {}
    if pair["cameras"] is not None:
        ref_cam, other_cam = pair["cameras"][0]
        result = match_calibrated(reference, other, ref_cam, other_cam, config, progress)
        mode = "calibrated"
    elif rectified or looks_rectified(reference, other):
        result = match_rectified(reference, other, config, d_range, progress)
        mode = "rectified"
    else:
        result = match_uncalibrated(reference, other, config, progress)
        mode = "uncalibrated"
        extra["rectification.json"] = result.rectification
    left, right = pair["paths"]
    report = {"left": str(left), "right": str(right), "mode": mode, **result.report}
    return result, report, extra


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
    return arrays, pictures, None


@click.command("stereo-match")
@click.argument("left", required=False, type=click.Path(path_type=Path))
@click.argument("right", required=False, type=click.Path(path_type=Path))
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help=f"Registry name, weights file, or a baseline ({', '.join(BASELINE_COSTS)}); several "
    "joined by commas average their normalised volumes (e.g. zncc,l2net.castle-fixed).",
)
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default="stereo_out", show_default=True
)
@click.option(
    "--labels",
    "n_labels",
    type=int,
    default=64,
    show_default=True,
    help="Depth (or disparity) hypotheses; depths are uniform in inverse depth.",
)
@click.option(
    "--depth-range",
    nargs=2,
    type=float,
    default=None,
    metavar="MIN MAX",
    help="Metres (default: estimated from triangulated matches).",
)
@click.option(
    "--disparity-range",
    nargs=2,
    type=float,
    default=None,
    metavar="MIN MAX",
    help="Pairs without cameras, pixels (default: estimated from matches).",
)
@click.option(
    "--size",
    "working_size",
    type=int,
    default=768,
    show_default=True,
    help="Long side of the working resolution, pixels.",
)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="graphcut", show_default=True)
@click.option(
    "--smoothness",
    type=float,
    default=None,
    help="Weight λ of the pairwise term (unary costs are normalised to [0, 1]); default: the "
    "cost's λ chosen on castle-P19 (models/smoothness.json), else 0.1.",
)
@click.option(
    "--truncation",
    type=int,
    default=MRFConfig.truncation,
    show_default=True,
    help="Truncation of the linear pairwise term, labels.",
)
@click.option("--potts", is_flag=True, help="Potts pairwise term instead of truncated linear.")
@click.option(
    "--mrf-iterations",
    type=int,
    default=MRFConfig.iterations,
    show_default=True,
    help="Alpha-expansion cycles over all labels (-1: until the energy stops falling).",
)
@click.option(
    "--mrf-warm-start/--mrf-cold-start",
    default=MRFConfig.warm_start,
    show_default=True,
    help="Start the expansion moves from the winner-take-all labels (about twice as fast "
    "for the same energy) or from label 0 everywhere.",
)
@click.option(
    "--descriptor-variance",
    type=float,
    default=StereoConfig.descriptor_variance,
    show_default=True,
    help="Descriptor models: share of the descriptor variance the cost volume keeps "
    "(principal components; 1 = exact, slower).",
)
@click.option(
    "--prewarp/--no-prewarp",
    default=StereoConfig.prewarp,
    show_default=True,
    help="Descriptor models, calibrated pairs: describe RIGHT after warping it into LEFT's "
    "view by the middle depth plane, which undoes most of the perspective between the views.",
)
@click.option(
    "--prewarp-planes",
    type=int,
    default=StereoConfig.prewarp_planes,
    show_default=True,
    help="Split the depth labels into this many runs, each pre-warped by its own middle plane "
    "(one more network pass over RIGHT each; slightly better on very wide baselines).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=StereoConfig.precision,
    show_default=True,
    help="Arithmetic of the networks. bfloat16 is about twice as fast on CPUs with "
    "AVX-512 BF16 and on GPUs (descriptors differ by about 1e-3); auto takes it where "
    "the device supports it, float32 elsewhere.",
)
@click.option(
    "--sublabel/--no-sublabel",
    default=StereoConfig.sublabel,
    show_default=True,
    help="Refine each pixel's depth (disparity) below the label step by a parabola through "
    "its costs at the chosen label and its two neighbours; off: the label values only.",
)
@click.option(
    "--invalid",
    type=click.Choice(INVALID_MODES),
    default="nan",
    show_default=True,
    help="Pixels whose match leaves the second image: unknown (NaN) or filled.",
)
@click.option(
    "--lr-check",
    is_flag=True,
    help="Also match RIGHT against LEFT and mark pixels where the two disagree by more "
    "than one label as unknown (about doubles the run time).",
)
@click.option(
    "--rectified",
    is_flag=True,
    help="The pair is rectified: search disparities along rows (cameras ignored).",
)
@click.option("--left-camera", default=None, help="Camera file of LEFT (Strecha format).")
@click.option("--right-camera", default=None, help="Camera file of RIGHT.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option(
    "--demo",
    is_flag=True,
    help="Run on an embedded rendered scene (no data needed) and print accuracy.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier result in --out (a folder holding only a run's files); "
    "without it such a folder is refused.",
)
@one_line_errors
def match_command(
    left,
    right,
    model,
    out_dir,
    n_labels,
    depth_range,
    disparity_range,
    working_size,
    optimizer,
    smoothness,
    truncation,
    potts,
    mrf_iterations,
    mrf_warm_start,
    descriptor_variance,
    prewarp,
    prewarp_planes,
    precision,
    sublabel,
    invalid,
    lr_check,
    rectified,
    left_camera,
    right_camera,
    device,
    demo,
    overwrite,
) -> None:
    """Dense depth map of LEFT (the reference) from RIGHT, with a learned matching cost and
    a graph-cut MRF.

    Calibrated pairs (camera files beside the images, in a sibling cameras/ folder, or
    given) get a plane sweep and depth.npy (metres), depth.png, cost_confidence.png,
    report.json and points.ply. Pairs without cameras are matched along rows when rectified
    (--rectified, or detected) or after rectification from matches; they give disparity.npy
    (pixels) instead, plus rectification.json for uncalibrated pairs.
    """
    mrf = MRFConfig(
        smoothness=smoothness,
        truncation=truncation,
        potts=potts,
        iterations=mrf_iterations,
        warm_start=mrf_warm_start,
    )
    config = StereoConfig(
        descriptor_variance=descriptor_variance,
        prewarp=prewarp,
        prewarp_planes=prewarp_planes,
        precision=precision,
        sublabel=sublabel,
        lr_check=lr_check,
        model=model,
        n_labels=n_labels,
        depth_range=tuple(depth_range) if depth_range else None,
        working_size=working_size,
        optimizer=optimizer,
        mrf=mrf,
        invalid=invalid,
        device=device,
    )
    progress = sys.stderr.isatty()
    if demo:
        _run_demo(config, out_dir, progress, overwrite)
        return
    if left is None or right is None:
        raise StereoError("give LEFT and RIGHT images (or --demo)")
    report = run_match(
        left,
        right,
        config,
        out_dir,
        left_camera,
        right_camera,
        progress,
        rectified,
        tuple(disparity_range) if disparity_range else None,
        overwrite,
    )
    keys = (
        "mode",
        "cost",
        "depth_range_m",
        "disparity_range_px",
        "working_size",
        "seconds",
        "energy_wta",
        "energy_final",
        "unknown_fraction",
        "output",
    )
    click.echo(dumps({k: report[k] for k in keys if k in report}))
    click.echo(f"results in {out_dir}", err=True)


def _run_demo(config: StereoConfig, out_dir: Path, progress: bool, overwrite: bool) -> None:
    from stereo.datasets.synthetic import make_scene
    from stereo.evaluation import dense_truth, depth_correctness, read_depth_map

    scene = make_scene(2, width=640, height=480, baseline=0.6)
    with tempfile.TemporaryDirectory() as tmp:
        root = scene.save(tmp)
        images = sorted((root / "images").iterdir())
        report = run_match(
            images[0], images[1], config, out_dir, progress=progress, overwrite=overwrite
        )
    depth = read_depth_map(Path(out_dir) / "depth.npy")
    metrics = depth_correctness(depth, dense_truth(scene.depths[0], step=3))
    click.echo(
        f"demo: rendered scene of three textured planes, 640x480, two views; cost "
        f"{report['cost']}, {config.n_labels} labels, {config.optimizer}"
    )
    click.echo(f"seconds per stage: {report['seconds']}")
    click.echo(
        "accuracy against the exact depth (share of pixels with |error| <= tau x "
        f"depth range {metrics['depth_range']:.2f} m):"
    )
    for tau in (0.01, 0.02, 0.05):
        click.echo(f"  correct@{tau:g}: {metrics[f'correct@{tau:g}']:.3f}")
    click.echo(f"results in {out_dir}")


@click.command("stereo-eval")
@click.argument("estimate", type=click.Path(path_type=Path))
@click.option(
    "--gt-sparse",
    type=click.Path(path_type=Path),
    default=None,
    help="Strecha sparse ground truth gt_sparse/NNNN.npz of the reference view.",
)
@click.option(
    "--gt-depth",
    type=click.Path(path_type=Path),
    default=None,
    help="Dense ground-truth depth (.npy / .pfm).",
)
@click.option(
    "--gt-disparity",
    type=click.Path(path_type=Path),
    default=None,
    help="Disparity truth: a float map (.npy/.pfm) or an image storing disparity × --scale "
    "(Middlebury PGM/PNG, KITTI PNG with --scale 256; 0 = unknown).",
)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Middlebury disparity scale (tsukuba 16, venus 8).",
)
@click.option(
    "--cameras",
    nargs=2,
    default=None,
    metavar="REF OTHER",
    help="Camera files: adds the figures over points inside the second image.",
)
@one_line_errors
def eval_command(estimate, gt_sparse, gt_depth, gt_disparity, scale, cameras) -> None:
    """Score a depth map (.npy/.pfm, metres) or disparity map against ground truth; prints
    JSON (correctness@0.01/0.02/0.05, or Middlebury bad-1, bad-2, MAE)."""
    from stereo.evaluation import (
        check_truth_fits,
        dense_depth_truth,
        depth_correctness,
        disparity_errors,
        in_second_view,
        read_depth_map,
        read_disparity_truth,
        read_sparse_ground_truth,
    )
    from stereo.geometry.camera import read_camera

    if sum(x is not None for x in (gt_sparse, gt_depth, gt_disparity)) != 1:
        raise StereoError("give exactly one of --gt-sparse, --gt-depth, --gt-disparity")
    est = read_depth_map(estimate)
    _check_estimate_kind(estimate, "disparity" if gt_disparity is not None else "depth")
    if gt_disparity is not None:
        out = disparity_errors(est, read_disparity_truth(gt_disparity, scale))
    elif gt_depth is not None:
        out = depth_correctness(est, dense_depth_truth(gt_depth, est))
    else:
        truth = read_sparse_ground_truth(gt_sparse)
        cams = [read_camera(path) for path in cameras] if cameras else None
        check_truth_fits(est, truth, (cams[0].width, cams[0].height) if cams else None)
        in_view = in_second_view(cams[0], cams[1], truth) if cams else None
        out = depth_correctness(est, truth, in_view)
    click.echo(dumps(out))


def _check_estimate_kind(estimate: Path, truth_kind: str) -> None:
    """Refuse to score a depth map against disparity truth, or the reverse, when the
    estimate's ``report.json`` (a stereo-match result folder) says what it is."""
    report = estimate.parent / "report.json"
    if estimate.stem not in ("depth", "disparity") or not report.is_file():
        return
    if estimate.stem != truth_kind:
        option = "--gt-disparity" if estimate.stem == "disparity" else "--gt-sparse/--gt-depth"
        raise StereoError(
            f"{estimate} is a {estimate.stem} map (see {report}) but the truth given is "
            f"{truth_kind}; score it with {option}"
        )


def main() -> None:
    """``stereo-match`` entry point."""
    exit_on_sigterm()
    match_command(prog_name="stereo-match")


def eval_main() -> None:
    """``stereo-eval`` entry point."""
    eval_command(prog_name="stereo-eval")


if __name__ == "__main__":
    main()
