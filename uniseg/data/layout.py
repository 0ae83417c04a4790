"""Find the samples of a label space under a dataset root, driven by the layouts in its YAML.

A layout gives an image pattern and one or more label sources per split, e.g. Cityscapes
``leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png`` with ``gtFine/.../{stem}_gtFine_labelIds.png``.
``discover`` lists the files under each pattern's fixed folder (one ``os.walk`` per folder),
matches images with the image pattern's regex (``compile_pattern``), derives each label path from the image's fields
with ``Layout.label_path`` and picks, among the layouts and label sources of the label space,
the one with the most images that have a label (ties: the order in the YAML). That is how BDD's
current and legacy layouts, Mapillary v1.2 and v1.1, and IDD's level-3 PNGs, raw-id PNGs and
polygon JSON are told apart. Files that match a label pattern are never images (WildDash keeps
``<name>.png`` and ``<name>_labelIds.png`` in one folder); hidden files are ignored. Label files
of the chosen layout's other sources (Cityscapes ``_labelTrainIds`` beside ``_labelIds``) are
counted in ``Discovery.other_labels`` so reports can say they were left out.

A root where no layout finds any image raises ``UnisegError`` saying what was expected there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from uniseg.errors import UnisegError
from uniseg.filetree import visible_files
from uniseg.labelfiles.select import pattern_for_split as _for_split
from uniseg.labelspaces.schema import LabelSource, LabelSpace, Layout, compile_pattern, pattern_example


@dataclass(frozen=True)
class SampleRef:
    """One image and its label file (root-relative POSIX paths; ``label`` None in unlabelled splits)."""

    split: str
    image: str
    label: str | None


@dataclass
class SplitFiles:
    """What one split holds under the root for the chosen layout and label source."""

    split: str
    dir: str
    labelled: bool
    expected: int | None  # the official number of images, if the YAML gives it
    images: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # label files of the chosen source
    samples: list[SampleRef] = field(default_factory=list)  # images with a label (all images if unlabelled)
    missing_labels: list[str] = field(default_factory=list)  # images without a label (labelled splits)
    orphan_labels: list[str] = field(default_factory=list)  # label files without an image


@dataclass
class Discovery:
    """The layout and label source found under ``root`` and the files of each split."""

    dataset: str
    root: Path
    layout: Layout
    source: LabelSource | None
    splits: dict[str, SplitFiles]
    other_labels: dict[str, int] = field(default_factory=dict)  # other label sources of the layout -> files

    @property
    def encoding(self) -> str | None:
        return None if self.source is None else self.source.encoding

    @property
    def format(self) -> str:
        return "png" if self.source is None else self.source.format

    def samples(self, split: str | Sequence[str] | None = None) -> list[SampleRef]:
        return [s for sf in self.split_files(split) for s in sf.samples]

    def split_files(self, split: str | Sequence[str] | None = None) -> list[SplitFiles]:
        """The files of one split, several, or (None) every split found; a split not found raises."""
        if split is None:
            return list(self.splits.values())
        names = [split] if isinstance(split, str) else list(split)
        for n in names:
            if n not in self.splits:
                raise UnisegError(f"{self.root}: split {n!r} not found (found: {', '.join(self.splits) or 'none'})")
        return [self.splits[n] for n in names]


# -- patterns ---------------------------------------------------------------------------------


def _fixed_folder(pattern: str) -> str:
    """The folder part of ``pattern`` before its first field (``''`` = the root)."""
    i = pattern.find("{")
    head = pattern if i < 0 else pattern[:i]
    return head.rsplit("/", 1)[0] if "/" in head else ""


class _Lister:
    """Root-relative POSIX paths of the files under a folder, each folder walked once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, list[str]] = {}

    def files(self, folder: str) -> list[str]:
        if folder not in self._cache:
            prefix = f"{folder}/" if folder else ""
            self._cache[folder] = [prefix + f for f in visible_files(self.root / folder if folder else self.root)]
        return self._cache[folder]

    def matching(self, pattern: str) -> list[tuple[str, dict[str, str]]]:
        rx = compile_pattern(pattern)
        out = []
        for p in self.files(_fixed_folder(pattern)):
            m = rx.match(p)
            if m:
                out.append((p, m.groupdict()))
        return out


# -- discovery --------------------------------------------------------------------------------


@dataclass
class _Candidate:
    layout: Layout
    source: LabelSource | None
    splits: dict[str, SplitFiles]
    order: int

    @property
    def paired(self) -> int:
        return sum(len(s.samples) for s in self.splits.values() if s.labelled)

    @property
    def images(self) -> int:
        return sum(len(s.images) for s in self.splits.values())

    @property
    def labels(self) -> int:
        return sum(len(s.labels) for s in self.splits.values())


