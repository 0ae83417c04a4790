"""Street fixtures: poles, street lights (with banners), utility poles, traffic lights, traffic signs
seen from the front or the back, street furniture (trash cans, junction boxes, mailboxes, phone
booths) and trees.

Each ``draw_*`` takes ``(cv, cam, X, Z, rng, pal, night, **options)`` as the drawers of
``objects.py`` do: where the fixture stands on the ground (metres) and the options its placement
rule gives it (``placement.py``).
"""

from __future__ import annotations

import numpy as np

from uniseg.data.synth.classes import FINE
from uniseg.data.synth.raster import Frame
from uniseg.data.synth.sampling import uniform


def draw_pole(cv, cam, X, Z, rng, pal, night, height: float = 0.0) -> None:
    """A plain pole, ``height`` metres tall (2.5-4 m when 0)."""
    fr = Frame(cv, cam, X, Z)
    h = height or uniform(rng, (2.5, 4.0))
    if fr.visible(0.2, h):
        fr.rect(-0.06, 0.0, 0.06, h, FINE.pole, pal.vary(FINE.pole, rng, 0.1))


def draw_street_light(cv, cam, X, Z, rng, pal, night, toward: int, banner: bool) -> None:
    """A street light whose arm reaches ``toward`` the road (+1 right, -1 left), lit at night, with a banner on its pole if ``banner``."""
    fr = Frame(cv, cam, X, Z)
    h = uniform(rng, (6.0, 9.0))
    if not fr.visible(2.5, h + 0.5):
        return
    col = pal.vary(FINE.pole, rng, 0.1)
    fr.rect(-0.08, 0.0, 0.08, h, FINE.pole, col)
    fr.seg(0.0, h - 0.1, toward * 1.5, h + 0.35, 0.09, FINE.pole, col)
    lamp = np.array([1.0, 0.95, 0.8], np.float32) if night else pal.vary(FINE.street_light, rng, 0.05)
    fr.ellipse(toward * 1.75, h + 0.28, 0.35, 0.1, FINE.street_light, lamp, -0.01, night)
    if banner:
        bcol = np.clip(pal[FINE.banner] * (0.4 + 1.2 * rng.random(3)), 0, 1).astype(np.float32)
        fr.rect(-toward * 0.08, 3.2, -toward * 0.7, 4.9, FINE.banner, bcol, -0.01)
        fr.rect(-toward * 0.1, 3.7, -toward * 0.68, 4.0, FINE.banner, bcol * 0.5 + 0.4, -0.011)


def draw_utility_pole(cv, cam, X, Z, rng, pal, night) -> None:
    """A wooden utility pole with a cross-arm and insulators."""
    fr = Frame(cv, cam, X, Z)
    h = uniform(rng, (8.5, 11.0))
    if not fr.visible(1.3, h):
        return
    col = pal.vary(FINE.utility_pole, rng, 0.1)
    fr.rect(-0.13, 0.0, 0.13, h, FINE.utility_pole, col)
    fr.rect(-1.1, h - 0.9, 1.1, h - 0.72, FINE.utility_pole, col * 0.9, -0.01)
    for u in (-0.9, -0.4, 0.4, 0.9):
        fr.rect(u - 0.04, h - 0.72, u + 0.04, h - 0.5, FINE.utility_pole, np.array([0.8, 0.8, 0.75], np.float32), -0.011)


def draw_traffic_light(cv, cam, X, Z, rng, pal, night, toward: int, facing_us: bool) -> None:
    """A traffic light on a short pole or a mast reaching ``toward`` the road; its lamps show only if ``facing_us``."""
    fr = Frame(cv, cam, X, Z)
    mast = rng.random() < 0.35
    if not fr.visible(4.5 if mast else 0.3, 6.0):
        return
    pcol = pal.vary(FINE.pole, rng, 0.1)
    box = pal.vary(FINE.traffic_light, rng, 0.2)
    if mast:
        fr.rect(-0.1, 0.0, 0.1, 6.0, FINE.pole, pcol)
        reach = uniform(rng, (2.5, 4.5))
        fr.seg(0.0, 5.8, toward * reach, 5.8, 0.12, FINE.pole, pcol)
        u, v0 = toward * (reach - 0.3), 4.7
    else:
        fr.rect(-0.07, 0.0, 0.07, 3.0, FINE.pole, pcol)
        u, v0 = 0.0, 3.0
    fr.rect(u - 0.17, v0, u + 0.17, v0 + 0.95, FINE.traffic_light, box, -0.01)
    if facing_us:
        lit = int(rng.integers(3))
        for i, c in enumerate(([0.9, 0.1, 0.05], [1.0, 0.75, 0.0], [0.1, 0.9, 0.3])):
            on = i == lit
            colour = np.array(c, np.float32) * (1.0 if on else 0.25)
            fr.ellipse(u, v0 + 0.78 - 0.3 * i, 0.09, 0.09, FINE.traffic_light, colour, -0.02, on and True)


def draw_sign(cv, cam, X, Z, rng, pal, night, front: bool) -> None:
    """A traffic sign on a post, its face (``front``) or its back towards the camera."""
    fr = Frame(cv, cam, X, Z)
    shape = str(rng.choice(["circle", "circle", "triangle", "rect", "wide", "octagon"]))
    size = uniform(rng, (0.6, 0.8))
    wide = shape == "wide"
    hw, hh = (size * 0.9, size * 0.45) if wide else (size / 2, size / 2)
    top = uniform(rng, (2.3, 3.0)) + hh * 2
    if not fr.visible(hw + 0.1, top):
        return
    cy = top - hh
    fr.rect(-0.04, 0.0, 0.04, cy, FINE.pole, pal.vary(FINE.pole, rng, 0.1))
    cls = FINE.traffic_sign_front if front else FINE.traffic_sign_back

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

    frame_col = pal.vary(FINE.traffic_sign_frame, rng, 0.1)
    if front:
        if shape in ("rect", "wide"):
            face(1.0 + 0.12 / max(hw, 0.1), frame_col, 0.005, FINE.traffic_sign_frame)
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
            fr.rect(-hw * 0.85, cy + dv * hh - 0.03, hw * 0.85, cy + dv * hh + 0.03, FINE.traffic_sign_frame, frame_col, -0.002)


def draw_furniture(cv, cam, X, Z, rng, pal, night, what: str) -> None:
    """Street furniture: ``what`` is trash_can, junction_box, mailbox or phone_booth."""
    fr = Frame(cv, cam, X, Z)
    if not fr.visible(0.6, 2.4):
        return
    cls = getattr(FINE, what)
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


def draw_tree(cv, cam, X, Z, rng, pal, night) -> None:
    """A tree: a trunk and a crown of 3-5 overlapping ellipses."""
    fr = Frame(cv, cam, X, Z)
    trunk = uniform(rng, (1.8, 3.0))
    r = uniform(rng, (1.3, 2.6))
    if not fr.visible(r + 0.5, trunk + 2 * r):
        return
    col = pal.vary(FINE.vegetation, rng, 0.12)
    fr.rect(-0.14, 0.0, 0.14, trunk + r * 0.5, FINE.vegetation, pal.tone(FINE.vegetation, np.array([0.35, 0.27, 0.2], np.float32)))
    for _ in range(int(rng.integers(3, 6))):
        du, dv = rng.normal(0, 0.45 * r), rng.normal(0, 0.35 * r)
        rr = r * uniform(rng, (0.55, 0.85))
        fr.ellipse(du, trunk + r + dv, rr, rr * 0.9, FINE.vegetation, col * uniform(rng, (0.8, 1.1)), -0.01)
