"""The 2-channel cascade: banded scores equal the full sweep's, the blocks cover what the
interpolation reads, and with a band over every label the cascade is the full sweep."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from stereo import pipeline
from stereo.cascade import (
    AUTO,
    DEFAULT_FUSE,
    TILE_SHARE,
    band_mask,
    block_means,
    cascade_volume,
    cascades,
    for_search,
    pooled_labels,
    proposal_config,
    proposal_weight,
    proposed_labels,
    resized_pair,
    sweep_volume,
    tile_band_mask,
    upsampled_labels,
)
from stereo.config import StereoConfig
from stereo.cost.factory import make_cost
from stereo.cost.flat import flat_pixels
from stereo.cost.handmade import CensusCost
from stereo.cost.two_channel import BLOCK_ROWS, block_work, merged_blocks, needed_blocks
from stereo.datasets.synthetic import make_scene
from stereo.errors import StereoError
from stereo.geometry.matches import working_pair
from stereo.geometry.planesweep import plane_homography
from stereo.geometry.sweep import Sweep, apply_homography
from stereo.mrf.graphcut import normalise_volume, solve, winner_take_all
from stereo.mrf.optimise import optimise, resolved_mrf
from stereo.pipeline import match_calibrated


def _pair(seed: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    left = (rng.random(shape) * 255).astype(np.uint8)
    return left, np.roll(left, 3, axis=1)


def test_band_mask_holds_the_labels_within_the_band():
    proposal = np.array([[0, 3], [5, 2]])
    mask = band_mask(proposal, 6, 1)
    assert mask.shape == (6, 2, 2)
    np.testing.assert_array_equal(np.flatnonzero(mask[:, 0, 0]), [0, 1])
    np.testing.assert_array_equal(np.flatnonzero(mask[:, 0, 1]), [2, 3, 4])
    np.testing.assert_array_equal(np.flatnonzero(mask[:, 1, 0]), [4, 5])


def test_a_tile_is_scored_over_the_bands_of_the_labels_its_pixels_propose():
    proposal = np.full((8, 12), 2)
    proposal[:, 6:] = 9  # a depth edge inside the first tile
    proposal[0, 0] = 5  # one stray proposal: 1/64 of the tile, under TILE_SHARE
    assert 1 / 64 < TILE_SHARE * 2
    mask = tile_band_mask(proposal, 12, 1, tile=8)
    first, second = mask[:, :, :8], mask[:, :, 8:]
    assert first.all(axis=(1, 2)).tolist() == [label in (1, 2, 3, 8, 9, 10) for label in range(12)]
    assert not (first.any(axis=(1, 2)) & ~first.all(axis=(1, 2))).any()  # whole tiles
    assert second.all(axis=(1, 2)).tolist() == [label in (8, 9, 10) for label in range(12)]
    # the edge's surface covers 16/64 of the first tile: kept at a share of 0.2, not at 0.3
    assert np.array_equal(tile_band_mask(proposal, 12, 1, tile=8, share=0.2), mask)
    edge_only = tile_band_mask(proposal, 12, 1, tile=8, share=0.3)[:, :, :8]
    assert edge_only.all(axis=(1, 2)).tolist() == [label in (1, 2, 3) for label in range(12)]


@pytest.mark.parametrize("stride", [1, 3])
def test_blocks_cover_every_needed_pixel_and_the_grid_points_it_reads(stride):
    needed = np.zeros((2 * BLOCK_ROWS + 10, 300), bool)
    needed[5, 0] = needed[5, 299] = needed[150, 40] = needed[-1, -1] = True
    needed[100:110, 200:220] = needed[90:99, 7] = True
    covered = np.zeros_like(needed)
    for (r0, r1), (c0, c1) in needed_blocks(needed, stride):
        assert r0 % stride == 0 and c0 % stride == 0
        covered[r0:r1, c0:c1] = True
    for y, x in zip(*np.nonzero(needed), strict=True):
        gy, gx = y // stride * stride, x // stride * stride
        steps = (0,) if stride == 1 else (0, stride)  # stride 1: no interpolation
        for py in (min(gy + step, needed.shape[0] - 1) for step in steps):
            for px in (min(gx + step, needed.shape[1] - 1) for step in steps):
                assert covered[py, px], (y, x, py, px)
    assert covered.mean() < 0.5  # scattered pixels: blocks, not the whole image


def test_blocks_merge_only_where_their_box_is_less_work():
    upper, lower = ((0, 96), (30, 330)), ((96, 192), (30, 330))
    assert merged_blocks([upper, lower]) == [((0, 192), (30, 330))]  # one margin saved
    far = ((300, 310), (700, 710))  # a small block far away: its box would be huge
    blocks = merged_blocks([upper, far, lower])
    assert sorted(blocks) == [((0, 192), (30, 330)), far]
    assert sum(map(block_work, blocks)) < block_work(upper) + block_work(lower) + block_work(far)


@pytest.mark.parametrize(
    ("name", "stride", "scale"),
    [("2ch", 1, 1), ("2ch-deep", 1, 1), ("2ch-deep", 3, 1), ("2ch-deep", 6, 2)],
)
def test_banded_scores_equal_the_full_sweep_where_scored(name, stride, scale):
    left, right = _pair(0, (70, 100))
    sweep = Sweep.disparities(70, 100, np.arange(0.0, 6.0))
    # float32: bfloat16 (auto on AVX-512 CPUs) rounds blocks and whole images differently
    cost = make_cost(
        name, untrained=True, score_stride=stride, precision="float32", window_scale=scale
    )
    full = cost.volume(left, right, sweep)
    rng = np.random.default_rng(2)
    needed = rng.random(full.shape) < 0.05
    needed[2, 10:20, 30:90] = True
    part = cost.volume_at(left, right, sweep, needed)
    scored = needed & np.isfinite(full)
    np.testing.assert_allclose(part[scored], full[scored], rtol=1e-5, atol=1e-5)
    assert np.isinf(part[~needed & np.isfinite(full)]).all()
    assert np.isnan(part[np.isnan(full)]).all()  # outside the second image either way


@pytest.fixture(scope="module")
def small_scene():
    return make_scene(2, width=200, height=150, baseline=0.5)


def _config(**changes) -> StereoConfig:
    cfg = StereoConfig(
        model="2ch",
        n_labels=8,
        working_size=96,
        untrained=True,
        depth_range=(4.0, 10.0),
        cascade_fuse=0.0,  # the network's volume alone, comparable with its full sweep
        cascade_flat_std=0.0,  # flat pixels too
    )
    return replace(cfg, **changes)


def test_a_band_over_every_label_is_the_full_sweep(small_scene):
    sc = small_scene
    images = (sc.images[0], sc.images[1], sc.cameras[0], sc.cameras[1])
    runs = {}
    for name, changes in [("full", {"cascade": "none"}), ("wide", {"cascade_band": 8})]:
        torch.manual_seed(0)  # the same untrained weights in both runs
        runs[name] = match_calibrated(*images, _config(**changes))
    full, wide = runs["full"], runs["wide"]
    # a smoothed proposal (2 cycles): the winner-take-all labels of this 96-px image
    # spread over all 8 labels, so a band of 1 around them would cover every label
    narrow = match_calibrated(*images, _config(cascade_band=1, cascade_cycles=2))
    np.testing.assert_array_equal(wide.depth_working, full.depth_working)
    assert "cascade" not in full.report
    assert wide.report["cascade"]["scored_fraction"] == 1.0
    assert wide.report["cascade"]["proposal"] == "zncc9"
    assert narrow.report["cascade"]["scored_fraction"] < 1.0


def test_auto_cascades_a_plane_sweep_and_fully_sweeps_a_rectified_pair(small_scene):
    sc = small_scene
    assert StereoConfig().cascade == AUTO
    planes = match_calibrated(sc.images[0], sc.images[1], *sc.cameras[:2], _config())
    assert planes.report["cascade"]["proposal"] == "zncc9"
    left, right = _pair(1, (60, 90))
    sweep = Sweep.disparities(60, 90, np.arange(0.0, 6.0))
    cfg = _config(cascade_fuse=None)
    network = make_cost("2ch", untrained=True, precision="float32")
    assert cascades(cfg, network, planes_sweep(sc)) and not cascades(cfg, network, sweep)
    assert for_search(cfg, sweep).cascade == "none"
    raw, info, _ = sweep_volume(cfg, network, (left, right), sweep)
    assert info is None
    np.testing.assert_array_equal(raw, network.volume(left, right, sweep))
    forced = replace(cfg, cascade="census")
    assert for_search(forced, sweep) is forced and cascades(forced, network, sweep)


def planes_sweep(scene) -> Sweep:
    """A 4-plane sweep of the scene's first two cameras."""
    return Sweep.planes(*scene.cameras[:2], np.geomspace(4.0, 10.0, 4))


