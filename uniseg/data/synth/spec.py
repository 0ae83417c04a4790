"""The data of the synthetic world: fine classes, fine -> dataset mapping, visual domains, names.

Everything dataset-specific lives in the YAML files next to this module (``fine.yaml``,
``mapping.yaml``, ``domains.yaml``); this module loads them, validates them against the registry
and resolves them into plain tables (lookup tables from fine id to raw label value, file paths).
"""

from __future__ import annotations

import copy
import difflib
import posixpath
import string
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from uniseg.errors import ConfigError, UnisegError
from uniseg.yamlio import read_yaml
from uniseg.labelspaces.schema import Encoding, LabelSource, LabelSpace, Layout, Split

HERE = Path(__file__).parent
FINE_FILE = HERE / "fine.yaml"
MAPPING_FILE = HERE / "mapping.yaml"
DOMAINS_FILE = HERE / "domains.yaml"

PngMode = Literal["L", "P", "RGB"]


# --------------------------------------------------------------------------- fine classes


@dataclass(frozen=True)
class FineClass:
    index: int
    name: str
    colour: tuple[int, int, int]
    description: str = ""


def _line(node: Any, key: Any = None) -> int | None:
    lines = getattr(node, "key_lines", None)
    if lines and key in lines:
        return lines[key]
    return getattr(node, "line", None)


@lru_cache(maxsize=4)
def fine_classes(path: Path = FINE_FILE) -> tuple[FineClass, ...]:
    """The fine classes of the synthetic world in fine-id order (``fine.yaml``)."""
    doc = read_yaml(path)
    rows = doc.get("classes") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ConfigError(path, "expected a mapping with a non-empty 'classes' list")
    out: list[FineClass] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise ConfigError(path, "each class needs a name", line=_line(row), key=f"classes[{i}]")
        colour = row.get("colour")
        if not (isinstance(colour, list) and len(colour) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in colour)):
            raise ConfigError(path, "colour must be [r, g, b] with 0-255 integers", line=_line(row, "colour"), key=f"classes[{i}].colour")
        name = row["name"]
        if name in seen:
            raise ConfigError(path, f"duplicate fine class {name!r}", line=_line(row, "name"), key=f"classes[{i}].name")
        seen.add(name)
        out.append(FineClass(i, name, tuple(colour), str(row.get("description", ""))))
    if len(out) > 255:
        raise ConfigError(path, f"{len(out)} fine classes; at most 255 fit an 8-bit fine label")
    return tuple(out)


@lru_cache(maxsize=4)
def fine_index(path: Path = FINE_FILE) -> dict[str, int]:
    return {c.name: c.index for c in fine_classes(path)}


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class Target:
    """What one fine class becomes in one dataset's label files."""

    fine: str
    raw_name: str  # the raw value's name in the encoding
    value: int | tuple[int, int, int]  # what the label file stores
    cls: str | None  # official class name; None = void


@dataclass(frozen=True)
class DatasetMapping:
    dataset: str
    layout: str
    source: LabelSource
    encoding: Encoding
    mode: PngMode
    targets: tuple[Target, ...]  # in fine-id order
    palette: tuple[int, ...] | None = None  # 'P' PNGs: 768 palette entries

    def lut(self) -> np.ndarray:
        """fine id -> raw value: (n_fine,) uint8, or (n_fine, 3) uint8 for RGB labels."""
        if self.mode == "RGB":
            return np.array([t.value for t in self.targets], dtype=np.uint8).reshape(-1, 3)
        return np.array([t.value for t in self.targets], dtype=np.uint8)

    def folds(self) -> dict[str | None, list[str]]:
        """Dataset class (None = void) -> the fine classes written as it, in fine order."""
        out: dict[str | None, list[str]] = {}
        for t in self.targets:
            out.setdefault(t.cls, []).append(t.fine)
        return out


_MAP_KEYS = {"label", "void", "png", "classes", "like"}


@lru_cache(maxsize=4)
def _mapping_doc(path: Path) -> Any:
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(path, "expected a mapping of dataset name -> {label, void, classes}")
    return doc


def mapping_names(path: Path = MAPPING_FILE) -> list[str]:
    return list(_mapping_doc(Path(path)))


