"""A torch ``Dataset`` of one label space in a union, read from a raw root or a prepare cache.

Each item is a dict (the record the trainer and evaluator rely on)::

    image          float32 tensor 3 x H x W, ImageNet-normalised (after the transform)
    label          int64 tensor H x W: unified ids (0..K-1) with 255 = ignore (void, unknown
                   raw values, classes the union lacks); all 255 for unlabelled splits.
                   With ``target="dataset"``: the dataset's own class indices (for EvalMap).
    dataset_index  int: the dataset's position in ``union.datasets`` (the row of
                   ``union.null_mask()``), -1 for a dataset outside the union (unseen evaluation)
    path           str: the image file read (the cached copy when reading a cache)
    index          int: the item's index in this dataset

Default transform: ``EvalTransform()`` (native size, normalised). Images of labelled splits
that have no label file are left out (``missing_labels`` counts them, ``unlabelled`` names them;
``uniseg train`` and ``uniseg eval`` say so in their reports, ``uniseg data check`` lists them).

The same constructor reads a raw dataset root (layout found by ``uniseg.data.layout``, labels
decoded and mapped through the union's lookup table on the fly) or a folder written by
``uniseg data prepare`` (resized images and unified-id labels, refused if made for another
union). The dataset holds only paths and small tables: it pickles cheaply into DataLoader
workers and keeps no file open between items.

Keys: ``dataset[i]`` or ``dataset[(i, seed)]``. The multi-dataset sampler yields ``(index,
seed)`` pairs so random augmentation depends only on the run's seed, never on worker count or
order; a plain ``int`` draws the sample seed from torch's RNG (seeded per DataLoader worker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from uniseg.errors import UnisegError
from uniseg.labelspaces.registry import Registry, default_registry
from uniseg.labelspaces.schema import Encoding, LabelSpace, pattern_example
from uniseg.unify.lut import LookupTable
from uniseg.unify.union import UnionSpace

Target = Literal["unified", "dataset"]
Transform = Callable[..., tuple]


def sample_key(key) -> tuple[int, int | None]:
    """``i`` or ``(i, seed)`` -> ``(i, seed or None)``."""
    if isinstance(key, (tuple, list)):
        if len(key) != 2:
            raise TypeError(f"dataset key must be an index or (index, seed), got {key!r}")
        return int(key[0]), int(key[1])
    return int(key), None


def wrap_index(index: int, length: int) -> int:
    """A Python-style index (negative counts from the end) into ``length`` items; IndexError outside."""
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for {length} items")
    return index


def rng_for(seed: int | None) -> np.random.Generator:
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    return np.random.default_rng(seed)


@dataclass
class _Items:
    """What a root holds for the dataset: ``(image, label or None)`` paths and how to read labels."""

    pairs: list[tuple[str, str | None]]
    source: str  # 'raw' | 'cache'
    format: str  # label file format: 'png' | 'polygons' | 'unified' (a cache)
    lut: LookupTable | None = None  # raw value -> target id (None: a cache's labels are unified ids)
    encoding: Encoding | None = None  # for polygon files, whose labels are names
    layout: str | None = None
    labels_source: str | None = None
    missing_labels: int = 0
    unlabelled: list[str] = field(default_factory=list)  # root-relative images of labelled splits without a label


def _cache_items(root: Path, union: UnionSpace, space: LabelSpace, split, target: Target) -> _Items:
    """The files of a ``uniseg data prepare`` cache (unified ids only)."""
    from uniseg.data.cache import cache_items

    if target != "unified":
        raise UnisegError(f"{root}: a prepare cache holds unified ids only; read the raw root for target='dataset'")
    return _Items(cache_items(root, union, space, split), source="cache", format="unified")


def _raw_items(root: Path, union: UnionSpace, space: LabelSpace, split, target: Target,
               layout: str | None, labels: str | None) -> _Items:
    """The pairs of a raw root in its layout, with the table that maps its label values to ``target`` ids.

    A labelled split without any label file is refused; images of labelled splits that lack a
    label are left out and counted (``uniseg data check`` lists them).
    """
    from uniseg.data.layout import discover
    from uniseg.unify.lut import build_dataset_lut, build_lut

    found = discover(space, root, split=split, layout=layout, labels=labels)
    files = found.split_files(split)
    pairs = [(str(root / r.image), None if r.label is None else str(root / r.label)) for sf in files for r in sf.samples]
    if found.source is not None and not any(lab for _, lab in pairs) and any(sf.labelled for sf in files):
        pattern = pattern_example(found.source.pattern.replace("{split}", files[0].dir))
        raise UnisegError(
            f"{root}: no {space.title} labels for split {', '.join(sf.split for sf in files)} "
            f"(expected {pattern}); run 'uniseg data check {space.name} {root}'"
        )
    enc = space.encoding(found.encoding)
    lut = build_lut(union, space, enc) if target == "unified" else build_dataset_lut(space, enc)
    return _Items(
        pairs, source="raw", format=found.format, lut=lut, encoding=enc if found.format == "polygons" else None,
        layout=found.layout.name, labels_source=None if found.source is None else found.source.name,
        missing_labels=sum(len(sf.missing_labels) for sf in files),
        unlabelled=[p for sf in files for p in sf.missing_labels],
    )


class SegDataset(Dataset):
    """One dataset of a union: ``(image, label in unified ids, dataset index, path)`` items."""

    def __init__(
        self,
        dataset: str | LabelSpace,
        root: str | os.PathLike,
        union: UnionSpace,
        *,
        split: str | Sequence[str] | None = "train",
        transform: Transform | None = None,
        layout: str | None = None,
        labels: str | None = None,
        target: Target = "unified",
        registry: Registry | None = None,
        dataset_index: int | None = None,
    ) -> None:
        from uniseg.data.cache import is_cache

        if not isinstance(union, UnionSpace):
            raise TypeError(f"union must be a UnionSpace (uniseg.unify.artifact.open_union), got {type(union).__name__}")
        if target not in ("unified", "dataset"):
            raise UnisegError(f"target must be 'unified' or 'dataset', got {target!r}")
        space = dataset if isinstance(dataset, LabelSpace) else (registry or default_registry()).get(dataset)
        union.check_member(space)
        self.name = space.name
        self.root = Path(root)
        self.union_fingerprint = union.fingerprint
        self.num_classes = union.num_classes if target == "unified" else space.num_classes
        self.target = target
        self.transform = transform
        if dataset_index is None:
            dataset_index = union.datasets.index(space.name) if space.name in union.datasets else -1
        self.dataset_index = dataset_index
        if is_cache(self.root):
            items = _cache_items(self.root, union, space, split, target)
        else:
            items = _raw_items(self.root, union, space, split, target, layout, labels)
        if not items.pairs:
            raise UnisegError(f"{self.root}: no {space.title} images for split {split!r}")
        self.source, self.format, self.lut, self._encoding = items.source, items.format, items.lut, items.encoding
        self.layout, self.labels_source, self.missing_labels = items.layout, items.labels_source, items.missing_labels
        self.unlabelled = list(items.unlabelled)  # left out: images without a label (reports name them)
        self.images = [a for a, _ in items.pairs]
        self.labels = [b for _, b in items.pairs]

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"SegDataset({self.name!r}, {str(self.root)!r}, {len(self)} items from {self.source}, union {self.union_fingerprint})"

    def load(self, index: int):
        """The raw pair as Pillow images: ``(RGB image, L label of target ids or None)``.

        Labels are read by ``uniseg.unify.apply.read_unified``, as ``labels remap`` and ``data
        prepare`` read them (a file they refuse raises ``UnisegError`` here too).
        """
        from uniseg.labelfiles import open_image, photo_rgb
        from uniseg.unify.apply import read_unified

        img, _ = photo_rgb(open_image(self.images[index]), self.images[index])  # 16-bit / float: scaled, not clipped
        path = self.labels[index]
        if path is None:
            return img, None
        if self.lut is None:  # cache: already unified ids
            label = open_image(path, "label")
            if label.mode != "L":
                raise UnisegError(f"{path}: {label.mode} image in a prepare cache, expected L unified ids (re-run prepare)")
        else:
            label = read_unified(path, self.lut, self.format, self._encoding).image
        if label.size != img.size:
            raise UnisegError(
                f"{path}: label is {label.width}x{label.height} but its image {self.images[index]} is "
                f"{img.width}x{img.height}; fix or remove the pair"
            )
        return img, label

    def __getitem__(self, key) -> dict:
        from uniseg.data.transforms import EvalTransform

        index, seed = sample_key(key)
        index = wrap_index(index, len(self))
        img, label = self.load(index)
        transform = self.transform or EvalTransform()
        image_t, label_t = transform(img, label, rng_for(seed))
        return {
            "image": image_t,
            "label": label_t,
            "dataset_index": self.dataset_index,
            "path": self.images[index],
            "index": index,
        }
