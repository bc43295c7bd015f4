"""Dense (fully convolutional) networks equal the patch networks on the patch around a pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stereo.cost.dense import DenseDescriptor, DenseTwoChannel, normalise_image, pad_image
from stereo.errors import StereoError
from stereo.patchnet.models import build_model

PIXELS = [(0, 0), (5, 7), (39, 49), (20, 33), (39, 0)]


def _image(seed=0, shape=(40, 50)):
    torch.manual_seed(seed)
    return torch.rand(1, 1, *shape) * 255


def _patch(normalised: torch.Tensor, y: int, x: int) -> torch.Tensor:
    """The 64×64 patch around (y, x): top-left (y − 32, x − 32) in the image, reflect-padded."""
    return pad_image(normalised)[..., y : y + 64, x : x + 64]


@pytest.mark.parametrize("name", ["siam-l2", "siam", "siam-2stream-l2", "siam-2stream"])
def test_dense_descriptors_equal_patch_network(name):
    model = build_model(name).eval()
    x = normalise_image(_image(), model.normalisation)
    with torch.no_grad():
        dense = DenseDescriptor(model)(x)
        assert dense.shape == (1, model.descriptor_size, 40, 50)
        for y, xx in PIXELS:
            expected = model.embed(_patch(x, y, xx))[0]
            torch.testing.assert_close(dense[0, :, y, xx], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["2ch", "2ch-2stream"])
def test_dense_two_channel_equals_patch_network(name):
    model = build_model(name).eval()
    a = normalise_image(_image(1), model.normalisation)
    b = normalise_image(_image(2), model.normalisation)
    with torch.no_grad():
        dense = DenseTwoChannel(model)(torch.cat([a, b], dim=1))
        assert dense.shape == (1, 40, 50)
        for y, xx in PIXELS:
            expected = model(_patch(a, y, xx), _patch(b, y, xx))[0]
            torch.testing.assert_close(dense[0, y, xx], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["2ch-deep", "cnn3", "l2net", "cs-l2net"])
def test_approximate_dense_forms_have_the_image_size(name):
    model = build_model(name).eval()
    x = normalise_image(_image(), model.normalisation)
    with torch.no_grad():
        if model.is_descriptor:
            out = DenseDescriptor(model)(x)
            assert out.shape == (1, model.descriptor_size, 40, 50)
        else:
            out = DenseTwoChannel(model)(torch.cat([x, x], dim=1))
            assert out.shape == (1, 40, 50)
    assert torch.isfinite(out).all()


def test_dense_normalisation_is_the_window_statistics():
    img = _image(3, (120, 130))
    y, x = 50, 60  # its window (rows 18…81, columns 28…91) lies inside the image
    window = img[0, 0, y - 32 : y + 32, x - 32 : x + 32] / 255.0
    pixel = img[0, 0, y, x] / 255.0
    unit = normalise_image(img, "unit_mean")[0, 0, y, x]
    std = normalise_image(img, "standardise")[0, 0, y, x]
    torch.testing.assert_close(unit, pixel - window.mean(), rtol=1e-4, atol=1e-5)
    expected = (pixel - window.mean()) / (window.std(unbiased=False) + 1e-4)
    torch.testing.assert_close(std, expected, rtol=1e-4, atol=1e-4)


def test_dense_sift_has_the_image_size_and_follows_translations():
    from stereo.cost.handmade import DenseSiftCost

    image = (np.random.default_rng(0).random((60, 80)) * 255).astype(np.uint8)
    features = DenseSiftCost(cell=8).features(image)
    assert features.shape == (128, 60, 80)
    norms = features.norm(dim=0)
    assert torch.allclose(norms[20:40, 20:60], torch.ones(20, 40), atol=1e-4)  # RootSIFT
    shifted = DenseSiftCost(cell=8).features(np.roll(image, (2, 3), axis=(0, 1)))
    assert torch.equal(features[:, 20:40, 20:50], shifted[:, 22:42, 23:53])


def test_descriptor_compression_keeps_l2_distances():
    from stereo.cost.descriptor import compress_descriptors

    rng = np.random.default_rng(0)
    basis = torch.from_numpy(rng.normal(size=(64, 5)))
    a = torch.einsum("dk,khw->dhw", basis, torch.from_numpy(rng.normal(size=(5, 20, 30)))) + 3.0
    b = torch.einsum("dk,khw->dhw", basis, torch.from_numpy(rng.normal(size=(5, 10, 15)))) + 3.0
    ca, cb, kept = compress_descriptors(a.float(), b.float(), 0.9999)
    assert ca.shape == (5, 20, 30) and cb.shape == (5, 10, 15) and kept > 0.9999
    full = torch.cdist(a.reshape(64, -1).T, b.reshape(64, -1).T)
    small = torch.cdist(ca.reshape(5, -1).T.double(), cb.reshape(5, -1).T.double())
    assert torch.allclose(full, small, atol=1e-4)
    # full rank: keeping less variance drops components and only ever shortens distances
    a, b = torch.randn(16, 8, 8), torch.randn(16, 8, 8)
    ca, cb, kept = compress_descriptors(a, b, 0.5)
    assert 1 <= ca.shape[0] < 16 and 0.5 <= kept < 1
    assert ((ca - cb).norm(dim=0) <= (a - b).norm(dim=0) + 1e-5).all()


def test_compressed_descriptor_volume_matches_the_exact_one():
    from stereo.cost.descriptor import DescriptorCost
    from stereo.geometry.sweep import Sweep

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    left = (rng.random((40, 56)) * 255).astype(np.uint8)
    right = np.roll(left, -3, axis=1)
    sweep = Sweep.disparities(40, 56, np.arange(6.0))
    cost = DescriptorCost(build_model("siam-l2").eval())
    cost.precision = "float32"  # compared with float32 references
    cost.variance_kept = 1.0
    exact = cost.volume(left, right, sweep)
    assert cost.info == {"descriptor_dims": 256, "precision": "float32"}
    cost.variance_kept = 0.9999
    compressed = cost.volume(left, right, sweep)
    assert cost.info["descriptor_dims_kept"] <= 256 and cost.info["variance_kept"] >= 0.9999
    ok = np.isfinite(exact)
    assert np.array_equal(ok, np.isfinite(compressed))
    scale = np.nanmax(exact)
    assert np.abs(exact[ok] - compressed[ok]).max() < 0.02 * scale
    assert (np.nanargmin(exact[:, :, 10:], axis=0) == 3).mean() > 0.9  # true shift wins


@pytest.mark.parametrize("name", ["siam-l2", "siam", "l2net"])
def test_volume_pair_equals_two_separate_volumes(name):
    """Left-right checks describe each image once: both directions equal two volume calls."""
    from stereo.cost.descriptor import DescriptorCost
    from stereo.geometry.sweep import Sweep

    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    left = (rng.random((44, 56)) * 255).astype(np.uint8)
    right = np.roll(left, -2, axis=1)
    forward = Sweep.disparities(44, 56, np.arange(5.0))
    backward = Sweep.disparities(44, 56, -np.arange(5.0))
    cost = DescriptorCost(build_model(name).eval())
    pair = cost.volume_pair(left, right, forward, backward)
    separate = (cost.volume(left, right, forward), cost.volume(right, left, backward))
    for got, expected in zip(pair, separate, strict=True):
        assert np.array_equal(np.isfinite(got), np.isfinite(expected))
        ok = np.isfinite(expected)
        np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-4, atol=1e-4)
    if name != "siam":  # an untrained L2 descriptor is still a metric: the shift +2 wins
        assert (np.nanargmin(pair[1][:, :, :-8], axis=0) == 2).mean() > 0.5


def test_images_too_small_for_a_network_give_a_clear_error():
    from stereo.errors import StereoError

    model = build_model("siam-l2").eval()
    with pytest.raises(StereoError, match=r"at least .* pixels a side"):
        DenseDescriptor(model)(torch.zeros(1, 1, 30, 80))


def test_fused_cost_is_the_mean_of_normalised_volumes():
    from stereo.cost.factory import make_cost
    from stereo.geometry.sweep import Sweep
    from stereo.mrf.graphcut import normalise_volume

    rng = np.random.default_rng(3)
    left = (rng.random((44, 60)) * 255).astype(np.uint8)
    right = np.roll(left, -3, axis=1)
    sweep = Sweep.disparities(44, 60, np.arange(6.0))
    fused = make_cost("zncc,census")
    expected = (
        normalise_volume(make_cost("zncc").volume(left, right, sweep))
        + normalise_volume(make_cost("census").volume(left, right, sweep))
    ) / 2
    got = fused.volume(left, right, sweep)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert (np.nanargmin(got[:, 8:-8, 12:-8], axis=0) == 3).mean() > 0.95
    backward = Sweep.disparities(44, 60, -np.arange(6.0))
    pair = fused.volume_pair(left, right, sweep, backward)
    np.testing.assert_allclose(pair[0], expected, rtol=1e-6, atol=1e-6)
    assert fused.name == "zncc9,census7"


@pytest.mark.parametrize("replicated", [True, False])
def test_input_scale_describes_the_upsampled_image_at_each_pixel(replicated):
    """A network trained on windows cut at twice the working scale (model card
    ``input_scale`` 2) describes pixel (y, x) by the mean of its descriptors at the four
    pixels of the 2× image that cover it — each is the patch network on its 64×64 patch;
    the 2× image is the pixel-replicated one (as the synthetic windows are replicated), or
    the bilinear one without ``replicated_upsampling``."""
    import cv2

    from stereo.cost.descriptor import DescriptorCost

    torch.manual_seed(0)
    model = build_model("siam-l2").eval()
    model.card = {"input_scale": 2.0}
    cost = DescriptorCost(model)
    cost.precision = "float32"  # compared with float32 references
    cost.replicated_upsampling = replicated
    assert cost.input_scale == 2.0
    image = (np.random.default_rng(4).random((24, 30)) * 255).astype(np.uint8)
    got = cost.features(image)
    assert got.shape == (model.descriptor_size, 24, 30)
    big = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
    if not replicated:
        big = cv2.resize(image, (60, 48), interpolation=cv2.INTER_LINEAR)
    x = normalise_image(torch.from_numpy(big.astype(np.float32))[None, None], model.normalisation)
    with torch.no_grad():
        for y, xx in [(0, 0), (5, 7), (23, 29), (11, 18)]:
            corners = [(2 * y + dy, 2 * xx + dx) for dy in (0, 1) for dx in (0, 1)]
            expected = torch.stack([model.embed(_patch(x, a, b))[0] for a, b in corners]).mean(0)
            torch.testing.assert_close(got[:, y, xx], expected, rtol=1e-4, atol=1e-5)


def test_l2net_half_resolution_form_is_the_network_on_the_pixel_replicated_image():
    """l2net with ``input_scale`` 2 runs its 32×32 tower on the image itself: exactly the
    dense network on the image upsampled 2× by pixel replication, read at even pixels (away
    from the borders, where the two paddings differ)."""
    from stereo.cost.descriptor import DescriptorCost

    torch.manual_seed(0)
    model = build_model("l2net").eval()
    image = _image(5, (80, 84))
    normalised = normalise_image(image, model.normalisation, window=32)
    replicated = normalised.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    with torch.no_grad():
        half = DenseDescriptor(model, replicated_half=True)(normalised)
        full = DenseDescriptor(model)(replicated)
    assert half.shape == (1, 128, 80, 84)
    # the dense tower reads 32 native pixels plus its convolutions' context (< 28 a side):
    # compare where that stays inside the image
    inner = (slice(28, 52), slice(28, 56))
    torch.testing.assert_close(
        half[0][:, inner[0], inner[1]],
        full[0, :, ::2, ::2][:, inner[0], inner[1]],
        rtol=1e-4,
        atol=1e-5,
    )
    # the stereo cost takes this form for a card with input_scale 2
    model.card = {"input_scale": 2.0}
    cost = DescriptorCost(model)
    cost.precision = "float32"  # compared with float32 references
    grey = image[0, 0].numpy().astype(np.uint8)
    got = cost.features(grey)
    as_float = torch.from_numpy(grey.astype(np.float32))[None, None]
    with torch.no_grad():
        expected = DenseDescriptor(model, replicated_half=True)(
            normalise_image(as_float, model.normalisation, window=32)
        )[0]
    torch.testing.assert_close(got, expected)
    with pytest.raises(StereoError, match="l2net"):
        DenseDescriptor(build_model("siam-l2"), replicated_half=True)


@pytest.mark.parametrize(
    "name, replicated_half",
    [("l2net", False), ("l2net", True), ("cs-l2net", False), ("siam-2stream", False)],
)
def test_strips_equal_one_pass_over_the_whole_image(name, replicated_half):
    """Strips of 24 rows give the descriptors of one pass over the image, also for L2-Net,
    whose zero-padded layers read image rows beyond a strip's window."""
    from stereo.cost.base import dense_in_strips

    model = build_model(name).eval()
    dense = DenseDescriptor(model, replicated_half=replicated_half)
    x = normalise_image(_image(3, (100, 70)), model.normalisation, window=dense.window)
    with torch.no_grad():
        whole = dense(x)
        strips = dense_in_strips(dense, x, rows=24)
    torch.testing.assert_close(strips, whole, rtol=1e-4, atol=1e-5)