def label_source(space: LabelSpace) -> tuple[Layout, LabelSource]:
    """The layout and label source the synthetic dataset is written in: the first layout's first PNG source."""
    if not space.layouts:
        raise UnisegError(f"label space {space.name!r} has no layout; the synthetic world writes datasets in their layout")
    layout = next(iter(space.layouts.values()))
    for src in layout.labels:
        if src.format == "png":
            return layout, src
    raise UnisegError(f"label space {space.name!r}: layout {layout.name!r} has no PNG label source to write")


@dataclass(frozen=True)
class _Entry:
    """A dataset's mapping entry with ``like:`` resolved, and the YAML node its errors point at."""

    values: dict  # label, void, png, classes (keys beside ``like`` override the base entry's)
    lines: Any  # the dataset's own node (line-tracking mapping): where error messages point


def _entry(doc: dict, name: str, path: Path, seen: tuple[str, ...] = ()) -> _Entry:
    """The dataset's entry with ``like:`` resolved (keys beside ``like`` override)."""
    node = doc[name]
    if not isinstance(node, dict):
        raise ConfigError(path, "expected a mapping with label, void, classes", line=_line(doc, name), key=name)
    for k in node:
        if k not in _MAP_KEYS:
            close = difflib.get_close_matches(str(k), sorted(_MAP_KEYS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(_MAP_KEYS))}"
            raise ConfigError(path, f"unknown key ({hint})", line=_line(node, k), key=f"{name}.{k}")
    if "like" not in node:
        return _Entry(dict(node), node)
    base = node["like"]
    if base not in doc or base in seen or base == name:
        raise ConfigError(path, f"'like: {base}' names no other dataset entry (or loops)", line=_line(node, "like"), key=f"{name}.like")
    merged = dict(_entry(doc, base, path, seen + (name,)).values)
    for k, v in node.items():
        if k == "like":
            continue
        if k == "classes" and isinstance(v, dict):
            merged["classes"] = {**merged.get("classes", {}), **v}
        else:
            merged[k] = v
    return _Entry(merged, node)


def _resolve_target(enc: Encoding, space: LabelSpace, target: str) -> tuple[str, int | tuple[int, int, int], str | None] | None:
    by_raw = enc.by_name()
    if target in by_raw:
        v = by_raw[target]
        return v.name, v.value, (None if v.cls is None else space.classes[v.cls].name)
    for c in space.classes:
        if c.name == target:
            for v in enc.values:
                if v.cls == c.index:
                    return v.name, v.value, c.name
    return None


