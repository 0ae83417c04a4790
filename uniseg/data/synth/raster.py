"""Vectorised rasterisation: a canvas of fine labels, albedo, depth, and the primitives drawn on it.

Every primitive works on its bounding box only, with numpy masks (no per-pixel Python loops), and
draws where it is nearer than what is there (a depth test), so the drawing order only matters
between shapes at the same depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FAR = np.float32(1e6)


class Canvas:
    """The fine label (uint8), albedo (float32 RGB in 0-1), depth (metres) and emissive mask of a scene.

    The albedo is planar, ``(3, H, W)``: whole-image steps work on contiguous channel planes.
    """

    def __init__(self, height: int, width: int) -> None:
        self.H, self.W = height, width
        self.label = np.zeros((height, width), np.uint8)
        self.albedo = np.zeros((3, height, width), np.float32)
        self.depth = np.full((height, width), FAR * 10, np.float32)
        self.emit = np.zeros((height, width), np.bool_)
        self.lit = False  # has any light source been drawn (else ``emit`` is all False)

    def box(self, x0: float, y0: float, x1: float, y1: float):
        """Pixel box covering [x0, x1) x [y0, y1), clipped: (row0, col0, row centres (h,1), col centres (1,w)) or None."""
        ix0 = max(math.floor(x0), 0)
        ix1 = min(math.ceil(x1), self.W)
        iy0 = max(math.floor(y0), 0)
        iy1 = min(math.ceil(y1), self.H)
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        xx = np.arange(ix0, ix1, dtype=np.float32)[None, :] + 0.5
        yy = np.arange(iy0, iy1, dtype=np.float32)[:, None] + 0.5
        return iy0, ix0, yy, xx

    def put(self, iy0: int, ix0: int, mask: np.ndarray, cls: int, colour, z: float, emit: bool = False) -> None:
        h, w = mask.shape
        sl = (slice(iy0, iy0 + h), slice(ix0, ix0 + w))
        depth = self.depth[sl]
        m = mask & (depth > z)
        if not m.any():
            return
        self.label[sl][m] = cls
        depth[m] = z
        per_pixel = isinstance(colour, np.ndarray) and colour.ndim == 3  # an (h, w, 3) image, else one RGB
        for k in range(3):
            self.albedo[k][sl][m] = colour[..., k][m] if per_pixel else colour[k]
        if emit:
            self.emit[sl][m] = True
            self.lit = True
        elif self.lit:
            self.emit[sl][m] = False

    def shade(self, iy0: int, ix0: int, mask: np.ndarray, factor: float, classes: np.ndarray) -> None:
        """Darken the albedo under ``mask`` where the label is one of ``classes`` (a boolean table): shadows."""
        h, w = mask.shape
        sl = (slice(iy0, iy0 + h), slice(ix0, ix0 + w))
        m = mask & classes[self.label[sl]]
        for k in range(3):
            self.albedo[k][sl][m] *= factor


def _widen(a: float, b: float) -> tuple[float, float]:
    """At least one pixel wide: thin things stay visible as one pixel (and map to a pixel centre)."""
    if b - a < 1.0:
        c = 0.5 * (a + b)
        return c - 0.5, c + 0.5
    return a, b


def rect(cv: Canvas, x0, y0, x1, y1, cls, colour, z, emit=False) -> None:
    x0, x1 = _widen(min(x0, x1), max(x0, x1))
    y0, y1 = _widen(min(y0, y1), max(y0, y1))
    b = cv.box(x0, y0, x1, y1)
    if b is None:
        return
    iy0, ix0, yy, xx = b
    m = ((yy >= y0) & (yy < y1)) & ((xx >= x0) & (xx < x1))  # a row mask and a column mask, then one 2-D and
    cv.put(iy0, ix0, m, cls, colour, z, emit)


def ellipse(cv: Canvas, cx, cy, rx, ry, cls, colour, z, emit=False, shade: tuple | None = None) -> None:
    rx, ry = max(rx, 0.5), max(ry, 0.5)
    b = cv.box(cx - rx, cy - ry, cx + rx, cy + ry)
    if b is None:
        return
    iy0, ix0, yy, xx = b
    m = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    if shade is not None:
        cv.shade(iy0, ix0, m, *shade)
        return
    cv.put(iy0, ix0, m, cls, colour, z, emit)


def ring(cv: Canvas, cx, cy, r, t, cls, colour, z) -> None:
    """A circle outline of radius ``r`` (outer) and thickness ``t`` (at least about one pixel)."""
    half = max(t / 2, 0.6)
    b = cv.box(cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1)
    if b is None:
        return
    iy0, ix0, yy, xx = b
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    m = np.abs(d - max(r - half, half)) <= half
    cv.put(iy0, ix0, m, cls, colour, z)


def polygon(cv: Canvas, pts, cls, colour, z, emit=False) -> None:
    """A simple polygon (even-odd rule) from a list of (x, y) pixel coordinates."""
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    b = cv.box(min(xs), min(ys), max(xs), max(ys))
    if b is None:
        return
    iy0, ix0, yy, xx = b
    inside = np.zeros((yy.shape[0], xx.shape[1]), np.bool_)
    n = len(pts)
    for i in range(n):
        xi, yi = pts[i]
        xj, yj = pts[(i + 1) % n]
        if yi == yj:
            continue
        crosses = (yi > yy) != (yj > yy)
        xint = (xj - xi) * (yy - yi) / (yj - yi) + xi
        inside ^= crosses & (xx < xint)
    cv.put(iy0, ix0, inside, cls, colour, z, emit)


def segment(cv: Canvas, x0, y0, x1, y1, width, cls, colour, z) -> None:
    """A thick line segment with round ends."""
    r = max(width / 2, 0.6)
    b = cv.box(min(x0, x1) - r, min(y0, y1) - r, max(x0, x1) + r, max(y0, y1) + r)
    if b is None:
        return
    iy0, ix0, yy, xx = b
    dx, dy = x1 - x0, y1 - y0
    l2 = dx * dx + dy * dy
    if l2 < 1e-9:
        m = (xx - x0) ** 2 + (yy - y0) ** 2 <= r * r
    else:
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / l2, 0.0, 1.0)
        m = (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2 <= r * r
    cv.put(iy0, ix0, m, cls, colour, z)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at height ``h`` over a flat ground, looking along +Z; horizon row ``yh``."""

    H: int
    W: int
    f: float  # focal length in pixels
    h: float  # height over the ground, metres
    yh: float  # horizon row
    xv: float  # vanishing column

    def x(self, X: float, Z: float) -> float:
        return self.xv + self.f * X / Z

    def y(self, Y: float, Z: float) -> float:
        """Image row of a point at height ``Y`` over the ground at depth ``Z``."""
        return self.yh + self.f * (self.h - Y) / Z


