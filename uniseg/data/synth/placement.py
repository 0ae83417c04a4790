"""Where a scene's objects stand: the placement rules as data, and one placer per group of rules.

How many of each object kind a scene holds is a Poisson draw around the dataset's mean
(``domains.yaml``, ``objects``) scaled by the scene kind (``KIND_SCALE``). Where each one stands
(a lane, the parking strip, the crosswalk, the sidewalk...), at which depth and lateral position
and with which drawing options is a :class:`Rule` of the tables below; each group of rules
(traffic, parked vehicles, two-wheelers, pedestrians, poles/lights/signs, furniture, trees) has its
placer. ``place_objects`` runs them in ``PLACEMENT`` order.

Every draw is made in a fixed order (the world is identical byte for byte per seed): a placer
draws in the order its docstring gives, and the groups, the rules of a group and the objects of a
rule are placed in table order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from uniseg.data.synth.ground import Road, Side
from uniseg.data.synth.sampling import poisson_count, sample_depth, uniform

#: How the scene kind scales the domain's mean object counts (a kind not listed keeps its mean).
KIND_SCALE = {
    "urban": {},
    "residential": {"person": 0.5, "trash_can": 0.5, "junction_box": 0.6, "phone_booth": 0.3, "tree": 1.5, "bus": 0.5,
                    "traffic_light": 0.4, "billboard": 0.3, "street_light": 0.8, "banner": 0.3},
    "rural": {"person": 0.15, "parked_car": 0.1, "parked_bicycle": 0.1, "parked_motorcycle": 0.2, "trash_can": 0.1,
              "junction_box": 0.2, "mailbox": 0.2, "phone_booth": 0.0, "traffic_light": 0.1, "billboard": 0.0,
              "bicyclist": 0.4, "pole": 0.5, "utility_pole": 3.0, "street_light": 0.4, "banner": 0.0,
              "ground_animal": 1.5, "bus": 0.5},
}

Counter = Callable[[str], int]


def object_counter(rng: np.random.Generator, means: dict, kind: str) -> Counter:
    """``count(name)``: how many of object kind ``name`` a ``kind`` scene holds, a Poisson draw around
    ``means[name]`` (the domain's ``objects``; 0 if absent) times ``KIND_SCALE``. A zero mean draws nothing."""
    scale = KIND_SCALE[kind]

    def count(name: str) -> int:
        return poisson_count(rng, float(means.get(name, 0.0)) * scale.get(name, 1.0))

    return count


class Placed(NamedTuple):
    """One placed object: where it stands (``z`` ahead, ``x`` across, metres), which drawer draws it
    (a key of ``scene.DRAWERS``) and the options that drawer gets."""

    z: float
    x: float
    draw: str
    options: dict


@dataclass(frozen=True)
class Rule:
    """How one object kind is placed: a row of the placement tables.

    Every rule has:

    - ``name``: the object kind's key in ``domains.yaml`` ``objects`` (its mean count) and in ``KIND_SCALE``.
    - ``draw``: the drawer (``scene.DRAWERS``: vehicle, two_wheeler, person, animal, pole, street_light,
      utility_pole, traffic_light, sign, furniture, tree).
    - ``options``: the drawer's fixed keyword options (a placer may add more: facing, view, toward...).
    - ``where``: ``lane`` (in a traffic lane, moving with it), ``kerb`` (parked along the road edge),
      ``road`` (riding: on the crosswalk, in the bike lane or at the road edge, else on the walk),
      ``walk`` (on the sidewalk, or the grass shoulder of a country road; see ``crossing`` and
      ``on_road`` for the exceptions), ``stop line`` (on the walk, at the crosswalk's stop line now and then).
    - ``depth``: ``(nearest, farthest)`` metres ahead, drawn log-uniform (``sampling.sample_depth``).

    Lateral position:

    - ``side``: ``right``, ``left`` or ``either`` (one draw: the left with chance ``left``).
    - ``left``: the chance of the left side when ``side`` is ``either``.
    - ``alternate``: street lights: the chance that the i-th one stands on side i % 2 (right, left,
      right...) rather than on a side drawn at random (one draw, plus one when random).
    - ``near``: metres from the road-side edge of the walk; ``None``: anywhere across it (0.3 m from
      either edge; one draw).
    - ``back``: metres from the walk's outer edge, for the kinds that stand at the back of the walk
      (furniture half the time, trees on a rural shoulder).
    - ``toward``: the drawer gets ``toward``, the road's direction seen from the object's side (-1 on
      the right, +1 on the left): street and traffic lights reach over the road.

    The exceptions to ``where``, each tried (one draw) before it:

    - ``crossing``: the chance of being on the crosswalk, when the scene has one (no draw otherwise;
      ``stop line``: of standing ``STOP_LINE_SETBACK`` before it).
    - ``on_road``: the chance of being on the carriageway anywhere, at ``road_depth``.
    - ``road_depth``: ``(nearest, farthest)`` metres when on the carriageway (``on_road``, ``road``).
    - ``margin``: ``(along, across)`` metres kept from the crosswalk's ends and the carriageway's edges
      when on either.

    Group-specific:

    - ``length``: ``lane``: the metres of lane a vehicle takes (two never overlap in a lane).
    - ``heading``: ``lane``: the drawer option that gets the lane's direction (``rear`` in our lanes,
      ``front`` in the oncoming ones).
    - ``edge``: ``road``: the chance (of the same draw as ``crossing``) of riding at the road edge rather
      than on the walk, where there is no bike lane.
    - ``inset``: ``road`` and ``kerb``: metres in from the carriageway's right edge when riding or
      parked there (no bike lane; no parking strip).
    - ``gap``: ``kerb``: the least metres between two parked vehicles along the kerb.
    - ``usual``: ``kerb``: the chance of ``options['kind']``, else one of ``others`` (one draw, plus one).
    - ``others``: ``kerb``: the kinds that stand in for ``options['kind']`` now and then.
    - ``decor``: an object kind (its mean count) and a boolean drawer option: that many of the placed
      objects, drawn at random, get the option (banners on street lights).
    """

    name: str
    draw: str
    options: dict = field(default_factory=dict)
    where: str = "walk"
    depth: tuple[float, float] = (4.0, 70.0)
    side: str = "either"
    left: float = 0.5
    alternate: float = 0.0
    near: float | None = None
    back: float | None = None
    toward: bool = False
    crossing: float = 0.0
    on_road: float = 0.0
    road_depth: tuple[float, float] | None = None
    margin: tuple[float, float] = (0.5, 0.5)
    length: float = 0.0
    heading: str = "facing"
    edge: float = 0.0
    inset: float = 0.0
    gap: float = 0.0
    usual: float = 1.0
    others: tuple[str, ...] = ()
    decor: str | None = None


# --------------------------------------------------------------------------- the rules

#: Moving traffic, in our lanes (seen from the rear) and the oncoming ones (from the front).
TRAFFIC = (
    Rule("car", "vehicle", {"kind": "car"}, where="lane", depth=(7.0, 90.0), length=4.5),
    Rule("truck", "vehicle", {"kind": "truck"}, where="lane", depth=(7.0, 90.0), length=9.0),
    Rule("bus", "vehicle", {"kind": "bus"}, where="lane", depth=(7.0, 90.0), length=12.0),
    Rule("caravan", "vehicle", {"kind": "caravan"}, where="lane", depth=(7.0, 90.0), length=6.5),
    Rule("trailer", "vehicle", {"kind": "trailer"}, where="lane", depth=(7.0, 90.0), length=4.0),
    Rule("autorickshaw", "vehicle", {"kind": "autorickshaw"}, where="lane", depth=(7.0, 90.0), length=2.6),
    Rule("motorcyclist", "two_wheeler", {"motor": True, "rider": True}, where="lane", depth=(5.0, 90.0), length=2.0,
         heading="view"),
)

#: Parked vehicles: in the parking strip of each side, else (right side, no bike lane, not rural) at the kerb.
PARKED = (
    Rule("parked_car", "vehicle", {"kind": "car"}, where="kerb", depth=(5.0, 80.0), inset=1.1, gap=5.2, usual=0.9,
         others=("caravan", "trailer", "truck")),
)

#: Bicyclists (on the crosswalk, in the bike lane, at the road edge or on the sidewalk) and parked two-wheelers.
TWO_WHEELERS = (
    Rule("bicyclist", "two_wheeler", {"motor": False, "rider": True}, where="road", side="right", depth=(5.0, 50.0),
         crossing=0.25, margin=(0.8, 1.0), road_depth=(5.0, 60.0), edge=0.6, inset=0.7),
    Rule("parked_bicycle", "two_wheeler", {"motor": False, "rider": False, "view": "side"}, depth=(4.0, 40.0), left=0.35,
         near=0.6),
    Rule("parked_motorcycle", "two_wheeler", {"motor": True, "rider": False, "view": "side"}, depth=(4.0, 40.0),
         left=0.35, near=0.6),
)

#: People on the sidewalks (or the crosswalk) and animals on the walk (or the road).
PEDESTRIANS = (
    Rule("person", "person", depth=(4.0, 60.0), left=0.45, crossing=0.3, margin=(0.5, 0.5)),
    Rule("ground_animal", "animal", depth=(4.0, 40.0), left=0.5, on_road=0.3, road_depth=(6.0, 40.0), margin=(0.5, 0.5)),
)

#: Poles, street lights (some with banners), utility poles, traffic lights, and signs: their fronts
#: on the right (facing our traffic), their backs on the left.
POLES_AND_SIGNS = (
    Rule("pole", "pole", depth=(4.0, 60.0), left=0.5, near=0.35),
    Rule("street_light", "street_light", {"banner": False}, depth=(5.0, 80.0), alternate=0.7, near=0.4, toward=True,
         decor="banner"),
    Rule("utility_pole", "utility_pole", depth=(6.0, 80.0), left=0.5, near=1.0),
    Rule("traffic_light", "traffic_light", where="stop line", depth=(8.0, 60.0), left=0.5, near=0.4, toward=True,
         crossing=0.6),
    Rule("sign", "sign", {"front": True}, depth=(4.0, 50.0), side="right", near=0.45),
    Rule("sign_back", "sign", {"front": False}, depth=(4.0, 50.0), side="left", near=0.45),
)

#: Street furniture: at the road side of the walk half the time, at its back otherwise.
FURNITURE = tuple(
    Rule(what, "furniture", {"what": what}, depth=(4.0, 45.0), left=0.45, near=0.5, back=0.7)
    for what in ("trash_can", "junction_box", "mailbox", "phone_booth")
)

#: Trees: on the sidewalk (urban), in the front gardens (residential), on the shoulder (rural).
TREES = (Rule("tree", "tree", depth=(5.0, 70.0), left=0.5, near=0.8, back=1.0),)

#: Traffic: tries to find a free spot in a lane, lateral jitter (standard deviation, metres) within the lane.
LANE_TRIES = 6
LANE_JITTER = 0.12
#: Parked vehicles: the left side holds count // LEFT_PARKING_SHARE (a second count is drawn for it).
LEFT_PARKING_SHARE = 2
#: Traffic lights: metres before the crosswalk when at its stop line; none stands nearer than NEAREST metres.
STOP_LINE_SETBACK = 2.0
NEAREST = 4.0
#: Traffic lights on the left side face us with this chance (those on the right always do).
LEFT_LIGHT_FACES_US = 0.3
#: Furniture: the chance of standing ``near`` the road rather than at the back of the walk; the
#: least metres from the road when at the back.
FURNITURE_NEAR_ROAD = 0.5
FURNITURE_BACK_MIN = 0.4
#: Residential trees: metres into the garden behind the front plane (fence, hedge).
GARDEN_SETBACK = 1.5


# --------------------------------------------------------------------------- where on the road


def walk_position(rng: np.random.Generator, side: Side, near: float | None = None) -> float:
    """X of a spot on ``side``'s walk: ``near`` metres from its road-side edge, or anywhere across
    it (0.3 m from either edge; one draw) when ``near`` is None."""
    a, b = side.walk
    if near is not None:  # metres from the road-side edge of the walk
        return (a + near) if side.sign > 0 else (b - near)
    return uniform(rng, (a + 0.3, b - 0.3)) if b - a > 0.6 else 0.5 * (a + b)


def _pick_side(rng: np.random.Generator, road: Road, rule: Rule, i: int = 0) -> Side:
    """The side of the ``i``-th object of ``rule`` (see ``Rule.side``, ``left``, ``alternate``)."""
    if rule.side == "right":
        return road.right
    if rule.side == "left":
        return road.left
    sides = (road.right, road.left)
    if rule.alternate:
        return sides[i % 2 if rng.random() < rule.alternate else int(rng.integers(2))]
    return sides[int(rng.random() < rule.left)]


def _on_crosswalk(rng: np.random.Generator, road: Road, margin: tuple[float, float]) -> tuple[float, float]:
    """``(z, x)`` on the crosswalk, ``margin`` (along, across) metres from its ends and the carriageway's edges."""
    z0, z1, _plain = road.crosswalk
    along, across = margin
    z = uniform(rng, (z0 + along, z1 - along))
    return z, uniform(rng, (road.left_edge + across, road.right_edge - across))


def _on_walk(rng: np.random.Generator, road: Road, rule: Rule, i: int = 0) -> Placed:
    """The plain walk placement: a side, a depth, then a spot ``rule.near`` from the road (in that order)."""
    side = _pick_side(rng, road, rule, i)
    z = sample_depth(rng, *rule.depth)
    return Placed(z, walk_position(rng, side, rule.near), rule.draw, dict(rule.options))


# --------------------------------------------------------------------------- one placer per group


def place_traffic(rng: np.random.Generator, road: Road, kind: str, count: Counter, rules: tuple[Rule, ...]) -> list[Placed]:
    """Vehicles in the lanes: per try a lane, then a depth; the first spot that overlaps no vehicle
    placed so far (in any rule) is taken, with a lateral jitter; after ``LANE_TRIES`` tries it is left out."""
    lanes = [(x, "rear") for x in road.our_lanes] + [(x, "front") for x in road.oncoming_lanes]
    taken: list[tuple[float, float, float]] = []  # (lane X, z, length) of every vehicle placed

    def in_lane(length: float, depth: tuple[float, float]) -> tuple[float, float, str] | None:
        for _ in range(LANE_TRIES):
            x, facing = lanes[int(rng.integers(len(lanes)))]
            z = sample_depth(rng, *depth)
            if all(abs(x - tx) > 1.0 or abs(z - tz) > (length + tl) / 2 + 1.0 for tx, tz, tl in taken):
                taken.append((x, z, length))
                return x + float(rng.normal(0, LANE_JITTER)), z, facing
        return None

    placed = []
    for rule in rules:
        for _ in range(count(rule.name)):
            spot = in_lane(rule.length, rule.depth)
            if spot:
                x, z, facing = spot
                placed.append(Placed(z, x, rule.draw, {**rule.options, rule.heading: facing}))
    return placed


def place_parked(rng: np.random.Generator, road: Road, kind: str, count: Counter, rules: tuple[Rule, ...]) -> list[Placed]:
    """Vehicles parked along each side (right, then left): a count (the left keeps a share of its own
    count), that many depths, sorted; along the kerb, each one ``gap`` metres from the last kept draws
    its kind and stands in the parking strip, or at the kerb of the right side, or is left out."""
    placed = []
    for rule in rules:
        for side in (road.right, road.left):
            strip = side.parking
            n = count(rule.name) // (1 if side is road.right else LEFT_PARKING_SHARE)
            zs = sorted(sample_depth(rng, *rule.depth) for _ in range(n))
            last = -10.0
            for z in zs:
                if z - last < rule.gap:
                    continue
                last = z
                what = rule.options["kind"] if rng.random() < rule.usual else str(rng.choice(list(rule.others)))
                if strip is not None:
                    x = 0.5 * (strip[0] + strip[1])
                elif kind != "rural" and side is road.right and road.right.bike is None:
                    x = road.right_edge - rule.inset
                else:
                    continue
                placed.append(Placed(z, x, rule.draw, {**rule.options, "kind": what, "facing": "rear" if side.sign > 0 else "front"}))
    return placed


def place_two_wheelers(rng: np.random.Generator, road: Road, kind: str, count: Counter, rules: tuple[Rule, ...]) -> list[Placed]:
    """Riders (``where='road'``): one draw r; on the crosswalk (crossing it, seen from the side) if there
    is one and r < ``crossing``; else in the bike lane, or at the road edge if r < ``edge`` (or there is no
    walk), both seen from the rear; else on the walk, from the side. Parked ones: as ``_on_walk``."""
    placed = []
    for rule in rules:
        for i in range(count(rule.name)):
            if rule.where != "road":
                placed.append(_on_walk(rng, road, rule, i))
                continue
            r = rng.random()
            if road.crosswalk is not None and r < rule.crossing:
                z, x = _on_crosswalk(rng, road, rule.margin)
                view = "side"
            elif road.right.bike is not None:
                z, x, view = sample_depth(rng, *rule.road_depth), 0.5 * sum(road.right.bike), "rear"
            elif r < rule.edge or road.right.walk is None:
                z, x, view = sample_depth(rng, *rule.road_depth), road.right_edge - rule.inset, "rear"
            else:
                z = sample_depth(rng, *rule.depth)
                x, view = walk_position(rng, _pick_side(rng, road, rule)), "side"
            placed.append(Placed(z, x, rule.draw, {**rule.options, "view": view}))
    return placed


def place_pedestrians(rng: np.random.Generator, road: Road, kind: str, count: Counter, rules: tuple[Rule, ...]) -> list[Placed]:
    """People and animals: on the crosswalk (chance ``crossing``, drawn only when there is one), else on
    the carriageway (chance ``on_road``, drawn only when above 0: a depth, then X), else on the walk
    (a depth, then a side, then a spot on it)."""
    placed = []
    for rule in rules:
        for _ in range(count(rule.name)):
            if rule.crossing > 0 and road.crosswalk is not None and rng.random() < rule.crossing:
                z, x = _on_crosswalk(rng, road, rule.margin)
            elif rule.on_road > 0 and rng.random() < rule.on_road:
                across = rule.margin[1]
                z = sample_depth(rng, *rule.road_depth)
                x = uniform(rng, (road.left_edge + across, road.right_edge - across))
            else:
                z = sample_depth(rng, *rule.depth)
                x = walk_position(rng, _pick_side(rng, road, rule), rule.near)
            placed.append(Placed(z, x, rule.draw, dict(rule.options)))
    return placed


def place_poles_and_signs(rng: np.random.Generator, road: Road, kind: str, count: Counter, rules: tuple[Rule, ...]) -> list[Placed]:
    """Poles, lights and signs on the walk: a side, a depth (traffic lights, ``where='stop line'``: at
    the stop line with chance ``crossing`` when there is a crosswalk, else a depth), a spot ``near`` the
    road, then for a traffic light on the left whether it faces us. A rule with ``decor`` then draws
    its count and sets that option on as many of its objects, drawn at random."""
    placed = []
    for rule in rules:
        mine = []
        for i in range(count(rule.name)):
            side = _pick_side(rng, road, rule, i)
            if rule.where == "stop line" and road.crosswalk is not None and rng.random() < rule.crossing:
                z = road.crosswalk[0] - STOP_LINE_SETBACK
            else:
                z = sample_depth(rng, *rule.depth)
            x = walk_position(rng, side, rule.near)
            options = dict(rule.options)
            if rule.toward:
                options["toward"] = -side.sign
            if rule.where == "stop line":
                options["facing_us"] = side.sign > 0 or rng.random() < LEFT_LIGHT_FACES_US
                z = max(z, NEAREST)
            mine.append(Placed(z, x, rule.draw, options))
        if rule.decor:
            for _ in range(count(rule.decor)):
                if mine:
                    mine[int(rng.integers(len(mine)))].options[rule.decor] = True
        placed.extend(mine)
    return placed


def place_furniture(rng: np.random.Generator, road: Road, kind: str, count: Counter, rules: tuple[Rule, ...]) -> list[Placed]:
    """Street furniture: a side, then near the road (chance ``FURNITURE_NEAR_ROAD``, at ``near``) or at
    the back of the walk (``back`` metres from its outer edge), then a depth."""
    placed = []
    for rule in rules:
        for _ in range(count(rule.name)):
            side = _pick_side(rng, road, rule)
            if rng.random() < FURNITURE_NEAR_ROAD:
                near = rule.near
            else:
                near = max(abs(side.walk[1] - side.walk[0]) - rule.back, FURNITURE_BACK_MIN)
            placed.append(Placed(sample_depth(rng, *rule.depth), walk_position(rng, side, near), rule.draw, dict(rule.options)))
    return placed


def place_trees(rng: np.random.Generator, road: Road, kind: str, count: Counter, rules: tuple[Rule, ...]) -> list[Placed]:
    """Trees: a side, then a depth; on a rural shoulder ``back`` metres from its outer edge, in a
    residential front garden ``GARDEN_SETBACK`` behind the front plane (if the side has one), else
    ``near`` metres from the road."""
    placed = []
    for rule in rules:
        for _ in range(count(rule.name)):
            side = _pick_side(rng, road, rule)
            if kind == "rural":
                x = side.walk[1] - rule.back if side.sign > 0 else side.walk[0] + rule.back
            elif kind == "residential" and side.front is not None:
                x = side.front + side.sign * GARDEN_SETBACK
            else:
                x = walk_position(rng, side, rule.near)
            placed.append(Placed(sample_depth(rng, *rule.depth), x, rule.draw, dict(rule.options)))
    return placed


Placer = Callable[[np.random.Generator, Road, str, Counter, tuple[Rule, ...]], list[Placed]]

#: The groups in the order they are placed: (placer, rules).
PLACEMENT: tuple[tuple[Placer, tuple[Rule, ...]], ...] = (
    (place_traffic, TRAFFIC),
    (place_parked, PARKED),
    (place_two_wheelers, TWO_WHEELERS),
    (place_pedestrians, PEDESTRIANS),
    (place_poles_and_signs, POLES_AND_SIGNS),
    (place_furniture, FURNITURE),
    (place_trees, TREES),
)


def place_objects(rng: np.random.Generator, road: Road, kind: str, count: Counter) -> list[Placed]:
    """Every object of a ``kind`` scene on ``road``, group by group (``PLACEMENT``), in placement order."""
    placed: list[Placed] = []
    for placer, rules in PLACEMENT:
        placed.extend(placer(rng, road, kind, count, rules))
    return placed
