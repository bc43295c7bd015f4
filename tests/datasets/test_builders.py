"""Patch builders: orientation normalisation, calibrated scenes, homography sequences."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stereo.datasets.calibrated import SceneBuildConfig, build_scene_patches
from stereo.datasets.homography import build_sequence_patches, read_homography
from stereo.datasets.patches import cut_patch, keypoint_frame, pyramid
from stereo.datasets.synthetic import make_scene
from stereo.errors import StereoError
from stereo.geometry.scene import load_scene
from stereo.patchnet.baselines import ncc_scores
from stereo.patchnet.data import make_pairs
from stereo.patchnet.data.warped import sample_photographs


def test_cut_patch_translation_is_an_exact_crop():
    image = sample_photographs(("camera",))[0]
    T = np.array([[1.0, 0, 40], [0, 1, 30], [0, 0, 1]])
    np.testing.assert_array_equal(cut_patch(pyramid(image), T), image[30:94, 40:104])
    # an upright keypoint window of side 64 centred on pixel centre (71.5, 61.5) is the same
    np.testing.assert_array_equal(
        cut_patch(pyramid(image), keypoint_frame(71.5, 61.5, 64, 0)), image[30:94, 40:104]
    )


def test_orientation_normalisation_follows_opencv_angles():
    image = sample_photographs(("astronaut",))[0]
    h, w = image.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0)
    rotated = cv2.warpAffine(image, M, (w, h))
    sift = cv2.SIFT_create(500)
    k1, d1 = sift.detectAndCompute(image, None)
    k2, d2 = sift.detectAndCompute(rotated, None)
    pairs = []
    for m, n in cv2.BFMatcher().knnMatch(d1, d2, 2):
        if m.distance < 0.7 * n.distance:
            a, b = k1[m.queryIdx], k2[m.trainIdx]
            if np.linalg.norm(M @ np.r_[a.pt, 1] - b.pt) < 1.5:
                pairs.append((a, b))
    assert len(pairs) > 50
    levels1, levels2 = pyramid(image), pyramid(rotated)
    p1 = np.array(
        [cut_patch(levels1, keypoint_frame(*a.pt, 5 * a.size, a.angle)) for a, _ in pairs]
    )
    p2 = np.array(
        [cut_patch(levels2, keypoint_frame(*b.pt, 5 * b.size, b.angle)) for _, b in pairs]
    )
    assert np.median(ncc_scores(p1, p2)) > 0.9


@pytest.fixture(scope="module")
def synthetic_scene_dir(tmp_path_factory):
    return make_scene(3).save(tmp_path_factory.mktemp("synthetic"))


def test_calibrated_builder_on_a_rendered_scene(synthetic_scene_dir):
    built = build_scene_patches(load_scene(synthetic_scene_dir), SceneBuildConfig(), progress=False)
    assert built.stats["points"] > 100
    assert built.reprojection_px.max() <= 1.0
    # triangulated points lie on the rendered surfaces: compare with the exact depth maps
    scene = load_scene(synthetic_scene_dir)
    depth = np.load(synthetic_scene_dir / "depth" / "0000.npy")
    xy, z = scene.cameras[0].project(built.points)
    ix, iy = np.rint(xy).astype(int).T
    inside = (ix >= 0) & (ix < 640) & (iy >= 0) & (iy < 480)
    rel = np.abs(z[inside] - depth[iy[inside], ix[inside]]) / depth[iy[inside], ix[inside]]
    assert np.median(rel) < 0.01
    pairs = make_pairs(built.patches, 400, seed=0)
    ncc = ncc_scores(pairs.a, pairs.b)
    assert ncc[pairs.label == 1].mean() > ncc[pairs.label == 0].mean() + 0.5


def _camera(roll_deg: float = 0.0, centre=(0.0, 0.0, 0.0)):
    from stereo.geometry.camera import Camera

    c, s = np.cos(np.deg2rad(roll_deg)), np.sin(np.deg2rad(roll_deg))
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    roll = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return Camera(K, roll, np.array(centre, float), 640, 480)


def test_orientations_are_carried_between_views_by_the_cameras():
    from stereo.datasets.calibrated import angle_error, carried_angle

    X = np.array([0.4, -0.3, 5.0])
    first = _camera()
    xy = first.project(X[None])[0][0]
    keypoint = np.array([*xy, 8.0, 40.0])
    assert carried_angle(X, keypoint, first, first) == pytest.approx(40.0)
    # a camera moved sideways sees a fronto-parallel surface turned by nothing
    assert carried_angle(X, keypoint, first, _camera(centre=(1.0, 0.0, 0.0))) == pytest.approx(40)
    # a camera rolled by 30 degrees about its axis sees every direction turned by -30
    assert carried_angle(X, keypoint, first, _camera(roll_deg=30.0)) == pytest.approx(10.0)
    assert carried_angle(X, keypoint, first, _camera(roll_deg=-150.0)) == pytest.approx(-170.0)
    np.testing.assert_allclose(angle_error([170.0, 10.0, -90.0], -170.0), [20.0, 180.0, 80.0])


def test_without_an_orientation_rule_only_the_nearest_keypoint_may_extend_a_track():
    from scipy.spatial import cKDTree

    from stereo.datasets.calibrated import _candidates

    tree = cKDTree(np.array([[10.0, 10.0], [10.0, 10.0], [10.5, 10.0], [30.0, 30.0]]))
    point = np.array([10.4, 10.0])
    assert sorted(_candidates(tree, point, SceneBuildConfig())) == [0, 1, 2]
    assert _candidates(tree, point, SceneBuildConfig(max_orientation_deg=180.0)) == [2]
    for bad in (-1.0, 200.0, float("nan")):
        with pytest.raises(StereoError, match="max_orientation_deg"):
            SceneBuildConfig(max_orientation_deg=bad)
    upright = SceneBuildConfig(normalise="fixed")  # windows that do not turn: no rule
    assert upright.orientation_rule_deg == 180.0 and _candidates(tree, point, upright) == [2]
    far = np.array([50.0, 50.0])
    assert _candidates(tree, far, SceneBuildConfig()) == []
    assert _candidates(tree, far, SceneBuildConfig(max_orientation_deg=180.0)) == []


def test_extended_tracks_keep_orientations_within_the_rule(synthetic_scene_dir):
    from stereo.datasets.calibrated import _track_angle, angle_error, build_tracks

    scene = load_scene(synthetic_scene_dir)
    for limit in (22.5, 180.0):
        tracks = build_tracks(scene, SceneBuildConfig(max_orientation_deg=limit), progress=False)
        errors = [
            angle_error(
                tracks.keypoints[node, 3],
                _track_angle(
                    X,
                    np.setdiff1d(track, [node]),
                    tracks.keypoints,
                    tracks.view_of,
                    tracks.cameras,
                    tracks.cameras[tracks.view_of[node]],
                ),
            )
            for track, X in zip(tracks.tracks, tracks.points, strict=True)
            for node in track
        ]
        assert len(errors) > 200
        turned = np.mean(np.array(errors) > 22.5)
        if limit < 180:  # every member agrees with the others, as the rule asked
            assert turned == 0.0
        else:  # without the rule, extension takes keypoints turned against their track
            assert turned > 0.0


def test_near_misses_lie_on_the_epipolar_line(synthetic_scene_dir):
    from stereo.datasets.calibrated import _epipolar_direction
    from stereo.geometry.camera import fundamental_matrix

    scene = load_scene(synthetic_scene_dir)
    cam0, cam1 = scene.cameras[0], scene.cameras[1]
    X = np.array([0.3, -0.2, 0.0]) + cam0.C + 4.0 * cam0.R[:, 2]  # 4 m in front of cam0
    d = _epipolar_direction(X, cam0, cam1)
    x0, _ = cam0.project(X[None])
    x1, _ = cam1.project(X[None])
    line = fundamental_matrix(cam1, cam0) @ np.r_[x1[0], 1.0]  # epipolar line in view 0
    assert abs(np.linalg.norm(d) - 1) < 1e-9
    assert abs(line[:2] @ d) / np.linalg.norm(line[:2]) < 1e-6  # along the line
    assert abs(line @ np.r_[x0[0] + 5 * d, 1.0]) / np.linalg.norm(line[:2]) < 1e-6

    cfg = SceneBuildConfig(normalise="fixed", fixed_scale=1.0, near_misses=1)
    built = build_scene_patches(scene, cfg, progress=False).patches
    near = built.near_of >= 0
    assert 0 < near.sum() <= (~near).sum()
    assert np.isin(built.near_of[near], built.point_ids[~near]).all()
    assert np.unique(built.point_ids[near]).size == near.sum()  # each a point of its own
    # every near miss was cut in a view where its point was observed
    seen = set(zip(built.point_ids[~near], built.view_ids[~near], strict=True))
    assert all(
        (p, v) in seen for p, v in zip(built.near_of[near], built.view_ids[near], strict=True)
    )
    with pytest.raises(StereoError, match="fixed"):
        build_scene_patches(scene, SceneBuildConfig(near_misses=1), progress=False)


def test_calibrated_builder_on_a_crop_of_fountain(shared_data):
    scene = load_scene(shared_data / "strecha" / "fountain-P11")
    cfg = SceneBuildConfig(views=(4, 5, 6), roi=(500, 300, 1000, 700), max_keypoints=3000)
    built = build_scene_patches(scene, cfg, progress=False)
    assert built.stats["points"] > 50
    assert built.reprojection_px.max() <= 1.0  # every view of every track within a pixel
    pairs = make_pairs(built.patches, min(400, 2 * built.stats["points"]), seed=0)
    ncc = ncc_scores(pairs.a, pairs.b)
    assert ncc[pairs.label == 1].mean() > ncc[pairs.label == 0].mean() + 0.4
    assert set(np.unique(built.image_index)) <= {4, 5, 6}


def _write_sequence(root, image, homographies):
    root.mkdir()
    cv2.imwrite(str(root / "img1.png"), image)
    h, w = image.shape
    for n, H in enumerate(homographies, start=2):
        cv2.imwrite(str(root / f"img{n}.png"), cv2.warpPerspective(image, H, (w, h)))
        np.savetxt(root / f"H1to{n}p", H)


def test_homography_builder_gives_exact_positives(tmp_path):
    image = sample_photographs(("astronaut",))[0]
    H2 = np.array([[0.9, 0.1, 20], [-0.08, 0.95, 15], [1e-4, -5e-5, 1.0]])
    H3 = np.array([[1.1, 0, -30], [0.05, 1.05, -10], [0, 0, 1.0]])
    _write_sequence(tmp_path / "seq", image, [H2, H3])
    patches = build_sequence_patches(tmp_path / "seq")
    assert patches.n_points > 100
    pairs = make_pairs(patches, 400, seed=0)
    ncc = ncc_scores(pairs.a, pairs.b)
    assert np.median(ncc[pairs.label == 1]) > 0.95
    assert ncc[pairs.label == 0].mean() < 0.5


def test_homography_file_errors(tmp_path):
    np.savetxt(tmp_path / "H1to2p", np.eye(2))
    with pytest.raises(StereoError, match=r"H1to2p holds a 2x2 matrix, expected 3x3"):
        read_homography(tmp_path / "H1to2p")
    (tmp_path / "H1to3p").write_text("1 2 x\n")
    with pytest.raises(StereoError, match="does not parse"):
        read_homography(tmp_path / "H1to3p")


def test_oxford_graf_patches(shared_data):
    patches = build_sequence_patches(shared_data / "oxford" / "graf")
    assert patches.n_points > 300
    pairs = make_pairs(patches, 1000, seed=0)
    ncc = ncc_scores(pairs.a, pairs.b)
    assert ncc[pairs.label == 1].mean() > ncc[pairs.label == 0].mean() + 0.4


def test_fixed_scale_patches_are_upright_windows(tmp_path):
    from stereo.datasets.homography import HomographyBuildConfig

    image = sample_photographs(("astronaut",))[0]
    _write_sequence(tmp_path / "seq", image, [np.array([[1.0, 0, 12], [0, 1, 7], [0, 0, 1]])])
    cfg = HomographyBuildConfig(normalise="fixed", fixed_scale=1.0, max_keypoints=200)
    patches = build_sequence_patches(tmp_path / "seq", cfg)
    # a pure translation and a 64-px upright window: the two views are the same pixels
    first = patches.patches[patches.point_ids == patches.point_ids[0]]
    assert len(first) == 2 and np.abs(first[0].astype(int) - first[1]).max() <= 1


def test_views_option_holds_views_out(synthetic_scene_dir, tmp_path):
    from click.testing import CliRunner

    from stereo.datasets.cli import cli, parse_views

    assert parse_views("0-3,7, 2") == (0, 1, 2, 3, 7)
    for bad in ("3-1", "a", "0-", "-2"):
        with pytest.raises(StereoError, match="--views"):
            parse_views(bad)
    out = tmp_path / "held"
    result = CliRunner().invoke(
        cli,
        ["build", str(synthetic_scene_dir), "--out", str(out), "--views", "0-1", "--pairs", "50"],
    )
    assert result.exit_code == 0, result.output
    from stereo.patchnet.data.patchset import PatchSet

    patches = PatchSet.load(out / f"{synthetic_scene_dir.name}.npz")
    assert set(np.unique(patches.view_ids)) == {0, 1}  # view 2 held out
    result = CliRunner().invoke(
        cli, ["build", str(synthetic_scene_dir), "--out", str(out), "--views", "0,5", "--overwrite"]
    )
    assert result.exit_code != 0
    assert "views 0-2" in result.output
    for limit, name in ((180.0, "any"), (22.5, "brown")):  # the rule reaches the builder
        args = ["build", str(synthetic_scene_dir), "--out", str(tmp_path / name), "--pairs", "50"]
        result = CliRunner().invoke(cli, [*args, "--max-orientation", str(limit)])
        assert result.exit_code == 0, result.output
        meta = PatchSet.load(tmp_path / name / f"{synthetic_scene_dir.name}.npz").meta
        assert meta["builder"]["config"]["max_orientation_deg"] == limit
    result = CliRunner().invoke(
        cli, ["build", str(synthetic_scene_dir), "--out", str(out), "--max-orientation", "200"]
    )
    assert result.exit_code != 0 and "--max-orientation" in result.output


def test_matcher_option_reaches_the_builder_and_sequences_refuse_it(synthetic_scene_dir, tmp_path):
    from click.testing import CliRunner

    from stereo.datasets.cli import cli
    from stereo.patchnet.data.patchset import PatchSet

    out = tmp_path / "geometry"
    args = ["build", str(synthetic_scene_dir), "--out", str(out), "--pairs", "50"]
    result = CliRunner().invoke(cli, [*args, "--matcher", "geometry"])
    assert result.exit_code == 0, result.output
    meta = PatchSet.load(out / f"{synthetic_scene_dir.name}.npz").meta
    assert meta["builder"]["config"]["matcher"] == "geometry"
    image = sample_photographs(("astronaut",))[0]
    _write_sequence(tmp_path / "seq", image, [np.array([[1.0, 0, 12], [0, 1, 7], [0, 0, 1]])])
    result = CliRunner().invoke(
        cli, ["build", str(tmp_path / "seq"), "--out", str(out), "--matcher", "geometry"]
    )
    assert result.exit_code == 1
    assert "matched by its homographies" in result.output and "Traceback" not in result.output
