"""Label files: which files hold an encoding's labels, and what their pixels mean.

Below both ``uniseg.unify`` and ``uniseg.data``, so that remap, check, prepare and the dataset
readers read a file the same way:

* ``select_label_files`` — the files of one encoding among a folder's files (select.py)
* ``open_label_image`` / ``decode_label_image`` — pixels -> raw values of an encoding (decode.py)
* ``photo_rgb`` — a photo as 8-bit RGB: 16-bit and float images scaled, not clipped (decode.py)
* ``rasterize_polygons`` — IDD polygon JSON -> raw ids, as the IDD toolkit does (polygons.py)
* ``refuse_unlikely_label`` — many unknown values: not a label of that encoding (unknown.py)
* ``pack_rgb`` / ``unpack_rgb`` — the one RGB-key codec (rgbkey.py)
"""

from uniseg.labelfiles.decode import LabelFileError, decode_label_image, open_image, open_label_image, photo_rgb
from uniseg.labelfiles.polygons import PolygonRaster, background_value, load_polygon_json, rasterize_polygons
from uniseg.labelfiles.rgbkey import format_raw, pack_rgb, unpack_rgb
from uniseg.labelfiles.select import LABEL_SUFFIXES, Selection, pattern_for_split, select_label_files
from uniseg.labelfiles.unknown import MAX_UNKNOWN_SHARE, MAX_UNKNOWN_VALUES, REPORT_TOP, refuse_unlikely_label, top_values

__all__ = [
    "LABEL_SUFFIXES",
    "MAX_UNKNOWN_SHARE",
    "MAX_UNKNOWN_VALUES",
    "REPORT_TOP",
    "LabelFileError",
    "PolygonRaster",
    "Selection",
    "background_value",
    "decode_label_image",
    "format_raw",
    "load_polygon_json",
    "open_image",
    "open_label_image",
    "pack_rgb",
    "pattern_for_split",
    "photo_rgb",
    "rasterize_polygons",
    "refuse_unlikely_label",
    "select_label_files",
    "top_values",
    "unpack_rgb",
]
