"""``uniseg labels audit``: what the label files of several datasets teach, before a GPU hour is spent.

``audit_datasets`` finds each root's layout and pairing with ``uniseg.data.layout.discover`` (as
``data check`` does), then reads every paired label file (or ``sample`` evenly spaced ones per
dataset, ``uniseg.data.check.spread``) in one parallel pass (``uniseg.parallel.imap``) and reports,
per dataset and for the union they form: each class's pixel share and image count (classes under
``RARE_SHARE`` flagged), union classes taught by one dataset only, the share of the union each
dataset leaves null (Null BCE), unified names whose members differ in colour or name across
datasets, unknown raw values with the files holding them, unpaired files and split sizes against
the registry's. Images are not opened: ``data check`` compares their sizes.

Counting never loops over pixels or classes in Python: a label file becomes a histogram of its
raw values (``count_label``: runs of one value found by one vectorised compare, ``value_counts``)
and the histogram goes through the dataset's lookup table with one ``bincount``. Decoding is ``uniseg.labelfiles``, exactly as ``read_unified`` reads a file for
``labels remap``, ``data check`` and ``data prepare`` (a JPEG, a photo, values beyond the encoding
are refused the same way); only the remapped image, which an audit does not need, is not built.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from uniseg.data.check import root_fields, spread
from uniseg.data.layout import Discovery, discover
from uniseg.errors import UnisegError
from uniseg.labelfiles import LabelFileError, decode_label_image, open_label_image, pack_rgb, refuse_unlikely_label, unpack_rgb
from uniseg.labelspaces.schema import IGNORE, Encoding, LabelSpace, pattern_example
from uniseg.parallel import imap
from uniseg.unify.apply import read_unified
from uniseg.unify.lut import LookupTable, build_dataset_lut
from uniseg.unify.union import UnionSpace, build_union

RARE_SHARE = 0.001  # classes under 0.1% of the audited pixels are flagged
MAX_FAST_COLOURS = 4096  # colour labels with more distinct colours take the vectorised numpy path

Progress = Callable[[str, int, int], None]  # (dataset, files done, files to read)


# -- one label file ------------------------------------------------------------------------------


@dataclass
class LabelCount:
    """One label file counted: pixels per class id of its dataset (255 = void or unknown)."""

    classes: np.ndarray  # int64 [256]
    pixels: int
    unknown: dict  # raw value (colours as packed keys) -> pixels; polygon files: label name -> polygons


@dataclass(frozen=True, eq=False)
class RawTable:
    """A lookup table's rows as sorted arrays, looked up by binary search: a histogram holds a few
    raw values, so no dense table (2^24 entries for colours) is built in each worker."""

    lut: LookupTable
    keys: np.ndarray  # int64, sorted raw values (colours as packed keys)
    ids: np.ndarray  # int64, the target of each (255 = void)

    @classmethod
    def of(cls, lut: LookupTable) -> RawTable:
        return cls(lut, np.array([r.raw_id for r in lut.rows], dtype=np.int64),
                   np.array([r.unified_index for r in lut.rows], dtype=np.int64))

    def lookup(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(target ids, known)`` of raw values; values the encoding does not list give 255, False."""
        if not len(self.keys):
            return np.full(len(values), IGNORE, dtype=np.int64), np.zeros(len(values), dtype=bool)
        at = np.minimum(np.searchsorted(self.keys, values), len(self.keys) - 1)
        known = self.keys[at] == values
        return np.where(known, self.ids[at], IGNORE), known


def count_label(path: str | os.PathLike, table: RawTable | LookupTable, format: str = "png",
                encoding: Encoding | None = None) -> LabelCount:
    """Count the classes of one label file through ``table`` (of a ``build_dataset_lut`` table);
    ``LabelFileError`` when the file cannot be read or is no label of the encoding."""
    if isinstance(table, LookupTable):
        table = RawTable.of(table)
    lut = table.lut
    if format == "polygons":  # rasterised as every command does it
        got = read_unified(path, lut, format, encoding, with_values=True)
        keys = np.fromiter(got.values or {}, dtype=np.int64)
        counts = np.fromiter((got.values or {}).values(), dtype=np.int64)
        return LabelCount(class_counts(table, keys, counts), got.pixels, dict(got.unknown))
    img = open_label_image(path)
    pixels = img.width * img.height
    keys, counts = raw_histogram(img, lut, path)
    ids, known = table.lookup(keys)
    unknown = {int(k): int(n) for k, n in zip(keys[~known], counts[~known])}
    refuse_unlikely_label(unknown, pixels, path=path, encoding=f"{lut.dataset}.{lut.encoding}", colour=lut.kind == "rgb")
    return LabelCount(_per_class(ids, counts), pixels, unknown)