def test_two_channel_strips_equal_one_pass():
    from stereo.cost.base import dense_in_strips

    model = build_model("2ch-deep").eval()
    a = normalise_image(_image(4, (90, 60)), model.normalisation)
    b = normalise_image(_image(5, (90, 60)), model.normalisation)
    pair = torch.cat([a, b], dim=1)
    dense = DenseTwoChannel(model)
    with torch.no_grad():
        torch.testing.assert_close(
            dense_in_strips(dense, pair, rows=20), dense(pair), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("with_head", [False, True])
def test_opencv_sampling_matches_exact_bilinear(with_head):
    """The CPU volume (cv2.remap, weights to 1/32 pixel) equals the grid_sample one to the
    interpolation's rounding on smooth descriptor maps, with the same NaN (out-of-view)
    entries; 150 channels cross the 64-channel groups."""
    from stereo.cost.descriptor import descriptor_volume
    from stereo.geometry.camera import Camera
    from stereo.geometry.sweep import Sweep

    torch.manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(1, 150, 48, 60), 5, 1, 2)[0]
    d_ref, d_other = smooth[:, 4:44, 2:58].contiguous(), smooth.contiguous()
    K = np.array([[60.0, 0, 27.5], [0, 60, 19.5], [0, 0, 1]])
    angle = np.deg2rad(8)
    R = np.array([[np.cos(angle), 0, -np.sin(angle)], [0, 1, 0], [np.sin(angle), 0, np.cos(angle)]])
    sweep = Sweep.planes(
        Camera(K, np.eye(3), np.zeros(3), 56, 40),
        Camera(K, R, np.array([0.6, 0.05, 0.0]), 60, 48),
        np.array([3.0, 4.0, 6.0, 10.0]),
    )
    head = None
    if with_head:
        head = torch.nn.Sequential(
            torch.nn.Linear(300, 300), torch.nn.ReLU(), torch.nn.Linear(300, 1)
        ).eval()
    fast = descriptor_volume(d_ref, d_other, sweep, head)
    exact = descriptor_volume(d_ref, d_other, sweep, head, exact_sampling=True)
    assert np.array_equal(np.isfinite(fast), np.isfinite(exact))
    ok = np.isfinite(exact)
    assert 0.2 < ok.mean() < 1.0  # some hypotheses leave the second map
    spread = np.nanmax(exact) - np.nanmin(exact)
    assert np.abs(fast[ok] - exact[ok]).max() < 0.01 * spread


