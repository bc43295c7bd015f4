"""``stereo-match``, ``stereo-batch`` and ``stereo-eval``: thin commands over
:mod:`stereo.pipeline`, :mod:`stereo.batch` and :mod:`stereo.evaluation`. Bad input ends
with a one-line ``Error: …``, never a traceback."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import click

from stereo.config import StereoConfig, read_config_file
from stereo.errors import StereoError, exit_on_sigterm, one_line_errors
from stereo.io.jsonfile import dumps
from stereo.mrf.graphcut import MRFConfig
from stereo.progress import log_to_stderr
from stereo.run import run_match
from stereo.settings import OptionSpec, cli_fields

#: the sections of the commands' help, by parameter name (``mrf__`` settings: the MRF's;
#: anything else: "Run")
HELP_SECTIONS: dict[str, tuple[str, ...]] = {
    "Input and output": (
        "pairs_csv",
        "out_dir",
        "config_file",
        "rectified",
        "left_camera",
        "right_camera",
        "colmap",
        "demo",
        "overwrite",
    ),
    "Matching cost": (
        "model",
        "device",
        "descriptor_variance",
        "prewarp",
        "prewarp_planes",
        "precision",
        "score_stride",
        "window_scale",
        "cascade",
        "cascade_band",
        "cascade_scale",
        "cascade_pool",
        "cascade_cycles",
        "cascade_fuse",
        "cascade_flat_std",
        "edge_cost",
        "edge_blend",
        "edge_radius",
        "edge_flat_std",
    ),
    "Hypotheses": ("n_labels", "depth_range", "disparity_range", "working_size", "invalid"),
    "Optimisation and refinement": ("optimizer", "lr_check", "lr_tolerance", "sublabel"),
    "Ray": ("address", "workers", "cpus_per_task"),
}


def _help_section(name: str) -> str:
    if name.startswith("mrf__"):
        return "Optimisation and refinement"
    return next((title for title, names in HELP_SECTIONS.items() if name in names), "Run")


class SectionedCommand(click.Command):
    """A command whose help lists its options in :data:`HELP_SECTIONS`, in that order."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                rows.setdefault(_help_section(param.name or ""), []).append(record)
        for title in [*HELP_SECTIONS, "Run"]:
            if rows.get(title):
                with formatter.section(title):
                    formatter.write_dl(rows[title])


def configuration_options(command):
    """Give a click command one option per setting of :class:`~stereo.config.StereoConfig`
    and its :class:`~stereo.mrf.graphcut.MRFConfig`, built from their declarations
    (parameter names ``NAME`` and ``mrf__NAME``), in declaration order."""
    options = [(f, spec, f.name) for f, spec in cli_fields(StereoConfig)]
    options += [(f, spec, f"mrf__{f.name}") for f, spec in cli_fields(MRFConfig)]
    for f, spec, name in reversed(options):
        command = click.option(*_declaration(spec), name, **_option_kwargs(f, spec))(command)
    return command


def _declaration(spec: OptionSpec) -> tuple[str, ...]:
    return (f"{spec.flag}/{spec.negative}",) if spec.negative else (spec.flag,)


def _option_kwargs(f, spec: OptionSpec) -> dict:
    """click keywords of one setting: its type, default and help."""
    kwargs: dict = {"help": spec.help, "default": f.default}
    if f.type in ("bool", bool) and not spec.negative:
        return {**kwargs, "is_flag": True}
    if spec.nargs > 1:
        return {**kwargs, "nargs": spec.nargs, "type": spec.kind, "metavar": spec.metavar}
    kwargs["show_default"] = f.default is not None
    if spec.choices:
        return {**kwargs, "type": click.Choice(spec.choices)}
    return {**kwargs, "type": spec.kind} if spec.kind else kwargs


def config_from_options(settings: dict, base: StereoConfig | None = None) -> StereoConfig:
    """The configuration of a command's setting values (``mrf__`` ones go to the MRF);
    with ``base`` only the given keys change it."""
    mrf = {k.removeprefix("mrf__"): v for k, v in settings.items() if k.startswith("mrf__")}
    rest = {k: v for k, v in settings.items() if not k.startswith("mrf__")}
    for key in ("depth_range", "disparity_range"):
        if key in rest:
            rest[key] = tuple(rest[key]) if rest[key] else None
    base = base or StereoConfig()
    return replace(base, **rest, mrf=replace(base.mrf, **mrf))


def _command_config(settings: dict, config_file: Path | None) -> StereoConfig:
    """A command's configuration: its setting values, or with ``config_file`` that file's
    settings with only the options given on the command line on top."""
    if config_file is None:
        return config_from_options(settings)
    return config_from_options(_given_settings(settings), read_config_file(config_file))


def _given_settings(settings: dict) -> dict:
    """The settings set on the command line (not left at their defaults)."""
    ctx = click.get_current_context()
    return {
        k: v
        for k, v in settings.items()
        if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT
    }


