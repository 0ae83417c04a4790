"""Records of a label space: classes, encodings (how label files store ids) and on-disk layouts.

A taxonomy is data: these dataclasses are filled from one YAML file per dataset by
``uniseg.labelspaces.loader`` and never hold behaviour beyond small derived views.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy loads with the first lookup table: `uniseg labels list/show` never need it
    import numpy as np

RGB = tuple[int, int, int]
EncodingKind = Literal["index", "rgb"]
LabelFormat = Literal["png", "polygons"]

IGNORE = 255
"""The ignore value of every unified label image and lookup table."""


@dataclass(frozen=True)
class ClassDef:
    """One class of a label space, at position ``index`` of the training order."""

    index: int
    name: str  # official name, as the dataset's toolkit spells it
    unified: str  # the name it takes in a union (classes merge on equal unified names)
    colour: RGB
    description: str = ""


@dataclass(frozen=True)
class RawValue:
    """One value a label file can hold: an integer id (``index``) or a colour (``rgb``)."""

    value: int | RGB
    name: str  # raw name (e.g. IDD id 1 'parking' belongs to level-3 class 'drivable fallback')
    cls: int | None  # class index in training order; None = void (known, ignored)

    @property
    def void(self) -> bool:
        return self.cls is None


@dataclass(frozen=True)
class Encoding:
    """How label files store classes: every listed value maps to a class or is void; the rest is unknown."""

    name: str
    kind: EncodingKind
    values: tuple[RawValue, ...]
    description: str = ""
    bits: int = 8  # index encodings: 8- or 16-bit images

    @property
    def void_values(self) -> list[int | RGB]:
        return [v.value for v in self.values if v.void]

    @property
    def size(self) -> int:
        """Length of a dense lookup table over raw values (index encodings)."""
        return 1 << self.bits

    def class_lut(self) -> np.ndarray:
        """Dense ``raw id -> class index`` table (index encodings), 255 for void and unknown."""
        if self.kind != "index":
            raise ValueError(f"encoding {self.name!r} is {self.kind}, not index")
        import numpy as np

        dtype = np.uint8 if self.bits == 8 else np.uint16
        lut = np.full(self.size, IGNORE, dtype=dtype)
        for v in self.values:
            if v.cls is not None:
                lut[int(v.value)] = v.cls
        return lut

    def known_mask(self) -> np.ndarray:
        """Boolean table over raw ids: True where the value is listed (class or void)."""
        if self.kind != "index":
            raise ValueError(f"encoding {self.name!r} is {self.kind}, not index")
        import numpy as np

        known = np.zeros(self.size, dtype=bool)
        known[[int(v.value) for v in self.values]] = True
        return known

    def by_name(self) -> dict[str, RawValue]:
        """Raw values by raw name (for polygon rasterisation, which stores names, not ids)."""
        return {v.name: v for v in self.values}


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")  # one ``{name}`` field of a path pattern


@dataclass(frozen=True)
class LabelSource:
    """Where the label of an image lives, for one encoding (``png`` images or ``polygons`` JSON)."""

    name: str
    encoding: str
    pattern: str
    format: LabelFormat = "png"


@dataclass(frozen=True)
class Split:
    name: str  # our name: train / val / test / all
    dir: str  # the folder name the dataset uses for it ('training', 'wd_val_01', ...)
    size: int | None = None  # official number of images
    labelled: bool = True


@dataclass(frozen=True)
class Layout:
    """One way the dataset is distributed: path patterns relative to the dataset root.

    Patterns use ``{split}`` for the split folder and ``{field}`` for one path part that images
    and labels share, e.g. ``leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png``.
    """

    name: str
    image: str
    labels: tuple[LabelSource, ...]
    splits: dict[str, Split]
    description: str = ""

    @staticmethod
    def fields(pattern: str) -> list[str]:
        return _FIELD.findall(pattern)

    def label_path(self, source: LabelSource, split: str, fields: dict[str, str]) -> str:
        return source.pattern.replace("{split}", self.splits[split].dir).format(**fields)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``a/{x}/{y}_z.png`` -> regex with one path part per field (non-greedy, no '/')."""
    out, pos = [], 0
    for m in _FIELD.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/]+?)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(out) + "$")


def pattern_example(pattern: str) -> str:
    """``leftImg8bit/train/{city}/{stem}_x.png`` -> ``leftImg8bit/train/<city>/<stem>_x.png`` (for messages)."""
    return _FIELD.sub(lambda m: f"<{m.group(1)}>", pattern)


@dataclass(frozen=True)
class LabelSpace:
    """A dataset taxonomy: its classes in training order, encodings and layouts, plus provenance."""

    name: str
    title: str
    classes: tuple[ClassDef, ...]
    encodings: dict[str, Encoding]  # insertion order; the first is the default
    layouts: dict[str, Layout] = field(default_factory=dict)
    version: str = ""
    homepage: str = ""
    license: str = ""
    description: str = ""
    source: Path | None = None  # the YAML file it came from

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def default_encoding(self) -> Encoding:
        return next(iter(self.encodings.values()))

    @property
    def unified_names(self) -> list[str]:
        return [c.unified for c in self.classes]

    def as_dict(self, enc: "Encoding | None" = None) -> dict:
        """Everything the registry knows about this label space as plain data (what ``labels show
        --format json`` prints); ``enc``: also list that encoding's raw values."""
        raw_ids: dict[str, dict[int, list]] = {}
        for e in self.encodings.values():
            per: dict[int, list] = {}
            for v in e.values:
                if v.cls is not None:
                    per.setdefault(v.cls, []).append(list(v.value) if e.kind == "rgb" else v.value)
            raw_ids[e.name] = per
        data = {
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "homepage": self.homepage,
            "license": self.license,
            "source": str(self.source),
            "classes": [
                {
                    "index": c.index,
                    "name": c.name,
                    "unified": c.unified,
                    "colour": list(c.colour),
                    "ids": {e: raw_ids[e].get(c.index, []) for e in self.encodings},
                }
                for c in self.classes
            ],
            "encodings": {
                e.name: {
                    "kind": e.kind,
                    "description": e.description,
                    "void": [list(v) if e.kind == "rgb" else v for v in e.void_values],
                }
                for e in self.encodings.values()
            },
            "layouts": {
                lay.name: {
                    "image": lay.image,
                    "labels": {s.name: s.pattern for s in lay.labels},
                    "splits": {s.name: {"dir": s.dir, "size": s.size, "labelled": s.labelled} for s in lay.splits.values()},
                }
                for lay in self.layouts.values()
            },
        }
        if enc is not None:
            data["values"] = [
                {"raw": list(v.value) if enc.kind == "rgb" else v.value, "name": v.name, "class": None if v.cls is None else self.classes[v.cls].name}
                for v in enc.values
            ]
        return data

    def encoding(self, name: str | None = None) -> Encoding:
        """The named encoding (default: the first); unknown names raise with the valid choices."""
        from uniseg.errors import UnisegError

        if name is None:
            return self.default_encoding
        if name in self.encodings:
            return self.encodings[name]
        lowered = {k.lower(): k for k in self.encodings}
        if name.lower() in lowered:
            return self.encodings[lowered[name.lower()]]
        raise UnisegError(
            f"label space {self.name!r} has no encoding {name!r}; choose one of: {', '.join(self.encodings)}"
        )