def test_bfloat16_descriptors_stay_close_to_float32():
    """``precision="bfloat16"`` runs the network under autocast: float32 descriptors out,
    within bf16 rounding of the float32 ones; an unknown precision is a clear error."""
    from stereo.cost.descriptor import DescriptorCost
    from stereo.cost.factory import make_cost

    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    image = (rng.random((48, 60)) * 255).astype(np.uint8)
    cost = DescriptorCost(build_model("l2net").eval())
    cost.precision = "float32"
    exact = cost.features(image)
    cost.precision = "bfloat16"
    low = cost.features(image)
    assert low.dtype == torch.float32 and low.shape == exact.shape
    assert (low - exact).abs().mean() < 0.01 and (low - exact).abs().max() < 0.1
    cos = (low * exact).sum(dim=0)  # unit descriptors
    assert cos.min() > 0.99
    with pytest.raises(StereoError, match="unknown precision"):
        make_cost("dsift", precision="float16")


def test_auto_precision_is_bfloat16_only_where_the_device_supports_it():
    from stereo.cost.base import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("bfloat16", cpu) == "bfloat16"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", cpu) == ("bfloat16" if native else "float32")
    assert resolve_precision("auto", torch.device("meta")) == "float32"
    with pytest.raises(StereoError, match="valid: auto, float32, bfloat16"):
        resolve_precision("half", cpu)


