"""``uniseg data check``: is a dataset root sound? Layout, counts, pairing and label values.

``check_dataset`` finds the layout (a wrong root raises ``UnisegError``), counts images and
labels per split, lists images without labels and labels without images, and fully decodes a
bounded, evenly spaced sample of pairs (``sample=0``: all of them), label and image, to count
raw values and report: values the encoding does not list, label files that cannot be read or
cannot be labels of the encoding (read by ``uniseg.unify.apply.read_unified``, exactly as
``labels remap``, ``data prepare`` and ``SegDataset`` read them), images that cannot be
decoded, and labels whose size differs from their image. Value counting is vectorised
(``bincount`` over ids, ``unique`` over packed colours).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from uniseg.data.layout import Discovery, SampleRef, discover
from uniseg.errors import UnisegError
from uniseg.labelfiles import LabelFileError, open_image, unpack_rgb
from uniseg.labelspaces.schema import Encoding, LabelSpace, pattern_example
from uniseg.unify.apply import read_unified
from uniseg.unify.lut import LookupTable, build_dataset_lut

DEFAULT_SAMPLE = 32


def root_fields(report) -> dict:
    """What a report on a dataset root says of the root itself (``data check``, ``labels audit``)."""
    return {key: getattr(report, key) for key in ("dataset", "root", "layout", "labels", "encoding", "format")}


@dataclass
class SplitSummary:
    split: str
    dir: str
    labelled: bool
    expected: int | None
    images: int
    labels: int
    paired: int
    missing_labels: list[str]
    orphan_labels: list[str]


@dataclass
class ValueCount:
    value: int | tuple[int, int, int] | str  # id, colour, or (polygons) a label name
    name: str  # raw name ('' if unknown)
    cls: str | None  # class it belongs to; None = void or unknown
    pixels: int  # pixels in the sampled files (polygons: number of polygons for unknown names)
    files: int  # sampled files it appears in


@dataclass
class CheckReport:
    dataset: str
    title: str
    root: str
    layout: str
    labels: str | None  # label source name
    encoding: str | None
    format: str
    splits: list[SplitSummary]
    sampled: int = 0
    sampled_of: int = 0
    values: list[ValueCount] = field(default_factory=list)  # every raw value seen in the sample
    unknown: list[ValueCount] = field(default_factory=list)  # values the encoding does not list
    size_mismatches: list[dict] = field(default_factory=list)  # {label, image, label_size, image_size}
    unreadable: list[dict] = field(default_factory=list)  # label files that cannot be read: {file, error}
    not_labels: list[dict] = field(default_factory=list)  # files that cannot be labels of the encoding: {file, error}
    unreadable_images: list[dict] = field(default_factory=list)  # images that cannot be decoded: {file, error}
    left_out: dict[str, int] = field(default_factory=dict)  # label files of the layout's other sources (not checked)
    expected_labels: str = ""  # label path patterns of the layout (for messages)

    @property
    def images(self) -> int:
        return sum(s.images for s in self.splits)

    @property
    def missing_labels(self) -> int:
        return sum(len(s.missing_labels) for s in self.splits)

    @property
    def orphan_labels(self) -> int:
        return sum(len(s.orphan_labels) for s in self.splits)

    def problems(self) -> list[str]:
        """One short phrase per kind of problem (empty: the dataset is sound)."""
        out = []
        if self.missing_labels:
            paired = sum(s.paired for s in self.splits if s.labelled)
            none = f" (no label file at all: expected {self.expected_labels})" if not paired and self.expected_labels else ""
            out.append(f"{self.missing_labels} images without labels{none}")
        if self.orphan_labels:
            out.append(f"{self.orphan_labels} labels without images")
        if self.unknown:
            shown = ", ".join(_fmt(v.value) for v in self.unknown[:5])
            more = f" (+{len(self.unknown) - 5} more)" if len(self.unknown) > 5 else ""
            out.append(f"{len(self.unknown)} unknown raw values: {shown}{more}")
        if self.size_mismatches:
            out.append(f"{len(self.size_mismatches)} labels whose size differs from their image")
        if self.unreadable:
            out.append(f"{len(self.unreadable)} unreadable label files")
        if self.not_labels:
            out.append(f"{len(self.not_labels)} files that cannot be {self.dataset}.{self.encoding} labels")
        if self.unreadable_images:
            out.append(f"{len(self.unreadable_images)} unreadable images")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()

    def to_dict(self) -> dict:
        return {
            **root_fields(self),
            "ok": self.ok,
            "problems": self.problems(),
            "splits": [
                {
                    "split": s.split,
                    "dir": s.dir,
                    "labelled": s.labelled,
                    "expected": s.expected,
                    "images": s.images,
                    "labels": s.labels,
                    "paired": s.paired,
                    "missing_labels": s.missing_labels,
                    "orphan_labels": s.orphan_labels,
                }
                for s in self.splits
            ],
            "sampled": self.sampled,
            "sampled_of": self.sampled_of,
            "values": [_value_dict(v) for v in self.values],
            "unknown": [_value_dict(v) for v in self.unknown],
            "size_mismatches": self.size_mismatches,
            "unreadable": self.unreadable,
            "not_labels": self.not_labels,
            "unreadable_images": self.unreadable_images,
            "left_out": self.left_out,
        }


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value)


def _value_dict(v: ValueCount) -> dict:
    return {
        "value": list(v.value) if isinstance(v.value, tuple) else v.value,
        "name": v.name,
        "class": v.cls,
        "pixels": v.pixels,
        "files": v.files,
    }


def spread(items: Sequence, n: int) -> list:
    """``n`` evenly spaced items (all of them when ``n`` is 0 or at least ``len(items)``)."""
    if n <= 0 or n >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in dict.fromkeys(idx.tolist())]


def check_dataset(
    space: LabelSpace,
    root: str | os.PathLike,
    *,
    split: str | Sequence[str] | None = None,
    layout: str | None = None,
    labels: str | None = None,
    sample: int = DEFAULT_SAMPLE,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Check the dataset of ``space`` under ``root``; a wrong root raises ``UnisegError``."""
    if sample < 0:
        raise UnisegError(f"--sample must be >= 0 (0 = every label file), got {sample}")
    found = discover(space, root, split=split, layout=layout, labels=labels)
    report = CheckReport(
        dataset=space.name,
        title=space.title,
        root=str(Path(root)),
        layout=found.layout.name,
        labels=None if found.source is None else found.source.name,
        encoding=found.encoding,
        format=found.format,
        splits=[
            SplitSummary(
                split=s.split,
                dir=s.dir,
                labelled=s.labelled,
                expected=s.expected,
                images=len(s.images),
                labels=len(s.labels),
                paired=len(s.samples) if s.labelled else 0,
                missing_labels=list(s.missing_labels),
                orphan_labels=list(s.orphan_labels),
            )
            for s in found.splits.values()
        ],
    )
    report.left_out = dict(found.other_labels)
    labelled = [sf for sf in found.splits.values() if sf.labelled]
    if labelled:
        d = labelled[0].dir
        report.expected_labels = " or ".join(pattern_example(src.pattern.replace("{split}", d)) for src in found.layout.labels)
    if found.source is not None:
        _check_values(space, found, report, sample, progress)
    return report


