"""Local descriptor matching on homography sequences: regions, overlap ground truth, mAP."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stereo.bench.oxford import (
    Regions,
    correspondences,
    mapped_regions,
    mser_regions,
    overlap_error,
    pair_mean_average_precision,
    region_patches,
)
from stereo.errors import StereoError
from stereo.patchnet.baselines import ncc_scores
from stereo.patchnet.data.warped import sample_photographs


def circle(radius: float) -> np.ndarray:
    return np.eye(2) * radius**2


def test_overlap_error_of_hand_built_ellipses():
    c = np.array([50.0, 40.0])
    assert overlap_error(c, circle(10), c, circle(10)) == 0.0
    assert overlap_error(c, circle(10), c + 25, circle(10)) == 1.0
    # concentric circles of radius r and 2r: 1 − πr² / π(2r)² = 0.75
    assert overlap_error(c, circle(10), c, circle(20)) == pytest.approx(0.75, abs=0.02)
    # equal circles one radius apart: their lens is r²(2π/3 − √3/2) of a union 2πr² − lens
    lens = 2 * (np.pi / 3 - np.sqrt(3) / 4)
    expected = 1 - lens / (2 * np.pi - lens)
    shifted = c + np.array([10.0, 0.0])
    assert overlap_error(c, circle(10), shifted, circle(10)) == pytest.approx(expected, abs=0.02)


def test_regions_are_carried_by_an_affine_homography_exactly():
    A = np.array([[1.2, 0.3], [-0.2, 0.9]])
    H = np.eye(3)
    H[:2, :2], H[:2, 2] = A, [5.0, -3.0]
    regions = Regions(np.array([[10.0, 20.0], [30.0, 5.0]]), np.array([circle(3), circle(5)]))
    mapped = mapped_regions(regions, H)
    np.testing.assert_allclose(mapped.centres, regions.centres @ A.T + [5.0, -3.0])
    np.testing.assert_allclose(mapped.shapes, A @ regions.shapes @ A.T)


def test_mser_finds_a_drawn_ellipse_with_its_shape():
    image = np.full((200, 240), 230, np.uint8)
    cv2.ellipse(image, (120, 90), (40, 20), 30, 0, 360, 40, -1)
    regions = mser_regions(image)
    best = np.argmin(np.linalg.norm(regions.centres - [120, 90], axis=1))
    np.testing.assert_allclose(regions.centres[best], [120, 90], atol=1.0)
    axes = np.sqrt(np.linalg.eigvalsh(regions.shapes[best]))
    np.testing.assert_allclose(axes, [20, 40], rtol=0.06)
    with pytest.raises(StereoError, match="grey uint8"):
        mser_regions(image.astype(float))


def test_map_of_hand_ranked_scores():
    correct = np.array([[True, False, False], [False, False, True], [False, False, False]])
    scores = np.array([[0.9, 0.1, 0.2], [0.8, 0.5, 0.7], [0.3, 0.2, 0.1]])
    # query 0: its match ranks first (AP 1); query 1: second (AP 1/2); query 2: no match
    assert pair_mean_average_precision(scores, correct) == (pytest.approx(0.75), 2)


def test_patches_of_a_rotated_zoomed_copy_match_their_regions():
    image = sample_photographs(("astronaut",))[0]  # grey uint8
    image = cv2.resize(image, (320, 320), interpolation=cv2.INTER_AREA)
    H = np.eye(3)
    H[:2] = cv2.getRotationMatrix2D((160, 160), 35, 1.2)
    warped = cv2.warpPerspective(image, H, (320, 320), flags=cv2.INTER_LINEAR)
    first, second = mser_regions(image, 200), mser_regions(warped, 200)
    truth = correspondences(first, second, H)
    assert truth.any(axis=1).sum() > 30  # the same regions are found after the warp
    patches_a, patches_b = region_patches(image, first), region_patches(warped, second)
    a, b = np.nonzero(truth)
    assert np.median(ncc_scores(patches_a[a], patches_b[b])) > 0.7  # normalised alike
    scores = np.array(
        [ncc_scores(np.repeat(p[None], len(patches_b), 0), patches_b) for p in patches_a]
    )
    assert pair_mean_average_precision(scores, truth)[0] > 0.5
