"""Open label files and decode their pixels into the raw values of an encoding.

The one place that says what a label file means (remap, check, prepare and the dataset readers
all come through here):

* index encodings: ``H x W`` ids. ``L`` images as they are; ``P`` (paletted, e.g. Mapillary) as
  palette *indices* — never converted to RGB, because the index is the class; 16-/32-bit images
  as ``uint16`` (refused if the values do not fit the encoding's bits). An ``RGB`` file whose
  three channels are equal everywhere (ids saved as grey RGB by some tools) is read as its first
  channel; any other colour image (a photo where ids are expected) is refused.
* colour encodings (CamVid ``rgb``): ``H x W x 3`` uint8; ``P`` images are expanded through their
  palette, ``RGBA`` loses alpha; single-channel images are refused.
* a JPEG file is never a label: lossy compression changes the values at every edge.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from uniseg.errors import UnisegError

Problem = Literal["missing", "unreadable", "refused"]

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
LOSSY_FORMATS = ("JPEG", "MPO")


class LabelFileError(UnisegError):
    """A file that cannot be read, or cannot be a label of the encoding (``problem`` says which)."""

    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message)
        self.problem = problem


def open_image(path: str | os.PathLike, what: str = "image"):
    """Open and fully decode an image with Pillow (a truncated file fails here, not later).

    ``what`` names the file in messages ("image" or "label").
    """
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise LabelFileError(f"{path}: no such file", "missing") from None
    except UnidentifiedImageError:
        empty = " (0 bytes)" if _size(path) == 0 else ""
        article = "an" if what[:1] in "aeiou" else "a"
        raise LabelFileError(
            f"{path}: not {article} {what} file Pillow can read{empty} (is it truncated or another format?)", "unreadable"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise LabelFileError(f"{path}: unreadable {what} ({exc}); re-extract the dataset archive", "unreadable") from None


def photo_rgb(img, path: str | os.PathLike | None = None):
    """``(image, how)``: a photo as 8-bit RGB, and how it was converted when it was not 8-bit (else None).

    Pillow's ``convert("RGB")`` clips 16-bit and float images to 0..255 (a 16-bit photo turns
    white, a float one in [0, 1] black). Here 16-bit values are scaled by 255/65535 and floats in
    [0, 1] by 255 (floats within 0..255 are rounded); floats of any other range, NaN or infinity
    are refused (``LabelFileError``, problem "refused"): nothing says what they mean.
    """
    from PIL import Image

    if img.mode == "RGB":
        return img, None
    if img.mode in SIXTEEN_BIT_MODES:
        a = np.asarray(img)
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if img.mode == "I" and hi <= 255 and lo >= 0:  # 8-bit values in a 32-bit image
            return Image.fromarray(a.astype(np.uint8), "L").convert("RGB"), None
        if lo < 0 or hi > 65535:
            raise LabelFileError(f"{path}: a 32-bit image with values from {lo} to {hi}; give 8-bit (or 16-bit) images", "refused")
        grey = np.round(a.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB"), "16-bit greyscale, scaled to 8 bits (value x 255 / 65535)"
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if not np.isfinite(a).all():
            raise LabelFileError(f"{path}: a float image holding NaN or infinity; give 8-bit images (or floats in [0, 1])", "refused")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo >= 0.0 and hi <= 1.0:
            scale, how = 255.0, "float greyscale in [0, 1], scaled to 8 bits (value x 255)"
        elif lo >= 0.0 and hi <= 255.0:
            scale, how = 1.0, "float greyscale in [0, 255], rounded to 8 bits"
        else:
            raise LabelFileError(f"{path}: a float image with values from {lo:g} to {hi:g}, not in [0, 1] or [0, 255]; "
                                 "give 8-bit images (or floats in [0, 1])", "refused")
        return Image.fromarray(np.round(a * scale).astype(np.uint8), "L").convert("RGB"), how
    return img.convert("RGB"), None


def _size(path) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def open_label_image(path: str | os.PathLike):
    """``open_image`` for a label file; a JPEG is refused (its compression corrupts ids)."""
    img = open_image(path, "label")
    if img.format in LOSSY_FORMATS:
        raise LabelFileError(
            f"{path}: a {img.format} file cannot hold labels (lossy compression changes the values at every edge); "
            "use the dataset's PNG label files",
            "refused",
        )
    return img


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
        raise LabelFileError(
            f"{where}{mode} image, but encoding {encoding!r} stores classes as RGB colours "
            "(point it at the colour label files, e.g. CamVid *_L.png)",
            "refused",
        )
    if mode in ("L", "P"):  # P: the palette index is the id (Mapillary); never convert to RGB
        arr = np.asarray(img)
    elif mode in SIXTEEN_BIT_MODES:
        arr = np.asarray(img)
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi >= 1 << 16:
            raise LabelFileError(f"{where}{mode} image with values {lo}..{hi}: not a label id image", "refused")
        arr = arr.astype(np.uint16, copy=False)
    elif mode in ("RGB", "RGBA"):
        arr = np.asarray(img)
        grey = arr[..., 0]
        if not (np.array_equal(grey, arr[..., 1]) and np.array_equal(grey, arr[..., 2])):
            raise LabelFileError(
                f"{where}{mode} colour image, but encoding {encoding!r} stores single-channel ids "
                "(is this a photo or a colour visualisation, not a label id image?)",
                "refused",
            )
        arr = np.ascontiguousarray(grey)
    else:
        raise LabelFileError(f"{where}{mode} image, but encoding {encoding!r} stores single-channel ids (L, P or 16-bit)", "refused")
    if arr.dtype != np.uint8 and bits == 8:
        hi = int(arr.max()) if arr.size else 0
        if hi > 255:
            raise LabelFileError(
                f"{where}values up to {hi} do not fit 8-bit encoding {encoding!r} "
                "(an instance-id or 16-bit label? use the *_labelIds / class-id files)",
                "refused",
            )
        arr = arr.astype(np.uint8)
    return arr
