"""What a run reads: the training stream and the validation sets, built from the configuration.

Training draws from ``MultiDatasetSampler`` epoch after epoch; ``KeyStream`` turns that into one
stream of ``(index, seed)`` keys for the whole run, so a run resumed after ``n`` iterations
starts exactly at key ``n x per-process batch`` and sees the very samples, with the very
augmentations, that an uninterrupted run would (the keys fully decide each sample, whatever the
number of DataLoader workers).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from uniseg.engine.config import TrainConfig
from uniseg.errors import UnisegError
from uniseg.labelspaces.registry import Registry
from uniseg.unify.union import EvalMap, UnionSpace


class KeyStream(torch.utils.data.Sampler):
    """Keys ``start, start+1, …, stop-1`` of the concatenation of a sampler's epochs (this rank's share)."""

    def __init__(self, sampler, start: int, stop: int) -> None:
        if len(sampler) < 1:
            raise UnisegError("the training sampler yields no sample for this process")
        self.sampler, self.start, self.stop = sampler, int(start), int(stop)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator:
        per_epoch = len(self.sampler)
        epoch, skip = divmod(self.start, per_epoch)
        left = len(self)
        while left > 0:
            self.sampler.set_epoch(epoch)
            for i, key in enumerate(self.sampler):
                if i < skip:
                    continue
                yield key
                left -= 1
                if left == 0:
                    return
            epoch, skip = epoch + 1, 0


def quiet_worker(_worker_id: int) -> None:
    """DataLoader workers ignore Ctrl-C and SIGTERM: the main process decides when to stop (after
    the current iteration), and a worker killed by the terminal's SIGINT, or by a scheduler's
    SIGTERM to the whole process group, would break that. A worker still ends with its parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def sample_loader(dataset, *, on_bad_file: str = "error", replace: bool = False, indices: Optional[Sequence[int]] = None,
                  workers: int = 0, batch_size: Optional[int] = 1, collate_fn=None, **kwargs) -> torch.utils.data.DataLoader:
    """The DataLoader of every command that reads samples: ``dataset`` behind the bad-file guard of
    :mod:`uniseg.data.faults` (``replace``: a bad training sample gives way to a readable one under
    ``skip``), ``indices`` of it (a ``Subset``), quiet workers. Iterate it through
    ``uniseg.data.faults.SampleStream``, which applies ``on_bad_file`` and stops the workers."""
    from uniseg.data.faults import FaultCollate, GuardedDataset

    data = dataset if isinstance(dataset, GuardedDataset) else GuardedDataset(dataset, on_bad_file, replace=replace)
    if indices is not None:
        data = torch.utils.data.Subset(data, list(indices))
    return torch.utils.data.DataLoader(
        data, batch_size=batch_size, num_workers=workers, collate_fn=FaultCollate(collate_fn, batched=batch_size is not None),
        worker_init_fn=quiet_worker if workers else None, **kwargs,
    )


def parse_weights(weights) -> object:
    """``natural`` / ``balanced`` / a mapping, as ``MultiDatasetSampler`` takes them."""
    return dict(weights) if isinstance(weights, dict) else weights


@dataclass
class TrainInput:
    """The training datasets and the loader over this process's share of the key stream."""

    dataset: object  # MultiDataset
    sampler: object  # MultiDatasetSampler (this rank's shard)
    loader: torch.utils.data.DataLoader
    per_rank_batch: int

    @property
    def epoch_keys(self) -> int:
        return len(self.sampler)


def per_rank_batch(batch_size: int, world_size: int) -> int:
    if batch_size % world_size:
        raise UnisegError(f"--batch-size {batch_size} is the global batch: it must be a multiple of the {world_size} processes")
    return batch_size // world_size


def require_members(config: TrainConfig, union: UnionSpace) -> None:
    """Refuse a training dataset outside ``union`` (it would have no row in the loss's tables)."""
    for d in config.datasets:
        if d.name not in union.datasets:
            raise UnisegError(f"dataset {d.name!r} is not in the union ({', '.join(union.datasets)}); add it to --union or drop it")


def train_datasets(config: TrainConfig, union: UnionSpace, registry: Registry, split: str = "train"):
    """One ``SegDataset`` per configured dataset, with the paper's training transform."""
    from uniseg.data import SegDataset, TrainTransform

    require_members(config, union)
    tf = TrainTransform(crop=tuple(config.crop), short_side=config.short_side or None, scale=tuple(config.scale), flip=config.flip)
    return [SegDataset(spec.name, spec.root, union, split=split, transform=tf, registry=registry) for spec in config.datasets]