@click.command("stereo-match", cls=SectionedCommand)
@click.argument("left", required=False, type=click.Path(path_type=Path))
@click.argument("right", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default="stereo_out", show_default=True
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings from a file: a report.json of an earlier run (re-runs it) or a TOML file "
    "of StereoConfig keys ([mrf] table for the MRF); options given here override it.",
)
@configuration_options
@click.option(
    "--rectified",
    is_flag=True,
    help="The pair is rectified: search disparities along rows (cameras ignored).",
)
@click.option("--left-camera", default=None, help="Camera file of LEFT (Strecha format).")
@click.option("--right-camera", default=None, help="Camera file of RIGHT.")
@click.option(
    "--colmap",
    type=click.Path(path_type=Path),
    default=None,
    help="COLMAP sparse model folder (cameras, images, points3D; .txt or .bin) to take both "
    "cameras from, images found by file name; its 3D points set the depth range.",
)
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
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@click.version_option(package_name="stereo", message="%(prog)s %(version)s")
@click.help_option("-h", "--help")
@one_line_errors
def match_command(
    left,
    right,
    out_dir,
    config_file,
    rectified,
    left_camera,
    right_camera,
    colmap,
    demo,
    overwrite,
    quiet,
    **settings,
) -> None:
    """Dense depth map of LEFT (the reference) from RIGHT, with a learned matching cost and
    a graph-cut MRF.

    Calibrated pairs (camera files beside the images, in a sibling cameras/ folder, given,
    or a COLMAP model with --colmap) get a plane sweep and depth.npy (metres), depth.png,
    cost_confidence.png, report.json and points.ply. Pairs without cameras are matched along
    rows when rectified (--rectified, or detected) or after rectification from matches; they
    give disparity.npy (pixels) instead, plus rectification.json for uncalibrated pairs.
    """
    config = _command_config(settings, config_file)
    log_to_stderr("stereo-match", quiet)
    progress = sys.stderr.isatty() and not quiet
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
        overwrite=overwrite,
        colmap=colmap,
    )
    keys = (
        "mode",
        "mode_reason",
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
    if not quiet:
        click.echo(f"results in {out_dir}", err=True)


def _run_demo(config: StereoConfig, out_dir: Path, progress: bool, overwrite: bool) -> None:
    from stereo.datasets.synthetic import make_scene
    from stereo.evaluation import dense_truth, depth_correctness, read_depth_map

    scene = make_scene(2, width=640, height=480, baseline=0.6)
    with tempfile.TemporaryDirectory() as tmp:
        root = scene.save(tmp)
        images = sorted((root / "images").iterdir())
        report = run_match(
            images[0],
            images[1],
            config,
            out_dir,
            progress=progress,
            overwrite=overwrite,
            keep_inputs=root,
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
    click.echo(
        f"results in {out_dir}; the scene (images, cameras, exact depth) in {out_dir}/inputs: "
        f"score again with `stereo-eval {out_dir}/depth.npy --gt-depth "
        f"{out_dir}/inputs/depth/0000.npy`"
    )


@click.command("stereo-eval", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stereo", message="%(prog)s %(version)s")
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


@click.command(
    "stereo-batch", cls=SectionedCommand, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="stereo", message="%(prog)s %(version)s")
@click.argument("pairs_csv", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings from a file (a report.json or TOML), as for stereo-match.",
)
@configuration_options
@click.option("--address", default=None, help="Ray cluster to use (default: a local instance).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="CPUs of the local Ray instance (default: all).",
)
@click.option(
    "--cpus-per-task",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="CPUs each pair takes (its torch threads).",
)
@click.option("--overwrite", is_flag=True, help="Run finished pairs again (default: skip them).")
@click.option("--quiet", "-q", is_flag=True, help="No line per finished pair on stderr.")
@one_line_errors
def batch_command(
    pairs_csv, out_dir, config_file, address, workers, cpus_per_task, overwrite, quiet, **settings
) -> None:
    """Match every pair of PAIRS_CSV (columns left,right and optional name) as a task on Ray:
    one result folder per pair in --out, summary.csv and summary.json beside them; a failed
    pair is listed without stopping the others, finished pairs are skipped on a rerun.
    Options of stereo-match apply to every pair."""
    from stereo.batch import read_pairs, run_batch, status_counts, write_summary

    config = _command_config(settings, config_file)
    tasks = read_pairs(pairs_csv, out_dir)

    def report(row: dict) -> None:
        if not quiet:
            detail = row.get("error") or f"{row['seconds']} s, coverage {row['coverage']}"
            click.echo(f"{row['pair']}: {row['status']} ({detail})", err=True)

    rows = run_batch(
        tasks,
        config,
        address,
        workers,
        cpus_per_task,
        device_given="device" in _given_settings(settings),
        overwrite=overwrite,
        on_row=report,
    )
    csv_path, _ = write_summary(rows, out_dir)
    failed = [r["pair"] for r in rows if r["status"] == "failed"]
    click.echo(dumps({"summary": str(csv_path), **status_counts(rows)}))
    if failed:
        raise StereoError(f"{len(failed)} pair(s) failed ({', '.join(failed)}): see {csv_path}")


def batch_main() -> None:
    """``stereo-batch`` entry point."""
    exit_on_sigterm()
    batch_command(prog_name="stereo-batch")


def main() -> None:
    """``stereo-match`` entry point."""
    exit_on_sigterm()
    match_command(prog_name="stereo-match")


def eval_main() -> None:
    """``stereo-eval`` entry point."""
    eval_command(prog_name="stereo-eval")


if __name__ == "__main__":
    main()
