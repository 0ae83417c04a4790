"""Procedural street scenes: the fine ground truth (and an albedo to render the image from).

A scene is a flat world seen by a pinhole camera: a straight road with lanes, markings and
crosswalks, parking strips, bike lanes, curbs and sidewalks (or grass shoulders), vertical
planes beside it (facades, hedges, walls, fences, guard rails, tree lines), a skyline at the
horizon, and objects standing on the ground (vehicles, two-wheelers with or without riders,
pedestrians, animals, poles, street lights, traffic lights, signs seen from the front or the
back, street furniture, trees). Sizes are in metres, so objects shrink with depth. How often
each thing appears comes from the dataset's domain (``domains.yaml``).

This module draws a scene in order; what is drawn lives beside it: ``ground.py`` (road layout,
sky, skyline, ground), ``planes.py`` (the vertical planes), ``placement.py`` (where the objects
stand), ``objects.py`` (road users, the ego vehicle) and ``fixtures.py`` (poles, lights, signs,
furniture, trees), on the shared ``classes.py`` (fine ids), ``palette.py`` (colours) and
``sampling.py`` (random draws).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from uniseg.data.synth.fixtures import (
    draw_furniture,
    draw_pole,
    draw_sign,
    draw_street_light,
    draw_traffic_light,
    draw_tree,
    draw_utility_pole,
)
from uniseg.data.synth.ground import draw_ground, draw_sky, draw_skyline, make_road
from uniseg.data.synth.objects import draw_animal, draw_ego, draw_person, draw_two_wheeler, draw_vehicle
from uniseg.data.synth.palette import Palette, domain_palette, shifted_colours
from uniseg.data.synth.placement import object_counter, place_objects
from uniseg.data.synth.planes import add_billboards, draw_planes, roadside_planes
from uniseg.data.synth.raster import Camera, Canvas
from uniseg.data.synth.sampling import uniform, weighted_choice

__all__ = ["Scene", "make_scene", "DRAWERS", "Palette", "domain_palette"]

#: The drawer of each placed object (``placement.Rule.draw``).
DRAWERS = {
    "vehicle": draw_vehicle, "two_wheeler": draw_two_wheeler, "person": draw_person, "animal": draw_animal,
    "pole": draw_pole, "street_light": draw_street_light, "utility_pole": draw_utility_pole,
    "traffic_light": draw_traffic_light, "sign": draw_sign, "furniture": draw_furniture, "tree": draw_tree,
}


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
    objects: list[str] = field(default_factory=list)  # the drawer of each placed object, in placement order


def make_scene(rng: np.random.Generator, height: int, width: int, domain: dict, pal: Palette) -> Scene:
    """Draw one scene of the dataset whose domain is ``domain`` (merged domains.yaml entry).

    In this order, each step drawing from ``rng``: camera, scene kind, night, the image's own colour
    variation, the road, sky, skyline, ground, the vertical planes and their billboards, the objects
    (placed, then drawn farthest first), the ego vehicle.
    """
    camera_cfg, look = domain["camera"], domain["look"]
    f = uniform(rng, camera_cfg["focal"]) * width
    cam = Camera(height, width, f, uniform(rng, camera_cfg["height"]), uniform(rng, camera_cfg["horizon"]) * height,
                 uniform(rng, camera_cfg["vanish"]) * width)
    kind = str(weighted_choice(rng, domain["scenes"]))
    night = bool(rng.random() < float(look["night"]))
    if float(look["scene_jitter"]) > 0:  # this image's own variation of the dataset's colours
        pal = Palette(shifted_colours(pal.colours, rng, float(look["scene_jitter"])))
    cv = Canvas(height, width)
    road = make_road(rng, kind, domain["road"])
    count = object_counter(rng, domain["objects"], kind)

    draw_sky(cv, cam, rng, look, night)
    draw_skyline(cv, cam, rng, kind, pal)
    draw_ground(cv, cam, rng, road, pal, domain["road"])

    planes = roadside_planes(rng, road, kind, pal)
    add_billboards(rng, [s for _, segs in planes for s in segs], count("billboard"), pal)
    draw_planes(cv, cam, planes, rng, pal, night)

    placed = place_objects(rng, road, kind, count)
    for item in sorted(placed, key=lambda it: -it.z):  # farthest first (a stable sort: ties in placement order)
        DRAWERS[item.draw](cv, cam, item.x, item.z, rng, pal, night, **item.options)
    if rng.random() < float(domain["ego_vehicle"]):
        draw_ego(cv, rng, pal)
    return Scene(cv.label, cv.albedo, cv.depth, cv.emit, night, kind, cam, [it.draw for it in placed])
