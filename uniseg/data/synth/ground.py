"""The ground of a scene: the road's layout across it, then the sky, the skyline at the horizon and
every ground row below it (lanes, markings, crosswalks, parking, bike lanes, curbs, sidewalks, grass).

``make_road`` decides where everything lies across the road (X, metres; the camera at 0, right
positive); the vertical planes (``planes.py``) and the objects (``placement.py``) stand on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uniseg.data.synth.classes import FINE
from uniseg.data.synth.palette import FACADES, Palette
from uniseg.data.synth.raster import FAR, Camera, Canvas
from uniseg.data.synth.sampling import smooth_noise, uniform, weighted_choice


def frac(v: np.ndarray) -> np.ndarray:
    """``v % 1.0``, exactly (the fractional part of a float is exact), at a fraction of the cost."""
    return v - np.floor(v)


# --------------------------------------------------------------------------- road layout


@dataclass
class Side:
    """One side of the road, outward from the carriageway: the X ranges (min, max) of its strips and
    the X of the vertical planes beside it."""

    sign: int  # +1 right, -1 left
    parking: tuple[float, float] | None = None  # parking strip
    bike: tuple[float, float] | None = None  # bike lane
    curb: tuple[float, float] | None = None
    walk: tuple[float, float] | None = None  # sidewalk, or grass shoulder in rural scenes
    front: float | None = None  # X of the low front plane (fences, hedges), if any
    facade: float = 20.0  # X of the facade / tree-line plane
    rail: float | None = None  # X of a guard rail


@dataclass
class Road:
    """The road across the image (X in metres, the camera at 0, right positive), the same at every depth
    but for the crosswalk."""

    kind: str  # scene kind: urban / residential / rural
    lane_width: float
    centre: float  # X of the line between our lanes and the oncoming ones
    left_edge: float  # X of the carriageway's left edge (beyond the oncoming lanes)
    right_edge: float  # X of the carriageway's right edge
    our_lanes: list[float]  # X of the middle of each lane in our direction
    oncoming_lanes: list[float]  # X of the middle of each oncoming lane
    right: Side
    left: Side
    bands: list[tuple[float, int]]  # (upper X edge, class) from left to right; the last edge is +inf
    lines: list[tuple[float, str, float]]  # (X, 'dash' | 'solid', width)
    crosswalk: tuple[float, float, bool] | None  # (z0, z1, plain): its depth range and whether it is plain


def _lay_side(rng: np.random.Generator, kind: str, edge: float, sign: int, parking: bool, bike: bool) -> tuple[Side, list]:
    """The strips of one side from the carriageway edge at X ``edge`` outward (``sign``: +1 right, -1 left),
    and their (class, width) bands in that order."""
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
        side.parking = add(FINE.parking, uniform(rng, (2.0, 2.5)))
    if bike:
        side.bike = add(FINE.bike_lane, uniform(rng, (1.3, 1.8)))
    if kind == "rural":
        side.walk = add(FINE.terrain, uniform(rng, (2.5, 8.0)))
        if rng.random() < 0.6:
            side.rail = edge + sign * uniform(rng, (0.5, 1.0))
        side.facade = x + sign * uniform(rng, (0.0, 12.0))
        return side, bands
    side.curb = add(FINE.curb, 0.25)
    if kind == "urban":
        side.walk = add(FINE.sidewalk, uniform(rng, (2.5, 5.5)))
        if rng.random() < 0.2:
            side.front = x
        side.facade = x + sign * uniform(rng, (0.0, 1.0))
        add(FINE.terrain if side.facade != x else FINE.sidewalk, abs(side.facade - x) + 0.01)
    else:
        side.walk = add(FINE.sidewalk, uniform(rng, (1.5, 2.8)))
        side.front = x
        garden = uniform(rng, (2.0, 9.0))
        add(FINE.terrain, garden)
        side.facade = x
    return side, bands


def make_road(rng: np.random.Generator, kind: str, cfg: dict) -> Road:
    """The road of a ``kind`` scene from the domain's ``road`` settings (``cfg``): lanes, sides, markings, crosswalk."""
    lane_width = uniform(rng, cfg["lane_width"])
    n_ours = int(weighted_choice(rng, cfg["lanes"]))
    n_oncoming = int(weighted_choice(rng, cfg["oncoming"]))
    if kind == "rural":  # country roads carry traffic both ways
        n_oncoming = max(n_oncoming, 1)
    cam_lane = int(rng.integers(n_ours))
    centre = -(cam_lane + 0.5) * lane_width
    our_lanes = [centre + (i + 0.5) * lane_width for i in range(n_ours)]
    oncoming_lanes = [centre - (i + 0.5) * lane_width for i in range(n_oncoming)]
    right_edge, left_edge = centre + n_ours * lane_width, centre - n_oncoming * lane_width
    parking_chance = cfg["parking"] if kind != "rural" else 0.0
    bike_chance = cfg["bike_lane"] if kind != "rural" else 0.0
    right, right_bands = _lay_side(rng, kind, right_edge, +1, rng.random() < parking_chance, rng.random() < bike_chance)
    left, left_bands = _lay_side(rng, kind, left_edge, -1, rng.random() < parking_chance * 0.5, rng.random() < bike_chance * 0.4)

    # ground bands from left to right as (upper edge, class)
    bands: list[tuple[float, int]] = []
    x = left_edge - sum(w for _, w in left_bands)
    bands.append((x, FINE.terrain))
    for cls, w in reversed(left_bands):
        x += w
        bands.append((x, cls))
    bands.append((right_edge, FINE.road))
    x = right_edge
    for cls, w in right_bands:
        x += w
        bands.append((x, cls))
    bands.append((np.inf, FINE.terrain))

    lines: list[tuple[float, str, float]] = []
    if rng.random() < cfg["markings"]:
        w = uniform(rng, (0.12, 0.16))
        for i in range(1, n_ours):
            lines.append((centre + i * lane_width, "dash", w))
        for i in range(1, n_oncoming):
            lines.append((centre - i * lane_width, "dash", w))
        if n_oncoming:
            lines.append((centre, "solid" if rng.random() < 0.5 else "dash", w))
        if right.parking is None or right.bike is not None:
            lines.append((right_edge - 0.25, "solid", w))
        if left.parking is None and n_oncoming:
            lines.append((left_edge + 0.25, "solid", w))
        if right.bike is not None:
            lines.append((right.bike[0] + 0.1, "solid", w * 1.5))
    crosswalk = None
    if kind != "rural" and rng.random() < cfg["crosswalk"]:
        z0 = uniform(rng, (7.0, 35.0))
        crosswalk = (z0, z0 + uniform(rng, (3.0, 5.0)), bool(rng.random() < cfg["plain_crosswalk"]))
    return Road(kind, lane_width, centre, left_edge, right_edge, our_lanes, oncoming_lanes, right, left, bands, lines, crosswalk)


