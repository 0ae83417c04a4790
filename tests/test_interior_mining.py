"""Mining over interior pixels (``relations mine --interior``), support, and the conflict rule of Eq. 6."""

from __future__ import annotations

import numpy as np
import pytest
import torch

BUILDING, THIN, COARSE = range(3)


def _thin_stripe():
    """A 12 x 16 image of building with a 7-pixel-wide vertical stripe of a thin class (columns
    5..11). The model's logits at the stripe's two border columns on each side carry the context
    (building fires, as stride-4 logits do there); on its 3 interior columns the thin class scores
    sigmoid(-0.5) = 0.38 and the coarser class containing it sigmoid(1.5) = 0.82."""
    target = torch.zeros(12, 16, dtype=torch.long)
    target[:, 5:12] = THIN
    logits = torch.full((3, 12, 16), -8.0)
    logits[BUILDING] = 8.0
    logits[BUILDING, :, 7:10] = -8.0
    logits[THIN, :, 7:10] = -0.5
    logits[COARSE, :, 7:10] = 1.5
    return logits, target


def _table(interior: int):
    from uniseg.engine.mining import MiningSums
    from uniseg.relations.eq6 import multilabel_table

    logits, target = _thin_stripe()
    sums = MiningSums.zeros(1, 3, torch.device("cpu"), interior)
    sums.add(0, logits, target, scale=20.0)
    score, _, pixels = sums.means()
    valid = np.ones((1, 3), dtype=bool)
    return multilabel_table(score, valid, pixels, 0.5), score, pixels, sums.all_pixels.numpy()


def test_interior_mining_changes_which_relation_is_switched_on():
    # every pixel: building = 4 of 7 stripe columns = 0.57 > max(0.5, own 3/7 x 0.38 = 0.16): thin -> building
    # (the context); the coarse class, 3/7 x 0.82 = 0.35, stays under tau
    plain, score, pixels, _ = _table(0)
    assert score[0, THIN, BUILDING] == pytest.approx(4 / 7, abs=1e-3)
    assert plain[0, THIN, BUILDING] == 1 and plain[0, THIN, COARSE] == 0
    # the stripe eroded by 2: its 3 interior columns only, where the model says coarse (0.82 > own 0.38)
    inner, score, pixels, all_pixels = _table(2)
    assert pixels[0, THIN] == 3 * 12 and all_pixels[0, THIN] == 7 * 12
    assert score[0, THIN, COARSE] == pytest.approx(1 / (1 + np.exp(-1.5)), abs=1e-6)
    assert inner[0, THIN, BUILDING] == 0 and inner[0, THIN, COARSE] == 1
    # building: 5 + 4 columns, eroded by 2 at the stripe (the image border does not erode)
    assert pixels[0, BUILDING] == (5 - 2 + 4 - 2) * 12 and all_pixels[0, BUILDING] == 9 * 12


def test_the_interior_mask_is_an_erosion_of_every_class_at_once():
    from uniseg.engine.mining import interior_mask

    rng = np.random.default_rng(0)
    label = torch.from_numpy(rng.integers(0, 3, (9, 11)).repeat(2, 0).repeat(2, 1))  # blocks of 2 x 2
    label[0, 0] = 255
    for r in (1, 2):
        got = interior_mask(label, r).numpy()
        lab = label.numpy()
        want = np.zeros_like(got)
        for y in range(lab.shape[0]):  # a per-pixel loop: fine in a test
            for x in range(lab.shape[1]):
                win = lab[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]
                want[y, x] = (win == lab[y, x]).all()
        assert np.array_equal(got, want), r
    assert interior_mask(label, 0).all()


def test_interior_radius_words():
    from uniseg.engine.mining import interior_radius
    from uniseg.errors import UnisegError

    model = type("M", (), {"output_stride": 4})()
    assert interior_radius(model, "auto") == 1 and interior_radius(model, "off") == 0 and interior_radius(model, "3") == 3
    assert interior_radius(type("M", (), {"output_stride": 8})(), "auto") == 2
    for bad in ("-1", "x", "65"):
        with pytest.raises(UnisegError, match="--interior"):
            interior_radius(model, bad)