def test_cascade_volume_scores_the_band_around_the_proposal(small_scene):
    sc = small_scene
    scored = {}
    for scale in (1.0, 0.5):
        cfg = replace(_config(cascade_band=1, cascade_scale=scale), working_size=200, n_labels=16)
        images, cameras = working_pair(sc.images[:2], sc.cameras[:2], cfg.working_size)
        sweep = Sweep.planes(*cameras, np.geomspace(4.0, 10.0, 16))
        raw, info, _ = cascade_volume(cfg, make_cost("2ch", untrained=True), tuple(images), sweep)
        small = resized_pair(tuple(images), scale)
        small_sweep = Sweep.planes(*(c.scaled(scale) for c in cameras), sweep.labels)
        zncc = make_cost("zncc").volume(*small, small_sweep)
        proposal = optimise(normalise_volume(zncc), small[0], np.arange(16.0), proposal_config(cfg))
        labels = upsampled_labels(proposal[0], *images[0].shape)
        outside = np.isnan(raw)
        np.testing.assert_array_equal(~np.isinf(raw), tile_band_mask(labels, 16, 1) | outside)
        assert info["band_labels"] == 1 and info["proposal"] == "zncc9"
        assert info["proposal_scale"] == scale and info["scored_fraction"] < 0.75
        scored[scale] = ~np.isinf(raw)
    assert (scored[1.0] != scored[0.5]).mean() > 0.01  # the half-size proposal is its own


