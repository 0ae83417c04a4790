"""Multi-dataset concatenation and sampler: shuffling, weighting, sharding, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

import fixtures_layouts as fx
from uniseg.data.sampler import MultiDataset, MultiDatasetSampler, SampleKey, quotas, resolve_weights
from uniseg.errors import UnisegError


def _indices(sampler) -> list[int]:
    return [k.index if isinstance(k, SampleKey) else k for k in sampler]


def test_natural_epoch_is_a_shuffled_permutation():
    s = MultiDatasetSampler([5, 20, 7], seed=3)
    e0 = _indices(s)
    assert sorted(e0) == list(range(32))
    assert e0 != list(range(32))
    s.set_epoch(1)
    e1 = _indices(s)
    assert sorted(e1) == list(range(32)) and e1 != e0
    s.set_epoch(0)
    assert _indices(s) == e0  # depends only on (seed, epoch)
    assert _indices(MultiDatasetSampler([5, 20, 7], seed=4)) != e0


def test_datasets_are_interleaved_not_blocked():
    s = MultiDatasetSampler([50, 50], seed=0)
    first_half = _indices(s)[:50]
    from_second = sum(1 for i in first_half if i >= 50)
    assert 10 < from_second < 40


def test_no_shuffle_is_sequential():
    assert _indices(MultiDatasetSampler([3, 2], shuffle=False)) == [0, 1, 2, 3, 4]


def test_balanced_weights_give_equal_shares_without_replacement():
    s = MultiDatasetSampler([100, 10], weights="balanced", num_samples=200, seed=1)
    idx = _indices(s)
    assert len(idx) == 200
    per = Counter(0 if i < 100 else 1 for i in idx)
    assert per == {0: 100, 1: 100}
    small = Counter(i for i in idx if i >= 100)
    assert set(small.values()) == {10}  # each of the 10 samples exactly 10 times (full permutations)
    big = Counter(i for i in idx if i < 100)
    assert set(big.values()) == {1}


def test_explicit_weights_and_names():
    s = MultiDatasetSampler([40, 40, 40], weights=[3, 1, 0], num_samples=100, seed=2)
    per = Counter(int(np.searchsorted([0, 40, 80, 120], i, side="right") - 1) for i in _indices(s))
    assert per == {0: 75, 1: 25}
    assert s.dataset_of(85) == 2


def test_weights_by_dataset_name(tmp_path, registry):
    from uniseg.data import SegDataset
    from uniseg.unify.artifact import open_union

    union, _ = open_union(["kitti", "wilddash"], registry)
    fx.make_kitti(tmp_path / "k", n=4, test=0)
    fx.make_wilddash(tmp_path / "w")
    multi = MultiDataset([SegDataset("kitti", tmp_path / "k", union, split="train"), SegDataset("wilddash", tmp_path / "w", union, split="val")])
    assert multi.names == ["kitti", "wilddash"] and multi.sizes == [4, 3] and len(multi) == 7
    s = MultiDatasetSampler(multi, weights={"wilddash": 1.0}, num_samples=9, seed=0)
    assert all(i >= 4 for i in _indices(s))
    with pytest.raises(UnisegError, match="unknown dataset 'cityscapes'"):
        MultiDatasetSampler(multi, weights={"cityscapes": 1.0})
    # items keep their dataset index and the sampler's seed reaches the dataset
    item = multi[SampleKey(5, 123)]
    assert item["dataset_index"] == 1 and item["index"] == 1
    assert multi[0]["dataset_index"] == 0


def test_quotas_sum_exactly():
    for total in (1, 7, 100, 1001):
        q = quotas(total, np.array([0.5, 0.3, 0.2]))
        assert q.sum() == total
    assert quotas(10, np.array([1 / 3, 1 / 3, 1 / 3])).tolist() in ([4, 3, 3], [3, 4, 3], [3, 3, 4])


@pytest.mark.parametrize("replicas", [2, 3, 4])
@pytest.mark.parametrize("weights", ["natural", "balanced"])
def test_shards_are_disjoint_equal_and_cover_the_epoch(replicas, weights):
    sizes = [13, 4]
    shards = []
    for rank in range(replicas):
        s = MultiDatasetSampler(sizes, weights=weights, num_replicas=replicas, rank=rank, seed=5)
        s.set_epoch(2)
        keys = list(s)
        assert len(keys) == len(s)
        shards.append(keys)
    assert len({len(k) for k in shards}) == 1  # equal length on every rank
    full = MultiDatasetSampler(sizes, weights=weights, seed=5)  # one replica sees the whole epoch
    full.set_epoch(2)
    epoch = list(full)
    total = len(shards[0]) * replicas
    padded = list(epoch)
    while len(padded) < total:  # DistributedSampler pads by wrapping around
        padded += padded[: total - len(padded)]
    for rank in range(replicas):
        assert shards[rank] == padded[rank::replicas]  # rank r: positions r, r+R, ...
    if weights == "natural":
        assert sorted(k.index for k in epoch) == list(range(sum(sizes)))


def test_sharding_without_padding_is_exactly_disjoint():
    shards = [set(_indices(MultiDatasetSampler([6, 6], num_replicas=4, rank=r, seed=0))) for r in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert not shards[a] & shards[b]
    assert set().union(*shards) == set(range(12))


def test_drop_last_truncates():
    ss = [MultiDatasetSampler([7], num_replicas=3, rank=r, drop_last=True) for r in range(3)]
    assert [len(s) for s in ss] == [2, 2, 2]
    got = [i for s in ss for i in _indices(s)]
    assert len(got) == 6 and len(set(got)) == 6


def test_keys_carry_per_sample_seeds():
    s = MultiDatasetSampler([10], seed=0)
    keys = list(s)
    assert all(isinstance(k, SampleKey) for k in keys)
    assert len({k.seed for k in keys}) == 10
    assert _indices(MultiDatasetSampler([10], seed=0, keys=False)) == [k.index for k in keys]


def test_invalid_configurations():
    with pytest.raises(UnisegError, match="2 weights for 3 datasets"):
        MultiDatasetSampler([1, 2, 3], weights=[1, 2])
    with pytest.raises(UnisegError, match=">= 0"):
        MultiDatasetSampler([1, 2], weights=[1, -1])
    with pytest.raises(UnisegError, match="rank 2"):
        MultiDatasetSampler([4], num_replicas=2, rank=2)
    with pytest.raises(UnisegError, match="weights must be"):
        resolve_weights("uniform", [1, 2])
    with pytest.raises(UnisegError, match="at least one sample"):
        MultiDatasetSampler([3, 0])


def test_dataloader_is_reproducible_whatever_the_workers(tmp_path, registry):
    from uniseg.data import SegDataset, TrainTransform
    from uniseg.unify.artifact import open_union

    union, _ = open_union(["kitti", "camvid-segnet"], registry)
    fx.make_kitti(tmp_path / "k", n=3, test=0)
    fx.make_camvid_segnet(tmp_path / "s", counts={"train": 3})
    t = TrainTransform(crop=24, short_side=32)
    multi = MultiDataset(
        [SegDataset("kitti", tmp_path / "k", union, split="train", transform=t), SegDataset("camvid-segnet", tmp_path / "s", union, split="train", transform=t)]
    )

    def run(workers: int):
        s = MultiDatasetSampler(multi, weights="balanced", seed=9)
        s.set_epoch(1)
        dl = torch.utils.data.DataLoader(multi, batch_size=2, sampler=s, num_workers=workers)
        return [(b["image"], b["label"], b["dataset_index"]) for b in dl]

    a, b = run(0), run(2)
    assert len(a) == len(b) == 3
    for (xa, ya, da), (xb, yb, db) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(da, db)
    assert {int(d) for _, _, ds in a for d in ds} == {0, 1}


def test_sampler_over_a_single_dataset(tmp_path, registry):
    from uniseg.data import SegDataset
    from uniseg.unify.artifact import open_union

    union, _ = open_union(["kitti"], registry)
    fx.make_kitti(tmp_path, n=3, test=0)
    ds = SegDataset("kitti", tmp_path, union, split="train")
    keys = list(MultiDatasetSampler(ds, seed=0))
    assert sorted(k.index for k in keys) == [0, 1, 2]
    assert ds[keys[0]]["index"] == keys[0].index


class _Keys(torch.utils.data.Dataset):
    """A member that returns the key it was given."""

    def __init__(self, name: str, n: int) -> None:
        self.name, self.n = name, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key):
        return (self.name, key)


def test_multidataset_is_a_concat_dataset_that_forwards_seeds():
    multi = MultiDataset([_Keys("a", 3), _Keys("b", 1), _Keys("c", 2)])
    assert isinstance(multi, torch.utils.data.ConcatDataset)
    assert multi.names == ["a", "b", "c"] and multi.sizes == [3, 1, 2] and multi.offsets == [0, 3, 4, 6] and len(multi) == 6
    assert [multi.locate(i) for i in range(6)] == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1)]
    assert multi.locate(-1) == (2, 1) and multi.locate(-6) == (0, 0)
    assert multi[4] == ("c", 0) and multi[SampleKey(3, 77)] == ("b", (0, 77)) and multi[(5, 1)] == ("c", (1, 1))
    for bad in (6, -7):
        with pytest.raises(IndexError, match="out of range for 6 items"):
            multi[bad]
    with pytest.raises(UnisegError, match="dataset 'b' is empty"):
        MultiDataset([_Keys("a", 2), _Keys("b", 0)])
    with pytest.raises(UnisegError, match="at least one dataset"):
        MultiDataset([])
