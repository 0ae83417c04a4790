"""Decode label files into raw values as their encoding needs, and map them into a union.

Raw values (``read_label``):

* index encodings: ``H x W`` ids. ``L`` images as they are; ``P`` (paletted, e.g. Mapillary)
  as palette *indices* — ``np.asarray`` on the ``P`` image, never converted to RGB, because the
  index is the class; 16-bit / 32-bit images as ``uint16`` (refused if the values do not fit
  the encoding's bits). An ``RGB`` file whose three channels are equal everywhere (ids saved as
  grey RGB by some tools) is accepted as its first channel; any other colour image (a photo
  where ids are expected) is refused.
* colour encodings (CamVid ``rgb``): ``H x W x 3`` uint8; ``P`` images are expanded through
  their palette, ``RGBA`` loses alpha; single-channel images are refused.
* polygon JSON (IDD ``*_gtFine_polygons.json``): rasterised into raw ids of the source's
  encoding by ``rasterize_polygons``, exactly as the IDD toolkit's ``createLabelImage`` does.

``load_unified`` turns any label file into an ``L`` image of unified ids through a
``LookupTable`` (8-bit ids stay in Pillow's C lookup; colours go through the packed dense
table), 255 = void, unknown or a class the union lacks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from uniseg.errors import UnisegError
from uniseg.labelspaces.schema import IGNORE, Encoding, LabelSpace
from uniseg.unify.lut import LookupTable, RemapRow

_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def open_image(path: str | os.PathLike):
    """Open and fully load an image with Pillow; unreadable files raise a one-line ``UnisegError``."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise UnisegError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise UnisegError(f"{path}: not an image file Pillow can read (is it truncated or another format?)") from None
    except OSError as exc:
        raise UnisegError(f"{path}: unreadable image ({exc}); re-extract the dataset archive") from None


def decode_label_image(img, kind: str, bits: int = 8, *, encoding: str = "", path: str | os.PathLike = "") -> np.ndarray:
    """Raw values of an opened label image for an encoding of ``kind`` ('index' or 'rgb')."""
    mode = img.mode
    where = f"{path}: " if path else ""
    if kind == "rgb":
        if mode == "RGB":
            return np.asarray(img)
        if mode == "RGBA":
            return np.asarray(img)[..., :3]
        if mode == "P":
            return np.asarray(img.convert("RGB"))
        raise UnisegError(
            f"{where}{mode} image, but encoding {encoding!r} stores classes as RGB colours "
            "(point it at the colour label files, e.g. CamVid *_L.png)"
        )
    if mode in ("L", "P"):  # P: the palette index is the id (Mapillary); never convert to RGB
        arr = np.asarray(img)
    elif mode in _SIXTEEN:
        arr = np.asarray(img)
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi >= 1 << 16:
            raise UnisegError(f"{where}{mode} image with values {lo}..{hi}: not a label id image")
        arr = arr.astype(np.uint16, copy=False)
    elif mode in ("RGB", "RGBA"):
        arr = np.asarray(img)
        grey = arr[..., 0]
        if not (np.array_equal(grey, arr[..., 1]) and np.array_equal(grey, arr[..., 2])):
            raise UnisegError(
                f"{where}{mode} colour image, but encoding {encoding!r} stores single-channel ids "
                "(is this a photo or a colour visualisation, not a label id image?)"
            )
        arr = np.ascontiguousarray(grey)
    else:
        raise UnisegError(f"{where}{mode} image, but encoding {encoding!r} stores single-channel ids (L, P or 16-bit)")
    if arr.dtype != np.uint8 and bits == 8:
        hi = int(arr.max()) if arr.size else 0
        if hi > 255:
            raise UnisegError(
                f"{where}values up to {hi} do not fit 8-bit encoding {encoding!r} "
                "(an instance-id or 16-bit label? use the *_labelIds / class-id files)"
            )
        arr = arr.astype(np.uint8)
    return arr


# -- IDD / Cityscapes polygon JSON -------------------------------------------------------------


@dataclass
class PolygonRaster:
    """A rasterised polygon file: raw ids plus what the toolkit would have skipped or warned about."""

    raw: np.ndarray  # H x W raw ids of the encoding (uint8, or uint16 for 16-bit encodings)
    drawn: int = 0
    skipped_deleted: int = 0
    skipped_degenerate: int = 0  # fewer than 3 points
    unknown: dict[str, int] = field(default_factory=dict)  # label name -> polygons (not drawn)


