"""Road users and the recording car: vehicles, two-wheelers and their riders, people, animals, and
the hood of the ego vehicle across the bottom of the image.

Each ``draw_*`` of an object takes ``(cv, cam, X, Z, rng, pal, night, **options)``: the canvas and
camera, where it stands on the ground (X across the road, Z ahead, metres), the scene's generator,
palette and night flag, and the options its placement rule gives it (``placement.py``). Shapes are
drawn in the object's own vertical frame (``raster.Frame``, metres), so they shrink with depth.
"""

from __future__ import annotations

import numpy as np

from uniseg.data.synth.classes import FINE
from uniseg.data.synth.palette import GLASS, Palette
from uniseg.data.synth.raster import Canvas, Frame
from uniseg.data.synth.sampling import uniform

#: The flat ground classes (road, markings, sidewalk, grass, ...): a vehicle's shadow darkens only these.
GROUND_CLASSES = np.zeros(256, np.bool_)
for _name in ("road", "lane_marking", "crosswalk_marking", "crosswalk_plain", "parking", "bike_lane", "manhole",
              "catch_basin", "pothole", "sidewalk", "curb", "curb_cut", "terrain"):
    GROUND_CLASSES[getattr(FINE, _name)] = True

#: Car paints (RGB in 0-1): cars, two-wheeler frames and the ego vehicle.
CAR_PAINTS = np.array([[235, 235, 232], [200, 202, 205], [30, 30, 34], [60, 62, 70], [150, 25, 25], [25, 45, 110],
                       [90, 110, 140], [40, 80, 50], [190, 175, 140], [120, 120, 125]], np.float32) / 255.0
#: Clothes of pedestrians and riders.
CLOTHES = np.array([[30, 30, 35], [60, 70, 110], [150, 30, 40], [200, 200, 195], [90, 90, 95], [40, 90, 60],
                    [180, 140, 60], [120, 60, 110], [70, 50, 40], [210, 120, 40]], np.float32) / 255.0
#: Skin tones.
SKIN = np.array([[235, 200, 170], [200, 150, 110], [150, 100, 70], [100, 70, 50]], np.float32) / 255.0
#: Tyres (and handlebars).
TYRE = np.array([22, 22, 24], np.float32) / 255.0