def test_a_class_without_interior_support_is_reported_and_never_switched_on():
    from uniseg.unify.artifact import union_of
    from uniseg.relations.artifact import build_relations
    from uniseg.relations.stats import similarity_for

    union = union_of(["cityscapes", "mapillary"])
    d, k = 2, union.num_classes
    valid = union.null_mask()
    score = np.zeros((d, k, k))
    pixels = np.zeros((d, k), dtype=np.int64)
    m, names = union.datasets.index("mapillary"), union.names
    bike, road, marking = names.index("bike lane"), names.index("road"), names.index("lane marking - general")
    for c in (bike, marking):  # both score road over their own class and tau
        score[m, c, c], score[m, c, road] = 0.2, 0.8
    pixels[m, bike], pixels[m, marking] = 500, 10  # interior pixels: the marking has almost none
    all_pixels = pixels.copy()
    all_pixels[m, marking] = 4000
    assert valid[m, bike] and valid[m, marking]
    sim = similarity_for(union, score, np.zeros_like(score), pixels, all_pixels=all_pixels, interior=1)
    rs = build_relations(sim, union, 0.5)
    on = {(r.dataset, r.primary, r.secondary) for r in rs.relations()}
    assert on == {("mapillary", "bike lane", "road")}
    assert rs.unsupported() == [{"dataset": "mapillary", "class": "lane marking - general", "pixels": 10, "all_pixels": 4000}]
    from uniseg.relations.artifact import relations_doc

    doc = relations_doc(rs)
    assert doc["support"]["min_pixels"] == 50 and doc["support"]["not_enough"] == rs.unsupported()
    # the plain mean looks at any pixel: the marking's relation is switched on
    plain = build_relations(similarity_for(union, score, np.zeros_like(score), pixels), union, 0.5)
    assert ("mapillary", "lane marking - general", "road") in {(r.dataset, r.primary, r.secondary) for r in plain.relations()}
    assert plain.unsupported() == [] and "support" not in relations_doc(plain)


def test_the_conflict_rule_keeps_pairs_a_label_space_can_explain():
    from uniseg.relations.eq6 import conflict_possible, multilabel_table

    # datasets: cityscapes-like (road, rider, pole), mapillary-like (road, bicyclist, bike lane, pole)
    classes = ["road", "rider", "bicyclist", "bike lane", "pole", "building"]
    valid = np.array([[1, 1, 0, 0, 1, 1], [1, 0, 1, 1, 1, 1]], dtype=bool)
    ok = conflict_possible(valid)
    at = classes.index
    assert ok[1, at("bicyclist"), at("rider")]  # Cityscapes lacks bicyclist and has rider
    assert ok[1, at("bike lane"), at("road")]  # Cityscapes lacks bike lane and has road
    assert not ok[0, at("pole"), at("building")] and not ok[1, at("pole"), at("building")]  # everyone labels poles
    assert ok[0, at("rider"), at("bicyclist")]  # Mapillary lacks rider and has bicyclist
    score = np.zeros((2, 6, 6))
    score[1, at("pole"), at("building")] = 0.9  # a pole the model has not learnt, called building
    score[1, at("bike lane"), at("road")] = 0.9
    pixels = np.ones((2, 6), dtype=np.int64)
    paper = multilabel_table(score, valid, pixels, 0.5)
    conflict = multilabel_table(score, valid, pixels, 0.5, rule="conflict")
    assert paper[1, at("pole"), at("building")] == 1 and conflict[1, at("pole"), at("building")] == 0
    assert paper[1, at("bike lane"), at("road")] == conflict[1, at("bike lane"), at("road")] == 1


def test_a_similarity_file_keeps_its_interior_statistics(tmp_path):
    from uniseg.errors import UnisegError
    from uniseg.unify.artifact import union_of
    from uniseg.relations.stats import ARRAYS, INTERIOR_ARRAYS, read_similarity, similarity_for, write_similarity

    union = union_of(["cityscapes"])
    k = union.num_classes
    score, pixels = np.full((1, k, k), 0.1), np.full((1, k), 3, dtype=np.int64)
    plain = similarity_for(union, score, np.zeros_like(score), pixels)
    write_similarity(tmp_path / "plain", plain)
    with np.load(tmp_path / "plain" / "similarity.npz") as npz:
        assert set(npz.files) == set(ARRAYS)  # the plain mean's file is as it always was
    inner = similarity_for(union, score, np.zeros_like(score), pixels, all_pixels=pixels * 4, interior=1)
    write_similarity(tmp_path / "inner", inner)
    back = read_similarity(tmp_path / "inner")
    assert back.interior == 1 and np.array_equal(back.all_pixels, pixels * 4) and np.array_equal(back.labelled_pixels, pixels * 4)
    assert back.content_fingerprint == inner.content_fingerprint != plain.content_fingerprint
    with np.load(tmp_path / "inner" / "similarity.npz") as npz:
        assert set(npz.files) == set(ARRAYS) | set(INTERIOR_ARRAYS)
    with pytest.raises(UnisegError, match="all_pixels.*fewer than"):
        similarity_for(union, score, np.zeros_like(score), pixels, all_pixels=pixels - 1, interior=1)
    with pytest.raises(UnisegError, match="all_pixels: missing"):
        similarity_for(union, score, np.zeros_like(score), pixels, interior=2)
