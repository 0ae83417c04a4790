"""Multi-dataset training input: a concatenation that keeps each sample's dataset, and a sampler.

``MultiDataset`` concatenates ``SegDataset``s as ``torch.utils.data.ConcatDataset`` does (each
item keeps its ``dataset_index``) and also takes ``(index, seed)`` keys.

``MultiDatasetSampler`` draws one epoch of indices into it:

* ``weights="natural"`` (default): every sample exactly once per epoch, shuffled — datasets
  appear in their natural proportions;
* ``weights="balanced"``: each dataset gets the same share of the epoch;
* explicit weights (a sequence, one per dataset, or a ``{name: weight}`` mapping): shares
  proportional to them.

With weights, dataset *d* gets ``round(num_samples * w_d)`` draws (largest remainders, so they
sum to ``num_samples``), taken from fresh permutations of that dataset (without replacement
until it is exhausted, then a new permutation), then the whole epoch is shuffled.

Distributed semantics as ``torch.utils.data.DistributedSampler``: ``num_replicas`` / ``rank``
(default: from ``torch.distributed`` when initialised, else 1 / 0), ``set_epoch(e)`` before each
epoch; the epoch order depends only on ``(seed, epoch)``, is padded by wrapping (or truncated
with ``drop_last``) to a multiple of ``num_replicas``, and rank *r* takes positions ``r, r+R, …``,
so ranks see disjoint shards of equal length.

Each yielded item is ``SampleKey(index, seed)``: the per-sample seed drives augmentation, so a
run is reproducible for a seed whatever the number of DataLoader workers. ``keys=False`` yields
plain ints instead.
"""

from __future__ import annotations

import bisect
from typing import Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import ConcatDataset, Sampler

from uniseg.data.dataset import sample_key, wrap_index
from uniseg.errors import UnisegError


class SampleKey(NamedTuple):
    index: int
    seed: int


class MultiDataset(ConcatDataset):
    """``torch.utils.data.ConcatDataset`` whose keys may carry a seed: ``ds[i]`` / ``ds[(i, seed)]``
    return the member's item unchanged (its ``dataset_index`` included); ``locate(i)`` gives
    ``(member, local index)``; ``names``, ``sizes`` and ``offsets`` describe the members."""

    def __init__(self, datasets: Sequence) -> None:
        if not datasets:
            raise UnisegError("MultiDataset needs at least one dataset")
        empty = next((d for d in datasets if len(d) == 0), None)
        if empty is not None:
            raise UnisegError(f"dataset {getattr(empty, 'name', list(datasets).index(empty))!r} is empty")
        super().__init__(datasets)

    @property
    def names(self) -> list[str]:
        return [str(getattr(d, "name", i)) for i, d in enumerate(self.datasets)]

    @property
    def sizes(self) -> list[int]:
        return [len(d) for d in self.datasets]

    @property
    def offsets(self) -> list[int]:
        """Global index of each member's first item, then the total: ``[0, n0, n0 + n1, ...]``."""
        return [0, *self.cumulative_sizes]

    def locate(self, index: int) -> tuple[int, int]:
        index = wrap_index(index, len(self))
        d = bisect.bisect_right(self.cumulative_sizes, index)
        return d, index - (self.cumulative_sizes[d - 1] if d else 0)

    def __getitem__(self, key):
        index, seed = sample_key(key)
        d, local = self.locate(index)
        return self.datasets[d][local if seed is None else (local, seed)]


def resolve_weights(weights, sizes: Sequence[int], names: Sequence[str] | None = None) -> np.ndarray | None:
    """``"natural"`` -> None (plain shuffle); else normalised per-dataset shares."""
    n = len(sizes)
    if weights is None or (isinstance(weights, str) and weights == "natural"):
        return None
    if isinstance(weights, str):
        if weights == "balanced":
            return np.full(n, 1.0 / n)
        raise UnisegError(f"weights must be 'natural', 'balanced' or one number per dataset, got {weights!r}")
    if isinstance(weights, Mapping):
        names = list(names or [])
        unknown = [k for k in weights if k not in names]
        if unknown:
            raise UnisegError(f"weight for unknown dataset {unknown[0]!r} (datasets: {', '.join(names)})")
        w = np.array([float(weights.get(k, 0.0)) for k in names])
    else:
        w = np.asarray(list(weights), dtype=float)
        if w.shape != (n,):
            raise UnisegError(f"{len(w)} weights for {n} datasets; give one weight per dataset")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise UnisegError(f"weights must be finite, >= 0 and not all 0, got {w.tolist()}")
    return w / w.sum()


