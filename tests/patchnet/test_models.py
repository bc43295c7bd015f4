"""Registry models: reference parameter counts, scoring on CPU, input checks, layers."""

from __future__ import annotations

import pytest
import torch

from stereo.errors import StereoError
from stereo.patchnet.models import MODELS, build_model, count_parameters
from stereo.patchnet.models.layers import L2Pool, SpatialPyramidPool, SubtractiveNorm

ALL = list(MODELS)


@pytest.mark.parametrize("name", [n for n in ALL if MODELS[n].reference_parameters])
def test_parameter_count_equals_reference(name):
    assert count_parameters(build_model(name)) == MODELS[name].reference_parameters


def test_dense_cnn3_and_cs_l2net_counts():
    # CNN3 densely connected: 32·49+32 + 64·32·36+64 + 128·64·25+128 (REFERENCE: "about 280K")
    assert count_parameters(build_model("cnn3")) == 1600 + 73792 + 204928
    assert count_parameters(build_model("cs-l2net")) == 2 * 1_334_560


@pytest.mark.parametrize("name", ALL)
def test_every_model_scores_a_batch_on_cpu(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    a = torch.randint(0, 256, (5, 64, 64), dtype=torch.uint8)
    b = torch.randint(0, 256, (5, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        scores = model.score(a, b)
        again = model.score(a[:2], b[:2])
    assert scores.shape == (5,) and torch.isfinite(scores).all()
    torch.testing.assert_close(scores[:2], again)  # batch-independent in eval mode


@pytest.mark.parametrize("name", [n for n in ALL if MODELS[n].build().is_descriptor])
def test_descriptor_models_compare_descriptors_as_score(name):
    torch.manual_seed(1)
    model = build_model(name).eval()
    a = torch.randint(0, 256, (4, 64, 64), dtype=torch.uint8)
    b = torch.randint(0, 256, (4, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        side_b = {"side": 1} if name == "pseudo-siam" else {}
        da, db = model.describe(a), model.describe(b, **side_b)
        assert da.shape == (4, model.descriptor_size)
        torch.testing.assert_close(model.compare(da, db), model.score(a, b))
        if model.metric == "l2":
            torch.testing.assert_close(
                model.score(a, b), -torch.linalg.norm(da - db, dim=1), atol=1e-4, rtol=1e-4
            )


@pytest.mark.parametrize("name", ["siam-l2", "siam-2stream-l2", "l2net", "cs-l2net"])
def test_unit_descriptors(name):
    model = build_model(name).eval()
    with torch.no_grad():
        d = model.describe(torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8))
    torch.testing.assert_close(d.norm(dim=1), torch.ones(3))


def test_identical_patches_score_highest_for_l2_models():
    model = build_model("siam-l2").eval()
    a = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(model.score(a, a), torch.zeros(3), atol=1e-3)


def test_spp_accepts_any_size_and_others_reject():
    spp = build_model("2ch-spp").eval()
    big = torch.randint(0, 256, (2, 96, 80), dtype=torch.uint8)
    with torch.no_grad():
        assert spp.score(big, big).shape == (2,)
    with pytest.raises(StereoError, match="takes 64x64"):
        build_model("2ch").score(big, big)
    with pytest.raises(StereoError, match="smaller than the minimum"):
        spp.score(big[:, :32, :32], big[:, :32, :32])


def test_input_checks():
    model = build_model("2ch")
    with pytest.raises(StereoError, match="dtype"):
        model.score(torch.zeros(2, 64, 64, dtype=torch.int32), torch.zeros(2, 64, 64))
    with pytest.raises(StereoError, match="shape"):
        model.score(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64))
    with pytest.raises(StereoError, match="same number"):
        model.score(torch.zeros(2, 64, 64), torch.zeros(3, 64, 64))


def test_unknown_model_lists_valid_names():
    with pytest.raises(StereoError) as info:
        build_model("3ch")
    assert "3ch" in str(info.value) and "2ch-deep" in str(info.value) and "l2net" in str(info.value)


def test_input_normalisation_is_inside_the_model():
    # shifting the grey levels by a constant changes nothing for per-patch normalised inputs
    torch.manual_seed(2)
    a = torch.randint(0, 200, (3, 64, 64)).float()
    b = torch.randint(0, 200, (3, 64, 64)).float()
    for name in ("2ch", "cnn3", "l2net"):
        model = build_model(name).eval()
        with torch.no_grad():
            torch.testing.assert_close(
                model.score(a, b), model.score(a + 40, b + 40), atol=1e-4, rtol=1e-4
            )


def test_l2pool_known_answer():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    expected = torch.sqrt(
        torch.tensor(
            [[0 + 1 + 16 + 25, 4 + 9 + 36 + 49], [64 + 81 + 144 + 169, 100 + 121 + 196 + 225]]
        )
    )
    torch.testing.assert_close(L2Pool(2)(x)[0, 0], expected, atol=1e-3, rtol=1e-5)


def test_subtractive_norm_removes_constant_and_local_mean():
    norm = SubtractiveNorm(5)
    constant = torch.full((1, 3, 9, 9), 7.0)
    torch.testing.assert_close(norm(constant), torch.zeros_like(constant), atol=1e-5, rtol=0)
    # float64 reference at the centre pixel: x − Σ g·mean_c(x) over the 5×5 window
    x = torch.randn(1, 2, 9, 9)
    g = norm.kernel[0, 0].double()
    window = x.double().mean(dim=1)[0, 2:7, 2:7]
    expected = x.double()[0, :, 4, 4] - (g * window).sum()
    torch.testing.assert_close(norm(x)[0, :, 4, 4].double(), expected, atol=1e-5, rtol=0)


def test_spatial_pyramid_pool_size_and_values():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    out = SpatialPyramidPool((1, 2))(x)
    assert out.tolist() == [[15.0, 5.0, 7.0, 13.0, 15.0]]
