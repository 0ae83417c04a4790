"""The one RGB-key codec: a colour ``(r, g, b)`` as the 24-bit key ``r<<16 | g<<8 | b`` and back.

Colour encodings (CamVid) look colours up in dense tables indexed by this key; reports turn keys
back into colours. Both directions work on numpy arrays (vectorised) and on single values.
"""

from __future__ import annotations

from typing import overload

import numpy as np

RGB = tuple[int, int, int]


@overload
def pack_rgb(rgb: np.ndarray) -> np.ndarray: ...
@overload
def pack_rgb(rgb: tuple[int, int, int] | list[int]) -> int: ...
def pack_rgb(rgb):
    """``... x 3`` uint8 colours -> ``...`` uint32 keys; one ``(r, g, b)`` -> one int key."""
    if not isinstance(rgb, np.ndarray):
        r, g, b = (int(v) for v in rgb)
        return (r << 16) | (g << 8) | b
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    flat = rgb.reshape(-1, 3).astype(np.uint32)
    return (flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]).reshape(rgb.shape[:-1])


@overload
def unpack_rgb(key: np.ndarray) -> np.ndarray: ...
@overload
def unpack_rgb(key: int) -> RGB: ...
def unpack_rgb(key):
    """Keys -> ``... x 3`` uint8 colours; one int key -> one ``(r, g, b)`` tuple."""
    if not isinstance(key, np.ndarray):
        k = int(key)
        return ((k >> 16) & 255, (k >> 8) & 255, k & 255)
    k = key.astype(np.uint32, copy=False)
    return np.stack([(k >> 16) & 255, (k >> 8) & 255, k & 255], axis=-1).astype(np.uint8)


def format_raw(value: int | str, colour: bool) -> str:
    """A raw value as people read it: an id, ``(r,g,b)`` for a colour key, a polygon label name as is."""
    if colour and not isinstance(value, str):
        return "({},{},{})".format(*unpack_rgb(int(value)))
    return str(value)
