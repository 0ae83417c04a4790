"""A label file through a lookup table: the one path from a file on disk to unified (or the
dataset's own) class ids, used by ``labels remap``, ``data check``, ``data prepare`` and
``SegDataset`` alike, so a file means the same thing everywhere.

Decoding is ``uniseg.labelfiles`` (a JPEG, a photo where ids are expected, values that do not
fit the encoding: refused); a file whose unknown values cover more than a small share of its
pixels, or that holds more than a few distinct unknown values, is refused as no label of the
encoding (``uniseg.labelfiles.unknown``). A few stray unknown values are counted and become 255.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from uniseg.labelfiles import LabelFileError, decode_label_image, open_label_image, rasterize_polygons, refuse_unlikely_label
from uniseg.labelspaces.schema import Encoding
from uniseg.unify.lut import LookupTable


@dataclass
class UnifiedLabel:
    """A label file mapped through a table: an ``L`` image of target ids (255 = void / unknown)."""

    image: object  # PIL.Image.Image, mode L
    unknown: dict  # raw value (colours as packed keys) -> pixels; polygon files: label name -> polygons
    pixels: int
    values: dict | None = None  # every raw value seen -> pixels (``with_values=True``)


def read_unified(path: str | os.PathLike, lut: LookupTable, format: str = "png", encoding: Encoding | None = None,
                 *, with_values: bool = False) -> UnifiedLabel:
    """Decode the label file ``path`` and map it through ``lut``; ``LabelFileError`` if it is no label.

    ``format``: 'png' (any label image) or 'polygons' (IDD JSON, which needs the ``encoding``).
    """
    from PIL import Image

    if format == "polygons":
        if encoding is None:
            raise ValueError("polygon labels need the Encoding (its raw names)")
        raster = rasterize_polygons(path, encoding)
        image = Image.fromarray(np.ascontiguousarray(lut.apply(raster.raw)), mode="L")
        values = lut.value_counts(raster.raw)[0] if with_values else None
        return UnifiedLabel(image, dict(raster.unknown), int(raster.raw.size), values)
    img = open_label_image(path)
    pixels = img.width * img.height
    values, image, raw = None, None, None
    if lut.accepts_image(img.mode):  # 8-bit ids: Pillow's C lookup and histogram, no numpy round trip
        image, unknown = lut.apply_image(img)
        if with_values:
            values = {v: n for v, n in enumerate(img.histogram()) if n}
    else:
        raw = decode_label_image(img, lut.kind, lut.bits, encoding=lut.encoding, path=path)
        values, unknown = lut.value_counts(raw) if with_values else (None, lut.unknown_counts(raw))
    refuse_unlikely_label(unknown, pixels, path=path, encoding=f"{lut.dataset}.{lut.encoding}", colour=lut.kind == "rgb")
    if image is None:
        try:
            image = Image.fromarray(np.ascontiguousarray(lut.apply(raw)), mode="L")
        except ValueError as exc:  # values beyond the table (a 16-bit file for an 8-bit encoding)
            raise LabelFileError(f"{path}: {exc}", "refused") from None
    return UnifiedLabel(image, unknown, pixels, values)