def raw_histogram(img, lut: LookupTable, path: str | os.PathLike = "") -> tuple[np.ndarray, np.ndarray]:
    """``(raw values present, pixels of each)`` of an opened label image, sorted, colours as packed keys.

    8-bit ids: the image's bytes (P: the palette index is the id, as ``decode_label_image`` reads
    it) counted by ``value_counts``; colours: Pillow's ``getcolors``; anything else:
    ``decode_label_image`` and ``value_counts``. All equal a ``bincount`` over the decoded array.
    """
    if lut.accepts_image(img.mode):
        return value_counts(np.frombuffer(img.tobytes(), dtype=np.uint8))
    if lut.kind == "rgb" and img.mode in ("RGB", "RGBA", "P"):
        rgb = img if img.mode == "RGB" else img.convert("RGB")  # RGBA loses alpha, P goes through its palette
        colours = rgb.getcolors(MAX_FAST_COLOURS)  # None: more colours than a label has
        if colours:
            table = np.array([(n, *c[:3]) for n, c in colours], dtype=np.int64)
            keys = pack_rgb(table[:, 1:].astype(np.uint8)).astype(np.int64)
            order = np.argsort(keys)
            return keys[order], table[order, 0]
    raw = decode_label_image(img, lut.kind, lut.bits, encoding=lut.encoding, path=path)
    return value_counts(lut.keys(raw).ravel())


def value_counts(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values present, count of each)`` of a 1-D array of raw values, sorted by value (int64).

    A label image is long runs of one value, and a per-pixel ``bincount`` (Pillow's histogram
    too) stalls on them: each increment waits for the previous one. So runs are found with one
    vectorised compare of neighbours and their values counted by a ``bincount`` weighted by run
    length (3-4x faster); an array of short runs (noise, a photo) is counted pixel by pixel.
    """
    n = flat.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.empty((n + 7) // 8 * 8, dtype=bool)  # change[i]: pixel i ends a run (the last one does)
    np.not_equal(flat[1:], flat[:-1], out=change[: n - 1])
    change[n - 1:] = True
    packed = change.view(np.uint64)  # 8 pixels at a time: most words hold no run end
    words = np.flatnonzero(packed != 0)
    lengths = None
    if 4 * len(words) < n:
        at = np.flatnonzero(packed[words].view(np.bool_))  # the run ends within those words
        ends = words[at >> 3] * 8 + (at & 7)
        ends = ends[: np.searchsorted(ends, n)]  # the padding past the last pixel
        lengths = np.diff(ends, prepend=-1)
        flat = flat[ends]
    if flat.dtype in (np.uint8, np.uint16):
        hist = np.bincount(flat, weights=lengths)
        keys = np.flatnonzero(hist)
        return keys.astype(np.int64), hist[keys].astype(np.int64)  # float weights: exact below 2**53
    keys, inverse = np.unique(flat, return_inverse=True)
    return keys.astype(np.int64), np.bincount(inverse, weights=lengths).astype(np.int64)


def class_counts(table: RawTable, keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pixels per class id (``[256]`` int64, 255 = void or unknown) from a raw-value histogram."""
    return _per_class(table.lookup(keys)[0], counts)