def test_the_proposal_takes_its_own_cycles_and_zero_is_winner_take_all(small_scene):
    sc = small_scene
    cfg = replace(_config(cascade_band=1), working_size=200, n_labels=16)
    images, cameras = working_pair(sc.images[:2], sc.cameras[:2], cfg.working_size)
    sweep = Sweep.planes(*cameras, np.geomspace(4.0, 10.0, 16))
    zncc = make_cost("zncc")
    volume = normalise_volume(zncc.volume(*images, sweep))
    wta = proposed_labels(replace(cfg, cascade_cycles=0), zncc, tuple(images), sweep)
    np.testing.assert_array_equal(wta, winner_take_all(volume))
    one = proposed_labels(replace(cfg, cascade_cycles=1), zncc, tuple(images), sweep)
    solved = solve(volume, images[0], replace(resolved_mrf(proposal_config(cfg)), iterations=1))
    np.testing.assert_array_equal(one, solved.labels)
    assert (one != wta).mean() > 0.01  # the MRF changed the winner-take-all labels
    _, info, _ = cascade_volume(
        replace(cfg, cascade_cycles=0), make_cost("2ch", untrained=True), tuple(images), sweep
    )
    assert info["proposal_cycles"] == 0
    with pytest.raises(StereoError, match="--cascade-cycles must be 0"):
        _config(cascade_cycles=-1)


def test_upsampled_labels_repeat_each_label_over_the_pixels_it_covers():
    labels = np.array([[0, 1, 2], [3, 4, 5]])
    up = upsampled_labels(labels, 4, 6)
    np.testing.assert_array_equal(up, np.kron(labels, np.ones((2, 2), int)))
    odd = upsampled_labels(labels, 5, 7)  # pixel centres (r + ½)·2/5 and (c + ½)·3/7
    assert odd.shape == (5, 7)
    np.testing.assert_array_equal(odd[:, 0], [0, 0, 3, 3, 3])
    np.testing.assert_array_equal(odd[0], [0, 0, 1, 1, 1, 2, 2])


