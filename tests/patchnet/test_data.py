"""Patch-dataset formats: Brown/UBC round trip, HPatches, compact .npz, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stereo.errors import StereoError
from stereo.patchnet.data import (
    PairSet,
    PatchSet,
    make_pairs,
    read_brown,
    read_brown_pairs,
    read_hpatches,
    write_brown,
)
from stereo.patchnet.data.sources import load_patch_source


def _random_set(n=300, points=90, seed=0):
    rng = np.random.default_rng(seed)
    patches = rng.integers(0, 256, (n, 64, 64), dtype=np.uint8)
    return PatchSet(patches, rng.integers(0, points, n))


def test_brown_round_trip_is_identical(tmp_path):
    original = _random_set()
    pairs = np.array([[0, 1], [5, 299], [42, 42 + 1]])
    write_brown(tmp_path, original, pairs)
    assert sorted(p.name for p in tmp_path.glob("*.bmp")) == ["patches0000.bmp", "patches0001.bmp"]
    back = read_brown(tmp_path)
    assert np.array_equal(back.patches, original.patches)
    assert np.array_equal(back.point_ids, original.point_ids)
    pair_set = read_brown_pairs(tmp_path, back)
    assert np.array_equal(pair_set.a, original.patches[pairs[:, 0]])
    assert np.array_equal(pair_set.b, original.patches[pairs[:, 1]])
    expected = original.point_ids[pairs[:, 0]] == original.point_ids[pairs[:, 1]]
    assert np.array_equal(pair_set.label, expected.astype(int))


def test_brown_sheet_layout_is_row_major(tmp_path):
    patches = np.zeros((20, 64, 64), np.uint8)
    for i in range(20):
        patches[i] = i * 10
    write_brown(tmp_path, PatchSet(patches, np.arange(20)))
    sheet = cv2.imread(str(tmp_path / "patches0000.bmp"), cv2.IMREAD_GRAYSCALE)
    assert sheet.shape == (1024, 1024)
    assert sheet[0, 64 * 3] == 30  # patch 3: first row, fourth column
    assert sheet[64, 64 * 1] == 170  # patch 17: second row, second column


def test_brown_bad_input(tmp_path):
    write_brown(tmp_path, _random_set(n=260))
    (tmp_path / "info.txt").write_text("1 0\n" * 600)  # more than 2 sheets hold
    with pytest.raises(StereoError, match=r"info\.txt lists 600 patches"):
        read_brown(tmp_path)
    (tmp_path / "info.txt").write_text("1 0\n" * 100)  # fits in one sheet but there are two
    with pytest.raises(StereoError, match="lists 100 patches"):
        read_brown(tmp_path)
    (tmp_path / "info.txt").write_text("1 0\n" * 260)
    (tmp_path / "patches0001.bmp").write_bytes(b"BM not really a bitmap")
    with pytest.raises(StereoError, match="corrupt"):
        read_brown(tmp_path)
    with pytest.raises(StereoError, match="does not exist"):
        read_brown(tmp_path / "missing")


def test_hpatches_strips(tmp_path):
    rng = np.random.default_rng(0)
    for seq in ("i_a", "v_b"):
        (tmp_path / seq).mkdir()
        for name in ("ref", "e1", "h1"):
            strip = rng.integers(0, 256, (4 * 65, 65), dtype=np.uint8)
            cv2.imwrite(str(tmp_path / seq / f"{name}.png"), strip)
    patches = read_hpatches(tmp_path)
    assert patches.patches.shape == (24, 64, 64)
    assert patches.n_points == 8 and np.bincount(patches.point_ids).tolist() == [3] * 8
    first = cv2.imread(str(tmp_path / "i_a" / "e1.png"), cv2.IMREAD_GRAYSCALE)[:65]
    expected = cv2.resize(first, (64, 64), interpolation=cv2.INTER_AREA)
    assert np.array_equal(patches.patches[0], expected)  # strips sorted: e1 first, its row 0
    cv2.imwrite(str(tmp_path / "i_a" / "t1.png"), rng.integers(0, 256, (100, 65), np.uint8))
    with pytest.raises(StereoError, match="not a multiple"):
        read_hpatches(tmp_path)


def test_npz_round_trips(tmp_path):
    original = _random_set()
    back = PatchSet.load(original.save(tmp_path / "set.npz"))
    assert np.array_equal(back.patches, original.patches)
    assert np.array_equal(back.point_ids, original.point_ids)
    pairs = make_pairs(original, 100, seed=3)
    assert pairs.label.sum() == 50
    back_pairs = PairSet.load(pairs.save(tmp_path / "pairs.npz"))
    assert np.array_equal(back_pairs.a, pairs.a) and np.array_equal(back_pairs.label, pairs.label)


def test_pair_labels_match_point_ids():
    original = _random_set()
    lookup = {p.tobytes(): i for i, p in zip(original.point_ids, original.patches, strict=True)}
    pairs = make_pairs(original, 200, seed=1)
    same = [
        lookup[a.tobytes()] == lookup[b.tobytes()] for a, b in zip(pairs.a, pairs.b, strict=True)
    ]
    assert np.array_equal(np.array(same, int), pairs.label)


def test_bad_patch_arrays(tmp_path):
    with pytest.raises(StereoError, match="uint8"):
        PatchSet(np.zeros((2, 64, 64), np.float32), [0, 1])
    with pytest.raises(StereoError, match="32x32"):
        PatchSet(np.zeros((2, 32, 32), np.uint8), [0, 1])
    with pytest.raises(StereoError, match="point ids"):
        PatchSet(np.zeros((2, 64, 64), np.uint8), [0, 1, 2])
    np.savez(tmp_path / "x.npz", foo=np.zeros(3))
    with pytest.raises(StereoError, match="lacks a, b, label"):
        PairSet.load(tmp_path / "x.npz")
    with pytest.raises(StereoError, match="does not exist"):
        PatchSet.load(tmp_path / "none.npz")


def test_warped_positives_match_better_than_negatives(warped_small):
    # views of one point are aligned at the centre: their NCC is far above that of negatives
    from stereo.patchnet.baselines import ncc_scores

    pairs = make_pairs(warped_small, 600, seed=0)
    ncc = ncc_scores(pairs.a, pairs.b)
    assert ncc[pairs.label == 1].mean() > ncc[pairs.label == 0].mean() + 0.4


def test_sources_concatenate_with_distinct_ids(tmp_path):
    _random_set(points=10).save(tmp_path / "a.npz")
    joined = load_patch_source(f"{tmp_path / 'a.npz'}+warped:20:2")
    assert len(joined) == 300 + 40 and joined.n_points <= 10 + 20
    assert set(joined.point_ids[:300]).isdisjoint(joined.point_ids[300:])
    with pytest.raises(StereoError, match="not found"):
        load_patch_source("nowhere.bin")


def test_near_misses_survive_save_subset_split_and_concatenation(tmp_path):
    base = _random_set(points=10)  # 300 patches of points 0..9
    n = len(base)
    # two near misses of point 4 and one of point 7, with point ids 100..102 of their own
    patches = np.concatenate([base.patches, base.patches[:3]])
    ids = np.r_[base.point_ids, 100, 101, 102]
    near_of = np.r_[np.full(n, -1), 4, 4, 7]
    with_near = PatchSet(patches, ids, {}, near_of)
    back = PatchSet.load(with_near.save(tmp_path / "near.npz"))
    np.testing.assert_array_equal(back.near_of, near_of)
    assert PatchSet.load(base.save(tmp_path / "plain.npz")).near_of is None
    train, held = back.split_by_points(0.5, seed=1)
    for part in (train, held):  # a near miss stays with the point it misses
        misses = part.near_of[part.near_of >= 0]
        assert np.isin(misses, part.point_ids[part.near_of < 0]).all()
    assert (train.near_of >= 0).sum() + (held.near_of >= 0).sum() == 3
    joined = load_patch_source(f"{tmp_path / 'plain.npz'}+{tmp_path / 'near.npz'}")
    tail_ids = joined.point_ids[n:]
    misses = joined.near_of[joined.near_of >= 0]
    assert misses.size == 3 and np.isin(misses, tail_ids).all()
    assert (joined.point_ids[joined.near_of >= 0] != misses).all()
    with pytest.raises(StereoError, match="near_of"):
        PatchSet(patches, ids, {}, near_of[:-1])


def test_brown_downloader_on_a_local_archive(tmp_path):
    import shutil

    from stereo.patchnet.data.download import download_brown

    original = _random_set(n=100)
    write_brown(tmp_path / "src" / "liberty", original)
    shutil.make_archive(str(tmp_path / "liberty"), "zip", tmp_path / "src")
    url = (tmp_path / "liberty.zip").as_uri()
    folder = download_brown("liberty", tmp_path / "dl", url=url)
    assert np.array_equal(read_brown(folder).patches, original.patches)
    (tmp_path / "liberty.zip").unlink()
    assert download_brown("liberty", tmp_path / "dl", url=url) == folder  # finished: no fetch
    with pytest.raises(StereoError, match="cannot download"):
        download_brown("yosemite", tmp_path / "dl", url=(tmp_path / "none.zip").as_uri())
    with pytest.raises(StereoError, match="valid"):
        download_brown("paris", tmp_path / "dl")


def test_view_ids_round_trip_and_concatenate(tmp_path):
    base = _random_set(points=10)
    views = np.arange(len(base)) % 3
    with_views = PatchSet(base.patches, base.point_ids, {}, None, views)
    back = PatchSet.load(with_views.save(tmp_path / "v.npz"))
    np.testing.assert_array_equal(back.view_ids, views)
    np.testing.assert_array_equal(back.subset(np.arange(5)).view_ids, views[:5])
    joined = load_patch_source(f"{tmp_path / 'v.npz'}+{tmp_path / 'v.npz'}")
    assert set(joined.view_ids[: len(base)]).isdisjoint(joined.view_ids[len(base) :])