def _check_values(space: LabelSpace, found: Discovery, report: CheckReport, sample: int,
                  progress: Callable[[int, int], None] | None) -> None:
    enc = space.encoding(found.encoding)
    lut = build_dataset_lut(space, enc)
    pairs = [s for sf in found.splits.values() if sf.labelled for s in sf.samples]
    chosen = spread(pairs, sample)
    report.sampled, report.sampled_of = len(chosen), len(pairs)
    pixels: dict = {}
    files: dict = {}
    unknown_names: dict[str, list[int]] = {}
    names = {(tuple(v.value) if enc.kind == "rgb" else int(v.value)): v for v in enc.values}  # type: ignore[arg-type]
    for i, ref in enumerate(chosen):
        _check_one(found.root, ref, enc, lut, found.format, pixels, files, unknown_names, report)
        if progress is not None:
            progress(i + 1, len(chosen))
    for key in sorted(pixels, key=lambda k: (isinstance(k, tuple), k)):
        raw = names.get(key)
        vc = ValueCount(
            value=key,
            name=raw.name if raw else "",
            cls=None if raw is None or raw.cls is None else space.classes[raw.cls].name,
            pixels=pixels[key],
            files=files[key],
        )
        report.values.append(vc)
        if raw is None:
            report.unknown.append(vc)
    for name in sorted(unknown_names):
        polys, nfiles = unknown_names[name]
        report.unknown.append(ValueCount(value=name, name="", cls=None, pixels=polys, files=nfiles))


def _check_one(root: Path, ref: SampleRef, enc: Encoding, lut: LookupTable, fmt: str, pixels: dict, files: dict,
               unknown_names: dict, report: CheckReport) -> None:
    """Decode one pair fully; tally the label's raw values or record what is wrong with it."""
    assert ref.label is not None
    got = None
    try:
        got = read_unified(root / ref.label, lut, fmt, enc, with_values=True)
    except LabelFileError as exc:
        (report.not_labels if exc.problem == "refused" else report.unreadable).append({"file": ref.label, "error": str(exc)})
    except UnisegError as exc:
        report.unreadable.append({"file": ref.label, "error": str(exc)})
    try:
        image = open_image(root / ref.image)
    except LabelFileError as exc:
        report.unreadable_images.append({"file": ref.image, "error": str(exc)})
        return
    if got is None:
        return
    (lw, lh), (iw, ih) = got.image.size, image.size
    if (iw, ih) != (lw, lh):
        report.size_mismatches.append({"label": ref.label, "image": ref.image, "label_size": [lw, lh], "image_size": [iw, ih]})
    if fmt == "polygons":
        for name, n in got.unknown.items():
            entry = unknown_names.setdefault(name, [0, 0])
            entry[0] += n
            entry[1] += 1
    rgb = lut.kind == "rgb"
    for v, n in (got.values or {}).items():
        key = unpack_rgb(v) if rgb else v
        pixels[key] = pixels.get(key, 0) + n
        files[key] = files.get(key, 0) + 1