def test_two_channel_cost_takes_the_precision():
    """2-channel volumes in bfloat16 stay within bf16 rounding of float32; ``make_cost``
    hands them the precision, and the cost reports it."""
    from stereo.cost.factory import make_cost
    from stereo.geometry.sweep import Sweep

    rng = np.random.default_rng(6)
    left = (rng.random((40, 52)) * 255).astype(np.uint8)
    right = np.roll(left, -2, axis=1)
    sweep = Sweep.disparities(40, 52, np.arange(4.0))
    volumes = {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(1)  # the same random weights for both
        cost = make_cost("2ch", untrained=True, precision=precision)
        volumes[precision] = cost.volume(left, right, sweep)
        assert cost.info == {"precision": precision}
    exact, low = volumes["float32"], volumes["bfloat16"]
    ok = np.isfinite(exact)
    assert np.array_equal(ok, np.isfinite(low))
    spread = np.nanmax(exact) - np.nanmin(exact)
    assert np.abs(exact[ok] - low[ok]).max() < 0.05 * spread


@pytest.mark.parametrize("name", ["zncc", "census", "daisy", "dsift"])
def test_baselines_hold_the_device_asked(name):
    """Every baseline computes where --device says (it used to be the CPU whatever was
    asked)."""
    from stereo.cost.factory import make_cost

    assert make_cost(name, device="cpu").device == torch.device("cpu")
    assert make_cost(name, device=torch.device("cpu", 0)).device == torch.device("cpu", 0)


def test_sweep_grid_computed_by_torch_equals_the_numpy_coordinates():
    """Off the CPU the sampling grid is projected with PyTorch on the device: the same
    coordinates as the NumPy projection, for planes near and far and rectified shifts."""
    from stereo.cost.sampling import projected_grid
    from stereo.datasets.synthetic import make_scene
    from stereo.geometry.sweep import Sweep

    scene = make_scene(2, width=120, height=80, baseline=0.6)
    planes = Sweep.planes(scene.cameras[0], scene.cameras[1], np.array([0.05, 2.0, 9.0]))
    shifts = Sweep.disparities(80, 120, np.array([0.0, 2.5, 31.0]))
    for sweep in (planes, shifts):
        for label in range(len(sweep)):
            grid = projected_grid(sweep, label, torch.device("cpu")).numpy()
            np.testing.assert_allclose(grid, sweep.coordinates(label), rtol=1e-6, atol=1e-4)


def test_census_ignores_sampling_round_off(monkeypatch):
    """CUDA's bilinear sampling lands 1e-5 grey levels off the CPU's where a sample falls on
    a pixel (seen on an H200: 4 % of census costs differed by up to 0.02): census bits of
    equal grey levels must not flip on such round-off."""
    import stereo.cost.handmade as handmade
    from stereo.geometry.sweep import Sweep

    rng = np.random.default_rng(0)
    left = (rng.random((40, 56)) * 8).astype(np.uint8) * 32  # many equal grey levels
    right = np.roll(left, -3, axis=1)
    sweep = Sweep.disparities(40, 56, np.arange(0.0, 6.0))
    exact = handmade.CensusCost().volume(left, right, sweep)
    sample = handmade.sample

    def off_by_round_off(image, xy):
        values, inside = sample(image, xy)
        noise = torch.from_numpy(rng.choice([-1e-5, 1e-5], size=tuple(values.shape)))
        return values + noise.float(), inside

    monkeypatch.setattr(handmade, "sample", off_by_round_off)
    np.testing.assert_array_equal(handmade.CensusCost().volume(left, right, sweep), exact)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["zncc", "census", "daisy", "dsift"])