def background_value(encoding: Encoding) -> int:
    """The value polygons are drawn on: the encoding's ``unlabeled`` value, else its first void value."""
    by_name = encoding.by_name()
    if "unlabeled" in by_name and by_name["unlabeled"].void:
        return int(by_name["unlabeled"].value)  # type: ignore[arg-type]
    voids = encoding.void_values
    if not voids:
        raise UnisegError(f"encoding {encoding.name!r} has no void value to start polygon rasterisation from")
    return int(voids[0])  # type: ignore[arg-type]


def load_polygon_json(path: str | os.PathLike) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise UnisegError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnisegError(f"{path}: not a polygon JSON file ({exc})") from None
    return doc


def rasterize_polygons(doc: Mapping[str, Any] | str | os.PathLike, encoding: Encoding, *, path: str | os.PathLike = "") -> PolygonRaster:
    """Rasterise a ``*_gtFine_polygons.json`` document into raw ids of ``encoding``.

    Equivalent to the IDD toolkit's ``createLabelImage`` (``helpers/annotation.py``):

    1. a ``imgWidth x imgHeight`` image filled with the ``unlabeled`` value (35 for IDD ``id``);
    2. objects in JSON order, each drawn with ``ImageDraw.polygon(points, fill=value)`` on top of
       the earlier ones (later polygons win where they overlap);
    3. objects with ``deleted`` set, or fewer than 3 points, are skipped;
    4. a label the encoding does not know but that ends in ``group`` (``cargroup``) is looked up
       without the suffix; a known name such as ``polegroup`` is kept as it is;
    5. labels still unknown are skipped (the toolkit prints a warning; we count them in
       ``unknown`` so ``uniseg data check`` reports them).

    Point coordinates are passed to Pillow unchanged (floats included), as the toolkit does, so
    the output is identical pixel for pixel.
    """
    from PIL import Image, ImageDraw

    if not isinstance(doc, Mapping):
        path = path or doc
        doc = load_polygon_json(doc)
    where = str(path) or "polygon document"
    if encoding.kind != "index":
        raise UnisegError(f"{where}: polygons need an index encoding, not {encoding.kind} {encoding.name!r}")
    try:
        width, height = int(doc["imgWidth"]), int(doc["imgHeight"])
        objects = doc["objects"]
    except (KeyError, TypeError, ValueError):
        raise UnisegError(f"{where}: not a polygon file (needs imgWidth, imgHeight and objects, as *_gtFine_polygons.json)") from None
    if width <= 0 or height <= 0 or not isinstance(objects, list):
        raise UnisegError(f"{where}: imgWidth/imgHeight must be positive and objects a list")
    by_name = encoding.by_name()
    bg = background_value(encoding)
    img = Image.new("L" if encoding.bits == 8 else "I", (width, height), bg)
    draw = ImageDraw.Draw(img)
    out = PolygonRaster(raw=np.empty(0))
    for i, obj in enumerate(objects):
        try:
            label = str(obj["label"])
            points = [(p[0], p[1]) for p in obj["polygon"]]
        except (KeyError, TypeError, IndexError):
            raise UnisegError(f"{where}: objects[{i}] needs 'label' and 'polygon' [[x, y], ...]") from None
        if obj.get("deleted", 0):
            out.skipped_deleted += 1
            continue
        if len(points) < 3:
            out.skipped_degenerate += 1
            continue
        if label not in by_name and label.endswith("group"):
            label = label[: -len("group")]
        raw = by_name.get(label)
        if raw is None:
            out.unknown[label] = out.unknown.get(label, 0) + 1
            continue
        draw.polygon(points, fill=int(raw.value))  # type: ignore[arg-type]
        out.drawn += 1
    arr = np.asarray(img)
    out.raw = arr if encoding.bits == 8 else arr.astype(np.uint16)
    return out


# -- whole files ------------------------------------------------------------------------------


def read_label(path: str | os.PathLike, encoding: Encoding, format: str = "png") -> np.ndarray:
    """Raw values of a label file (``png`` image or ``polygons`` JSON) for ``encoding``."""
    if format == "polygons":
        return rasterize_polygons(path, encoding).raw
    img = open_image(path)
    return decode_label_image(img, encoding.kind, encoding.bits, encoding=encoding.name, path=path)


