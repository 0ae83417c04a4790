"""The unified label space: the set union of datasets' classes, merged on equal unified names.

Classes are ordered alphabetically by unified name, so the union is the same whatever order the
datasets come in; the dataset order only fixes each dataset's index (batches carry it). The
fingerprint hashes the ordered classes and their members; every artifact records it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np

from uniseg.errors import UnisegError
from uniseg.labelspaces.schema import IGNORE, RGB, LabelSpace
from uniseg.names import first_duplicate

MAX_CLASSES = 255  # unified ids are uint8 with 255 = ignore


@dataclass(frozen=True)
class UnifiedClass:
    """One class of the union and the dataset classes (official names) merged into it."""

    index: int
    name: str
    colour: RGB
    members: Mapping[str, tuple[str, ...]]  # dataset -> official names, datasets in union order


@dataclass(frozen=True)
class EvalMap:
    """How to score a model over the union on one dataset (seen or unseen).

    Read ``channels`` of the K unified logits, take the argmax over those channels only; the
    winner at position j scores as the dataset's class ``classes[j]``. Dataset classes whose
    unified name is not in the union are listed in ``missing`` and ignored in the score.
    """

    dataset: str
    channels: np.ndarray  # int64 [M] unified indices
    classes: np.ndarray  # int64 [M] dataset class indices (training order)
    missing: tuple[str, ...]


@dataclass(frozen=True)
class UnionSpace:
    """The unified classes plus the datasets (in training order) they were built from."""

    datasets: tuple[str, ...]
    classes: tuple[UnifiedClass, ...]
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({c.name: c.index for c in self.classes})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def palette(self) -> np.ndarray:
        """``K x 3`` uint8 colours, unique per class."""
        return np.array([c.colour for c in self.classes], dtype=np.uint8).reshape(-1, 3)

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint_of(self.classes)

    def index_of(self, name: str) -> int | None:
        return self._index.get(name)

    def dataset_index(self, dataset: str) -> int:
        try:
            return self.datasets.index(dataset)
        except ValueError:
            raise UnisegError(
                f"dataset {dataset!r} is not part of this union (its datasets: {', '.join(self.datasets)})"
            ) from None

    def class_map(self, space: LabelSpace) -> np.ndarray:
        """``class index -> unified index`` for ``space`` (255 where the union lacks the class)."""
        out = np.full(space.num_classes, IGNORE, dtype=np.int64)
        for c in space.classes:
            u = self._index.get(c.unified)
            if u is not None:
                out[c.index] = u
        return out

    def by_members(self) -> list[tuple[tuple[str, ...], list[str]]]:
        """Class names grouped by the datasets that have them: widest sharing first, then union order."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for c in self.classes:
            groups.setdefault(tuple(d for d in self.datasets if d in c.members), []).append(c.name)
        order = {d: i for i, d in enumerate(self.datasets)}
        return sorted(groups.items(), key=lambda kv: (-len(kv[0]), [order[d] for d in kv[0]]))

    def members_label(self, members: Sequence[str]) -> str:
        """``all``, ``all but idd``, or ``idd + mapillary``: which of the union's datasets have a class."""
        datasets = self.datasets
        if len(datasets) > 1 and len(members) == len(datasets):
            return "all"
        if len(datasets) > 2 and len(members) == len(datasets) - 1:
            return "all but " + next(d for d in datasets if d not in members)
        return " + ".join(members)

    def null_mask(self, datasets: Sequence[str] | None = None) -> np.ndarray:
        """``D x K`` bool: True where the unified class is in dataset d's label space (Null BCE)."""
        datasets = list(self.datasets if datasets is None else datasets)
        mask = np.zeros((len(datasets), self.num_classes), dtype=bool)
        for d, name in enumerate(datasets):
            if name not in self.datasets:
                self.dataset_index(name)  # raises with the list of members
            for c in self.classes:
                if name in c.members:
                    mask[d, c.index] = True
        return mask

    def eval_map(self, space: LabelSpace) -> EvalMap:
        """Channels to read and their dataset classes for evaluating ``space`` (in the union or not)."""
        channels, classes, missing = [], [], []
        for c in space.classes:
            u = self._index.get(c.unified)
            if u is None:
                missing.append(c.name)
            else:
                channels.append(u)
                classes.append(c.index)
        return EvalMap(
            dataset=space.name,
            channels=np.asarray(channels, dtype=np.int64),
            classes=np.asarray(classes, dtype=np.int64),
            missing=tuple(missing),
        )

    def check_member(self, space: LabelSpace) -> None:
        """Refuse a member label space whose classes differ from what this union recorded for it;
        a dataset outside the union (unseen evaluation) has nothing recorded and passes."""
        if space.name not in self.datasets:
            return
        recorded = {n for c in self.classes for n in c.members.get(space.name, ())}
        current = {c.name for c in space.classes}
        by_unified = {c.name: set(c.members.get(space.name, ())) for c in self.classes}
        drift = sorted(recorded ^ current)
        if not drift:
            drift = [c.name for c in space.classes if c.name not in by_unified.get(c.unified, set())]
        if drift:
            raise UnisegError(
                f"label space {space.name!r} in the registry differs from the union {self.fingerprint} "
                f"(class {drift[0]!r}); rebuild the union with 'uniseg labels union'"
            )