def quotas(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer draws per dataset summing to ``total`` (largest remainder rounding)."""
    exact = shares * total
    base = np.floor(exact).astype(np.int64)
    rest = int(total - base.sum())
    if rest > 0:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:rest]] += 1
    return base


class MultiDatasetSampler(Sampler):
    """Shuffled, optionally weighted, sharded sampler over a ``MultiDataset`` (see module doc)."""

    def __init__(
        self,
        dataset,  # MultiDataset | one dataset | list of sizes
        *,
        weights="natural",
        num_samples: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        keys: bool = True,
    ) -> None:
        if isinstance(dataset, MultiDataset):
            sizes, names = list(dataset.sizes), dataset.names
        elif isinstance(dataset, (list, tuple)) and all(isinstance(n, (int, np.integer)) for n in dataset):
            sizes, names = [int(n) for n in dataset], None
        elif hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):  # one dataset
            sizes, names = [len(dataset)], [str(getattr(dataset, "name", 0))]
        else:
            raise UnisegError(f"MultiDatasetSampler needs a MultiDataset, a dataset or a list of sizes, got {type(dataset).__name__}")
        if not sizes or any(n <= 0 for n in sizes):
            raise UnisegError(f"every dataset needs at least one sample, got sizes {sizes}")
        if num_replicas is None or rank is None:
            r, k = _dist_defaults()
            num_replicas = r if num_replicas is None else num_replicas
            rank = k if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise UnisegError(f"rank {rank} is not in [0, {num_replicas}) replicas")
        self.sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.shares = resolve_weights(weights, sizes, names)
        if not shuffle and self.shares is not None:
            raise UnisegError("weighted sampling draws at random; use shuffle=True with weights other than 'natural'")
        self.num_samples_total = int(num_samples) if num_samples is not None else int(sum(sizes))
        if self.num_samples_total < 1:
            raise UnisegError(f"num_samples must be >= 1, got {num_samples}")
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.keys = shuffle, int(seed), drop_last, keys
        self.epoch = 0
        if drop_last:
            self.per_rank = self.num_samples_total // self.num_replicas
            if self.per_rank == 0:
                raise UnisegError(f"{self.num_samples_total} samples cannot fill {self.num_replicas} replicas with drop_last")
        else:
            self.per_rank = -(-self.num_samples_total // self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.per_rank

    def epoch_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole epoch (all ranks, before sharding): global indices and per-sample seeds."""
        rng = np.random.default_rng([self.seed, self.epoch])
        total = self.num_samples_total
        n = int(self.offsets[-1])
        if self.shares is None:
            if self.shuffle:
                reps = -(-total // n)
                order = np.concatenate([rng.permutation(n) for _ in range(reps)])[:total]
            else:
                order = np.resize(np.arange(n), total)
        else:
            parts = []
            for d, q in enumerate(quotas(total, self.shares)):
                if q == 0:
                    continue
                size = self.sizes[d]
                reps = -(-int(q) // size)
                local = np.concatenate([rng.permutation(size) for _ in range(reps)])[:q]
                parts.append(local + self.offsets[d])
            order = rng.permutation(np.concatenate(parts))
        seeds = rng.integers(0, 2**62, size=order.size, dtype=np.int64)
        return order.astype(np.int64), seeds

    def __iter__(self) -> Iterator:
        order, seeds = self.epoch_indices()
        size = self.per_rank * self.num_replicas
        if size > order.size:  # pad by wrapping, as DistributedSampler does
            pad = np.resize(np.arange(order.size), size - order.size)
            order = np.concatenate([order, order[pad]])
            seeds = np.concatenate([seeds, seeds[pad]])
        order, seeds = order[:size], seeds[:size]
        mine = slice(self.rank, size, self.num_replicas)
        if self.keys:
            for i, s in zip(order[mine].tolist(), seeds[mine].tolist()):
                yield SampleKey(i, s)
        else:
            yield from order[mine].tolist()

    def dataset_of(self, index: int) -> int:
        return int(np.searchsorted(self.offsets, index, side="right") - 1)


def _dist_defaults() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0