def _per_class(ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.bincount(ids, weights=counts, minlength=256).astype(np.int64)  # float weights: exact below 2**53


# -- the report ----------------------------------------------------------------------------------


@dataclass
class ClassShare:
    """A class of one dataset in the audited label files."""

    index: int  # training order in its label space
    name: str
    unified: str
    pixels: int
    share: float  # of all pixels of the audited label files
    images: int  # audited label files holding at least one pixel of it
    rare: bool  # share under the threshold (absent classes too)


@dataclass
class UnknownValue:
    """A raw value the encoding does not list (read as ignore), and the files holding it."""

    value: int | tuple[int, int, int] | str  # id, colour, or (polygons) a label name
    pixels: int  # polygon files: polygons
    files: list[str]


@dataclass
class SplitSize:
    """One split found under a root, against the size the registry records for it."""

    split: str
    dir: str
    labelled: bool
    images: int
    labels: int
    paired: int
    expected: int | None  # the official number of images, if the registry records it

    @property
    def matches(self) -> bool | None:
        return None if self.expected is None else self.images == self.expected


@dataclass
class DatasetAudit:
    """What one dataset root holds and teaches."""

    dataset: str
    title: str
    root: str
    layout: str
    labels: str | None
    encoding: str | None
    format: str
    splits: list[SplitSize]
    missing_labels: list[str]  # images without labels (labelled splits)
    orphan_labels: list[str]  # labels without images
    files: int = 0  # label files read
    files_of: int = 0  # paired label files found
    pixels: int = 0
    void_pixels: int = 0
    unknown_pixels: int = 0
    classes: list[ClassShare] = field(default_factory=list)
    unknown: list[UnknownValue] = field(default_factory=list)
    unreadable: list[dict] = field(default_factory=list)  # {file, error}
    not_labels: list[dict] = field(default_factory=list)  # {file, error}: refused as labels of the encoding
    null_classes: list[str] = field(default_factory=list)  # union classes its label space lacks
    null_share: float = 0.0  # their share of the union's classes

    def problems(self) -> list[str]:
        """One phrase per kind of problem (none: the files are sound)."""
        out = []
        if self.missing_labels:
            out.append(f"{len(self.missing_labels)} images without labels")
        if self.orphan_labels:
            out.append(f"{len(self.orphan_labels)} labels without images")
        if self.unknown:
            shown = ", ".join(_raw(u.value) for u in self.unknown[:5])
            out.append(f"{len(self.unknown)} unknown raw values ({shown}{', …' if len(self.unknown) > 5 else ''})")
        if self.unreadable:
            out.append(f"{len(self.unreadable)} unreadable label files")
        if self.not_labels:
            out.append(f"{len(self.not_labels)} files that cannot be {self.dataset}.{self.encoding} labels")
        if self.labels is None:
            out.append("no label files found")
        return out

    def split_mismatches(self) -> list[SplitSize]:
        return [s for s in self.splits if s.matches is False]

    def to_dict(self) -> dict:
        return {
            **root_fields(self),
            "problems": self.problems(),
            "files": self.files,
            "files_of": self.files_of,
            "pixels": self.pixels,
            "void": {"pixels": self.void_pixels, "share": _share(self.void_pixels, self.pixels)},
            "unknown_pixels": self.unknown_pixels,
            "classes": [
                {"index": c.index, "name": c.name, "unified": c.unified, "pixels": c.pixels, "share": c.share,
                 "images": c.images, "rare": c.rare}
                for c in self.classes
            ],
            "rare": [c.name for c in self.classes if c.rare],
            "unknown": [{"value": _json_value(u.value), "pixels": u.pixels, "files": u.files} for u in self.unknown],
            "missing_labels": self.missing_labels,
            "orphan_labels": self.orphan_labels,
            "unreadable": self.unreadable,
            "not_labels": self.not_labels,
            "splits": [
                {"split": s.split, "dir": s.dir, "labelled": s.labelled, "images": s.images, "labels": s.labels,
                 "paired": s.paired, "expected": s.expected, "matches": s.matches}
                for s in self.splits
            ],
            "null": {"classes": self.null_classes, "count": len(self.null_classes), "share": self.null_share},
        }


@dataclass
class UnionClassAudit:
    """A class of the union: its pixels over every dataset, and per dataset (None: not in its space)."""

    index: int
    name: str
    colour: tuple[int, int, int]
    pixels: int
    share: float  # of all audited pixels of all datasets
    images: int
    rare: bool
    in_spaces: list[str]  # datasets whose label space has it
    taught_by: list[str]  # datasets whose audited labels hold pixels of it
    per_dataset: dict[str, dict | None]  # dataset -> {pixels, share, images, rare}; None: left null


@dataclass
class Mismatch:
    """A unified name whose members differ across datasets: a likely mismatch in the registry."""

    name: str
    differs: list[str]  # 'colour', 'name'
    members: dict[str, dict]  # dataset -> {"names": [...], "colours": [[r, g, b], ...]}


@dataclass
class AuditReport:
    """The audit of several datasets and of their union."""

    datasets: list[DatasetAudit]
    union: UnionSpace
    classes: list[UnionClassAudit]
    mismatches: list[Mismatch]
    collisions: list[dict]  # the same official name in two datasets, merged into different unified classes
    sample: int
    rare_share: float = RARE_SHARE
    seconds: float = 0.0  # wall time of discovery and the pass (not in ``to_dict``: output is deterministic)

    @property
    def files(self) -> int:
        return sum(d.files for d in self.datasets)

    @property
    def one_teacher(self) -> list[UnionClassAudit]:
        """Union classes whose pixels come from one dataset only."""
        return [c for c in self.classes if len(c.taught_by) == 1]

    @property
    def untaught(self) -> list[UnionClassAudit]:
        """Union classes with no pixel in any audited label file."""
        return [c for c in self.classes if not c.taught_by]

    def problems(self) -> list[str]:
        return [f"{d.dataset}: {p}" for d in self.datasets for p in d.problems()]

    def to_dict(self) -> dict:
        pixels = sum(d.pixels for d in self.datasets)
        return {
            "datasets": [d.to_dict() for d in self.datasets],
            "union": {
                "datasets": list(self.union.datasets),
                "fingerprint": self.union.fingerprint,
                "num_classes": self.union.num_classes,
                "pixels": pixels,
                "classes": [
                    {"index": c.index, "name": c.name, "colour": list(c.colour), "pixels": c.pixels, "share": c.share,
                     "images": c.images, "rare": c.rare, "in_spaces": c.in_spaces, "taught_by": c.taught_by,
                     "datasets": c.per_dataset}
                    for c in self.classes
                ],
                "rare": [c.name for c in self.classes if c.rare],
                "one_dataset_only": [{"class": c.name, "dataset": c.taught_by[0]} for c in self.one_teacher],
                "untaught": [c.name for c in self.untaught],
                "null_share": {d.dataset: d.null_share for d in self.datasets},
                "mismatches": [{"name": m.name, "differs": m.differs, "members": m.members} for m in self.mismatches],
                "name_collisions": self.collisions,
            },
            "sample": self.sample,
            "rare_share": self.rare_share,
            "files": self.files,
            "problems": self.problems(),
        }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 8) if whole else 0.0