def draw_vehicle(cv, cam, X, Z, rng, pal, night, kind: str, facing: str) -> None:
    """A car, truck, bus, caravan, trailer or autorickshaw (``kind``) seen from the ``facing`` end (rear or front)."""
    fr = Frame(cv, cam, X, Z)
    if kind == "car":
        w, height = uniform(rng, (1.7, 1.95)), uniform(rng, (1.35, 1.65))
        half, length = w / 2, 4.5
    elif kind in ("truck", "bus"):
        w, height = 2.5, uniform(rng, (3.2, 3.7)) if kind == "truck" else uniform(rng, (3.0, 3.3))
        half, length = w / 2, 10.0
    elif kind == "caravan":
        w, height, length = 2.3, uniform(rng, (2.6, 2.9)), 6.5
        half = w / 2
    elif kind == "trailer":
        w, height, length = 2.1, uniform(rng, (1.8, 2.4)), 4.0
        half = w / 2
    else:  # autorickshaw
        w, height, length = 1.4, 1.85, 2.6
        half = w / 2
    if not fr.visible(half + 0.2, height):
        return
    fr.shadow(half, length, 0.55, GROUND_CLASSES)
    cls = getattr(FINE, kind)
    dz = 0.0
    lights = np.array([0.95, 0.1, 0.1] if facing == "rear" else [1.0, 0.97, 0.85], np.float32)
    emit = night
    if kind == "car":
        paint = pal.tone(FINE.car, CAR_PAINTS[rng.integers(len(CAR_PAINTS))])
        top = 0.62 * height
        fr.rect(-half, 0.28, half, top, cls, paint, dz)
        fr.poly([(-half + 0.05, top), (half - 0.05, top), (half - 0.25, height), (-half + 0.25, height)], cls, paint * 0.95, dz)
        fr.poly([(-half + 0.17, top + 0.05), (half - 0.17, top + 0.05), (half - 0.3, height - 0.06), (-half + 0.3, height - 0.06)],
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
            fr.rect(-half, 1.0, half, height, cls, base, dz)
            if facing == "front":
                fr.rect(-half + 0.15, height - 1.2, half - 0.15, height - 0.3, cls, GLASS, dz - 0.01)
            else:
                fr.rect(-0.02, 1.05, 0.02, height - 0.05, cls, base * 0.6, dz - 0.01)
        else:
            fr.rect(-half, 0.3, half, height, cls, base, dz)
            fr.rect(-half + 0.12, 1.2 if facing == "rear" else 0.9, half - 0.12, height - 0.4, cls, GLASS, dz - 0.01)
            fr.rect(-half + 0.3, height - 0.35, half - 0.3, height - 0.1, cls,
                    np.array([1.0, 0.6, 0.1], np.float32), dz - 0.01, night or facing == "front")
        for sgn in (-1, 1):
            fr.rect(sgn * (half - 0.05), 0.0, sgn * (half - 0.45), 0.55, cls, TYRE, dz + 0.01)
            fr.rect(sgn * (half - 0.05), 0.45, sgn * (half - 0.3), 0.65, cls, lights, dz - 0.02, emit)
    elif kind == "caravan":
        body = pal.vary(FINE.caravan, rng, 0.04)
        fr.rect(-half, 0.45, half, height - 0.3, cls, body, dz)
        fr.ellipse(0.0, height - 0.3, half, 0.3, cls, body, dz)
        fr.rect(-half, 1.0, half, 1.15, cls, np.array([0.6, 0.35, 0.2], np.float32), dz - 0.01)
        fr.rect(-0.5, 1.4, 0.5, 2.0, cls, GLASS, dz - 0.01)
        for sgn in (-1, 1):
            fr.rect(sgn * (half - 0.2), 0.0, sgn * (half - 0.45), 0.5, cls, TYRE, dz + 0.01)
            fr.rect(sgn * (half - 0.05), 0.55, sgn * (half - 0.3), 0.75, cls, lights, dz - 0.02, emit)
    elif kind == "trailer":
        body = pal.vary(FINE.trailer, rng, 0.1)
        fr.rect(-half, 0.6, half, height, cls, body, dz)
        fr.rect(-0.02, 0.65, 0.02, height - 0.05, cls, body * 0.6, dz - 0.01)
        for sgn in (-1, 1):
            fr.rect(sgn * (half - 0.1), 0.0, sgn * (half - 0.35), 0.6, cls, TYRE, dz + 0.01)
            fr.rect(sgn * (half - 0.05), 0.65, sgn * (half - 0.25), 0.8, cls, lights, dz - 0.02, emit)
    else:
        body = pal.tone(FINE.autorickshaw, np.array([0.2, 0.55, 0.25] if rng.random() < 0.6 else [0.95, 0.8, 0.1], np.float32))
        canopy = pal.tone(FINE.autorickshaw, np.array([0.1, 0.1, 0.1] if rng.random() < 0.7 else [0.9, 0.8, 0.1], np.float32))
        fr.rect(-0.65, 0.25, 0.65, 1.0, cls, body, dz)
        fr.rect(-0.7, 1.0, 0.7, height - 0.2, cls, canopy, dz)
        fr.ellipse(0.0, height - 0.2, 0.7, 0.2, cls, canopy, dz)
        fr.rect(-0.45, 1.05, 0.45, 1.5, cls, GLASS * 0.7, dz - 0.01)
        for sgn in (-1, 1):
            fr.rect(sgn * 0.45, 0.0, sgn * 0.65, 0.32, cls, TYRE, dz + 0.01)
            fr.rect(sgn * 0.45, 0.55, sgn * 0.62, 0.68, cls, lights, dz - 0.02, emit)


def draw_rider(fr: Frame, cls: int, rng, pal, seat_v: float, reach: float, helmet: bool, view: str, dz: float) -> None:
    """A rider of class ``cls`` on a two-wheeler's frame ``fr``: seat at height ``seat_v``, arms reaching
    forward by ``reach`` (0-1), with or without a helmet, seen from the side or the rear/front."""
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


def draw_two_wheeler(cv, cam, X, Z, rng, pal, night, motor: bool, rider: bool, view: str) -> None:
    """A bicycle or motorcycle (``motor``), ridden or parked (``rider``), seen from the side, rear or front (``view``)."""
    flip = 1 if rng.random() < 0.5 else -1
    fr = Frame(cv, cam, X, Z, flip)
    if not fr.visible(1.0, 1.8):
        return
    cls = FINE.motorcycle if motor else FINE.bicycle
    rcls = FINE.motorcyclist if motor else FINE.bicyclist
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
                draw_rider(fr, rcls, rng, pal, 0.98, 1.0, True, "side", -0.01)
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
                draw_rider(fr, rcls, rng, pal, 0.92, 0.8, rng.random() < 0.3, "side", -0.01)
    else:
        body = pal.tone(cls, CAR_PAINTS[rng.integers(len(CAR_PAINTS))])
        if motor:
            fr.ellipse(0.0, 0.3, 0.09, 0.3, cls, TYRE, 0.0)
            fr.rect(-0.25, 0.45, 0.25, 0.9, cls, body, -0.001)
            fr.rect(-0.1, 0.7, 0.1, 0.8, cls, np.array([0.9, 0.1, 0.1] if view == "rear" else [1, 1, 0.85], np.float32),
                    -0.002, night)
            fr.seg(-0.38, 1.1, 0.38, 1.1, 0.04, cls, TYRE, 0.05)
            if rider:
                draw_rider(fr, rcls, rng, pal, 0.95, 0.0, True, "rear", -0.01)
        else:
            fr.ellipse(0.0, 0.34, 0.03, 0.34, cls, TYRE, 0.0)
            fr.seg(-0.3, 1.0, 0.3, 1.0, 0.035, cls, TYRE, 0.05)
            fr.rect(-0.06, 0.6, 0.06, 0.9, cls, body, -0.001)
            if rider:
                draw_rider(fr, rcls, rng, pal, 0.92, 0.0, rng.random() < 0.3, "rear", -0.01)


def draw_person(cv, cam, X, Z, rng, pal, night) -> None:
    """A pedestrian facing the camera, 1.45-1.98 m tall, sometimes with a hat or a bag."""
    fr = Frame(cv, cam, X, Z)
    h = float(np.clip(rng.normal(1.72, 0.09), 1.45, 1.98))
    if not fr.visible(0.4, h):
        return
    cls = FINE.person
    shirt = pal.tone(cls, CLOTHES[rng.integers(len(CLOTHES))])
    legs = pal.tone(cls, CLOTHES[rng.integers(len(CLOTHES))])
    skin = pal.tone(cls, SKIN[rng.integers(len(SKIN))])
    step = uniform(rng, (-0.06, 0.06))
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


def draw_animal(cv, cam, X, Z, rng, pal, night) -> None:
    """A ground animal from the side: a dog, now and then a cow."""
    fr = Frame(cv, cam, X, Z, 1 if rng.random() < 0.5 else -1)
    big = rng.random() < 0.25  # a cow now and then, a dog otherwise
    s = 2.3 if big else 1.0
    if not fr.visible(0.6 * s, 0.8 * s):
        return
    cls = FINE.ground_animal
    col = pal.vary(cls, rng, 0.3)
    fr.ellipse(0.0, 0.45 * s, 0.35 * s, 0.15 * s, cls, col, 0.0)
    fr.ellipse(0.38 * s, 0.6 * s, 0.11 * s, 0.09 * s, cls, col * 0.9, -0.001)
    for u in (-0.25, -0.18, 0.2, 0.27):
        fr.seg(u * s, 0.42 * s, u * s + 0.02, 0.0, 0.07 * s, cls, col * 0.85, 0.001)
    fr.seg(-0.33 * s, 0.5 * s, -0.5 * s, 0.65 * s, 0.04 * s, cls, col, 0.0)


def draw_ego(cv: Canvas, rng: np.random.Generator, pal: Palette) -> None:
    """The hood of the recording car across the bottom of the image."""
    H, W = cv.H, cv.W
    hood = uniform(rng, (0.07, 0.14)) * H
    cx = W * uniform(rng, (0.45, 0.55))
    xs = np.arange(W, dtype=np.float32) + 0.5
    top = H - hood + 0.6 * hood * ((xs - cx) / (0.6 * W)) ** 2
    r0 = max(int(np.floor(top.min())), 0)
    ys = np.arange(r0, H, dtype=np.float32)[:, None] + 0.5
    m = ys >= top[None, :]
    paint = pal.tone(FINE.ego_vehicle, CAR_PAINTS[rng.integers(len(CAR_PAINTS))])
    t = np.clip((ys - (H - hood)) / max(hood, 1.0), 0, 1)
    alb = paint[None, None, :] * (0.7 + 0.5 * t[:, :, None]) * np.ones((1, W, 1), np.float32)
    refl = (np.abs(ys - (H - 0.6 * hood) - 0.1 * (xs[None, :] - cx)) < 0.08 * hood)
    alb[refl] = alb[refl] * 0.5 + 0.4
    cv.put(r0, 0, m, FINE.ego_vehicle, alb, 0.05)