def test_a_resized_sweep_sends_pixels_where_the_full_one_does(small_scene):
    cameras = small_scene.cameras[:2]
    depths = np.geomspace(4.0, 10.0, 5)
    full = Sweep.planes(*cameras, depths)
    half = full.resized(0.5)
    assert (half.height, half.width) == (round(full.height / 2), round(full.width / 2))
    xy = half.coordinates(3)[::17, ::23].reshape(-1, 2).astype(np.float64)
    ys, xs = np.mgrid[0 : half.height : 17, 0 : half.width : 23]
    at_full = np.c_[2 * xs.ravel() + 0.5, 2 * ys.ravel() + 0.5]  # x = (x' + ½) / ½ − ½
    mapped = apply_homography(plane_homography(*cameras, depths[3]), at_full)
    np.testing.assert_allclose(xy, 0.5 * (mapped + 0.5) - 0.5, atol=1e-3)
    rows = Sweep.disparities(70, 101, np.arange(4.0)).resized(0.5)
    assert (rows.height, rows.width) == (35, 50)  # round(50.5) = 50 (to even), as cv2
    np.testing.assert_array_equal(rows.labels, [0.0, 0.5, 1.0, 1.5])


def test_cascade_refuses_a_two_channel_proposal_and_a_negative_band(small_scene):
    sc = small_scene
    images = (sc.images[0], sc.images[1], sc.cameras[0], sc.cameras[1])
    with pytest.raises(StereoError, match="itself a 2-channel cost"):
        match_calibrated(*images, _config(cascade="2ch"))
    with pytest.raises(StereoError, match="--cascade-band must be at least 0"):
        _config(cascade_band=-1)
    for scale in (0.0, 1.5, float("nan")):
        with pytest.raises(StereoError, match="--cascade-scale must lie in"):
            _config(cascade_scale=scale)


def test_banded_scores_on_a_real_crop_equal_the_full_sweep(shared_data):
    import cv2

    from stereo.geometry.scene import load_scene

    scene = load_scene(shared_data / "strecha" / "fountain-P11")
    left = cv2.resize(scene.image(5), (128, 85), interpolation=cv2.INTER_AREA)
    right = cv2.resize(scene.image(6), (128, 85), interpolation=cv2.INTER_AREA)
    scale = 128 / scene.cameras[5].width
    sweep = Sweep.planes(
        scene.cameras[5].scaled(scale), scene.cameras[6].scaled(scale), np.geomspace(6, 12, 6)
    )
    cost = make_cost("2ch-deep.castle+oxford", score_stride=3, precision="float32")
    full = cost.volume(left, right, sweep)
    needed = band_mask(np.nanargmin(np.nan_to_num(full, nan=np.inf), axis=0), 6, 1)
    part = cost.volume_at(left, right, sweep, needed)
    scored = needed & np.isfinite(full)
    assert scored.mean() > 0.3
    np.testing.assert_allclose(part[scored], full[scored], rtol=1e-5, atol=1e-5)