def _raw(value) -> str:
    if isinstance(value, tuple):
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value)


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


# -- the pass ------------------------------------------------------------------------------------


class _Job(NamedTuple):
    dataset: int
    root: str
    label: str  # root-relative


class _Reader(NamedTuple):
    table: RawTable
    format: str
    encoding: Encoding


@dataclass
class FileCount:
    """What one job returns: a label file's class counts, or why it could not be read."""

    dataset: int
    file: str
    classes: np.ndarray | None
    pixels: int = 0
    unknown: dict = field(default_factory=dict)
    error: str = ""
    refused: bool = False  # read, but no label of the encoding


def _count_job(job: _Job, readers: dict[int, _Reader]) -> FileCount:
    r = readers[job.dataset]
    try:
        c = count_label(Path(job.root) / job.label, r.table, r.format, r.encoding)
    except LabelFileError as exc:
        return FileCount(job.dataset, job.label, None, error=str(exc), refused=exc.problem == "refused")
    except UnisegError as exc:
        return FileCount(job.dataset, job.label, None, error=str(exc))
    return FileCount(job.dataset, job.label, c.classes, c.pixels, c.unknown)


def audit_datasets(
    datasets: Sequence[tuple[LabelSpace, str | os.PathLike]],
    *,
    sample: int = 0,
    split: str | Sequence[str] | None = None,
    workers: int = 1,
    rare_share: float = RARE_SHARE,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit each ``(label space, root)`` and the union of the label spaces; a wrong root, an
    unknown split or a dataset given twice raises ``UnisegError`` before any file is read."""
    if not datasets:
        raise UnisegError("no datasets to audit; give --datasets NAME=ROOT (e.g. cityscapes=/data/cityscapes)")
    if sample < 0:
        raise UnisegError(f"--sample must be >= 0 (0 = every label file), got {sample}")
    t0 = time.perf_counter()
    spaces = [s for s, _ in datasets]
    union = build_union(spaces)  # refuses a dataset named twice
    found = [_discover(space, root, split) for space, root in datasets]
    jobs: list[_Job] = []
    readers: dict[int, _Reader] = {}
    audits = []
    for d, (space, disc) in enumerate(zip(spaces, found)):
        audit = _dataset_head(space, disc)
        audits.append(audit)
        if disc.source is None:
            continue
        enc = space.encoding(disc.encoding)
        readers[d] = _Reader(RawTable.of(build_dataset_lut(space, enc)), disc.format, enc)
        pairs = [s.label for s in disc.samples() if s.label is not None]
        if not pairs:
            raise UnisegError(f"{space.name}={disc.root}: {_no_labels(space, disc)}")
        chosen = spread(pairs, sample)
        audit.files, audit.files_of = len(chosen), len(pairs)
        jobs += [_Job(d, str(disc.root), p) for p in chosen]

    acc = _Totals(spaces, union)
    done = [0] * len(spaces)
    with contextlib.closing(imap(_count_job, jobs, context=readers, workers=workers)) as results:
        for res in results:
            acc.add(res)
            done[res.dataset] += 1
            if progress is not None:
                progress(spaces[res.dataset].name, done[res.dataset], audits[res.dataset].files)
    null = union.null_mask()
    for d, audit in enumerate(audits):
        acc.finish(d, audit, rare_share)
        audit.null_classes = [c.name for c in union.classes if not null[d, c.index]]
        audit.null_share = _share(len(audit.null_classes), union.num_classes)
    return AuditReport(
        datasets=audits,
        union=union,
        classes=acc.union_classes(rare_share),
        mismatches=find_mismatches(union, spaces),
        collisions=name_collisions(spaces),
        sample=sample,
        rare_share=rare_share,
        seconds=time.perf_counter() - t0,
    )


def _discover(space: LabelSpace, root: str | os.PathLike, split) -> Discovery:
    from uniseg.data.cache import is_cache

    if is_cache(root):
        raise UnisegError(
            f"{space.name}={root}: a 'data prepare' cache (unified ids); audit the raw dataset root it was made from"
        )
    return discover(space, root, split=split)


def _no_labels(space: LabelSpace, disc: Discovery) -> str:
    """Why a root found with images gives the audit nothing to read, and what would."""
    labelled = [sf for sf in disc.splits.values() if sf.labelled]
    if not labelled:
        return f"only unlabelled splits ({', '.join(disc.splits)}); audit a labelled split (--split train)"
    images = sum(len(sf.images) for sf in labelled)
    expected = " or ".join(pattern_example(src.pattern.replace("{split}", labelled[0].dir)) for src in disc.layout.labels)
    return f"{images} images but no label file beside them (expected {expected}); is this the {space.title} root?"


def _dataset_head(space: LabelSpace, disc: Discovery) -> DatasetAudit:
    splits = [
        SplitSize(s.split, s.dir, s.labelled, len(s.images), len(s.labels), len(s.samples) if s.labelled else 0, s.expected)
        for s in disc.splits.values()
    ]
    return DatasetAudit(
        dataset=space.name,
        title=space.title,
        root=str(disc.root),
        layout=disc.layout.name,
        labels=None if disc.source is None else disc.source.name,
        encoding=disc.encoding,
        format=disc.format,
        splits=splits,
        missing_labels=sorted(p for s in disc.splits.values() for p in s.missing_labels),
        orphan_labels=sorted(p for s in disc.splits.values() for p in s.orphan_labels),
    )


class _Totals:
    """Running sums of the pass, per dataset and per union class (order-free: results arrive as they finish)."""

    def __init__(self, spaces: Sequence[LabelSpace], union: UnionSpace) -> None:
        self.spaces, self.union = list(spaces), union
        k, n = union.num_classes, len(spaces)
        self.classes = np.zeros((n, 256), dtype=np.int64)  # pixels per dataset class id
        self.images = np.zeros((n, 256), dtype=np.int64)
        self.union_px = np.zeros((n, k + 1), dtype=np.int64)  # last column: void / unknown / not in the union
        self.union_img = np.zeros((n, k + 1), dtype=np.int64)
        self.pixels = np.zeros(n, dtype=np.int64)
        self.to_union = []  # dataset class id (256) -> union column
        for s in spaces:
            m = np.full(256, k, dtype=np.int64)
            cmap = union.class_map(s)
            m[: len(cmap)] = np.where(cmap == IGNORE, k, cmap)
            self.to_union.append(m)
        self.unknown: list[dict] = [{} for _ in spaces]  # value -> [pixels, files]
        self.unreadable: list[list[dict]] = [[] for _ in spaces]
        self.not_labels: list[list[dict]] = [[] for _ in spaces]

    def add(self, r: FileCount) -> None:
        d = r.dataset
        if r.classes is None:
            (self.not_labels if r.refused else self.unreadable)[d].append({"file": r.file, "error": r.error})
            return
        self.classes[d] += r.classes
        self.images[d] += r.classes > 0
        u = np.bincount(self.to_union[d], weights=r.classes, minlength=self.union.num_classes + 1).astype(np.int64)
        self.union_px[d] += u
        self.union_img[d] += u > 0
        self.pixels[d] += r.pixels
        for v, n in r.unknown.items():
            e = self.unknown[d].setdefault(v, [0, []])
            e[0] += n
            e[1].append(r.file)

    def finish(self, d: int, audit: DatasetAudit, rare: float) -> None:
        space, total = self.spaces[d], int(self.pixels[d])
        audit.pixels = total
        rgb = space.encodings[audit.encoding].kind == "rgb" if audit.encoding else False
        polygons = audit.format == "polygons"
        audit.unknown = [
            UnknownValue(unpack_rgb(v) if rgb and not isinstance(v, str) else v, n, sorted(files))
            for v, (n, files) in sorted(self.unknown[d].items(), key=lambda kv: (isinstance(kv[0], str), kv[0]))
        ]
        audit.unknown_pixels = 0 if polygons else sum(u.pixels for u in audit.unknown)
        audit.void_pixels = int(self.classes[d, IGNORE]) - audit.unknown_pixels
        audit.classes = [
            ClassShare(c.index, c.name, c.unified, int(self.classes[d, c.index]), _share(int(self.classes[d, c.index]), total),
                       int(self.images[d, c.index]), bool(self.classes[d, c.index] < rare * total or total == 0))
            for c in space.classes
        ]
        audit.unreadable = sorted(self.unreadable[d], key=lambda e: e["file"])
        audit.not_labels = sorted(self.not_labels[d], key=lambda e: e["file"])

    def union_classes(self, rare: float) -> list[UnionClassAudit]:
        total = int(self.pixels.sum())
        names = [s.name for s in self.spaces]
        out = []
        for c in self.union.classes:
            k = c.index
            per: dict[str, dict | None] = {}
            for d, name in enumerate(names):
                if name not in c.members:
                    per[name] = None
                    continue
                px, n = int(self.union_px[d, k]), int(self.pixels[d])
                per[name] = {"pixels": px, "share": _share(px, n), "images": int(self.union_img[d, k]),
                             "rare": bool(px < rare * n or n == 0)}
            px = int(self.union_px[:, k].sum())
            out.append(UnionClassAudit(
                index=k, name=c.name, colour=tuple(c.colour), pixels=px, share=_share(px, total),
                images=int(self.union_img[:, k].sum()), rare=bool(px < rare * total or total == 0),
                in_spaces=[n for n in names if n in c.members],
                taught_by=[n for d, n in enumerate(names) if self.union_px[d, k] > 0],
                per_dataset=per,
            ))
        return out


# -- union facts from the registry ---------------------------------------------------------------


def find_mismatches(union: UnionSpace, spaces: Sequence[LabelSpace]) -> list[Mismatch]:
    """Unified names whose members differ in colour or in official name across datasets."""
    by_name = {s.name: {c.name: c for c in s.classes} for s in spaces}
    out = []
    for uc in union.classes:
        if len(uc.members) < 2:
            continue
        members = {}
        for d, names in uc.members.items():
            colours = sorted({tuple(int(v) for v in by_name[d][n].colour) for n in names})
            members[d] = {"names": list(names), "colours": [list(c) for c in colours]}
        differs = []
        if len({tuple(tuple(c) for c in m["colours"]) for m in members.values()}) > 1:
            differs.append("colour")
        if len({tuple(sorted(n.lower() for n in m["names"])) for m in members.values()}) > 1:
            differs.append("name")
        if differs:
            out.append(Mismatch(uc.name, differs, members))
    return out


def name_collisions(spaces: Sequence[LabelSpace]) -> list[dict]:
    """Pairs of datasets using one official name for classes that do not merge (``labels diff``)."""
    from uniseg.unify.diff import diff_labelspaces

    out = []
    for i, a in enumerate(spaces):
        for b in spaces[i + 1:]:
            for c in diff_labelspaces(a, b).collisions:
                if c["kind"] == "same name, not merged":
                    out.append({"name": c["name"], "unified": {a.name: c["a_unified"], b.name: c["b_unified"]}})
    return out