def _scan(lister: _Lister, layout: Layout, source: LabelSource | None, split_names: Iterable[str], order: int) -> _Candidate:
    splits: dict[str, SplitFiles] = {}
    for name in split_names:
        sp = layout.splits[name]
        img_pattern = _for_split(layout.image, sp.dir)
        label_patterns = [compile_pattern(_for_split(src.pattern, sp.dir)) for src in layout.labels]
        images: list[tuple[str, dict[str, str]]] = []
        for path, fields in lister.matching(img_pattern):
            if any(rx.match(path) for rx in label_patterns):
                continue  # a label file that the image pattern also matches (WildDash)
            images.append((path, fields))
        sf = SplitFiles(split=name, dir=sp.dir, labelled=sp.labelled, expected=sp.size, images=[p for p, _ in images])
        if source is None or not sp.labelled:
            sf.samples = [SampleRef(name, p, None) for p, _ in images]
        else:
            label_pattern = _for_split(source.pattern, sp.dir)
            found = lister.matching(label_pattern)
            sf.labels = [p for p, _ in found]
            label_set = set(sf.labels)
            image_set = set(sf.images)
            for path, fields in images:
                lab = layout.label_path(source, name, fields).lstrip("/").replace("//", "/")
                if lab in label_set:
                    sf.samples.append(SampleRef(name, path, lab))
                else:
                    sf.missing_labels.append(path)
            for lab, fields in found:
                img = _for_split(layout.image, sp.dir).format(**fields)
                if img not in image_set:
                    sf.orphan_labels.append(lab)
        if sf.images or sf.labels:
            splits[name] = sf
    return _Candidate(layout, source, splits, order)


def discover(
    space: LabelSpace,
    root: str | os.PathLike,
    *,
    split: str | Sequence[str] | None = None,
    layout: str | None = None,
    labels: str | None = None,
) -> Discovery:
    """Find ``space``'s layout under ``root`` and list images, labels and their pairing per split.

    ``split``: one split name, several, or None for every split found. ``layout`` / ``labels``
    force a layout name / label source name (default: the one with the most labelled images).
    """
    root = Path(root)
    if not space.layouts:
        raise UnisegError(f"label space {space.name!r} has no layouts in {space.source}; add a 'layouts:' section to read it from disk")
    layouts = list(space.layouts.values())
    if layout is not None:
        if layout not in space.layouts:
            raise UnisegError(f"{space.name} has no layout {layout!r}; choose one of: {', '.join(space.layouts)}")
        layouts = [space.layouts[layout]]
    wanted = None if split is None else ([split] if isinstance(split, str) else list(split))
    if wanted is not None:
        known = {s for lay in layouts for s in lay.splits}
        bad = [s for s in wanted if s not in known]
        if bad:
            raise UnisegError(f"{space.name} has no split {bad[0]!r}; choose one of: {', '.join(sorted(known))}")
    if labels is not None:
        names = {src.name for lay in layouts for src in lay.labels}
        if labels not in names:
            raise UnisegError(f"{space.name} has no label source {labels!r}; choose one of: {', '.join(sorted(names))}")
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "no such folder"
        raise UnisegError(f"{root}: {what} (expected the {space.title} dataset root, holding {_expected(space, layouts, wanted)})")

    lister = _Lister(root)
    candidates: list[_Candidate] = []
    order = 0
    for lay in layouts:
        split_names = [s for s in (wanted or list(lay.splits)) if s in lay.splits]
        if not split_names:
            continue
        sources = [s for s in lay.labels if labels is None or s.name == labels] or ([None] if labels is None else [])
        for src in sources:
            candidates.append(_scan(lister, lay, src, split_names, order))
            order += 1
    best = max(candidates, key=lambda c: (c.paired, c.images, -c.order), default=None)
    if best is None or best.images == 0:
        found_labels = max((c.labels for c in candidates), default=0)
        extra = f"; found {found_labels} label files but no images — unpack the images too" if found_labels else ""
        hint = _subfolder_hint(root, space, layouts)
        raise UnisegError(
            f"{root}: no {space.title} layout found (expected {_expected(space, layouts, wanted)}){extra}{hint}"
        )
    splits = {n: sf for n, sf in best.splits.items() if sf.images or sf.labels}
    others = {c.source.name: c.labels for c in candidates
              if c.layout is best.layout and c.source is not None and c.source is not best.source and c.labels}
    return Discovery(dataset=space.name, root=root, layout=best.layout, source=best.source, splits=splits, other_labels=others)


def _expected(space: LabelSpace, layouts: Sequence[Layout], wanted: Sequence[str] | None) -> str:
    parts = []
    for lay in layouts:
        names = [s for s in (wanted or list(lay.splits)) if s in lay.splits]
        if not names:
            continue
        labelled = [s for s in names if lay.splits[s].labelled] or names
        sp = lay.splits[labelled[0]]
        img = pattern_example(_for_split(lay.image, sp.dir))
        labs = " or ".join(pattern_example(_for_split(src.pattern, sp.dir)) for src in lay.labels)
        parts.append(f"{img} with {labs}" if labs else img)
    return "; or ".join(dict.fromkeys(parts))


def _subfolder_hint(root: Path, space: LabelSpace, layouts: Sequence[Layout]) -> str:
    """`` — did you mean ROOT/child?`` when a child folder holds the layout (a parent was given)."""
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return ""
    for child in children[:200]:
        for lay in layouts:
            for sp in lay.splits.values():
                folder = _fixed_folder(_for_split(lay.image, sp.dir))
                if folder and (child / folder).is_dir():
                    return f" — did you mean {child}?"
    return ""
