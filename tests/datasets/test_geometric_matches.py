"""Correspondences by the true cameras alone: candidates on the epipolar lines, the third
view's confirmation, uniqueness, and the builder that starts its tracks from them."""

from __future__ import annotations

import numpy as np
import pytest

from stereo.datasets.calibrated import SceneBuildConfig, build_tracks
from stereo.datasets.geometric_matches import (
    GeometricRule,
    View,
    carried_angles,
    epipolar_candidates,
    geometric_matches,
    predicted_sizes,
    unique_pairs,
)
from stereo.datasets.synthetic import look_at, make_scene
from stereo.errors import StereoError
from stereo.geometry.camera import Camera, epipolar_distance, fundamental_matrix
from stereo.geometry.scene import load_scene

K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
RULE = GeometricRule(1.0, 1.0, 0.25, 22.5)


def _camera(x: float) -> Camera:
    """A camera at (x, 0, 0) looking at (0, 0, 6), 640×480."""
    centre = np.array([x, 0.0, 0.0])
    return Camera(K, look_at(centre, np.array([0.0, 0.0, 6.0])), centre, 640, 480)


def _views(points: np.ndarray, rng: np.random.Generator, distractors: int = 0) -> list[View]:
    """Three views of ``points`` with keypoints at their exact projections — sizes and
    orientations carried from random ones of the first view — shuffled, plus
    ``distractors`` random keypoints in each view."""
    cameras = [_camera(x) for x in (-0.6, 0.0, 0.7)]
    xy = cameras[0].project(points)[0]
    first = np.c_[xy, rng.uniform(3, 12, len(points)), rng.uniform(-180, 180, len(points))]
    source = View(first, cameras[0])
    views = []
    for camera in cameras:
        target = View(np.zeros((0, 4)), camera)
        keypoints = np.c_[
            camera.project(points)[0],
            predicted_sizes(points, first[:, 2], source, target),
            carried_angles(points, first, cameras[0], camera),
        ]
        noise = np.c_[
            rng.uniform(0, 640, distractors),
            rng.uniform(0, 480, distractors),
            rng.uniform(3, 12, distractors),
            rng.uniform(-180, 180, distractors),
        ]
        views.append(View(np.r_[keypoints, noise], camera))
    return views


def _points(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.c_[rng.uniform(-1.5, 1.5, n), rng.uniform(-1, 1, n), rng.uniform(5, 7, n)]


def test_epipolar_candidates_are_the_pairs_within_the_distance():
    """Every pair of two keypoint sets against the pairwise epipolar distance."""
    rng = np.random.default_rng(0)
    first, second = _views(_points(rng, 40), rng, distractors=300)[:2]
    found = epipolar_candidates(first, second, 1.0)
    F = fundamental_matrix(first.camera, second.camera)
    a, b = np.meshgrid(np.arange(len(first.keypoints)), np.arange(len(second.keypoints)))
    a, b = a.ravel(), b.ravel()
    near = epipolar_distance(F, first.keypoints[a, :2], second.keypoints[b, :2]) <= 1.0
    expected = {(int(i), int(j)) for i, j in zip(a[near], b[near], strict=True)}
    assert {tuple(p) for p in found.tolist()} == expected
    assert {(k, k) for k in range(40)} <= expected  # the true pairs are among them


def test_geometric_matches_find_exactly_the_true_pairs_among_distractors():
    rng = np.random.default_rng(1)
    views = _views(_points(rng, 60), rng, distractors=400)
    matches = geometric_matches(views[0], views[1], [views[2]], RULE)
    true = {(k, k) for k in range(60)}
    found = {tuple(p) for p in matches.tolist()}
    assert len(found & true) >= 57  # a distractor may make a true pair ambiguous, rarely
    assert found <= true  # and never a false pair


def test_a_match_needs_a_third_view_and_the_scale_and_orientation_rules():
    rng = np.random.default_rng(2)
    views = _views(_points(rng, 30), rng)
    assert len(geometric_matches(views[0], views[1], [], RULE)) == 0  # nothing confirms
    turned = View(views[1].keypoints + np.array([0, 0, 0, 45.0]), views[1].camera)
    assert len(geometric_matches(views[0], turned, [views[2]], RULE)) == 0
    no_rule = GeometricRule(1.0, 1.0, 0.25, 180.0)
    assert len(geometric_matches(views[0], turned, [views[2]], no_rule)) == 30
    grown = View(views[1].keypoints * [1, 1, 1.4, 1], views[1].camera)  # 0.49 octaves
    assert len(geometric_matches(views[0], grown, [views[2]], RULE)) == 0


def test_unique_pairs_drop_every_keypoint_claimed_twice():
    pairs = np.array([[0, 0], [1, 1], [1, 2], [3, 4], [5, 4], [6, 7]])
    np.testing.assert_array_equal(unique_pairs(pairs), [[0, 0], [6, 7]])


@pytest.fixture(scope="module")
def rendered_scene(tmp_path_factory):
    return load_scene(make_scene(3).save(tmp_path_factory.mktemp("geometric")))


def test_geometric_tracks_of_a_rendered_scene_lie_on_its_surfaces(rendered_scene):
    """The builder with ``matcher="geometry"``: tracks without any descriptor, each point on
    the rendered surface (the exact depth map of view 0)."""
    tracks = build_tracks(rendered_scene, SceneBuildConfig(matcher="geometry"), progress=False)
    assert len(tracks.tracks) > 50
    assert tracks.stats["matches"] == tracks.stats["epipolar_matches"]
    depth = np.load(rendered_scene.root / "depth" / "0000.npy")
    xy, z = tracks.cameras[0].project(np.array(tracks.points))
    ix, iy = np.rint(xy).astype(int).T
    inside = (ix >= 0) & (ix < depth.shape[1]) & (iy >= 0) & (iy < depth.shape[0])
    truth = depth[iy[inside], ix[inside]]
    assert np.median(np.abs(z[inside] - truth) / truth) < 0.01
    assert max(e.max() for e in tracks.errors) <= 1.0


def test_an_unknown_matcher_is_refused():
    with pytest.raises(StereoError, match="unknown matcher 'sift'; valid: descriptors, geometry"):
        SceneBuildConfig(matcher="sift")