def fingerprint_of(classes: Sequence[UnifiedClass]) -> str:
    """16 hex digits of SHA-256 over the ordered class names and their (sorted) members."""
    canon = [[c.name, {d: sorted(n) for d, n in sorted(c.members.items())}] for c in classes]
    blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def build_union(spaces: Sequence[LabelSpace]) -> UnionSpace:
    """Union of label spaces: classes merge on equal unified names, ordered alphabetically."""
    if not spaces:
        raise UnisegError("a union needs at least one label space")
    names = [s.name for s in spaces]
    dup = first_duplicate(names)
    if dup is not None:
        raise UnisegError(f"label space {dup!r} is named twice")
    members: dict[str, dict[str, list[str]]] = {}
    colours: dict[str, list[tuple[str, str, RGB]]] = {}
    for s in spaces:
        for c in s.classes:
            members.setdefault(c.unified, {}).setdefault(s.name, []).append(c.name)
            colours.setdefault(c.unified, []).append((s.name, c.name, c.colour))
    ordered = sorted(members)
    if len(ordered) > MAX_CLASSES:
        raise UnisegError(f"the union has {len(ordered)} classes; at most {MAX_CLASSES} fit uint8 labels with 255 = ignore")
    # colours: classes shared by more datasets keep their canonical colour first (rider keeps
    # Cityscapes' red; Mapillary's bicyclist, which uses the same red, gets a derived one)
    used: set[RGB] = set()
    colour_of: dict[str, RGB] = {}
    for name in sorted(ordered, key=lambda n: (-len(members[n]), n)):
        colour_of[name] = _unique_colour(name, _preferred_colour(name, colours[name]), used)
        used.add(colour_of[name])
    classes = []
    for i, name in enumerate(ordered):
        mem = {d: tuple(members[name][d]) for d in names if d in members[name]}
        classes.append(UnifiedClass(index=i, name=name, colour=colour_of[name], members=mem))
    return UnionSpace(datasets=tuple(names), classes=tuple(classes))


def _preferred_colour(name: str, candidates: list[tuple[str, str, RGB]]) -> RGB:
    """The colour of the member whose official name equals the unified name, else of the first
    member by dataset name: independent of the order datasets are given in."""
    ranked = sorted(candidates, key=lambda t: (t[1].lower() != name, t[0]))
    return tuple(int(v) for v in ranked[0][2])  # type: ignore[return-value]


def _unique_colour(name: str, colour: RGB, used: set[RGB]) -> RGB:
    """Keep ``colour`` unless another class has it; then derive a stable one from the name."""
    k = 0
    while colour in used or colour == (0, 0, 0):
        digest = hashlib.sha256(f"{name}#{k}".encode()).digest()
        colour = (digest[0], digest[1], digest[2])
        k += 1
    return colour


def union_from_records(datasets: Sequence[str], records: Sequence[Mapping]) -> UnionSpace:
    """Rebuild a union from ``union.yaml`` records (name, colour, members), in file order."""
    classes = []
    for i, r in enumerate(records):
        members = {str(d): tuple(str(n) for n in v) for d, v in dict(r["members"]).items()}
        classes.append(UnifiedClass(index=i, name=str(r["name"]), colour=tuple(int(x) for x in r["colour"]), members=members))
    return UnionSpace(datasets=tuple(datasets), classes=tuple(classes))
