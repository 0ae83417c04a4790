"""Procedural street scenes: the fine ground truth (and an albedo to render the image from).

A scene is a flat world seen by a pinhole camera: a straight road with lanes, markings and
crosswalks, parking strips, bike lanes, curbs and sidewalks (or grass shoulders), vertical
planes beside it (facades, hedges, walls, fences, guard rails, tree lines), a skyline at the
horizon, and objects standing on the ground (vehicles, two-wheelers with or without riders,
pedestrians, animals, poles, street lights, traffic lights, signs seen from the front or the
back, street furniture, trees). Sizes are in metres, so objects shrink with depth. How often
each thing appears comes from the dataset's domain (``domains.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from PIL import Image

from uniseg.data.synth.raster import FAR, Camera, Canvas, Frame
from uniseg.data.synth.spec import fine_classes

_FINE = fine_classes()
K = SimpleNamespace(**{c.name.replace(" ", "_"): c.index for c in _FINE})
N_FINE = len(_FINE)
BASE = np.array([c.colour for c in _FINE], np.float32) / 255.0

_FLAT = np.zeros(256, np.bool_)
for _n in ("road", "lane_marking", "crosswalk_marking", "crosswalk_plain", "parking", "bike_lane", "manhole",
           "catch_basin", "pothole", "sidewalk", "curb", "curb_cut", "terrain"):
    _FLAT[getattr(K, _n)] = True

# How the scene kind scales the domain's mean object counts.
KIND_SCALE = {
    "urban": {},
    "residential": {"person": 0.5, "trash_can": 0.5, "junction_box": 0.6, "phone_booth": 0.3, "tree": 1.5, "bus": 0.5,
                    "traffic_light": 0.4, "billboard": 0.3, "street_light": 0.8, "banner": 0.3},
    "rural": {"person": 0.15, "parked_car": 0.1, "parked_bicycle": 0.1, "parked_motorcycle": 0.2, "trash_can": 0.1,
              "junction_box": 0.2, "mailbox": 0.2, "phone_booth": 0.0, "traffic_light": 0.1, "billboard": 0.0,
              "bicyclist": 0.4, "pole": 0.5, "utility_pole": 3.0, "street_light": 0.4, "banner": 0.0,
              "ground_animal": 1.5, "bus": 0.5},
}

CAR_PAINTS = np.array([[235, 235, 232], [200, 202, 205], [30, 30, 34], [60, 62, 70], [150, 25, 25], [25, 45, 110],
                       [90, 110, 140], [40, 80, 50], [190, 175, 140], [120, 120, 125]], np.float32) / 255.0
FACADES = np.array([[225, 215, 195], [170, 95, 75], [150, 150, 155], [235, 230, 220], [140, 125, 110],
                    [200, 185, 140], [185, 160, 150], [110, 100, 95]], np.float32) / 255.0
CLOTHES = np.array([[30, 30, 35], [60, 70, 110], [150, 30, 40], [200, 200, 195], [90, 90, 95], [40, 90, 60],
                    [180, 140, 60], [120, 60, 110], [70, 50, 40], [210, 120, 40]], np.float32) / 255.0
SKIN = np.array([[235, 200, 170], [200, 150, 110], [150, 100, 70], [100, 70, 50]], np.float32) / 255.0
GLASS = np.array([40, 48, 58], np.float32) / 255.0
TYRE = np.array([22, 22, 24], np.float32) / 255.0


@dataclass
class Scene:
    """A drawn scene: ``fine`` (uint8 fine ids), ``albedo`` (planar 3 x H x W), ``depth`` (metres), ``emit`` (light sources)."""

    fine: np.ndarray
    albedo: np.ndarray
    depth: np.ndarray
    emit: np.ndarray
    night: bool
    kind: str
    camera: Camera
    objects: list[str] = field(default_factory=list)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell_y: int, cell_x: int) -> np.ndarray:
    """Value noise: a coarse normal grid bilinearly upsampled to ``height x width`` (float32, std about 0.6, read-only)."""
    cell_y, cell_x = max(int(cell_y), 1), max(int(cell_x), 1)
    gh, gw = height // cell_y + 2, width // cell_x + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = Image.fromarray(grid).resize((gw * cell_x, gh * cell_y), Image.BILINEAR)
    oy, ox = cell_y // 2, cell_x // 2
    # a read-only view of Pillow's buffer: one copy less (callers never write into it)
    return np.frombuffer(big.tobytes(), np.float32).reshape(gh * cell_y, gw * cell_x)[oy : oy + height, ox : ox + width]


def _frac(v: np.ndarray) -> np.ndarray:
    """``v % 1.0``, exactly (the fractional part of a float is exact), at a fraction of the cost."""
    return v - np.floor(v)


def _cdf(weights) -> np.ndarray:
    """Cumulative distribution of ``weights``, normalised as ``Generator.choice(p=...)`` normalises it."""
    p = np.asarray(weights, np.float64)
    cdf = (p / p.sum()).cumsum()
    cdf /= cdf[-1]
    return cdf


def _pick(rng: np.random.Generator, cdf: np.ndarray) -> int:
    """``rng.choice(len(cdf), p=p)`` for the ``cdf`` of ``p``: the same single uniform draw and the same
    index, without choice()'s per-call checks of ``p`` (an eighth of the time, in a loop per plane)."""
    return int(cdf.searchsorted(rng.random(), side="right"))


def _choice(rng: np.random.Generator, weights: dict) -> object:
    keys = list(weights)
    return keys[_pick(rng, _cdf([float(weights[k]) for k in keys]))]


def _u(rng: np.random.Generator, lohi) -> float:
    lo, hi = (lohi, lohi) if isinstance(lohi, (int, float)) else lohi
    return float(lo + (hi - lo) * rng.random())


class Palette:
    """The dataset's colours: the fine base colours shifted per class (fixed per dataset), plus helpers."""

    def __init__(self, colours: np.ndarray) -> None:
        self.colours = colours.astype(np.float32)
        self.shift = self.colours / np.maximum(BASE, 1e-3)

    def __getitem__(self, cls: int) -> np.ndarray:
        return self.colours[cls]

    def tone(self, cls: int, rgb: np.ndarray) -> np.ndarray:
        """An instance colour ``rgb`` shifted like the dataset shifts class ``cls``."""
        return np.clip(rgb * np.clip(self.shift[cls], 0.6, 1.6), 0, 1).astype(np.float32)

    def vary(self, cls: int, rng: np.random.Generator, amount: float = 0.08) -> np.ndarray:
        return np.clip(self.colours[cls] * (1 + amount * rng.standard_normal(3)), 0, 1).astype(np.float32)