def unify_label(path: str | os.PathLike, lut: LookupTable, format: str = "png", encoding: Encoding | None = None):
    """A label file as ``(L image of the LUT's target ids, unknown)`` with 255 = void / unknown.

    ``unknown`` counts what the encoding does not list: raw values -> pixels (colours as packed
    ``r<<16|g<<8|b`` ints), or for polygon files ``"label name" -> polygons`` (not drawn).
    """
    from PIL import Image

    if format == "polygons":
        if encoding is None:
            raise ValueError("polygon labels need the Encoding (its raw names)")
        raster = rasterize_polygons(path, encoding)
        return Image.fromarray(np.ascontiguousarray(lut.apply(raster.raw)), mode="L"), dict(raster.unknown)
    img = open_image(path)
    if lut.accepts_image(img.mode):  # 8-bit ids: Pillow's C lookup, no numpy round trip
        return lut.apply_image(img)
    raw = decode_label_image(img, lut.kind, lut.bits, encoding=lut.encoding, path=path)
    try:
        unknown = lut.unknown_counts(raw)
        return Image.fromarray(np.ascontiguousarray(lut.apply(raw)), mode="L"), unknown
    except ValueError as exc:
        raise UnisegError(f"{path}: {exc}") from None


def load_unified(path: str | os.PathLike, lut: LookupTable, format: str = "png", encoding: Encoding | None = None):
    """A label file as an ``L`` Pillow image of the LUT's target ids (255 = void / unknown)."""
    from PIL import Image

    if format == "polygons":
        if encoding is None:
            raise ValueError("polygon labels need the Encoding (its raw names)")
        raw = rasterize_polygons(path, encoding).raw
        return Image.fromarray(np.ascontiguousarray(lut.apply(raw)), mode="L")
    img = open_image(path)
    if lut.accepts_image(img.mode):
        return img.point(lut.table.tolist(), "L")  # the lookup of apply_image, without its histogram
    raw = decode_label_image(img, lut.kind, lut.bits, encoding=lut.encoding, path=path)
    try:
        return Image.fromarray(np.ascontiguousarray(lut.apply(raw)), mode="L")
    except ValueError as exc:
        raise UnisegError(f"{path}: {exc}") from None


def class_lut(space: LabelSpace, encoding: str | Encoding | None = None) -> LookupTable:
    """A ``LookupTable`` from raw values to the dataset's *own* class indices (training order).

    For evaluation against the dataset's labels (``EvalMap``); same vectorised machinery as the
    unified tables, 255 for void and unknown values.
    """
    enc = encoding if isinstance(encoding, Encoding) else space.encoding(encoding)
    rows = []
    for v in enc.values:
        target = IGNORE if v.cls is None else int(v.cls)
        name = "" if v.cls is None else space.classes[v.cls].name
        if enc.kind == "rgb":
            r, g, b = v.value  # type: ignore[misc]
            rows.append(RemapRow((r << 16) | (g << 8) | b, v.name, target, name, (r, g, b)))
        else:
            rows.append(RemapRow(int(v.value), v.name, target, name))  # type: ignore[arg-type]
    rows.sort(key=lambda r: r.raw_id)
    return LookupTable(dataset=space.name, encoding=enc.name, kind=enc.kind, rows=tuple(rows), fingerprint=f"classes:{space.name}", bits=enc.bits)


def known_counts(raw: np.ndarray, lut: LookupTable) -> tuple[dict[int, int], dict[int, int]]:
    """``(seen, unknown)``: pixel counts per raw value present in ``raw`` (colours as packed ints),
    and the subset the encoding does not list. Vectorised (bincount / unique)."""
    keys = lut.keys(raw).ravel()
    if keys.dtype == np.uint8 or (keys.dtype == np.uint16 and lut.kind == "index"):
        counts = np.bincount(keys, minlength=256 if keys.dtype == np.uint8 else 1 << 16)
        present = np.flatnonzero(counts)
        seen = {int(v): int(counts[v]) for v in present}
    else:
        vals, cnt = np.unique(keys, return_counts=True)
        seen = {int(v): int(c) for v, c in zip(vals, cnt)}
    known = lut.known
    unknown = {v: n for v, n in seen.items() if v >= known.size or not known[v]}
    return seen, unknown
