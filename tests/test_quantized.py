"""8-bit integer 2-channel networks (``--precision int8``): the plain full-stride network
equals the dense pass, the quantized one stays close to it on real images and ranks the
hypotheses as it does, and where int8 cannot run it is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stereo.cost.base import resolve_precision
from stereo.cost.dense import DenseTwoChannel, pad_image
from stereo.cost.factory import make_cost
from stereo.cost.quantized import full_stride, plain_network, quantizable
from stereo.cost.two_channel import calibration_strips, two_channel_precision
from stereo.datasets.synthetic import make_scene
from stereo.errors import StereoError
from stereo.geometry.sweep import Sweep
from stereo.patchnet.weights import load_model


@pytest.fixture(scope="module")
def scene_pair():
    scene = make_scene(2, width=240, height=160, baseline=0.3)
    return scene.images[0], scene.images[1]


def test_full_stride_is_the_product_of_the_trunk_strides():
    assert full_stride(load_model("2ch-deep", untrained=True)) == 6  # conv 3 × pool 2
    assert full_stride(load_model("2ch", untrained=True)) == 12  # conv 3 × pool 2 × pool 2
    assert quantizable(load_model("2ch-deep", untrained=True), 6)
    assert not quantizable(load_model("2ch-deep", untrained=True), 3)
    assert not quantizable(load_model("2ch-2stream", untrained=True), 4)


def test_the_plain_network_is_the_dense_pass_at_full_stride():
    torch.manual_seed(0)
    model = load_model("2ch-deep", untrained=True)
    dense = DenseTwoChannel(model, 6)
    x = torch.randn(1, 2, 150, 170)
    with torch.no_grad():
        expected = dense._dense(x)
        plain = plain_network(model, dense.shape)(x)[:, 0]
    assert plain.shape == expected.shape
    torch.testing.assert_close(plain, expected, rtol=1e-5, atol=1e-5)


def test_int8_scores_track_float32_and_rank_hypotheses_alike(scene_pair):
    """Shipped 2ch-deep weights on the embedded scene: the int8 volume within 3 % of
    the score spread of the float32 one, and the same winner at nearly every pixel."""
    left, right = scene_pair
    sweep = Sweep.disparities(*left.shape, np.arange(0.0, 24.0, 1.5))
    cost = make_cost("2ch-deep", precision="float32")
    reference = cost.volume(left, right, sweep)
    cost.precision = "int8"
    quantized = cost.volume(left, right, sweep)
    assert cost.info["precision"] == "int8"
    valid = np.isfinite(reference).all(axis=0)
    spread = reference[:, valid].std()
    assert np.abs(quantized - reference)[:, valid].mean() < 0.03 * spread  # 1.2 % measured, scale 2
    winners_agree = reference.argmin(axis=0) == quantized.argmin(axis=0)
    assert winners_agree[valid].mean() > 0.95  # 98.2 % measured
    assert np.array_equal(np.isnan(quantized), np.isnan(reference))


def test_int8_without_vnni_keeps_seven_bits_and_still_tracks_float32(scene_pair, monkeypatch):
    """CPUs without VNNI quantize activations to 7 bits (FBGEMM's overflow guard): the
    volume stays close to float32's there too, and a volume is the same when computed again
    (the calibration is deterministic)."""
    import stereo.cost.quantized as quantized

    monkeypatch.setattr(quantized, "cpu_has_vnni", lambda: False)
    left, right = scene_pair
    sweep = Sweep.disparities(*left.shape, np.arange(0.0, 12.0, 1.5))
    reference = make_cost("2ch-deep", precision="float32").volume(left, right, sweep)
    cost = make_cost("2ch-deep", precision="int8")
    seven_bits = cost.volume(left, right, sweep)
    np.testing.assert_array_equal(cost.volume(left, right, sweep), seven_bits)
    valid = np.isfinite(reference).all(axis=0)
    spread = reference[:, valid].std()
    assert np.abs(seven_bits - reference)[:, valid].mean() < 0.05 * spread


def test_auto_is_int8_for_a_quantizable_two_channel_network_on_the_cpu():
    cpu = torch.device("cpu")
    deep = DenseTwoChannel(load_model("2ch-deep", untrained=True), 6)
    assert two_channel_precision("auto", cpu, deep) == "int8"
    assert two_channel_precision("float32", cpu, deep) == "float32"
    strided = DenseTwoChannel(load_model("2ch-deep", untrained=True), 3)
    assert two_channel_precision("auto", cpu, strided) == resolve_precision("auto", cpu)
    with pytest.raises(StereoError, match="full score stride"):
        two_channel_precision("int8", cpu, strided)
    two_stream = DenseTwoChannel(load_model("2ch-2stream", untrained=True), 4)
    assert two_channel_precision("auto", cpu, two_stream) == resolve_precision("auto", cpu)
    with pytest.raises(StereoError, match="one-stream 2-channel networks"):
        two_channel_precision("int8", cpu, two_stream)


def test_int8_is_refused_off_the_cpu_and_for_descriptor_networks(scene_pair):
    with pytest.raises(StereoError, match="CPU only"):
        resolve_precision("int8", torch.device("cuda"))
    left, right = scene_pair
    sweep = Sweep.disparities(*left.shape, np.arange(0.0, 4.0))
    with pytest.raises(StereoError, match="2-channel networks only"):
        make_cost("l2net", untrained=True, precision="int8").volume(left, right, sweep)


def test_calibration_strips_spread_over_the_image_and_fit_short_ones():
    padded = pad_image(torch.zeros(1, 2, 400, 90))
    strips = calibration_strips(padded)
    assert len(strips) == 3
    assert all(s.shape[-2] == 96 + 64 - 1 + 8 for s in strips)
    short = calibration_strips(pad_image(torch.zeros(1, 2, 40, 90)))
    assert len(short) == 1 and short[0].shape[-2] == 40 + 71  # the whole padded image
