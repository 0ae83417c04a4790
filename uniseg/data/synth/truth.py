"""The synthetic world's fine truth: what every pixel is, finer than any dataset's labels.

Only a synthetic world has this. ``uniseg data synth`` draws each scene in fine classes and then
writes every dataset's labels from them; it also writes the fine label itself, one 8-bit PNG of
fine ids (positions in ``fine_classes`` of ``planted_relations.yaml``) per label file, at

    WORLD/fine/<dataset>/<the label file's path relative to the dataset root>

a folder that no reader of a real layout looks in. For a union, :class:`FineTruth` says which of
its classes contain each fine class: a union class's *extent* is the set of fine classes that the
union's datasets write as it (``lane marking - general`` holds lane markings, ``road`` holds road,
lane markings, bike lanes, ... because Cityscapes writes those as road). The finest container of
a fine class is the one with the smallest extent (ties: union order). Scores that need the world's
truth (``uniseg eval --fine-truth WORLD``) read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from uniseg.errors import UnisegError

if TYPE_CHECKING:
    from uniseg.unify.union import UnionSpace

FINE_DIR = "fine"


def fine_path(world: str | Path, dataset: str, label: str | Path) -> Path:
    """Where the fine truth of ``label`` (a path relative to the dataset root) lies in ``world``."""
    return Path(world) / FINE_DIR / dataset / Path(label).with_suffix(".png")


def containment(doc: dict, datasets: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """``F x K`` int: how many of ``datasets`` write fine class f as union class k, from the
    planted-relations document ``doc`` (each dataset's class -> {unified, fine} table); f lies in
    k's extent where it is positive."""
    fine = list(doc["fine_classes"])
    f_at = {n: i for i, n in enumerate(fine)}
    k_at = {n: i for i, n in enumerate(classes)}
    out = np.zeros((len(fine), len(classes)), dtype=np.int64)
    for name in datasets:
        if name not in doc["datasets"]:
            raise UnisegError(f"dataset {name!r} is not in the synthetic world (it has {', '.join(doc['datasets'])}); "
                              "the fine truth covers the world's datasets only")
        for entry in doc["datasets"][name]["classes"].values():
            k = k_at.get(entry["unified"])
            if k is None:
                continue  # a class the union leaves out (not one of its names)
            for f in entry["fine"]:
                out[f_at[f], k] += 1
    return out


def finest_of(counts: np.ndarray) -> list[Optional[int]]:
    """Per fine class, the union index of its finest container (:func:`containment` counts): the
    smallest extent; on a tie the class more datasets write it as (IDD's 'rail track', its
    non-drivable fallback, holds only terrain here, as 'terrain' does), then union order. None for
    a fine class no class of the union holds (void everywhere)."""
    counts = np.asarray(counts)
    size = (counts > 0).sum(axis=0)
    out: list[Optional[int]] = []
    for row in counts:
        ks = np.flatnonzero(row > 0)
        out.append(None if ks.size == 0 else int(min(ks, key=lambda k: (size[k], -row[k], k))))
    return out


@dataclass(frozen=True, eq=False)
class FineTruth:
    """The fine truth of a world, read for one union."""

    world: Path
    fine_classes: tuple[str, ...]
    classes: tuple[str, ...]  # the union's, in its order
    counts: np.ndarray  # F x K int (see :func:`containment`)
    union_fingerprint: str
    datasets: tuple[str, ...] = ()  # the union's: the datasets a model of it was trained on

    @property
    def contains(self) -> np.ndarray:
        """``F x K`` bool: fine class f lies in union class k's extent."""
        return self.counts > 0

    @property
    def finest(self) -> list[Optional[int]]:
        return finest_of(self.counts)

    def finest_names(self) -> dict[str, Optional[str]]:
        """Fine class -> the name of its finest union class (None: no union class holds it)."""
        return {f: None if k is None else self.classes[k] for f, k in zip(self.fine_classes, self.finest)}

    def extent(self, cls: str) -> list[str]:
        """The fine classes union class ``cls`` holds."""
        k = self.classes.index(cls)
        return [self.fine_classes[f] for f in np.flatnonzero(self.contains[:, k])]

    def path_for(self, dataset: str, root: str | Path, label: str | Path) -> Path:
        """The fine-truth file of ``label`` (a label file under the dataset ``root``); a one-line
        error when ``label`` is not under ``root`` or its fine truth is missing."""
        try:
            rel = Path(label).resolve().relative_to(Path(root).resolve())
        except ValueError:
            raise UnisegError(f"{label}: not under the dataset root {root}; the fine truth is found by the label's path there") from None
        p = fine_path(self.world, dataset, rel)
        if not p.is_file():
            raise UnisegError(f"{p}: no fine truth for {label}; --fine-truth takes the world folder 'uniseg data synth' wrote "
                              f"{dataset} into (write it again with this uniseg if it predates the fine truth)")
        return p


def fine_truth_for(world: str | Path, union: "UnionSpace") -> FineTruth:
    """The fine truth of the synthetic ``world`` for ``union`` (every dataset of the union must be
    in the world, and the world must have been written with its fine truth)."""
    from uniseg.data.synth import PLANTED_FILE
    from uniseg.data.synth.planted import read_planted

    world = Path(world)
    path = world / PLANTED_FILE
    if not path.is_file():
        raise UnisegError(f"--fine-truth {world}: no {PLANTED_FILE}; give the folder 'uniseg data synth --out' wrote (only a synthetic world has a fine truth)")
    doc = read_planted(path)
    if not (world / FINE_DIR).is_dir() or "fine_truth" not in doc:
        raise UnisegError(f"--fine-truth {world}: written by an older uniseg, without its fine truth; write the world again with 'uniseg data synth'")
    return FineTruth(world, tuple(doc["fine_classes"]), tuple(union.names),
                     containment(doc, union.datasets, union.names), union.fingerprint, tuple(union.datasets))
