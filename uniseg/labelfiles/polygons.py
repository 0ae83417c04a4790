"""IDD / Cityscapes polygon JSON (``*_gtFine_polygons.json``) rasterised into raw ids, as the IDD
toolkit's ``createLabelImage`` does."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from uniseg.errors import UnisegError
from uniseg.labelfiles.decode import LabelFileError
from uniseg.labelspaces.schema import Encoding

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
    """The parsed JSON document of a polygon file (``LabelFileError`` if it is missing or not JSON)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise LabelFileError(f"{path}: no such file", "missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelFileError(f"{path}: not a polygon JSON file ({exc})", "unreadable") from None
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
        raise LabelFileError(
            f"{where}: not a polygon file (needs imgWidth, imgHeight and objects, as *_gtFine_polygons.json)", "refused"
        ) from None
    if width <= 0 or height <= 0 or not isinstance(objects, list):
        raise LabelFileError(f"{where}: imgWidth/imgHeight must be positive and objects a list", "refused")
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
            raise LabelFileError(f"{where}: objects[{i}] needs 'label' and 'polygon' [[x, y], ...]", "refused") from None
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


