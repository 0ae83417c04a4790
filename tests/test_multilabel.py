"""Eq. 6 (multi-labels from similarities) and the automatic tau on hand-made similarity tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from relations_fixtures import OTHER, OWN, RIDER_CASE, hand_made
from uniseg.unify import build_union
from uniseg.relations.eq6 import NO_CANDIDATE_TAU, auto_tau, identity_table, multilabel_table
from uniseg.relations.artifact import check_table

ON, ZERO, NULL = 1, 0, -1


@pytest.fixture(scope="module")
def cm(registry):
    """Cityscapes + Mapillary (67 classes): rider is Cityscapes-only, bicyclist Mapillary-only."""
    return build_union(registry.get_many(["cityscapes", "mapillary"]))


def _table(union, sim, tau):
    return multilabel_table(sim.score, union.null_mask(sim.datasets), sim.pixels, tau)


def _at(union, table, dataset, c, c2):
    return int(table[union.datasets.index(dataset), union.index_of(c), union.index_of(c2)])


def test_rider_and_bicyclist_are_asymmetric(cm):
    table = _table(cm, hand_made(cm, RIDER_CASE), tau=0.5)
    # a Mapillary bicyclist is also a rider: 0.70 > max(0.5, 0.55)
    assert _at(cm, table, "mapillary", "bicyclist", "rider") == ON
    assert _at(cm, table, "mapillary", "motorcyclist", "rider") == ON  # 0.62 > max(0.5, 0.60)
    # a Cityscapes rider is not always a bicyclist: 0.45 <= 0.5 -> stays null (outside Cityscapes' space)
    assert _at(cm, table, "cityscapes", "rider", "bicyclist") == NULL
    assert _at(cm, table, "cityscapes", "rider", "motorcyclist") == NULL
    # the rest of those rows is untouched: own class 1, other own classes 0, the other dataset's classes null
    assert _at(cm, table, "mapillary", "bicyclist", "bicyclist") == ON
    assert _at(cm, table, "mapillary", "bicyclist", "person") == ZERO
    assert _at(cm, table, "cityscapes", "rider", "rider") == ON
    assert _at(cm, table, "cityscapes", "rider", "bike lane") == NULL
    assert int((table == ON).sum()) == int(np.trace(table, axis1=1, axis2=2).sum()) + 2


def test_a_null_above_tau_stays_null_when_its_own_class_scores_higher(cm):
    sim = hand_made(cm, {("cityscapes", "road", "lane marking - general"): 0.70, ("cityscapes", "road", "road"): 0.75})
    table = _table(cm, sim, tau=0.5)
    assert _at(cm, table, "cityscapes", "road", "lane marking - general") == NULL  # 0.70 > tau but < s(road)
    # the same score switches on once the own class scores lower
    sim = hand_made(cm, {("cityscapes", "road", "lane marking - general"): 0.70, ("cityscapes", "road", "road"): 0.65})
    assert _at(cm, _table(cm, sim, tau=0.5), "cityscapes", "road", "lane marking - general") == ON


def test_a_score_equal_to_tau_or_to_the_own_score_does_not_switch_on(cm):
    equal_tau = hand_made(cm, {("mapillary", "bicyclist", "rider"): 0.5, ("mapillary", "bicyclist", "bicyclist"): 0.3})
    assert _at(cm, _table(cm, equal_tau, tau=0.5), "mapillary", "bicyclist", "rider") == NULL
    assert _at(cm, _table(cm, equal_tau, tau=0.4999), "mapillary", "bicyclist", "rider") == ON
    equal_own = hand_made(cm, {("mapillary", "bicyclist", "rider"): 0.6, ("mapillary", "bicyclist", "bicyclist"): 0.6})
    assert _at(cm, _table(cm, equal_own, tau=0.5), "mapillary", "bicyclist", "rider") == NULL


def test_an_in_space_class_can_be_switched_on_as_eq6_says(cm):
    # the paper's Table A-1 has Mapillary's phone booth -> building, both Mapillary classes
    sim = hand_made(cm, {("mapillary", "phone booth", "building"): 0.7, ("mapillary", "phone booth", "phone booth"): 0.6})
    table = _table(cm, sim, tau=0.5)
    assert _at(cm, table, "mapillary", "phone booth", "building") == ON  # was 0 (a negative) in Null BCE
    assert _at(cm, _table(cm, sim, tau=0.75), "mapillary", "phone booth", "building") == ZERO
    check_table(table, cm.null_mask(), cm.datasets)


def test_rows_without_pixels_or_outside_the_space_are_the_null_bce_rows(cm):
    sim = hand_made(cm, {("mapillary", "bicyclist", "rider"): 0.9, ("mapillary", "bicyclist", "bicyclist"): 0.2},
                    no_pixels=[("mapillary", "bicyclist")])
    valid = cm.null_mask()
    table = _table(cm, sim, tau=0.1)
    expected = identity_table(valid)
    assert np.array_equal(table, expected)  # the bicyclist row had no pixels: nothing switched on
    # a row outside the space keeps the identity row whatever its scores say
    score = sim.score.copy()
    c, r = cm.datasets.index("cityscapes"), cm.index_of("bicyclist")
    score[c, r, :] = 0.9
    pixels = sim.pixels.copy()
    pixels[c, r] = 10
    assert np.array_equal(multilabel_table(score, valid, pixels, 0.1)[c, r], expected[c, r])


def test_auto_tau_is_the_mean_of_the_top_scores_that_lie_outside_the_space(cm):
    scores = dict(RIDER_CASE)
    # Cityscapes' road: top class lane marking (outside Cityscapes) at 0.85 > s(road) 0.80
    scores[("cityscapes", "road", "lane marking - general")] = 0.85
    # Cityscapes' wall: top is its own class; an outside class below it must not count
    scores[("cityscapes", "wall", "guard rail")] = 0.79
    # a tie between an outside class and the own class counts as in-space
    scores[("cityscapes", "fence", "guard rail")] = OWN
    # a row with no pixels is not measured, whatever it scores
    scores[("mapillary", "curb", "sidewalk")] = 0.99
    sim = hand_made(cm, scores, no_pixels=[("mapillary", "curb")])
    choice = auto_tau(sim.score, cm.null_mask(), sim.pixels)
    # candidates: mapillary bicyclist (top rider 0.70), mapillary motorcyclist (top rider 0.62),
    # cityscapes road (top lane marking 0.85); cityscapes rider's top is rider itself (0.80)
    assert choice.rows == 3 and choice.how == "auto"
    assert choice.tau == pytest.approx((0.70 + 0.62 + 0.85) / 3, abs=1e-15)
    table = _table(cm, sim, choice.tau)  # tau = 0.7233: only the road row clears it
    assert _at(cm, table, "cityscapes", "road", "lane marking - general") == ON
    assert _at(cm, table, "mapillary", "bicyclist", "rider") == NULL
    check_table(table, cm.null_mask(), cm.datasets)


def test_auto_tau_without_candidates_switches_nothing_on(cm):
    sim = hand_made(cm, {("cityscapes", "rider", "bicyclist"): 0.79})
    choice = auto_tau(sim.score, cm.null_mask(), sim.pixels)
    assert (choice.tau, choice.rows, choice.how) == (NO_CANDIDATE_TAU, 0, "auto") and "nothing" in choice.note
    table = _table(cm, sim, choice.tau)
    assert np.array_equal(table, identity_table(cm.null_mask()))
    # even a score of exactly 1.0 cannot pass tau = 1.0
    ones = hand_made(cm, {("mapillary", "bicyclist", "rider"): 1.0, ("mapillary", "bicyclist", "bicyclist"): 1.0})
    assert auto_tau(ones.score, cm.null_mask(), ones.pixels).rows == 0


def test_check_table_accepts_tables_from_eq6(cm, registry):
    sim = hand_made(cm, {**RIDER_CASE, ("mapillary", "phone booth", "building"): 0.9, ("mapillary", "bike lane", "road"): 0.85})
    for tau in (0.0, 0.3, 0.5, 1.0):
        check_table(_table(cm, sim, tau), cm.null_mask(), cm.datasets)
    four = build_union(registry.get_many(["cityscapes", "bdd", "idd", "mapillary"]))
    rng = np.random.default_rng(0)
    valid = four.null_mask()
    score = rng.uniform(0, 1, (4, four.num_classes, four.num_classes))
    table = multilabel_table(score, valid, np.where(valid, 5, 0), auto_tau(score, valid, np.where(valid, 5, 0)).tau)
    assert (table == ON).sum() > np.trace(table, axis1=1, axis2=2).sum()  # random scores switch some on
    check_table(table, valid, four.datasets)


def _literal_eq6(score, valid, pixels, tau):
    """Eq. 6 written out cell by cell, the way the paper states it."""
    d, k, _ = score.shape
    out = np.zeros((d, k, k), dtype=np.int8)
    for i in range(d):
        for c in range(k):
            measured = valid[i, c] and pixels[i, c] > 0
            for c2 in range(k):
                if c2 == c or (measured and score[i, c, c2] > max(tau, score[i, c, c])):
                    out[i, c, c2] = 1
                elif not valid[i, c2]:
                    out[i, c, c2] = -1
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data(), d=st.integers(1, 3), k=st.integers(1, 6))
def test_multilabel_table_equals_eq6_written_out(data, d, k):
    grid = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])  # a coarse grid makes ties (the strict ">") common
    score = np.array(data.draw(st.lists(grid, min_size=d * k * k, max_size=d * k * k))).reshape(d, k, k)
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=d * k, max_size=d * k))).reshape(d, k)
    pixels = np.array(data.draw(st.lists(st.integers(0, 2), min_size=d * k, max_size=d * k))).reshape(d, k)
    tau = data.draw(grid)
    assert np.array_equal(multilabel_table(score, valid, pixels, tau), _literal_eq6(score, valid, pixels, tau))


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="D x K x K"):
        multilabel_table(np.zeros((2, 3, 4)), np.ones((2, 3), bool), np.ones((2, 3)), 0.5)
    with pytest.raises(ValueError, match="must be D x K"):
        auto_tau(np.zeros((2, 3, 3)), np.ones((3, 2), bool), np.ones((2, 3)))


def test_hand_made_base_values_are_what_the_tests_assume(cm):
    sim = hand_made(cm)
    m = cm.datasets.index("mapillary")
    assert sim.score[m, cm.index_of("road"), cm.index_of("road")] == OWN
    assert sim.score[m, cm.index_of("road"), cm.index_of("rider")] == OTHER


def test_the_identity_table_by_hand():
    """Row (d, g): 1 at g, 0 on d's other classes, -1 (null) outside d's space (Eq. 4 as a table)."""
    valid = np.array([[True, True, False], [False, True, True]])
    expected = np.array([
        [[1, 0, -1], [0, 1, -1], [0, 0, 1]],  # dataset 0 owns classes 0 and 1
        [[1, 0, 0], [-1, 1, 0], [-1, 0, 1]],  # dataset 1 owns classes 1 and 2
    ], dtype=np.int8)
    got = identity_table(valid)
    assert got.dtype == np.int8 and np.array_equal(got, expected)