def build_train_input(config: TrainConfig, union: UnionSpace, registry: Registry, *, rank: int, world_size: int,
                      start_key: int, pin_memory: bool = False) -> TrainInput:
    """The training loader for iterations ``start_key / per-rank batch`` to the end of the run."""
    from uniseg.data import MultiDataset, MultiDatasetSampler

    from uniseg.data.faults import GuardedDataset

    b = per_rank_batch(config.batch_size, world_size)
    # each dataset guarded on its own: a bad sample gives way to one of the same dataset (policy skip)
    multi = MultiDataset([GuardedDataset(ds, config.on_bad_file, replace=True) for ds in train_datasets(config, union, registry)])
    check_batch_fits_data(config.batch_size, multi)
    sampler = MultiDatasetSampler(multi, weights=parse_weights(config.dataset_weights), seed=config.seed,
                                  num_replicas=world_size, rank=rank)
    stream = KeyStream(sampler, start_key, config.iterations * b)
    loader = sample_loader(
        multi, workers=config.workers, batch_size=b, sampler=stream, pin_memory=pin_memory, drop_last=False,
        persistent_workers=False, prefetch_factor=4 if config.workers else None,
    )
    return TrainInput(multi, sampler, loader, b)


def check_batch_fits_data(batch_size: int, multi) -> None:
    """Refuse a global batch larger than the training set: every batch would hold each image
    several times over, and its memory grows with it (checked before any batch is allocated)."""
    total = len(multi)
    if batch_size > total:
        sizes = ", ".join(f"{n} {k}" for n, k in zip(multi.names, multi.sizes))
        raise UnisegError(f"--batch-size {batch_size} is larger than the training set ({total} images: {sizes}); "
                          f"use --batch-size {total} or less")


# -- evaluation sets ---------------------------------------------------------------------------


@dataclass
class EvalSet:
    """A dataset scored in its own label space: the reader, the channels to read and the class map."""

    name: str
    split: str
    dataset: object  # SegDataset yielding dataset class ids (or unified ids, converted by ``label_map``)
    eval_map: EvalMap
    class_names: list[str]
    label_map: Optional[torch.Tensor] = None  # 256 entries: unified id -> dataset class (cache roots)

    def scored(self) -> list[int]:
        return [int(c) for c in self.eval_map.classes]


def splits_of(space, root) -> dict[str, bool]:
    """``{split: labelled}`` found under a raw root or a prepare cache."""
    from uniseg.data import cache as cache_mod
    from uniseg.data.layout import discover

    if cache_mod.is_cache(root):
        doc = cache_mod.read_manifest(root)
        return {n: True for n, s in doc["splits"].items() if s.get("complete")}
    found = discover(space, root)
    return {n: s.labelled for n, s in found.splits.items()}


def check_labelled_splits(name: str, root, space, splits: Sequence[str]) -> None:
    """Refuse a split that ``root`` does not hold with labels: the one message of every command
    that reads labelled splits (eval, relations mine)."""
    labelled = splits_of(space, root)
    for s in splits:
        if not labelled.get(s):
            found = ", ".join(n for n, lab in labelled.items() if lab) or "none"
            raise UnisegError(f"{name}={root}: no labelled split {s!r} (labelled splits there: {found}); choose one with --split")


def default_split(space, root) -> list[str]:
    """``val`` when the root has a labelled one, else every labelled split (unseen test sets)."""
    splits = splits_of(space, root)
    if splits.get("val"):
        return ["val"]
    labelled = [n for n, lab in splits.items() if lab]
    if not labelled:
        raise UnisegError(f"{root}: no labelled split to evaluate (found: {', '.join(splits) or 'none'})")
    return labelled


def eval_set(name: str, root, union: UnionSpace, registry: Registry, split: Sequence[str] | str | None = None,
             *, allow_cache: bool = True) -> EvalSet:
    """A dataset (member of the union or unseen) read for scoring at its labels' native resolution.

    ``split``: the splits to score (default: ``val``, else every labelled split). A prepare cache
    (resized labels, already unified) serves validation during training; ``allow_cache=False``
    refuses one, as ``uniseg eval`` does, which scores the raw dataset.
    """
    from uniseg.data import SegDataset
    from uniseg.data import cache as cache_mod

    space = registry.get(name)
    union.check_member(space)
    is_cache = cache_mod.is_cache(root)
    if is_cache and not allow_cache:
        raise UnisegError(f"{name}={root}: a 'uniseg data prepare' cache (labels resized, already unified); "
                          "scores are taken on the raw dataset at its labels' native resolution: give its raw root")
    splits = default_split(space, root) if split is None else ([split] if isinstance(split, str) else list(split))
    if split is not None:
        check_labelled_splits(name, root, space, splits)
    emap = union.eval_map(space)
    if emap.channels.size == 0:
        raise UnisegError(f"{name}: none of its classes is in the union ({union.fingerprint}); nothing to score")
    label_map = None
    if is_cache:
        if name not in union.datasets:
            raise UnisegError(f"{root}: a prepare cache of {name!r} is for another union; evaluate the raw dataset")
        counts = np.bincount(emap.channels, minlength=union.num_classes)
        if counts.max() > 1:
            raise UnisegError(f"{root}: {name} merges classes in the union; evaluate the raw dataset instead of its cache")
        lut = torch.full((256,), 255, dtype=torch.int64)
        lut[torch.from_numpy(emap.channels)] = torch.from_numpy(emap.classes)
        label_map = lut
        ds = SegDataset(name, root, union, split=splits, registry=registry)
    else:
        ds = SegDataset(name, root, union, split=splits, target="dataset", registry=registry)
    return EvalSet(name, "+".join(splits), ds, emap, [c.name for c in space.classes], label_map)