# --------------------------------------------------------------------------- sky, skyline, ground


def draw_sky(cv: Canvas, cam: Camera, rng: np.random.Generator, look: dict, night: bool) -> None:
    """The sky over the whole canvas (a gradient to the horizon, clouds from value noise); resets label and depth."""
    top = np.array(look["sky_top"], np.float32) / 255 * (1 + 0.05 * rng.standard_normal(3)).astype(np.float32)
    hor = np.array(look["sky_horizon"], np.float32) / 255 * (1 + 0.03 * rng.standard_normal(3)).astype(np.float32)
    if night:
        top, hor = top * 0.12, hor * 0.25
    rows = min(max(int(np.ceil(cam.yh)) + 1, 1), cv.H)  # the ground covers every row below (draw_ground)
    ys = (np.arange(rows, dtype=np.float32) + 0.5) / max(cam.yh, 1.0)
    t = np.clip(ys, 0, 1)[:, None] ** 0.7
    grad = top[None, :] * (1 - t) + hor[None, :] * t  # (rows, 3)
    sky = cv.albedo[:, :rows]
    cloudiness = float(look["clouds"]) * uniform(rng, (0.3, 1.5))
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
    cv.label[:] = FINE.sky
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
            hm = uniform(rng, (8.0, 40.0))
            cls, col = FINE.building, pal.tone(FINE.building, FACADES[rng.integers(len(FACADES))]) * 0.85
            top = np.full(x1 - x, cam.yh - cam.f * (hm - cam.h) / zf, np.float32)
        elif rng.random() < 0.8:
            hm = uniform(rng, (6.0, 18.0))
            cls, col = FINE.vegetation, pal.vary(FINE.vegetation, rng) * 0.8
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
    carriage = (X >= road.left_edge) & (X < road.right_edge)

    for x, style, w in road.lines:
        m = (np.abs(X - x) < w / 2) & (lab == FINE.road)
        if style == "dash":
            phase = uniform(rng, (0, 12))
            m &= ((Z + phase) % 12.0) < 4.0
        lab[m] = FINE.lane_marking
    if road.crosswalk is not None:
        z0, z1, plain = road.crosswalk
        zm = (Z >= z0) & (Z < z1)
        if plain:
            lab[zm & carriage] = FINE.crosswalk_plain
            edge = ((Z >= z0) & (Z < z0 + 0.2)) | ((Z >= z1 - 0.2) & (Z < z1))
            lab[edge & carriage] = FINE.lane_marking
        else:
            stripes = frac(X - road.left_edge) < 0.5
            lab[zm & carriage & stripes & (lab != FINE.lane_marking)] = FINE.crosswalk_marking
        stop = (Z >= z0 - 1.8) & (Z < z0 - 1.4) & (X >= road.centre) & (X < road.right_edge)
        lab[stop & (lab == FINE.road)] = FINE.lane_marking
        zc = (Z >= z0 - 0.5) & (Z < z1 + 0.5)
        lab[zc & (lab == FINE.curb)] = FINE.curb_cut
    # drains, manholes, potholes
    kerb = road.right.curb[0] if road.right.curb else road.right_edge
    for _ in range(rng.poisson(cfg["catch_basins"])):
        z = uniform(rng, (5.0, 45.0))
        m = (np.abs(X - (kerb - 0.3)) < 0.3) & (np.abs(Z - z) < 0.45)
        m &= (lab == FINE.road) | (lab == FINE.parking) | (lab == FINE.bike_lane) | (lab == FINE.lane_marking)
        lab[m] = FINE.catch_basin
    for _ in range(rng.poisson(cfg["manholes"])):
        z, x, r = uniform(rng, (5.0, 40.0)), uniform(rng, (road.left_edge + 0.6, road.right_edge - 0.6)), uniform(rng, (0.3, 0.4))
        lab[((X - x) ** 2 + (Z - z) ** 2 < r * r) & (lab == FINE.road)] = FINE.manhole
    for _ in range(rng.poisson(cfg["potholes"])):
        z, x = uniform(rng, (5.0, 30.0)), uniform(rng, (road.left_edge + 0.5, road.right_edge - 0.5))
        a, b = uniform(rng, (0.3, 0.8)), uniform(rng, (0.3, 1.2))
        lab[(((X - x) / a) ** 2 + ((Z - z) / b) ** 2 < 1) & ((lab == FINE.road) | (lab == FINE.lane_marking))] = FINE.pothole

    # cheap structure: worn tyre tracks, sidewalk slabs, curb stones, drain grates, worn crossings;
    # each darkens one class, so one factor per pixel (1 elsewhere) applies them all
    shade = np.ones(lab.shape, np.float32)
    tracks = np.zeros_like(carriage)
    for c in road.our_lanes + road.oncoming_lanes:
        tracks |= (np.abs(np.abs(X - c) - 0.8) < 0.35)
    shade[tracks & (lab == FINE.road)] = 0.92
    slab = (frac(X * 2.0) < 0.06) | (frac(Z * 2.0) < 0.06)
    shade[slab & (lab == FINE.sidewalk)] = 0.85
    shade[(frac(Z * 1.0) < 0.08) & (lab == FINE.curb)] = 0.8
    shade[(frac(Z * 10) < 0.5) & (lab == FINE.catch_basin)] = 0.6
    if road.crosswalk is not None and road.crosswalk[2]:
        shade[(lab == FINE.crosswalk_plain) & ((frac(X * 3) < 0.1) | (frac(Z * 3) < 0.1))] = 0.85

    sl = slice(r0, cv.H)
    cv.label[sl] = lab
    for k in range(3):
        cv.albedo[k, sl] = np.take(pal.colours[:, k], lab) * shade
    cv.depth[sl] = np.broadcast_to(Z, lab.shape)