def test_baselines_on_cuda_equal_the_cpu(name):
    import cv2

    from stereo.cost.factory import make_cost
    from stereo.geometry.sweep import Sweep

    if name == "daisy" and not hasattr(cv2, "xfeatures2d"):  # a GPU image's plain OpenCV
        pytest.skip("DAISY needs opencv-contrib-python-headless")

    rng = np.random.default_rng(0)
    left = (rng.random((40, 56)) * 255).astype(np.uint8)
    right = np.roll(left, -3, axis=1)
    sweep = Sweep.disparities(40, 56, np.arange(0.0, 6.0))
    on_cpu = make_cost(name, device="cpu").volume(left, right, sweep)
    on_gpu = make_cost(name, device="cuda").volume(left, right, sweep)
    assert make_cost(name, device="cuda").device.type == "cuda"
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-3, equal_nan=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["l2net", "cnn3", "siam", "2ch-deep", "2ch"])
def test_networks_on_cuda_equal_the_cpu(name):
    """Every network family's volume with its shipped stereo weights: the same on CUDA as on
    the CPU (float32 on both; CUDA convolutions may run in TF32, hence 1 % of the spread)."""
    from stereo.cost.factory import make_cost
    from stereo.geometry.sweep import Sweep

    image = _image(3, (64, 96))[0, 0].numpy().astype(np.uint8)
    left, right = image, np.roll(image, -3, axis=1)
    sweep = Sweep.disparities(64, 96, np.arange(0.0, 6.0))
    on_cpu = make_cost(name, device="cpu", precision="float32").volume(left, right, sweep)
    on_gpu = make_cost(name, device="cuda", precision="float32").volume(left, right, sweep)
    spread = float(np.nanstd(on_cpu))
    np.testing.assert_allclose(on_gpu, on_cpu, atol=0.01 * spread, equal_nan=True)