class Frame:
    """Draws an object standing at ground point (X, Z) in metres: u to the right, v up.

    ``flip=-1`` mirrors u (side views facing left).
    """

    def __init__(self, cv: Canvas, cam: Camera, X: float, Z: float, flip: int = 1) -> None:
        self.cv = cv
        self.z = Z
        self.s = cam.f / Z
        self.cx = cam.x(X, Z)
        self.gy = cam.y(0.0, Z)
        self.flip = flip
        self.fh = cam.f * cam.h

    def px(self, u: float) -> float:
        return self.cx + self.flip * u * self.s

    def py(self, v: float) -> float:
        return self.gy - v * self.s

    def visible(self, half_width: float, height: float) -> bool:
        x0, x1 = self.px(-half_width), self.px(half_width)
        return max(x0, x1) > 0 and min(x0, x1) < self.cv.W and self.py(height) < self.cv.H and self.gy > 0

    def rect(self, u0, v0, u1, v1, cls, colour, dz=0.0, emit=False) -> None:
        rect(self.cv, self.px(u0), self.py(v1), self.px(u1), self.py(v0), cls, colour, self.z + dz, emit)

    def ellipse(self, u, v, ru, rv, cls, colour, dz=0.0, emit=False) -> None:
        ellipse(self.cv, self.px(u), self.py(v), ru * self.s, rv * self.s, cls, colour, self.z + dz, emit)

    def ring(self, u, v, r, t, cls, colour, dz=0.0) -> None:
        ring(self.cv, self.px(u), self.py(v), r * self.s, t * self.s, cls, colour, self.z + dz)

    def poly(self, pts, cls, colour, dz=0.0, emit=False) -> None:
        polygon(self.cv, [(self.px(u), self.py(v)) for u, v in pts], cls, colour, self.z + dz, emit)

    def seg(self, u0, v0, u1, v1, width, cls, colour, dz=0.0) -> None:
        segment(self.cv, self.px(u0), self.py(v0), self.px(u1), self.py(v1), width * self.s, cls, colour, self.z + dz)

    def shadow(self, half_width: float, depth: float, factor: float, flat: np.ndarray) -> None:
        """A contact shadow on the ground under the object (albedo only): ``depth`` metres long."""
        # the ground from Z to Z + depth spans f*h*depth / (Z*(Z+depth)) rows
        ry = max(0.5 * self.fh * depth / (self.z * (self.z + depth)), 1.0)
        ellipse(self.cv, self.cx, self.gy - ry, half_width * 1.1 * self.s, ry * 1.1, 0, None, 0, shade=(factor, flat))
