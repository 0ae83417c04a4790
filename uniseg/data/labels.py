"""Label files as the data layer reads them: raw values, and unified ids through a table.

Decoding lives in ``uniseg.labelfiles`` and mapping through a lookup table in
``uniseg.unify.apply`` (``read_unified``), shared with ``labels remap``; this module gives the
data layer's names for them. See ``uniseg.labelfiles.decode`` for what each image mode means,
and ``uniseg.labelfiles.polygons`` for IDD polygon JSON.
"""

from __future__ import annotations

import os

import numpy as np

from uniseg.labelfiles import (
    LabelFileError,
    PolygonRaster,
    background_value,
    decode_label_image,
    load_polygon_json,
    open_image,
    open_label_image,
    rasterize_polygons,
)
from uniseg.labelspaces.schema import Encoding
from uniseg.unify.apply import UnifiedLabel, read_unified
from uniseg.unify.lut import build_dataset_lut

__all__ = [
    "LabelFileError",
    "PolygonRaster",
    "UnifiedLabel",
    "background_value",
    "build_dataset_lut",
    "decode_label_image",
    "load_polygon_json",
    "open_image",
    "rasterize_polygons",
    "read_label",
    "read_unified",
]

def read_label(path: str | os.PathLike, encoding: Encoding, format: str = "png") -> np.ndarray:
    """Raw values of a label file (``png`` image or ``polygons`` JSON) for ``encoding``."""
    if format == "polygons":
        return rasterize_polygons(path, encoding).raw
    img = open_label_image(path)
    return decode_label_image(img, encoding.kind, encoding.bits, encoding=encoding.name, path=path)