def test_a_fused_cascade_blends_the_network_with_the_proposal_cost(small_scene):
    sc = small_scene
    cfg = replace(_config(cascade_band=1), working_size=200, n_labels=16)
    images, cameras = working_pair(sc.images[:2], sc.cameras[:2], cfg.working_size)
    sweep = Sweep.planes(*cameras, np.geomspace(4.0, 10.0, 16))
    network = make_cost("2ch", untrained=True)
    alone = cascade_volume(cfg, network, tuple(images), sweep).raw
    fused, info, proposal = cascade_volume(
        replace(cfg, cascade_fuse=0.3), network, tuple(images), sweep
    )
    zncc = normalise_volume(make_cost("zncc").volume(*images, sweep))
    expected = 0.7 * normalise_volume(alone) + 0.3 * zncc
    np.testing.assert_allclose(fused, expected, atol=1e-6)
    assert proposal[0] == "zncc"  # at scale 1 the proposal's volume comes back for reuse
    np.testing.assert_array_equal(proposal[1], zncc)
    assert info["proposal_weight"] == 0.3
    finite = np.isfinite(expected)
    assert np.isfinite(fused).sum() == finite.sum() > 0
    for weight in (-0.1, 1.0, float("nan")):
        with pytest.raises(StereoError, match=r"--cascade-fuse must lie in \[0, 1\)"):
            _config(cascade_fuse=weight)
        with pytest.raises(StereoError, match=r"--cascade-share must lie in \[0, 1\)"):
            _config(cascade_share=weight)
    half = replace(cfg, cascade_fuse=0.3, cascade_scale=0.5)
    fused_half = cascade_volume(half, network, tuple(images), sweep)
    assert fused_half.raw.shape == fused.shape  # the half-size proposal volume is upsampled
    assert fused_half.proposal is None  # not the reference's size: nothing to reuse


def test_where_the_reference_is_flat_the_proposal_cost_alone_decides(small_scene):
    sc = small_scene
    cfg = replace(_config(cascade_band=1, cascade_fuse=0.3), working_size=200, n_labels=16)
    images, cameras = working_pair(sc.images[:2], sc.cameras[:2], cfg.working_size)
    reference = images[0].copy()
    reference[40:100, 60:140] = 128  # a flat patch the network cannot read
    images = (reference, images[1])
    sweep = Sweep.planes(*cameras, np.geomspace(4.0, 10.0, 16))
    network = make_cost("2ch", untrained=True)
    plain = cascade_volume(cfg, network, images, sweep)
    flat_rule = cascade_volume(replace(cfg, cascade_flat_std=2.0), network, images, sweep)
    zncc = plain.proposal[1]
    flat = flat_pixels(reference, 2.0)
    assert flat[45:95, 65:135].all() and 0.1 < flat.mean() < 0.5
    np.testing.assert_array_equal(flat_rule.raw[:, flat], zncc[:, flat])
    np.testing.assert_array_equal(flat_rule.raw[:, ~flat], plain.raw[:, ~flat])
    assert not np.allclose(plain.raw[:, flat], zncc[:, flat], equal_nan=True)
    assert flat_rule.cascade["flat_share"] == round(float(flat.mean()), 4)
    assert plain.cascade["flat_share"] == 0.0  # off in _config
    with pytest.raises(StereoError, match="--cascade-flat-std must be 0"):
        _config(cascade_flat_std=-1.0)


def test_edge_fusion_reuses_the_census_volume_the_cascade_proposed_with(small_scene, monkeypatch):
    """``--cascade census --edge-cost census`` at cascade scale 1: census is computed once,
    and the depth equals that of the run which computes it again for edge fusion."""
    sc = small_scene
    cfg = _config(cascade="census", edge_cost="census", edge_radius=2)
    calls = []
    census_volume = CensusCost.volume

    def counted(self, *args, **kwargs):
        calls.append(self.name)
        return census_volume(self, *args, **kwargs)

    monkeypatch.setattr(CensusCost, "volume", counted)
    torch.manual_seed(0)  # the untrained network's weights
    reused = match_calibrated(sc.images[0], sc.images[1], *sc.cameras[:2], cfg)
    assert len(calls) == 1 and "edge_fusion" in reused.report
    final_volume = pipeline.final_volume
    monkeypatch.setattr(pipeline, "final_volume", lambda *args: final_volume(*args[:6]))
    torch.manual_seed(0)
    again = match_calibrated(sc.images[0], sc.images[1], *sc.cameras[:2], cfg)
    assert len(calls) == 3  # the proposal's, then edge fusion's own
    np.testing.assert_array_equal(reused.depth, again.depth)