@pytest.mark.parametrize(
    ("name", "stride"),
    [(name, stride) for name in ("2ch", "2ch-deep") for stride in (2, 3, 6)]
    + [("2ch-2stream", 2), ("2ch-2stream", 4)],
)
def test_strided_two_channel_scores_are_the_dense_ones_every_nth_pixel(name, stride):
    from stereo.cost.base import dense_in_strips

    model = build_model(name).eval()
    a = normalise_image(_image(1, (70, 55)), model.normalisation)
    b = normalise_image(_image(2, (70, 55)), model.normalisation)
    pair = torch.cat([a, b], dim=1)
    with torch.no_grad():
        full = dense_in_strips(DenseTwoChannel(model), pair, rows=24)
        grid = dense_in_strips(DenseTwoChannel(model, stride), pair, rows=24)
    assert grid.shape == (1, -(-70 // stride), -(-55 // stride))
    torch.testing.assert_close(grid, full[..., ::stride, ::stride], rtol=1e-5, atol=1e-5)


def test_grid_scores_are_interpolated_bilinearly_to_every_pixel():
    from stereo.cost.dense import upsample_grid

    gy, gx = torch.meshgrid(torch.arange(5.0), torch.arange(4.0), indexing="ij")
    grid = (2.0 * gy - 0.5 * gx)[None]  # a plane in grid units
    up = upsample_grid(grid, 3, 14, 11)
    y, x = torch.meshgrid(torch.arange(14.0), torch.arange(11.0), indexing="ij")
    inside = (y <= 12) & (x <= 9)  # up to the last grid point (pixel 3·4, 3·3)
    torch.testing.assert_close(up[0][inside], (2.0 * y / 3 - 0.5 * x / 3)[inside])
    torch.testing.assert_close(up[0, 13, :10], up[0, 12, :10])  # past it: the border value


def test_impossible_score_strides_are_refused():
    from stereo.config import StereoConfig
    from stereo.cost.base import dense_in_strips

    pair = torch.zeros(1, 2, 70, 70)
    with pytest.raises(StereoError, match="not a product of the network's first strides"):
        dense_in_strips(DenseTwoChannel(build_model("2ch-deep").eval(), 4), pair)
    with pytest.raises(StereoError, match="every 1, 2 or 4 pixels, not 3"):
        DenseTwoChannel(build_model("2ch-2stream").eval(), 3)
    with pytest.raises(StereoError, match="--score-stride must be 0"):
        StereoConfig(score_stride=-1)


def test_score_stride_zero_takes_the_model_cards_choice():
    from stereo.cost.two_channel import TwoChannelCost

    model = build_model("2ch-deep").eval()
    assert TwoChannelCost(model).dense.output_stride == 1  # no card: every pixel
    model.card = {"score_stride": 3}
    assert TwoChannelCost(model).dense.output_stride == 3
    assert TwoChannelCost(model, output_stride=1).dense.output_stride == 1


def test_window_scale_zero_takes_the_model_cards_choice_and_bad_scales_are_refused():
    from stereo.config import StereoConfig
    from stereo.cost.two_channel import TwoChannelCost

    model = build_model("2ch-deep").eval()
    assert TwoChannelCost(model).window_scale == 1  # no card: the working images as they are
    model.card = {"window_scale": 2}
    assert TwoChannelCost(model).window_scale == 2
    assert TwoChannelCost(model, window_scale=1).window_scale == 1
    with pytest.raises(StereoError, match="--window-scale must be 0"):
        StereoConfig(window_scale=5)


def test_an_enlarged_grid_moves_enlarged_pixels_as_the_shift_moves_working_ones():
    from stereo.cost.two_channel import enlarged_grid

    h, w, shift, f = 6, 9, 2.5, 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    working = torch.from_numpy(np.stack([xs - shift, ys], axis=-1))
    big = enlarged_grid(working, f).numpy()
    # enlarged pixel j lies at working (j + 0.5) / f − 0.5: it lands at j − f · shift
    jy, jx = np.mgrid[0 : f * h, 0 : f * w].astype(np.float32)
    np.testing.assert_allclose(big[..., 0], jx - f * shift, atol=1e-5)
    np.testing.assert_allclose(big[..., 1], jy, atol=1e-5)


def test_a_window_scale_scores_the_enlarged_images_and_averages_back():
    """The cost at window scale 2 equals the same network's cost on both images enlarged
    twice (disparities doubled), each working pixel the mean of its 2 × 2 enlarged ones."""
    from stereo.cost.two_channel import TwoChannelCost, enlarge
    from stereo.geometry.sweep import Sweep

    rng = np.random.default_rng(3)
    left = (rng.random((40, 60)) * 255).astype(np.uint8)
    right = np.roll(left, -2, axis=1)
    torch.manual_seed(0)
    model = build_model("2ch-deep").eval()
    scaled = TwoChannelCost(model, output_stride=1, window_scale=2)
    scaled.precision = "float32"
    plain = TwoChannelCost(model, output_stride=1, window_scale=1)
    plain.precision = "float32"
    disparities = np.array([1.0, 2.0, 3.0])
    volume = scaled.volume(left, right, Sweep.disparities(40, 60, disparities))
    big = [enlarge(torch.from_numpy(x).float()[None, None], 2)[0, 0].numpy() for x in (left, right)]
    reference = plain.volume(big[0], big[1], Sweep.disparities(80, 120, 2 * disparities))
    pooled = reference.reshape(3, 40, 2, 60, 2).mean(axis=(2, 4))
    both = np.isfinite(volume) & np.isfinite(pooled)
    assert both.mean() > 0.9
    np.testing.assert_allclose(volume[both], pooled[both], rtol=1e-4, atol=1e-4)
