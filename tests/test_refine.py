"""Sub-label refinement on hand-made costs with a known minimum between labels."""

from __future__ import annotations

import numpy as np
import pytest

from stereo.refine import refined_values, sublabel_offsets


def _quadratic_volume(minima: np.ndarray, n_labels: int = 8) -> np.ndarray:
    """``(L, h, w)`` costs ``(l − m)²`` with a pixel's true minimum ``m`` between labels."""
    labels = np.arange(n_labels, dtype=np.float64)[:, None, None]
    return ((labels - minima[None]) ** 2).astype(np.float32)


def test_parabola_finds_the_minimum_between_labels():
    minima = np.array([[3.3, 4.8], [1.5, 6.0]])
    volume = _quadratic_volume(minima)
    labels = np.rint(minima).astype(int)  # 3, 5, 2 (ties round to even), 6
    offsets = sublabel_offsets(volume, labels)
    np.testing.assert_allclose(labels + offsets, minima, atol=1e-6)


def test_refined_depths_interpolate_in_inverse_depth_and_disparities_linearly():
    minima = np.array([[3.3]])
    labels, offsets = np.array([[3]]), np.array([[0.3]], np.float32)
    depths = 1.0 / np.linspace(1 / 2.0, 1 / 10.0, 8)  # uniform in inverse depth
    expected = 1.0 / (1 / 2.0 + 3.3 * (1 / 10.0 - 1 / 2.0) / 7)
    assert refined_values(depths, labels, offsets, inverse=True)[0, 0] == pytest.approx(expected)
    disparities = np.linspace(-4.0, 10.0, 8)
    assert refined_values(disparities, labels, offsets, inverse=False)[0, 0] == pytest.approx(
        -4.0 + 3.3 * 2.0
    )
    assert minima.shape == labels.shape


def test_no_refinement_where_the_parabola_is_undefined():
    volume = _quadratic_volume(np.array([[0.2, 7.0, 3.4, 3.4]]))
    volume[2, 0, 2] = np.nan  # a neighbour leaves the second image
    volume[:, 0, 3] = -volume[:, 0, 3]  # concave: a maximum, not a minimum
    labels = np.array([[0, 7, 3, 3]])  # the first and last labels have one neighbour
    assert (sublabel_offsets(volume, labels) == 0).all()


def test_a_label_the_mrf_chose_off_the_minimum_is_kept_or_clipped():
    volume = _quadratic_volume(np.array([[5.0]]))
    labels = np.array([[2]])  # the pixel's own minimum is 3 labels away
    assert sublabel_offsets(volume, labels, beyond_bin="keep")[0, 0] == 0.0
    assert sublabel_offsets(volume, labels)[0, 0] == pytest.approx(0.5)  # clipped to the bin