def test_the_blend_weight_is_the_runs_else_the_model_cards_else_one_half():
    network = make_cost("2ch", untrained=True)
    unset = _config(cascade_fuse=None)
    assert proposal_weight(unset, network) == DEFAULT_FUSE == 0.5  # no card
    network.model.card = {"cascade_fuse": 0.3}
    assert proposal_weight(unset, network) == 0.3
    assert proposal_weight(_config(cascade_fuse=0.0), network) == 0.0  # the run's own wins
    network.model.card = {"cascade_fuse": 1.5}
    with pytest.raises(StereoError, match=r"gives cascade_fuse 1\.5"):
        proposal_weight(unset, network)


def test_a_volume_upsamples_as_its_label_maps_do():
    volume = np.arange(2 * 2 * 3).reshape(2, 2, 3)
    up = upsampled_labels(volume, 5, 7)
    for label in range(2):
        np.testing.assert_array_equal(up[label], upsampled_labels(volume[label], 5, 7))


def test_block_means_average_each_block_and_skip_nan():
    array = np.arange(15.0).reshape(3, 5)  # 3 x 5: the last block row and column are padded
    np.testing.assert_allclose(
        block_means(array, 2), [[3.0, 5.0, 6.5], [10.5, 12.5, 14.0]]
    )  # e.g. (0 + 1 + 5 + 6) / 4, and the edge block (4 + 4 + 9 + 9) / 4
    volume = np.ones((2, 4, 4), np.float32)
    volume[0, :2, :2] = [[np.nan, 3.0], [5.0, np.nan]]
    volume[1, 2:, 2:] = np.nan
    means = block_means(volume, 2)
    assert means.shape == (2, 2, 2) and means[0, 0, 0] == 4.0  # the NaN left out
    assert np.isnan(means[1, 1, 1]) and np.isfinite(means).sum() == 7


def test_the_pooled_proposal_repeats_each_blocks_label_over_its_pixels():
    """A volume whose cheapest label is constant over 3 x 3 blocks: winner-take-all on the
    block means gives those labels, repeated back over an image that the blocks do not
    divide; one MRF cycle is the MRF's labels on the block means, repeated likewise."""
    rng = np.random.default_rng(0)
    block_labels = rng.integers(0, 6, size=(4, 5))
    h, w = 11, 14  # 4 x 5 blocks of 3 px, the last ones cut short
    truth = np.repeat(np.repeat(block_labels, 3, axis=0), 3, axis=1)[:h, :w]
    volume = np.ones((6, h, w), np.float32)
    np.put_along_axis(volume, truth[None], 0.0, axis=0)
    reference = (rng.random((h, w)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(
        pooled_labels(_config(cascade_cycles=0), volume, reference, 3), truth
    )
    cfg = _config(cascade_cycles=1)
    small = optimise(
        block_means(volume, 3),
        np.rint(block_means(reference, 3)).astype(np.uint8),
        np.arange(6.0),
        proposal_config(cfg),
    )[0]
    expected = np.repeat(np.repeat(small, 3, axis=0), 3, axis=1)[:h, :w]
    np.testing.assert_array_equal(pooled_labels(cfg, volume, reference, 3), expected)
    with pytest.raises(StereoError, match="--cascade-pool must be 1"):
        _config(cascade_pool=0)


def test_a_pooled_proposal_scores_bands_around_its_labels_on_the_full_size_volume(small_scene):
    sc = small_scene
    cfg = replace(_config(cascade_band=1, cascade_pool=2), working_size=200, n_labels=16)
    images, cameras = working_pair(sc.images[:2], sc.cameras[:2], cfg.working_size)
    sweep = Sweep.planes(*cameras, np.geomspace(4.0, 10.0, 16))
    raw, info, reused = cascade_volume(cfg, make_cost("2ch", untrained=True), tuple(images), sweep)
    zncc = normalise_volume(make_cost("zncc").volume(*images, sweep))
    labels = pooled_labels(cfg, zncc, images[0], 2)
    outside = np.isnan(raw)
    np.testing.assert_array_equal(~np.isinf(raw), tile_band_mask(labels, 16, 1) | outside)
    np.testing.assert_array_equal(reused[1], zncc)  # the blend's volume stays full size
    assert info["proposal_pool_px"] == 2