def load_mapping(space: LabelSpace, path: str | Path = MAPPING_FILE, fine_path: Path = FINE_FILE) -> DatasetMapping:
    """Validate the dataset's entry of the mapping file against the registry and resolve it."""
    path = Path(path)
    doc = _mapping_doc(path)
    name = space.name
    if name not in doc:
        raise UnisegError(f"{path}: no entry for dataset {name!r} (map every fine class of {fine_path.name} to a {name} class)")
    entry = _entry(doc, name, path)
    node, lines = entry.values, entry.lines
    layout, source = label_source(space)
    enc = space.encodings[source.encoding]

    def fail(msg: str, key: str, at: Any = None, at_key: Any = None) -> ConfigError:
        return ConfigError(path, msg, line=_line(at if at is not None else lines, at_key), key=f"{name}.{key}")

    label = node.get("label")
    if label is not None and label != enc.name:
        raise fail(f"label {label!r} differs from the encoding the dataset is written in ({enc.name!r}, "
                   f"the first PNG label source of layout {layout.name!r})", "label", at_key="label")
    if enc.kind == "index" and enc.bits != 8:
        raise fail(f"encoding {enc.name!r} is {enc.bits}-bit; the synthetic writer supports 8-bit index and rgb encodings", "label")
    png = node.get("png")
    if enc.kind == "rgb":
        if png not in (None, "RGB"):
            raise fail(f"png {png!r} does not fit the rgb encoding {enc.name!r} (leave it out)", "png", at_key="png")
        mode: PngMode = "RGB"
    else:
        if png not in (None, "L", "P"):
            raise fail(f"png must be 'L' or 'P', got {png!r}", "png", at_key="png")
        mode = png or "L"

    void_name = node.get("void")
    void_raw = enc.by_name().get(void_name) if isinstance(void_name, str) else None
    if void_raw is None or not void_raw.void:
        voids = ", ".join(repr(v.name) for v in enc.values if v.void) or "none"
        raise fail(f"void must name a void raw value of encoding {enc.name!r} (one of: {voids}), got {void_name!r}", "void", at_key="void")

    classes = node.get("classes")
    if not isinstance(classes, dict):
        raise fail("expected 'classes': a mapping of every fine class to a dataset class or null", "classes", at_key="classes")
    class_lines = classes if hasattr(classes, "key_lines") else doc[name].get("classes", lines)
    fines = fine_classes(fine_path)
    known = {f.name for f in fines}
    for k in classes:
        if k not in known:
            close = difflib.get_close_matches(str(k), sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"see {fine_path.name}"
            raise fail(f"{k!r} is not a fine class ({hint})", f"classes.{k}", at=class_lines, at_key=k)
    missing = [f.name for f in fines if f.name not in classes]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise fail(f"fine classes not mapped: {', '.join(repr(m) for m in missing[:3])}{more} (map each to a {name} class or null)",
                   "classes", at_key="classes")
    targets: list[Target] = []
    for f in fines:
        t = classes[f.name]
        if t is None:
            targets.append(Target(f.name, void_raw.name, void_raw.value, None))
            continue
        resolved = _resolve_target(enc, space, str(t)) if isinstance(t, (str, int)) and not isinstance(t, bool) else None
        if resolved is None:
            choices = list(dict.fromkeys([c.name for c in space.classes] + [v.name for v in enc.values]))
            close = difflib.get_close_matches(str(t), choices, n=2)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"use a class of {space.source or name}"
            line_node = class_lines if f.name in getattr(class_lines, "key_lines", {}) else lines
            raise fail(f"{t!r} (for fine class {f.name!r}) is neither a class nor a raw value of {name} encoding {enc.name!r} ({hint})",
                       f"classes.{f.name}", at=line_node, at_key=f.name)
        raw_name, value, cls = resolved
        targets.append(Target(f.name, raw_name, tuple(value) if isinstance(value, (list, tuple)) else int(value), cls))

    palette = None
    if mode == "P":
        pal = [0] * 768
        for v in enc.values:
            if v.cls is not None:
                pal[3 * int(v.value): 3 * int(v.value) + 3] = list(space.classes[v.cls].colour)
        palette = tuple(pal)
    return DatasetMapping(name, layout.name, source, enc, mode, tuple(targets), palette)


# --------------------------------------------------------------------------- domains


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for k, v in over.items():
            out[k] = _merge(out[k], v) if k in out else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _plain(node: Any) -> Any:
    """Strip the loader's line-tracking subclasses (so domains pickle and compare as plain data)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


_DOMAIN_KEYS = {"camera", "scenes", "ego_vehicle", "road", "objects", "look", "names"}


@lru_cache(maxsize=4)
def _domains_doc(path: Path) -> dict:
    doc = read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("defaults"), dict):
        raise ConfigError(path, "expected a mapping with 'defaults' and one entry per dataset")
    defaults = doc["defaults"]
    for ds, node in doc.items():
        if not isinstance(node, dict):
            raise ConfigError(path, "expected a mapping", line=_line(doc, ds), key=str(ds))
        for k, v in node.items():
            if k not in _DOMAIN_KEYS:
                raise ConfigError(path, f"unknown key (allowed: {', '.join(sorted(_DOMAIN_KEYS))})", line=_line(node, k), key=f"{ds}.{k}")
            if ds != "defaults" and isinstance(v, dict) and k in ("camera", "road", "look", "objects"):
                for kk in v:
                    if kk not in defaults[k]:
                        close = difflib.get_close_matches(str(kk), list(defaults[k]), n=1)
                        hint = f"did you mean {close[0]!r}?" if close else "not in defaults"
                        raise ConfigError(path, f"unknown key ({hint})", line=_line(v, kk), key=f"{ds}.{k}.{kk}")
    return _plain(doc)


def domain(name: str, path: Path = DOMAINS_FILE) -> dict:
    """The dataset's domain: ``defaults`` merged with its entry (plain dicts)."""
    doc = _domains_doc(Path(path))
    return _merge(doc["defaults"], doc.get(name, {}))


def dataset_id(name: str) -> int:
    """A stable number per dataset name: the second key of its random streams."""
    return zlib.crc32(name.encode("utf-8"))


# --------------------------------------------------------------------------- sample plan


@dataclass(frozen=True)
class Sample:
    """One synthetic image: its index in the dataset, split and paths relative to the dataset root."""

    index: int
    split: str
    fields: dict
    image: str
    label: str


def allocate(images: int, splits: list[str]) -> dict[str, int]:
    """Images per labelled split: 20% (at least 1) to every split but train, the rest to train."""
    if not splits:
        return {}
    primary = "train" if "train" in splits else splits[0]
    out = {s: 0 for s in splits}
    others = [s for s in splits if s != primary]
    if images <= 1 or not others:
        out[primary] = images
        return out
    each = max(1, images // 5)
    if images - each * len(others) < 1:  # fewer images than splits: train first, then one each
        out[primary] = 1
        left = images - 1
        for s in others:
            if left:
                out[s], left = 1, left - 1
        return out
    for s in others:
        out[s] = each
    out[primary] = images - each * len(others)
    return out


_ALPHABET = string.ascii_letters + string.digits + "-_"
_FMT = string.Formatter()


def _clean(path: str) -> str:
    return posixpath.normpath("/".join(p for p in path.split("/") if p))


def plan_samples(space: LabelSpace, images: int, seed: int, mapping: DatasetMapping | None = None) -> list[Sample]:
    """Where every image of the synthetic dataset goes: split, path fields, image and label paths."""
    if mapping is not None:
        layout = space.layouts[mapping.layout]
        source = mapping.source
    else:
        layout, source = label_source(space)
    dom = domain(space.name)
    names = dom.get("names", {}) or {}
    places_by_split = names.get("places", {}) or {}
    templates = names.get("fields", {}) or {}
    frame0 = int(names.get("frame0", 0))
    frame_step = int(names.get("frame_step", 1))
    fields_needed = [f for f in dict.fromkeys(Layout.fields(layout.image) + Layout.fields(source.pattern)) if f != "split"]

    labelled = [s for s, sp in layout.splits.items() if sp.labelled]
    if not labelled:
        raise UnisegError(f"label space {space.name!r}: layout {layout.name!r} has no labelled split to write")
    counts = allocate(images, labelled)
    rng = np.random.default_rng([seed, dataset_id(space.name), 0x4E414D45])  # 'NAME'
    out: list[Sample] = []
    seen: set[str] = set()
    used_random: set[str] = set()
    n = 0
    per_place: dict[str, int] = {}  # images so far at each place (over all splits: stems stay unique)
    for split in labelled:
        sp: Split = layout.splits[split]
        places = [str(p) for p in (places_by_split.get(split) or places_by_split.get("default") or ["synth"])]
        for j in range(counts[split]):
            place = places[j % len(places)]
            k = per_place.get(place, 0)
            per_place[place] = k + 1
            while True:
                hex8a = "".join(rng.choice(list("0123456789abcdef"), 8))
                hex8b = "".join(rng.choice(list("0123456789abcdef"), 8))
                key22 = "".join(rng.choice(list(_ALPHABET), 22))
                if hex8a + hex8b not in used_random and key22 not in used_random:
                    used_random.update((hex8a + hex8b, key22))
                    break
            vars_ = dict(place=place, j=j, k=k, n=n, frame=frame0 + frame_step * k, hex8a=hex8a, hex8b=hex8b, key22=key22)
            fields = {}
            for f in fields_needed:
                tmpl = templates.get(f, "{n:06d}")
                try:
                    fields[f] = _FMT.format(str(tmpl), **vars_)
                except (KeyError, ValueError, IndexError) as exc:
                    raise UnisegError(f"{DOMAINS_FILE}: {space.name}.names.fields.{f}: bad template {tmpl!r} ({exc})") from None
                if not fields[f] or "/" in fields[f]:
                    raise UnisegError(f"{DOMAINS_FILE}: {space.name}.names.fields.{f}: {fields[f]!r} is not one path part")
            image = _clean(layout.image.replace("{split}", sp.dir).format(**fields))
            label = _clean(source.pattern.replace("{split}", sp.dir).format(**fields))
            if image in seen:
                raise UnisegError(f"{DOMAINS_FILE}: {space.name}.names: two images would be written to {image} (make the field templates unique)")
            seen.add(image)
            out.append(Sample(n, split, fields, image, label))
            n += 1
    return out