def _shifted(colours: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Colours shifted per class, mostly in brightness and less in hue (a road stays grey-ish)."""
    n = len(colours)
    shift = 1 + jitter * (0.8 * rng.standard_normal((n, 1)) + 0.45 * rng.standard_normal((n, 3)))
    return np.clip(colours * shift, 0, 1).astype(np.float32)


def domain_palette(rng: np.random.Generator, jitter: float) -> Palette:
    """Per-class colour shifts of one dataset (drawn once from the dataset's look stream)."""
    return Palette(_shifted(BASE, rng, jitter))


# --------------------------------------------------------------------------- road layout


@dataclass
class Side:
    sign: int  # +1 right, -1 left
    parking: tuple[float, float] | None = None
    bike: tuple[float, float] | None = None
    curb: tuple[float, float] | None = None
    walk: tuple[float, float] | None = None  # sidewalk, or grass shoulder in rural scenes
    front: float | None = None  # X of the low front plane (fences, hedges), if any
    facade: float = 20.0  # X of the facade / tree-line plane
    rail: float | None = None  # X of a guard rail


@dataclass
class Road:
    kind: str
    lane_w: float
    xc: float
    xl: float
    xr: float
    ours: list[float]
    oncoming: list[float]
    right: Side
    left: Side
    bands: list[tuple[float, int]]  # (upper X edge, class) from left to right; the last edge is +inf
    lines: list[tuple[float, str, float]]  # (X, 'dash' | 'solid', width)
    crosswalk: tuple[float, float, bool] | None  # (z0, z1, plain)


def _side(rng: np.random.Generator, kind: str, edge: float, sign: int, parking: bool, bike: bool) -> tuple[Side, list]:
    side = Side(sign)
    bands: list[tuple[int, float]] = []  # outward from the road edge: (class, width)
    x = edge

    def add(cls: int, width: float) -> tuple[float, float]:
        nonlocal x
        a, b = x, x + sign * width
        bands.append((cls, width))
        x = b
        return (min(a, b), max(a, b))

    if parking:
        side.parking = add(K.parking, _u(rng, (2.0, 2.5)))
    if bike:
        side.bike = add(K.bike_lane, _u(rng, (1.3, 1.8)))
    if kind == "rural":
        side.walk = add(K.terrain, _u(rng, (2.5, 8.0)))
        if rng.random() < 0.6:
            side.rail = edge + sign * _u(rng, (0.5, 1.0))
        side.facade = x + sign * _u(rng, (0.0, 12.0))
        return side, bands
    side.curb = add(K.curb, 0.25)
    if kind == "urban":
        side.walk = add(K.sidewalk, _u(rng, (2.5, 5.5)))
        if rng.random() < 0.2:
            side.front = x
        side.facade = x + sign * _u(rng, (0.0, 1.0))
        add(K.terrain if side.facade != x else K.sidewalk, abs(side.facade - x) + 0.01)
    else:
        side.walk = add(K.sidewalk, _u(rng, (1.5, 2.8)))
        side.front = x
        garden = _u(rng, (2.0, 9.0))
        add(K.terrain, garden)
        side.facade = x
    return side, bands


def make_road(rng: np.random.Generator, kind: str, cfg: dict) -> Road:
    lane_w = _u(rng, cfg["lane_width"])
    n_ours = int(_choice(rng, cfg["lanes"]))
    n_on = int(_choice(rng, cfg["oncoming"]))
    if kind == "rural":  # country roads carry traffic both ways
        n_on = max(n_on, 1)
    cam_lane = int(rng.integers(n_ours))
    xc = -(cam_lane + 0.5) * lane_w
    ours = [xc + (i + 0.5) * lane_w for i in range(n_ours)]
    oncoming = [xc - (i + 0.5) * lane_w for i in range(n_on)]
    xr, xl = xc + n_ours * lane_w, xc - n_on * lane_w
    parking_p = cfg["parking"] if kind != "rural" else 0.0
    bike_p = cfg["bike_lane"] if kind != "rural" else 0.0
    right, rb = _side(rng, kind, xr, +1, rng.random() < parking_p, rng.random() < bike_p)
    left, lb = _side(rng, kind, xl, -1, rng.random() < parking_p * 0.5, rng.random() < bike_p * 0.4)

    # ground bands from left to right as (upper edge, class)
    bands: list[tuple[float, int]] = []
    x = xl - sum(w for _, w in lb)
    bands.append((x, K.terrain))
    for cls, w in reversed(lb):
        x += w
        bands.append((x, cls))
    bands.append((xr, K.road))
    x = xr
    for cls, w in rb:
        x += w
        bands.append((x, cls))
    bands.append((np.inf, K.terrain))

    lines: list[tuple[float, str, float]] = []
    if rng.random() < cfg["markings"]:
        w = _u(rng, (0.12, 0.16))
        for i in range(1, n_ours):
            lines.append((xc + i * lane_w, "dash", w))
        for i in range(1, n_on):
            lines.append((xc - i * lane_w, "dash", w))
        if n_on:
            lines.append((xc, "solid" if rng.random() < 0.5 else "dash", w))
        if right.parking is None or right.bike is not None:
            lines.append((xr - 0.25, "solid", w))
        if left.parking is None and n_on:
            lines.append((xl + 0.25, "solid", w))
        if right.bike is not None:
            lines.append((right.bike[0] + 0.1, "solid", w * 1.5))
    crosswalk = None
    if kind != "rural" and rng.random() < cfg["crosswalk"]:
        z0 = _u(rng, (7.0, 35.0))
        crosswalk = (z0, z0 + _u(rng, (3.0, 5.0)), bool(rng.random() < cfg["plain_crosswalk"]))
    return Road(kind, lane_w, xc, xl, xr, ours, oncoming, right, left, bands, lines, crosswalk)


# --------------------------------------------------------------------------- sky, skyline, ground


def draw_sky(cv: Canvas, cam: Camera, rng: np.random.Generator, look: dict, night: bool) -> None:
    top = np.array(look["sky_top"], np.float32) / 255 * (1 + 0.05 * rng.standard_normal(3)).astype(np.float32)
    hor = np.array(look["sky_horizon"], np.float32) / 255 * (1 + 0.03 * rng.standard_normal(3)).astype(np.float32)
    if night:
        top, hor = top * 0.12, hor * 0.25
    rows = min(max(int(np.ceil(cam.yh)) + 1, 1), cv.H)  # the ground covers every row below (draw_ground)
    ys = (np.arange(rows, dtype=np.float32) + 0.5) / max(cam.yh, 1.0)
    t = np.clip(ys, 0, 1)[:, None] ** 0.7
    grad = top[None, :] * (1 - t) + hor[None, :] * t  # (rows, 3)
    sky = cv.albedo[:, :rows]
    cloudiness = float(look["clouds"]) * _u(rng, (0.3, 1.5))
    if cloudiness > 0:
        n = smooth_noise(rng, rows, cv.W, max(cv.H // 6, 2), max(cv.W // 5, 2))
        n = n + 0.5 * smooth_noise(rng, rows, cv.W, max(cv.H // 20, 2), max(cv.W // 14, 2))
        c = np.clip((n - 0.6 + cloudiness) * 1.5, 0, 1) * min(cloudiness, 1.0)
        cloud = np.float32(0.9 if not night else 0.2) * (1 - 0.15 * np.clip(n, 0, 1))
        for k in range(3):  # sky = grad + (cloud - grad) * c
            g = grad[:, k : k + 1]
            sky[k] = g + (cloud - g) * c
    else:
        sky[:] = grad.T[:, :, None]
    cv.label[:] = K.sky
    cv.albedo[:, rows:] = sky[:, -1:]
    cv.depth[:] = FAR


def draw_skyline(cv: Canvas, cam: Camera, rng: np.random.Generator, kind: str, pal: Palette) -> None:
    """Far buildings and trees along the horizon (depth 400 m)."""
    zf = 400.0
    x = 0
    bottom = cam.yh + cam.f * cam.h / zf
    p_build = {"urban": 0.75, "residential": 0.4, "rural": 0.1}[kind]
    veg_n = smooth_noise(rng, 1, cv.W, 1, max(cv.W // 40, 2))[0]
    while x < cv.W:
        w = int(rng.integers(max(cv.W // 60, 2), max(cv.W // 10, 3)))
        x1 = min(x + w, cv.W)
        if rng.random() < p_build:
            hm = _u(rng, (8.0, 40.0))
            cls, col = K.building, pal.tone(K.building, FACADES[rng.integers(len(FACADES))]) * 0.85
            top = np.full(x1 - x, cam.yh - cam.f * (hm - cam.h) / zf, np.float32)
        elif rng.random() < 0.8:
            hm = _u(rng, (6.0, 18.0))
            cls, col = K.vegetation, pal.vary(K.vegetation, rng) * 0.8
            top = cam.yh - cam.f * (hm * (1 + 0.35 * veg_n[x:x1]) - cam.h) / zf
        else:
            x = x1
            continue
        ra = min(max(int(np.floor(top.min())) - 1, 0), cv.H)  # rows the strip can cover: top..bottom
        rb = min(max(int(np.ceil(bottom)) + 1, ra), cv.H)
        ys = np.arange(ra, rb, dtype=np.float32)[:, None] + 0.5
        m = (ys >= top[None, :]) & (ys < bottom)
        cv.put(ra, x, m, cls, col, zf)
        x = x1


def draw_ground(cv: Canvas, cam: Camera, rng: np.random.Generator, road: Road, pal: Palette, cfg: dict) -> None:
    """Road, markings, crosswalks, parking, bike lanes, curbs, sidewalks and grass: every row below the horizon."""
    r0 = int(np.floor(cam.yh + 0.25))
    r0 = max(r0, 0)
    if r0 >= cv.H:
        return
    rows = np.arange(r0, cv.H, dtype=np.float32) + 0.5
    d = np.maximum(rows - cam.yh, 0.25)
    Z = (cam.f * cam.h / d)[:, None]  # (R, 1)
    X = (np.arange(cv.W, dtype=np.float32)[None, :] + 0.5 - cam.xv) * (cam.h / d)[:, None]  # (R, W)
    edges = np.array([e for e, _ in road.bands[:-1]], np.float32)
    band_cls = np.array([c for _, c in road.bands], np.uint8)
    lab = np.take(band_cls, np.searchsorted(edges, X, side="right"))
    carriage = (X >= road.xl) & (X < road.xr)

    for x, style, w in road.lines:
        m = (np.abs(X - x) < w / 2) & (lab == K.road)
        if style == "dash":
            phase = _u(rng, (0, 12))
            m &= ((Z + phase) % 12.0) < 4.0
        lab[m] = K.lane_marking
    if road.crosswalk is not None:
        z0, z1, plain = road.crosswalk
        zm = (Z >= z0) & (Z < z1)
        if plain:
            lab[zm & carriage] = K.crosswalk_plain
            edge = ((Z >= z0) & (Z < z0 + 0.2)) | ((Z >= z1 - 0.2) & (Z < z1))
            lab[edge & carriage] = K.lane_marking
        else:
            stripes = _frac(X - road.xl) < 0.5
            lab[zm & carriage & stripes & (lab != K.lane_marking)] = K.crosswalk_marking
        stop = (Z >= z0 - 1.8) & (Z < z0 - 1.4) & (X >= road.xc) & (X < road.xr)
        lab[stop & (lab == K.road)] = K.lane_marking
        zc = (Z >= z0 - 0.5) & (Z < z1 + 0.5)
        lab[zc & (lab == K.curb)] = K.curb_cut
    # drains, manholes, potholes
    kerb = road.right.curb[0] if road.right.curb else road.xr
    for _ in range(rng.poisson(cfg["catch_basins"])):
        z = _u(rng, (5.0, 45.0))
        m = (np.abs(X - (kerb - 0.3)) < 0.3) & (np.abs(Z - z) < 0.45)
        m &= (lab == K.road) | (lab == K.parking) | (lab == K.bike_lane) | (lab == K.lane_marking)
        lab[m] = K.catch_basin
    for _ in range(rng.poisson(cfg["manholes"])):
        z, x, r = _u(rng, (5.0, 40.0)), _u(rng, (road.xl + 0.6, road.xr - 0.6)), _u(rng, (0.3, 0.4))
        lab[((X - x) ** 2 + (Z - z) ** 2 < r * r) & (lab == K.road)] = K.manhole
    for _ in range(rng.poisson(cfg["potholes"])):
        z, x = _u(rng, (5.0, 30.0)), _u(rng, (road.xl + 0.5, road.xr - 0.5))
        a, b = _u(rng, (0.3, 0.8)), _u(rng, (0.3, 1.2))
        lab[(((X - x) / a) ** 2 + ((Z - z) / b) ** 2 < 1) & ((lab == K.road) | (lab == K.lane_marking))] = K.pothole

    # cheap structure: worn tyre tracks, sidewalk slabs, curb stones, drain grates, worn crossings;
    # each darkens one class, so one factor per pixel (1 elsewhere) applies them all
    shade = np.ones(lab.shape, np.float32)
    tracks = np.zeros_like(carriage)
    for c in road.ours + road.oncoming:
        tracks |= (np.abs(np.abs(X - c) - 0.8) < 0.35)
    shade[tracks & (lab == K.road)] = 0.92
    slab = (_frac(X * 2.0) < 0.06) | (_frac(Z * 2.0) < 0.06)
    shade[slab & (lab == K.sidewalk)] = 0.85
    shade[(_frac(Z * 1.0) < 0.08) & (lab == K.curb)] = 0.8
    shade[(_frac(Z * 10) < 0.5) & (lab == K.catch_basin)] = 0.6
    if road.crosswalk is not None and road.crosswalk[2]:
        shade[(lab == K.crosswalk_plain) & ((_frac(X * 3) < 0.1) | (_frac(Z * 3) < 0.1))] = 0.85

    sl = slice(r0, cv.H)
    cv.label[sl] = lab
    for k in range(3):
        cv.albedo[k, sl] = np.take(pal.colours[:, k], lab) * shade
    cv.depth[sl] = np.broadcast_to(Z, lab.shape)


# --------------------------------------------------------------------------- vertical planes


@dataclass
class Seg:
    z0: float
    z1: float
    cls: int
    y0: float
    y1: float
    colour: np.ndarray
    pattern: str = ""
    billboards: list = field(default_factory=list)


def _segments(rng: np.random.Generator, role: str, kind: str, pal: Palette, zmax: float = 260.0) -> list[Seg]:
    """Stretches along Z of one plane: what stands there and how high."""
    table = {
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
    }[(role, kind)]
    cdf = _cdf([t[1] for t in table])
    segs: list[Seg] = []
    z = _u(rng, (-6.0, 2.0))
    while z < zmax:
        i = _pick(rng, cdf)
        name, _, lrange, hrange = table[i]
        length = _u(rng, lrange)
        if name != "gap":
            cls = getattr(K, name.replace(" ", "_"))
            h = _u(rng, hrange)
            if cls == K.building:
                colour = pal.tone(K.building, FACADES[rng.integers(len(FACADES))])
                pattern = "windows"
            elif cls == K.fence:
                colour, pattern = pal.vary(K.fence, rng, 0.15), "slats"
            elif cls == K.guard_rail:
                colour, pattern = pal.vary(K.guard_rail, rng, 0.05), "rail"
            elif cls == K.vegetation:
                colour, pattern = pal.vary(K.vegetation, rng, 0.12), "leaves"
            else:
                colour, pattern = pal.vary(cls, rng, 0.1), "bricks"
            segs.append(Seg(z, z + length, cls, 0.0, h, colour, pattern))
        z += length
    return segs


def draw_plane(cv: Canvas, cam: Camera, X: float, segs: list[Seg], rng: np.random.Generator, pal: Palette, night: bool) -> None:
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
    veg = cls == K.vegetation
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
    rail = cls == K.guard_rail
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
    bld = cls == K.building
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
        _fill(alb, win & ~high, glass * 1.2)
        _fill(alb, win & high, glass * (1.2 + 0.6))
        z6 = zl % 6.0
        shop = (bld & (z6 > 0.6) & (z6 < 4.6))[None, :] & (Y > 0.4) & (Y < 2.8)
        _fill(alb, shop, GLASS * 0.9)
        if night:
            lit = np.zeros(m.shape, np.bool_)
            lit[:, wc] = (np.floor(zl / pitch)[wc][None, :] + np.floor(Yw / 3.2)) * 7 % 5 == 0
            _fill(alb, lit & win, np.array([1.0, 0.85, 0.55], np.float32))
    fen = cls == K.fence
    if fen.any():
        _scale(alb, (fen & ((zl % 0.2) < 0.08))[None, :] & m, 0.6)
    if veg.any():
        leaf = smooth_noise(rng, r1 - r0, c1 - c0, 2, 2)
        _scale(alb, veg[None, :] & m, 1 + 0.3 * leaf)
    wall = cls == K.wall
    if wall.any():
        vc = np.nonzero(wall)[0]
        joints = np.zeros(m.shape, np.bool_)
        joints[:, vc] = (Y[:, vc] % 0.5) < 0.05
        _scale(alb, joints, 0.85)
    for s in segs:  # billboards on building segments
        for (bz0, bz1, by0, by1, bcol) in s.billboards:
            bc = np.nonzero((Zc >= bz0) & (Zc < bz1))[0]
            if bc.size == 0:
                continue
            cs = slice(int(bc[0]), int(bc[-1]) + 1)  # Zc is monotonic: the columns are one run
            Yb = Y[:, cs]
            bm = m[:, cs] & (Yb >= by0) & (Yb < by1)
            if bm.any():
                lab[:, cs][bm] = K.billboard
                sub = alb[:, :, cs]
                _fill(sub, bm, bcol)
                _fill(sub, bm & ((Yb - by0) % 0.8 < 0.3), bcol * 0.6 + 0.35)
    np.copyto(cv.label[sl], lab, where=m)
    for k in range(3):
        np.copyto(cv.albedo[k][sl], alb[k], where=m)
    np.copyto(cv.depth[sl], Zc[None, :], where=m)
    if cv.lit:
        cv.emit[sl] &= ~m


def _fill(planes: np.ndarray, mask: np.ndarray, rgb) -> None:
    """``image[mask] = rgb`` for a planar (3, H, W) float32 image (``rgb`` cast to float32 as numpy would)."""
    for k in range(3):
        planes[k][mask] = rgb[k]


def _scale(planes: np.ndarray, mask: np.ndarray, factor) -> None:
    """``image[mask] *= factor`` (a number or an H x W array) for a planar (3, H, W) float32 image."""
    for k in range(3):
        np.multiply(planes[k], factor, out=planes[k], where=mask)


def _add_billboards(rng: np.random.Generator, segs: list[Seg], count: int, pal: Palette) -> None:
    blds = [s for s in segs if s.cls == K.building and s.z1 > 3 and s.y1 > 6 and s.z0 < 80]
    for _ in range(count):
        if not blds:
            return
        s = blds[int(rng.integers(len(blds)))]
        w = _u(rng, (3.0, 7.0))
        z0 = _u(rng, (max(s.z0, 2.0), max(s.z0 + 0.1, s.z1 - w)))
        y0 = _u(rng, (3.0, max(3.1, min(s.y1 - 3.5, 8.0))))
        colour = np.clip(pal[K.billboard] * (0.5 + rng.random(3)), 0, 1).astype(np.float32)
        s.billboards.append((z0, z0 + w, y0, y0 + _u(rng, (2.0, 3.5)), colour))


# --------------------------------------------------------------------------- objects


def _vehicle(cv, cam, X, Z, rng, pal, night, kind: str, facing: str) -> None:
    fr = Frame(cv, cam, X, Z)
    if kind == "car":
        w, hb = _u(rng, (1.7, 1.95)), _u(rng, (1.35, 1.65))
        half, length = w / 2, 4.5
    elif kind in ("truck", "bus"):
        w, hb = 2.5, _u(rng, (3.2, 3.7)) if kind == "truck" else _u(rng, (3.0, 3.3))
        half, length = w / 2, 10.0
    elif kind == "caravan":
        w, hb, length = 2.3, _u(rng, (2.6, 2.9)), 6.5
        half = w / 2
    elif kind == "trailer":
        w, hb, length = 2.1, _u(rng, (1.8, 2.4)), 4.0
        half = w / 2
    else:  # autorickshaw
        w, hb, length = 1.4, 1.85, 2.6
        half = w / 2
    if not fr.visible(half + 0.2, hb):
        return
    fr.shadow(half, length, 0.55, _FLAT)
    cls = getattr(K, kind)
    dz = 0.0
    lights = np.array([0.95, 0.1, 0.1] if facing == "rear" else [1.0, 0.97, 0.85], np.float32)
    emit = night
    if kind == "car":
        paint = pal.tone(K.car, CAR_PAINTS[rng.integers(len(CAR_PAINTS))])
        top = 0.62 * hb
        fr.rect(-half, 0.28, half, top, cls, paint, dz)
        fr.poly([(-half + 0.05, top), (half - 0.05, top), (half - 0.25, hb), (-half + 0.25, hb)], cls, paint * 0.95, dz)
        fr.poly([(-half + 0.17, top + 0.05), (half - 0.17, top + 0.05), (half - 0.3, hb - 0.06), (-half + 0.3, hb - 0.06)],
                cls, GLASS, dz - 0.01)
        fr.rect(-half, 0.28, half, 0.45, cls, paint * 0.55, dz - 0.01)
        for sgn in (-1, 1):
            fr.rect(sgn * (half - 0.02), 0.0, sgn * (half - 0.32), 0.42, cls, TYRE, dz + 0.01)
            fr.rect(sgn * (half - 0.05), top - 0.2, sgn * (half - 0.35), top - 0.05, cls, lights, dz - 0.02, emit)
        fr.rect(-0.26, 0.47, 0.26, 0.59, cls, np.array([0.9, 0.9, 0.88], np.float32), dz - 0.02)
    elif kind in ("truck", "bus"):
        base = pal.tone(cls, pal[cls] * (0.6 + 0.8 * rng.random(3)))
        if kind == "truck":
            fr.rect(-half + 0.25, 0.35, half - 0.25, 1.0, cls, base * 0.3, dz)
            fr.rect(-half, 1.0, half, hb, cls, base, dz)
            if facing == "front":
                fr.rect(-half + 0.15, hb - 1.2, half - 0.15, hb - 0.3, cls, GLASS, dz - 0.01)
            else:
                fr.rect(-0.02, 1.05, 0.02, hb - 0.05, cls, base * 0.6, dz - 0.01)
        else:
            fr.rect(-half, 0.3, half, hb, cls, base, dz)
            fr.rect(-half + 0.12, 1.2 if facing == "rear" else 0.9, half - 0.12, hb - 0.4, cls, GLASS, dz - 0.01)
            fr.rect(-half + 0.3, hb - 0.35, half - 0.3, hb - 0.1, cls,
                    np.array([1.0, 0.6, 0.1], np.float32), dz - 0.01, night or facing == "front")
        for sgn in (-1, 1):
            fr.rect(sgn * (half - 0.05), 0.0, sgn * (half - 0.45), 0.55, cls, TYRE, dz + 0.01)
            fr.rect(sgn * (half - 0.05), 0.45, sgn * (half - 0.3), 0.65, cls, lights, dz - 0.02, emit)
    elif kind == "caravan":
        body = pal.vary(K.caravan, rng, 0.04)
        fr.rect(-half, 0.45, half, hb - 0.3, cls, body, dz)
        fr.ellipse(0.0, hb - 0.3, half, 0.3, cls, body, dz)
        fr.rect(-half, 1.0, half, 1.15, cls, np.array([0.6, 0.35, 0.2], np.float32), dz - 0.01)
        fr.rect(-0.5, 1.4, 0.5, 2.0, cls, GLASS, dz - 0.01)
        for sgn in (-1, 1):
            fr.rect(sgn * (half - 0.2), 0.0, sgn * (half - 0.45), 0.5, cls, TYRE, dz + 0.01)
            fr.rect(sgn * (half - 0.05), 0.55, sgn * (half - 0.3), 0.75, cls, lights, dz - 0.02, emit)
    elif kind == "trailer":
        body = pal.vary(K.trailer, rng, 0.1)
        fr.rect(-half, 0.6, half, hb, cls, body, dz)
        fr.rect(-0.02, 0.65, 0.02, hb - 0.05, cls, body * 0.6, dz - 0.01)
        for sgn in (-1, 1):
            fr.rect(sgn * (half - 0.1), 0.0, sgn * (half - 0.35), 0.6, cls, TYRE, dz + 0.01)
            fr.rect(sgn * (half - 0.05), 0.65, sgn * (half - 0.25), 0.8, cls, lights, dz - 0.02, emit)
    else:
        body = pal.tone(K.autorickshaw, np.array([0.2, 0.55, 0.25] if rng.random() < 0.6 else [0.95, 0.8, 0.1], np.float32))
        canopy = pal.tone(K.autorickshaw, np.array([0.1, 0.1, 0.1] if rng.random() < 0.7 else [0.9, 0.8, 0.1], np.float32))
        fr.rect(-0.65, 0.25, 0.65, 1.0, cls, body, dz)
        fr.rect(-0.7, 1.0, 0.7, hb - 0.2, cls, canopy, dz)
        fr.ellipse(0.0, hb - 0.2, 0.7, 0.2, cls, canopy, dz)
        fr.rect(-0.45, 1.05, 0.45, 1.5, cls, GLASS * 0.7, dz - 0.01)
        for sgn in (-1, 1):
            fr.rect(sgn * 0.45, 0.0, sgn * 0.65, 0.32, cls, TYRE, dz + 0.01)
            fr.rect(sgn * 0.45, 0.55, sgn * 0.62, 0.68, cls, lights, dz - 0.02, emit)


def _rider(fr: Frame, cls: int, rng, pal, seat_v: float, reach: float, helmet: bool, view: str, dz: float) -> None:
    shirt = pal.tone(cls, CLOTHES[rng.integers(len(CLOTHES))])
    legs = pal.tone(cls, CLOTHES[rng.integers(len(CLOTHES))])
    head = np.array([0.15, 0.15, 0.18], np.float32) if helmet else pal.tone(cls, SKIN[rng.integers(len(SKIN))])
    if view == "side":
        hip, sh = (-0.2, seat_v), (0.05 + 0.1 * reach, seat_v + 0.55)
        fr.seg(*hip, *sh, 0.32, cls, shirt, dz)
        fr.ellipse(sh[0] + 0.07, sh[1] + 0.2, 0.12 if helmet else 0.1, 0.13 if helmet else 0.12, cls, head, dz - 0.001)
        fr.seg(*sh, 0.3 + 0.25 * reach, seat_v + 0.1, 0.09, cls, shirt, dz - 0.001)
        knee = (0.12, seat_v - 0.18)
        fr.seg(*hip, *knee, 0.14, cls, legs, dz - 0.001)
        fr.seg(*knee, -0.02, max(seat_v - 0.75, 0.25), 0.11, cls, legs, dz - 0.001)
    else:  # seen from behind or the front: torso over the wheel, legs on both sides
        fr.rect(-0.22, seat_v, 0.22, seat_v + 0.55, cls, shirt, dz)
        fr.ellipse(0.0, seat_v + 0.72, 0.12 if helmet else 0.1, 0.13 if helmet else 0.12, cls, head, dz - 0.001)
        for sgn in (-1, 1):
            fr.seg(sgn * 0.2, seat_v + 0.5, sgn * 0.32, seat_v + 0.05, 0.09, cls, shirt, dz - 0.001)
            fr.seg(sgn * 0.12, seat_v, sgn * 0.2, max(seat_v - 0.55, 0.15), 0.12, cls, legs, dz - 0.001)


def _two_wheeler(cv, cam, X, Z, rng, pal, night, motor: bool, rider: bool, view: str) -> None:
    flip = 1 if rng.random() < 0.5 else -1
    fr = Frame(cv, cam, X, Z, flip)
    if not fr.visible(1.0, 1.8):
        return
    cls = K.motorcycle if motor else K.bicycle
    rcls = K.motorcyclist if motor else K.bicyclist
    if view == "side":
        frame_col = pal.tone(cls, CAR_PAINTS[rng.integers(len(CAR_PAINTS))] * (1.0 if motor else 0.8))
        if motor:
            r, wb = 0.32, 0.7
            for u in (-wb, wb):
                fr.ellipse(u, r, r, r, cls, TYRE, 0.0)
                fr.ellipse(u, r, r * 0.45, r * 0.45, cls, np.array([0.55, 0.55, 0.58], np.float32), -0.001)
            fr.poly([(-0.8, 0.55), (0.5, 0.45), (0.62, 0.85), (0.15, 1.0), (-0.45, 0.95), (-0.85, 0.8)], cls, frame_col, -0.002)
            fr.rect(-0.25, 0.3, 0.25, 0.6, cls, np.array([0.3, 0.3, 0.32], np.float32), -0.003)
            fr.seg(0.55, 0.9, wb, r, 0.07, cls, np.array([0.5, 0.5, 0.5], np.float32), -0.003)
            fr.seg(0.5, 1.05, 0.6, 0.9, 0.05, cls, TYRE, -0.003)
            fr.ellipse(0.68, 0.88, 0.07, 0.07, cls, np.array([1, 1, 0.85], np.float32), -0.004, night)
            if rider:
                _rider(fr, rcls, rng, pal, 0.98, 1.0, True, "side", -0.01)
        else:
            r, wb = 0.34, 0.52
            for u in (-wb, wb):
                fr.ring(u, r, r, 0.05, cls, TYRE, 0.0)
            pts = [(-wb, r), (-0.05, r), (-0.2, 0.85), (0.38, 0.88)]
            for a, b in ((0, 1), (1, 2), (0, 2), (2, 3), (1, 3)):
                fr.seg(*pts[a], *pts[b], 0.045, cls, frame_col, -0.001)
            fr.seg(0.38, 0.88, wb, r, 0.04, cls, frame_col, -0.001)
            fr.seg(0.38, 0.88, 0.33, 1.02, 0.04, cls, TYRE, -0.001)
            fr.seg(-0.32, 0.9, -0.1, 0.9, 0.06, cls, TYRE, -0.001)
            if rider:
                _rider(fr, rcls, rng, pal, 0.92, 0.8, rng.random() < 0.3, "side", -0.01)
    else:
        body = pal.tone(cls, CAR_PAINTS[rng.integers(len(CAR_PAINTS))])
        if motor:
            fr.ellipse(0.0, 0.3, 0.09, 0.3, cls, TYRE, 0.0)
            fr.rect(-0.25, 0.45, 0.25, 0.9, cls, body, -0.001)
            fr.rect(-0.1, 0.7, 0.1, 0.8, cls, np.array([0.9, 0.1, 0.1] if view == "rear" else [1, 1, 0.85], np.float32),
                    -0.002, night)
            fr.seg(-0.38, 1.1, 0.38, 1.1, 0.04, cls, TYRE, 0.05)
            if rider:
                _rider(fr, rcls, rng, pal, 0.95, 0.0, True, "rear", -0.01)
        else:
            fr.ellipse(0.0, 0.34, 0.03, 0.34, cls, TYRE, 0.0)
            fr.seg(-0.3, 1.0, 0.3, 1.0, 0.035, cls, TYRE, 0.05)
            fr.rect(-0.06, 0.6, 0.06, 0.9, cls, body, -0.001)
            if rider:
                _rider(fr, rcls, rng, pal, 0.92, 0.0, rng.random() < 0.3, "rear", -0.01)


def _person(cv, cam, X, Z, rng, pal, night) -> None:
    fr = Frame(cv, cam, X, Z)
    h = float(np.clip(rng.normal(1.72, 0.09), 1.45, 1.98))
    if not fr.visible(0.4, h):
        return
    cls = K.person
    shirt = pal.tone(cls, CLOTHES[rng.integers(len(CLOTHES))])
    legs = pal.tone(cls, CLOTHES[rng.integers(len(CLOTHES))])
    skin = pal.tone(cls, SKIN[rng.integers(len(SKIN))])
    step = _u(rng, (-0.06, 0.06))
    fr.rect(-0.18 + step, 0.0, -0.02 + step, 0.53 * h, cls, legs, 0.0)
    fr.rect(0.02 - step, 0.0, 0.18 - step, 0.53 * h, cls, legs, 0.001)
    fr.rect(-0.21, 0.5 * h, 0.21, h - 0.21, cls, shirt, -0.001)
    fr.ellipse(-0.25, 0.66 * h, 0.06, 0.15 * h, cls, shirt, -0.002)
    fr.ellipse(0.25, 0.66 * h, 0.06, 0.15 * h, cls, shirt, -0.002)
    fr.ellipse(0.0, h - 0.115, 0.1, 0.12, cls, skin, -0.002)
    if rng.random() < 0.5:
        fr.ellipse(0.0, h - 0.06, 0.1, 0.07, cls, CLOTHES[0] * 1.2, -0.003)
    if rng.random() < 0.25:
        fr.rect(0.21, 0.45 * h, 0.4, 0.65 * h, cls, CLOTHES[rng.integers(len(CLOTHES))], -0.004)


def _animal(cv, cam, X, Z, rng, pal, night) -> None:
    fr = Frame(cv, cam, X, Z, 1 if rng.random() < 0.5 else -1)
    big = rng.random() < 0.25  # a cow now and then, a dog otherwise
    s = 2.3 if big else 1.0
    if not fr.visible(0.6 * s, 0.8 * s):
        return
    cls = K.ground_animal
    col = pal.vary(cls, rng, 0.3)
    fr.ellipse(0.0, 0.45 * s, 0.35 * s, 0.15 * s, cls, col, 0.0)
    fr.ellipse(0.38 * s, 0.6 * s, 0.11 * s, 0.09 * s, cls, col * 0.9, -0.001)
    for u in (-0.25, -0.18, 0.2, 0.27):
        fr.seg(u * s, 0.42 * s, u * s + 0.02, 0.0, 0.07 * s, cls, col * 0.85, 0.001)
    fr.seg(-0.33 * s, 0.5 * s, -0.5 * s, 0.65 * s, 0.04 * s, cls, col, 0.0)


def _pole(cv, cam, X, Z, rng, pal, night, height: float = 0.0) -> None:
    fr = Frame(cv, cam, X, Z)
    h = height or _u(rng, (2.5, 4.0))
    if fr.visible(0.2, h):
        fr.rect(-0.06, 0.0, 0.06, h, K.pole, pal.vary(K.pole, rng, 0.1))


def _street_light(cv, cam, X, Z, rng, pal, night, toward: int, banner: bool) -> None:
    fr = Frame(cv, cam, X, Z)
    h = _u(rng, (6.0, 9.0))
    if not fr.visible(2.5, h + 0.5):
        return
    col = pal.vary(K.pole, rng, 0.1)
    fr.rect(-0.08, 0.0, 0.08, h, K.pole, col)
    fr.seg(0.0, h - 0.1, toward * 1.5, h + 0.35, 0.09, K.pole, col)
    lamp = np.array([1.0, 0.95, 0.8], np.float32) if night else pal.vary(K.street_light, rng, 0.05)
    fr.ellipse(toward * 1.75, h + 0.28, 0.35, 0.1, K.street_light, lamp, -0.01, night)
    if banner:
        bcol = np.clip(pal[K.banner] * (0.4 + 1.2 * rng.random(3)), 0, 1).astype(np.float32)
        fr.rect(-toward * 0.08, 3.2, -toward * 0.7, 4.9, K.banner, bcol, -0.01)
        fr.rect(-toward * 0.1, 3.7, -toward * 0.68, 4.0, K.banner, bcol * 0.5 + 0.4, -0.011)


def _utility_pole(cv, cam, X, Z, rng, pal, night) -> None:
    fr = Frame(cv, cam, X, Z)
    h = _u(rng, (8.5, 11.0))
    if not fr.visible(1.3, h):
        return
    col = pal.vary(K.utility_pole, rng, 0.1)
    fr.rect(-0.13, 0.0, 0.13, h, K.utility_pole, col)
    fr.rect(-1.1, h - 0.9, 1.1, h - 0.72, K.utility_pole, col * 0.9, -0.01)
    for u in (-0.9, -0.4, 0.4, 0.9):
        fr.rect(u - 0.04, h - 0.72, u + 0.04, h - 0.5, K.utility_pole, np.array([0.8, 0.8, 0.75], np.float32), -0.011)


def _traffic_light(cv, cam, X, Z, rng, pal, night, toward: int, facing_us: bool) -> None:
    fr = Frame(cv, cam, X, Z)
    mast = rng.random() < 0.35
    if not fr.visible(4.5 if mast else 0.3, 6.0):
        return
    pcol = pal.vary(K.pole, rng, 0.1)
    box = pal.vary(K.traffic_light, rng, 0.2)
    if mast:
        fr.rect(-0.1, 0.0, 0.1, 6.0, K.pole, pcol)
        reach = _u(rng, (2.5, 4.5))
        fr.seg(0.0, 5.8, toward * reach, 5.8, 0.12, K.pole, pcol)
        u, v0 = toward * (reach - 0.3), 4.7
    else:
        fr.rect(-0.07, 0.0, 0.07, 3.0, K.pole, pcol)
        u, v0 = 0.0, 3.0
    fr.rect(u - 0.17, v0, u + 0.17, v0 + 0.95, K.traffic_light, box, -0.01)
    if facing_us:
        lit = int(rng.integers(3))
        for i, c in enumerate(([0.9, 0.1, 0.05], [1.0, 0.75, 0.0], [0.1, 0.9, 0.3])):
            on = i == lit
            colour = np.array(c, np.float32) * (1.0 if on else 0.25)
            fr.ellipse(u, v0 + 0.78 - 0.3 * i, 0.09, 0.09, K.traffic_light, colour, -0.02, on and True)


def _sign(cv, cam, X, Z, rng, pal, night, front: bool) -> None:
    fr = Frame(cv, cam, X, Z)
    shape = str(rng.choice(["circle", "circle", "triangle", "rect", "wide", "octagon"]))
    size = _u(rng, (0.6, 0.8))
    wide = shape == "wide"
    hw, hh = (size * 0.9, size * 0.45) if wide else (size / 2, size / 2)
    top = _u(rng, (2.3, 3.0)) + hh * 2
    if not fr.visible(hw + 0.1, top):
        return
    cy = top - hh
    fr.rect(-0.04, 0.0, 0.04, cy, K.pole, pal.vary(K.pole, rng, 0.1))
    cls = K.traffic_sign_front if front else K.traffic_sign_back

    def outline(scale: float):
        a, b = hw * scale, hh * scale
        if shape == "circle":
            return None
        if shape == "triangle":
            return [(-a, cy - b * 0.8), (a, cy - b * 0.8), (0.0, cy + b)]
        if shape == "octagon":
            q = 0.41
            return [(-a * q, cy - b), (a * q, cy - b), (a, cy - b * q), (a, cy + b * q), (a * q, cy + b),
                    (-a * q, cy + b), (-a, cy + b * q), (-a, cy - b * q)]
        return [(-a, cy - b), (a, cy - b), (a, cy + b), (-a, cy + b)]

    def face(scale: float, colour, dz, cls_=cls):
        pts = outline(scale)
        if pts is None:
            fr.ellipse(0.0, cy, hw * scale, hh * scale, cls_, colour, dz)
        else:
            fr.poly(pts, cls_, colour, dz)

    frame_col = pal.vary(K.traffic_sign_frame, rng, 0.1)
    if front:
        if shape in ("rect", "wide"):
            face(1.0 + 0.12 / max(hw, 0.1), frame_col, 0.005, K.traffic_sign_frame)
        design = {
            "circle": ([0.85, 0.1, 0.1], [0.95, 0.95, 0.95]) if rng.random() < 0.6 else ([0.1, 0.3, 0.75], [0.1, 0.3, 0.75]),
            "triangle": ([0.85, 0.1, 0.1], [0.95, 0.95, 0.95]),
            "octagon": ([0.8, 0.05, 0.05], [0.8, 0.05, 0.05]),
            "rect": ([0.1, 0.3, 0.75], [0.95, 0.95, 0.95]),
            "wide": ([0.1, 0.45, 0.25], [0.1, 0.45, 0.25]) if rng.random() < 0.5 else ([0.95, 0.8, 0.1], [0.95, 0.8, 0.1]),
        }[shape]
        rim, inner = (pal.tone(cls, np.array(c, np.float32)) for c in design)
        face(1.0, rim, 0.0)
        face(0.72, inner, -0.001)
        if shape in ("rect", "wide", "octagon"):
            fr.rect(-hw * 0.5, cy - hh * 0.1, hw * 0.5, cy + hh * 0.1, cls, np.array([0.95, 0.95, 0.95], np.float32), -0.002)
    else:
        face(1.0, pal.vary(cls, rng, 0.05), 0.0)
        for dv in (-0.3, 0.3):
            fr.rect(-hw * 0.85, cy + dv * hh - 0.03, hw * 0.85, cy + dv * hh + 0.03, K.traffic_sign_frame, frame_col, -0.002)


def _furniture(cv, cam, X, Z, rng, pal, night, what: str) -> None:
    fr = Frame(cv, cam, X, Z)
    if not fr.visible(0.6, 2.4):
        return
    cls = getattr(K, what)
    if what == "trash_can":
        col = pal.vary(cls, rng, 0.25)
        fr.rect(-0.25, 0.0, 0.25, 0.85, cls, col)
        fr.ellipse(0.0, 0.86, 0.27, 0.06, cls, col * 0.8, -0.001)
    elif what == "junction_box":
        col = pal.vary(cls, rng, 0.1)
        fr.rect(-0.4, 0.0, 0.4, 1.25, cls, col)
        fr.rect(-0.01, 0.05, 0.01, 1.2, cls, col * 0.7, -0.001)
    elif what == "mailbox":
        col = pal.tone(cls, np.array([[0.95, 0.78, 0.1], [0.75, 0.08, 0.08], [0.15, 0.25, 0.6]][int(rng.integers(3))], np.float32))
        fr.rect(-0.22, 0.0, 0.22, 1.05, cls, col)
        fr.ellipse(0.0, 1.05, 0.22, 0.1, cls, col, -0.001)
        fr.rect(-0.12, 0.8, 0.12, 0.85, cls, col * 0.3, -0.002)
    else:  # phone booth
        col = pal.vary(cls, rng, 0.1)
        fr.rect(-0.5, 0.0, 0.5, 2.3, cls, col * 0.6)
        fr.rect(-0.42, 0.15, 0.42, 2.0, cls, col, -0.001)
        fr.rect(-0.45, 2.05, 0.45, 2.25, cls, np.array([0.9, 0.9, 0.9], np.float32), -0.001, night)


def _tree(cv, cam, X, Z, rng, pal, night) -> None:
    fr = Frame(cv, cam, X, Z)
    trunk = _u(rng, (1.8, 3.0))
    r = _u(rng, (1.3, 2.6))
    if not fr.visible(r + 0.5, trunk + 2 * r):
        return
    col = pal.vary(K.vegetation, rng, 0.12)
    fr.rect(-0.14, 0.0, 0.14, trunk + r * 0.5, K.vegetation, pal.tone(K.vegetation, np.array([0.35, 0.27, 0.2], np.float32)))
    for _ in range(int(rng.integers(3, 6))):
        du, dv = rng.normal(0, 0.45 * r), rng.normal(0, 0.35 * r)
        rr = r * _u(rng, (0.55, 0.85))
        fr.ellipse(du, trunk + r + dv, rr, rr * 0.9, K.vegetation, col * _u(rng, (0.8, 1.1)), -0.01)


def draw_ego(cv: Canvas, rng: np.random.Generator, pal: Palette) -> None:
    """The hood of the recording car across the bottom of the image."""
    H, W = cv.H, cv.W
    hood = _u(rng, (0.07, 0.14)) * H
    cx = W * _u(rng, (0.45, 0.55))
    xs = np.arange(W, dtype=np.float32) + 0.5
    top = H - hood + 0.6 * hood * ((xs - cx) / (0.6 * W)) ** 2
    r0 = max(int(np.floor(top.min())), 0)
    ys = np.arange(r0, H, dtype=np.float32)[:, None] + 0.5
    m = ys >= top[None, :]
    paint = pal.tone(K.ego_vehicle, CAR_PAINTS[rng.integers(len(CAR_PAINTS))])
    t = np.clip((ys - (H - hood)) / max(hood, 1.0), 0, 1)
    alb = paint[None, None, :] * (0.7 + 0.5 * t[:, :, None]) * np.ones((1, W, 1), np.float32)
    refl = (np.abs(ys - (H - 0.6 * hood) - 0.1 * (xs[None, :] - cx)) < 0.08 * hood)
    alb[refl] = alb[refl] * 0.5 + 0.4
    cv.put(r0, 0, m, K.ego_vehicle, alb, 0.05)


# --------------------------------------------------------------------------- the scene


def _pois(rng: np.random.Generator, mean: float) -> int:
    return int(rng.poisson(mean)) if mean > 0 else 0


def _z(rng: np.random.Generator, z0: float = 4.0, z1: float = 70.0) -> float:
    return float(z0 * (z1 / z0) ** rng.random())


def make_scene(rng: np.random.Generator, height: int, width: int, dom: dict, pal: Palette) -> Scene:
    """Draw one scene of the dataset whose domain is ``dom`` (merged domains.yaml entry)."""
    camcfg, look, objs_cfg = dom["camera"], dom["look"], dom["objects"]
    f = _u(rng, camcfg["focal"]) * width
    cam = Camera(height, width, f, _u(rng, camcfg["height"]), _u(rng, camcfg["horizon"]) * height, _u(rng, camcfg["vanish"]) * width)
    kind = str(_choice(rng, dom["scenes"]))
    night = bool(rng.random() < float(look["night"]))
    if float(look["scene_jitter"]) > 0:  # this image's own variation of the dataset's colours
        pal = Palette(_shifted(pal.colours, rng, float(look["scene_jitter"])))
    cv = Canvas(height, width)
    road = make_road(rng, kind, dom["road"])
    scale = KIND_SCALE[kind]

    def count(name: str) -> int:
        return _pois(rng, float(objs_cfg.get(name, 0.0)) * scale.get(name, 1.0))

    draw_sky(cv, cam, rng, look, night)
    draw_skyline(cv, cam, rng, kind, pal)
    draw_ground(cv, cam, rng, road, pal, dom["road"])

    # vertical planes, farthest lateral position first
    planes: list[tuple[float, list[Seg]]] = []
    for side in (road.right, road.left):
        segs = _segments(rng, "facade", kind, pal)
        planes.append((side.facade, segs))
        if side.front is not None and kind != "rural":
            planes.append((side.front, _segments(rng, "front", kind, pal)))
        if side.rail is not None:
            planes.append((side.rail, _segments(rng, "rail", "rural", pal)))
    _add_billboards(rng, [s for _, segs in planes for s in segs], count("billboard"), pal)
    for X, segs in sorted(planes, key=lambda p: -abs(p[0])):
        draw_plane(cv, cam, X, segs, rng, pal, night)

    items: list[tuple[float, float, str, dict]] = []  # (Z, X, what, kwargs)

    def walk_x(side: Side, near: float | None = None) -> float:
        a, b = side.walk
        if near is not None:  # metres from the road-side edge of the walk
            return (a + near) if side.sign > 0 else (b - near)
        return _u(rng, (a + 0.3, b - 0.3)) if b - a > 0.6 else 0.5 * (a + b)

    sides = (road.right, road.left)
    # traffic
    lanes = [(x, "rear") for x in road.ours] + [(x, "front") for x in road.oncoming]
    taken: list[tuple[float, float, float]] = []

    def place_in_lane(length: float, zmin: float = 7.0) -> tuple[float, float, str] | None:
        for _ in range(6):
            x, facing = lanes[int(rng.integers(len(lanes)))]
            z = _z(rng, zmin, 90.0)
            if all(abs(x - tx) > 1.0 or abs(z - tz) > (length + tl) / 2 + 1.0 for tx, tz, tl in taken):
                taken.append((x, z, length))
                return x + float(rng.normal(0, 0.12)), z, facing
        return None

    for kind_, length in (("car", 4.5), ("truck", 9.0), ("bus", 12.0), ("caravan", 6.5), ("trailer", 4.0), ("autorickshaw", 2.6)):
        for _ in range(count(kind_)):
            p = place_in_lane(length)
            if p:
                items.append((p[1], p[0], "vehicle", dict(kind=kind_, facing=p[2])))
    for _ in range(count("motorcyclist")):
        p = place_in_lane(2.0, 5.0)
        if p:
            items.append((p[1], p[0], "two", dict(motor=True, rider=True, view=p[2])))
    # parked vehicles
    for side in sides:
        strip = side.parking
        n = count("parked_car") // (1 if side is road.right else 2)
        zs = sorted(_z(rng, 5.0, 80.0) for _ in range(n))
        last = -10.0
        for z in zs:
            if z - last < 5.2:
                continue
            last = z
            kind_ = "car" if rng.random() < 0.9 else str(rng.choice(["caravan", "trailer", "truck"]))
            if strip is not None:
                x = 0.5 * (strip[0] + strip[1])
            elif kind != "rural" and side is road.right and road.right.bike is None:
                x = road.xr - 1.1
            else:
                continue
            items.append((z, x, "vehicle", dict(kind=kind_, facing="rear" if side.sign > 0 else "front")))
    # two-wheelers
    for _ in range(count("bicyclist")):
        r = rng.random()
        if road.crosswalk is not None and r < 0.25:
            z0, z1, _p = road.crosswalk
            items.append((_u(rng, (z0 + 0.8, z1 - 0.8)), _u(rng, (road.xl + 1, road.xr - 1)), "two", dict(motor=False, rider=True, view="side")))
        elif road.right.bike is not None:
            items.append((_z(rng, 5.0, 60.0), 0.5 * sum(road.right.bike), "two", dict(motor=False, rider=True, view="rear")))
        elif r < 0.6 or road.right.walk is None:
            items.append((_z(rng, 5.0, 60.0), road.xr - 0.7, "two", dict(motor=False, rider=True, view="rear")))
        else:
            items.append((_z(rng, 5.0, 50.0), walk_x(road.right), "two", dict(motor=False, rider=True, view="side")))
    for what, motor in (("parked_bicycle", False), ("parked_motorcycle", True)):
        for _ in range(count(what)):
            side = sides[int(rng.random() < 0.35)]
            items.append((_z(rng, 4.0, 40.0), walk_x(side, 0.6), "two", dict(motor=motor, rider=False, view="side")))
    # people and animals
    for _ in range(count("person")):
        if road.crosswalk is not None and rng.random() < 0.3:
            z0, z1, _p = road.crosswalk
            items.append((_u(rng, (z0 + 0.5, z1 - 0.5)), _u(rng, (road.xl + 0.5, road.xr - 0.5)), "person", {}))
        else:
            items.append((_z(rng, 4.0, 60.0), walk_x(sides[int(rng.random() < 0.45)]), "person", {}))
    for _ in range(count("ground_animal")):
        if rng.random() < 0.3:
            items.append((_z(rng, 6.0, 40.0), _u(rng, (road.xl + 0.5, road.xr - 0.5)), "animal", {}))
        else:
            items.append((_z(rng, 4.0, 40.0), walk_x(sides[int(rng.random() < 0.5)]), "animal", {}))
    # poles, lights, signs
    for _ in range(count("pole")):
        side = sides[int(rng.random() < 0.5)]
        items.append((_z(rng, 4.0, 60.0), walk_x(side, 0.35), "pole", {}))
    street_lights = []
    for i in range(count("street_light")):
        side = sides[i % 2 if rng.random() < 0.7 else int(rng.integers(2))]
        street_lights.append([_z(rng, 5.0, 80.0), walk_x(side, 0.4), "street_light", dict(toward=-side.sign, banner=False)])
    for _ in range(count("banner")):
        if street_lights:
            street_lights[int(rng.integers(len(street_lights)))][3]["banner"] = True
    items.extend(tuple(s) for s in street_lights)
    for _ in range(count("utility_pole")):
        side = sides[int(rng.random() < 0.5)]
        items.append((_z(rng, 6.0, 80.0), walk_x(side, 1.0), "utility_pole", {}))
    for _ in range(count("traffic_light")):
        side = sides[int(rng.random() < 0.5)]
        z = road.crosswalk[0] - 2.0 if road.crosswalk is not None and rng.random() < 0.6 else _z(rng, 8.0, 60.0)
        items.append((max(z, 4.0), walk_x(side, 0.4), "traffic_light", dict(toward=-side.sign, facing_us=side.sign > 0 or rng.random() < 0.3)))
    for _ in range(count("sign")):
        items.append((_z(rng, 4.0, 50.0), walk_x(road.right, 0.45), "sign", dict(front=True)))
    for _ in range(count("sign_back")):
        items.append((_z(rng, 4.0, 50.0), walk_x(road.left, 0.45), "sign", dict(front=False)))
    # street furniture and trees
    for what in ("trash_can", "junction_box", "mailbox", "phone_booth"):
        for _ in range(count(what)):
            side = sides[int(rng.random() < 0.45)]
            near = 0.5 if rng.random() < 0.5 else max(abs(side.walk[1] - side.walk[0]) - 0.7, 0.4)
            items.append((_z(rng, 4.0, 45.0), walk_x(side, near), "furniture", dict(what=what)))
    for _ in range(count("tree")):
        side = sides[int(rng.random() < 0.5)]
        if kind == "rural":
            x = side.walk[1] - 1.0 if side.sign > 0 else side.walk[0] + 1.0
        elif kind == "residential":
            x = side.front + side.sign * 1.5 if side.front is not None else walk_x(side, 0.8)
        else:
            x = walk_x(side, 0.8)
        items.append((_z(rng, 5.0, 70.0), x, "tree", {}))

    draw = {
        "vehicle": _vehicle, "two": _two_wheeler, "person": _person, "animal": _animal, "pole": _pole,
        "street_light": _street_light, "utility_pole": _utility_pole, "traffic_light": _traffic_light,
        "sign": _sign, "furniture": _furniture, "tree": _tree,
    }
    order = sorted(range(len(items)), key=lambda i: -items[i][0])
    for i in order:
        z, x, what, kw = items[i]
        draw[what](cv, cam, x, z, rng, pal, night, **kw)
    if rng.random() < float(dom["ego_vehicle"]):
        draw_ego(cv, rng, pal)
    return Scene(cv.label, cv.albedo, cv.depth, cv.emit, night, kind, cam, [it[2] for it in items])
