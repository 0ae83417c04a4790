"""The vertical planes beside the road: facades and tree lines, low front planes (fences, hedges,
garden walls), guard rails, and billboards on facades.

A plane stands at one lateral position X, parallel to the road, and is cut along the depth Z into
stretches (:class:`Segment`) of one class each; ``PLANE_STRETCHES`` says which classes make up a
plane of each role and scene kind, how long their stretches run and how high they stand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from uniseg.data.synth.classes import FINE
from uniseg.data.synth.ground import Road
from uniseg.data.synth.palette import FACADES, GLASS, Palette
from uniseg.data.synth.raster import Camera, Canvas
from uniseg.data.synth.sampling import smooth_noise, uniform, weighted_cdf, weighted_pick

#: What a plane is made of, by (role, scene kind): one row per class as
#: ``(class name or "gap", weight, (shortest, longest) stretch in metres along Z, (lowest, highest) height
#: in metres)``. Stretches follow each other from just behind the camera to ``PLANE_DEPTH``, each
#: drawn by weight; a "gap" leaves the plane open there. Roles: ``facade`` (the far plane: buildings,
#: walls, tree lines), ``front`` (a low plane at the back of the sidewalk: fences, garden walls,
#: hedges), ``rail`` (a guard rail at the edge of a country road).
PLANE_STRETCHES = {
    ("facade", "urban"): [("building", 0.82, (8, 30), (9, 28)), ("wall", 0.05, (5, 15), (2, 3.5)),
                          ("gap", 0.08, (4, 12), (0, 0)), ("vegetation", 0.05, (5, 12), (4, 9))],
    ("facade", "residential"): [("building", 0.5, (8, 16), (5, 10)), ("vegetation", 0.3, (5, 15), (3, 8)),
                                ("gap", 0.2, (4, 12), (0, 0))],
    ("facade", "rural"): [("vegetation", 0.6, (10, 40), (4, 12)), ("gap", 0.33, (5, 30), (0, 0)),
                          ("building", 0.07, (8, 15), (4, 8))],
    ("front", "urban"): [("fence", 0.5, (5, 20), (1.0, 1.4)), ("gap", 0.5, (5, 25), (0, 0))],
    ("front", "residential"): [("fence", 0.35, (4, 15), (1.0, 1.8)), ("wall", 0.2, (4, 12), (0.8, 2.0)),
                               ("vegetation", 0.25, (4, 12), (1.0, 1.9)), ("gap", 0.2, (2, 8), (0, 0))],
    ("rail", "rural"): [("guard rail", 0.7, (20, 80), (0.75, 0.75)), ("gap", 0.3, (5, 30), (0, 0))],
}
#: Metres: planes are cut into stretches up to this depth.
PLANE_DEPTH = 260.0
#: Metres: the first stretch starts somewhere in this range of depths (behind the camera or just before it).
PLANE_START = (-6.0, 2.0)


@dataclass
class Segment:
    """One stretch of a plane: class ``cls`` from depth ``z0`` to ``z1`` and from height ``y0`` to ``y1``
    (metres), its colour, its pattern (windows, slats, rail, leaves, bricks) and any billboards on it
    as ``(z0, z1, y0, y1, colour)``."""

    z0: float
    z1: float
    cls: int
    y0: float
    y1: float
    colour: np.ndarray
    pattern: str = ""
    billboards: list = field(default_factory=list)


def plane_segments(rng: np.random.Generator, role: str, kind: str, pal: Palette, zmax: float = PLANE_DEPTH) -> list[Segment]:
    """Stretches along Z of one plane of ``role`` in a ``kind`` scene (``PLANE_STRETCHES``): what stands there and how high."""
    table = PLANE_STRETCHES[(role, kind)]
    cdf = weighted_cdf([t[1] for t in table])
    segs: list[Segment] = []
    z = uniform(rng, PLANE_START)
    while z < zmax:
        i = weighted_pick(rng, cdf)
        name, _, lrange, hrange = table[i]
        length = uniform(rng, lrange)
        if name != "gap":
            cls = getattr(FINE, name.replace(" ", "_"))
            h = uniform(rng, hrange)
            if cls == FINE.building:
                colour = pal.tone(FINE.building, FACADES[rng.integers(len(FACADES))])
                pattern = "windows"
            elif cls == FINE.fence:
                colour, pattern = pal.vary(FINE.fence, rng, 0.15), "slats"
            elif cls == FINE.guard_rail:
                colour, pattern = pal.vary(FINE.guard_rail, rng, 0.05), "rail"
            elif cls == FINE.vegetation:
                colour, pattern = pal.vary(FINE.vegetation, rng, 0.12), "leaves"
            else:
                colour, pattern = pal.vary(cls, rng, 0.1), "bricks"
            segs.append(Segment(z, z + length, cls, 0.0, h, colour, pattern))
        z += length
    return segs


def roadside_planes(rng: np.random.Generator, road: Road, kind: str, pal: Palette) -> list[tuple[float, list[Segment]]]:
    """The planes of both sides as ``(X, stretches)``: per side (right, then left) the facade, the front
    plane if the side has one (not in rural scenes), the guard rail if it has one."""
    planes: list[tuple[float, list[Segment]]] = []
    for side in (road.right, road.left):
        segs = plane_segments(rng, "facade", kind, pal)
        planes.append((side.facade, segs))
        if side.front is not None and kind != "rural":
            planes.append((side.front, plane_segments(rng, "front", kind, pal)))
        if side.rail is not None:
            planes.append((side.rail, plane_segments(rng, "rail", "rural", pal)))
    return planes


def draw_planes(cv: Canvas, cam: Camera, planes: list[tuple[float, list[Segment]]], rng: np.random.Generator,
                pal: Palette, night: bool) -> None:
    """Draw ``planes`` (:func:`roadside_planes`), the farthest lateral position first."""
    for X, segs in sorted(planes, key=lambda p: -abs(p[0])):
        draw_plane(cv, cam, X, segs, rng, pal, night)


def draw_plane(cv: Canvas, cam: Camera, X: float, segs: list[Segment], rng: np.random.Generator, pal: Palette, night: bool) -> None:
    """A vertical plane at lateral position X, parallel to the road, cut into segments along Z."""
    if not segs:
        return
    dx = np.arange(cv.W, dtype=np.float32) + np.float32(0.5 - cam.xv)
    cols = np.nonzero(dx > 0.25)[0] if X > 0 else np.nonzero(dx < -0.25)[0]
    if cols.size == 0:
        return
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    Zc = (cam.f * X / dx[c0:c1]).astype(np.float32)  # (C,) depth of the plane in each column
    starts = np.array([s.z0 for s in segs], np.float32)
    ends = np.array([s.z1 for s in segs], np.float32)
    k = np.clip(np.searchsorted(starts, Zc, side="right") - 1, 0, len(segs) - 1)
    valid = (Zc >= starts[k]) & (Zc < ends[k]) & (Zc > 0.3)
    if not valid.any():
        return
    vi = np.nonzero(valid)[0]
    a, b = int(vi[0]), int(vi[-1]) + 1
    c0, c1 = c0 + a, c0 + b
    Zc, k, valid = Zc[a:b], k[a:b], valid[a:b]
    y1 = np.array([s.y1 for s in segs], np.float32)[k]
    cls = np.array([s.cls for s in segs], np.uint8)[k]
    col = np.stack([s.colour for s in segs]).astype(np.float32)[k]  # (C, 3)
    veg = cls == FINE.vegetation
    if veg.any():
        n = smooth_noise(rng, 1, c1 - c0, 1, max((c1 - c0) // 30, 2))[0]
        y1 = np.where(veg, y1 * (1 + 0.25 * n), y1)
    # rows of the plane in each column: height Y in [0, y1) over the ground
    ytop = np.where(valid, cam.yh - (y1 - cam.h) * cam.f / Zc, np.inf).astype(np.float32)
    ybot = np.where(valid, cam.yh + cam.h * cam.f / Zc, -np.inf).astype(np.float32)
    r0 = max(int(np.floor(ytop.min())), 0)
    r1 = min(int(np.ceil(ybot.max())), cv.H)
    if r1 <= r0:
        return
    ys = np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5
    m = (ys >= ytop[None, :]) & (ys < ybot[None, :])
    Y = np.float32(cam.h) + (np.float32(cam.yh) - ys) * (Zc / np.float32(cam.f))[None, :]  # (R, C)
    zl = Zc - starts[k]  # distance along the segment
    rail = cls == FINE.guard_rail
    if rail.any():
        band = ((Y >= 0.45) & (Y < 0.75)) | ((zl % 2.0) < 0.12)[None, :]
        m &= ~rail[None, :] | band
    sl = (slice(r0, r1), slice(c0, c1))
    m &= cv.depth[sl] > Zc[None, :]
    if not m.any():
        return
    lab = np.broadcast_to(cls[None, :], m.shape).copy()
    # planar albedo (3, R, C): the patterns below are contiguous per-channel operations
    base = col * np.float32(0.88 if X < 0 else 1.0)  # sun from the right
    alb = np.empty((3,) + m.shape, np.float32)
    alb[:] = base.T[:, None, :]
    bld = cls == FINE.building
    if bld.any():
        pitch = 3.5
        zp = zl % pitch
        # windows: the (costly) modulo only in the columns that can hold one
        wc = np.nonzero(bld & (zp > 0.9) & (zp < 2.6))[0]
        Yw = Y[:, wc]
        fy = Yw % 3.2
        win = np.zeros(m.shape, np.bool_)
        win[:, wc] = (fy > 1.0) & (fy < 2.4) & (Yw > 3.2) & (Yw < (y1[wc] - 0.8)[None, :])
        high = np.zeros(m.shape, np.bool_)
        high[:, wc] = Yw > 10
        glass = GLASS.astype(np.float64)  # as GLASS * (1.2 + 0.6 * (Y > 10)) computes it
        _fill_masked(alb, win & ~high, glass * 1.2)
        _fill_masked(alb, win & high, glass * (1.2 + 0.6))
        z6 = zl % 6.0
        shop = (bld & (z6 > 0.6) & (z6 < 4.6))[None, :] & (Y > 0.4) & (Y < 2.8)
        _fill_masked(alb, shop, GLASS * 0.9)
        if night:
            lit = np.zeros(m.shape, np.bool_)
            lit[:, wc] = (np.floor(zl / pitch)[wc][None, :] + np.floor(Yw / 3.2)) * 7 % 5 == 0
            _fill_masked(alb, lit & win, np.array([1.0, 0.85, 0.55], np.float32))
    fen = cls == FINE.fence
    if fen.any():
        _scale_masked(alb, (fen & ((zl % 0.2) < 0.08))[None, :] & m, 0.6)
    if veg.any():
        leaf = smooth_noise(rng, r1 - r0, c1 - c0, 2, 2)
        _scale_masked(alb, veg[None, :] & m, 1 + 0.3 * leaf)
    wall = cls == FINE.wall
    if wall.any():
        vc = np.nonzero(wall)[0]
        joints = np.zeros(m.shape, np.bool_)
        joints[:, vc] = (Y[:, vc] % 0.5) < 0.05
        _scale_masked(alb, joints, 0.85)
    for s in segs:  # billboards on building segments
        for (bz0, bz1, by0, by1, bcol) in s.billboards:
            bc = np.nonzero((Zc >= bz0) & (Zc < bz1))[0]
            if bc.size == 0:
                continue
            cs = slice(int(bc[0]), int(bc[-1]) + 1)  # Zc is monotonic: the columns are one run
            Yb = Y[:, cs]
            bm = m[:, cs] & (Yb >= by0) & (Yb < by1)
            if bm.any():
                lab[:, cs][bm] = FINE.billboard
                sub = alb[:, :, cs]
                _fill_masked(sub, bm, bcol)
                _fill_masked(sub, bm & ((Yb - by0) % 0.8 < 0.3), bcol * 0.6 + 0.35)
    np.copyto(cv.label[sl], lab, where=m)
    for k in range(3):
        np.copyto(cv.albedo[k][sl], alb[k], where=m)
    np.copyto(cv.depth[sl], Zc[None, :], where=m)
    if cv.lit:
        cv.emit[sl] &= ~m


def _fill_masked(planes: np.ndarray, mask: np.ndarray, rgb) -> None:
    """``image[mask] = rgb`` for a planar (3, H, W) float32 image (``rgb`` cast to float32 as numpy would)."""
    for k in range(3):
        planes[k][mask] = rgb[k]


def _scale_masked(planes: np.ndarray, mask: np.ndarray, factor) -> None:
    """``image[mask] *= factor`` (a number or an H x W array) for a planar (3, H, W) float32 image."""
    for k in range(3):
        np.multiply(planes[k], factor, out=planes[k], where=mask)


def add_billboards(rng: np.random.Generator, segs: list[Segment], count: int, pal: Palette) -> None:
    """Hang ``count`` billboards on building stretches of ``segs`` that are near, high and in front of the camera."""
    blds = [s for s in segs if s.cls == FINE.building and s.z1 > 3 and s.y1 > 6 and s.z0 < 80]
    for _ in range(count):
        if not blds:
            return
        s = blds[int(rng.integers(len(blds)))]
        w = uniform(rng, (3.0, 7.0))
        z0 = uniform(rng, (max(s.z0, 2.0), max(s.z0 + 0.1, s.z1 - w)))
        y0 = uniform(rng, (3.0, max(3.1, min(s.y1 - 3.5, 8.0))))
        colour = np.clip(pal[FINE.billboard] * (0.5 + rng.random(3)), 0, 1).astype(np.float32)
        s.billboards.append((z0, z0 + w, y0, y0 + uniform(rng, (2.0, 3.5)), colour))
