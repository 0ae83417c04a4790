"""Every built-in label space agrees with the official toolkits (tests/data/*_labels.json,
mapillary_vistas_v1.2.json, camvid.json) and with the authors' released tables, id for id and
colour for colour."""

from __future__ import annotations

import numpy as np
import pytest


def _rows(doc: dict) -> list[tuple[int, str, int, tuple[int, int, int]]]:
    """``(id, name, train id, colour)`` rows of an official labels table (columns as the file says)."""
    return [(int(i), str(n), int(t), tuple(int(v) for v in c)) for i, n, t, c in doc["labels"]]


@pytest.fixture(scope="module")
def cityscapes_table(taxonomies):
    assert taxonomies["cityscapes"]["columns"] == ["id", "name", "trainId", "color"]
    rows = [r for r in _rows(taxonomies["cityscapes"]) if r[0] >= 0]  # license plate (-1) never appears in a PNG
    assert len(rows) == 34
    return rows


def _raw(space, enc):
    e = space.encodings[enc]
    return {v.value: (v.name, None if v.cls is None else space.classes[v.cls]) for v in e.values}


@pytest.mark.parametrize("name", ["cityscapes", "kitti", "wilddash"])
def test_cityscapes_label_ids(registry, cityscapes_table, name):
    space = registry.get(name)
    raw = _raw(space, "labelIds")
    assert sorted(raw) == list(range(34))
    for lid, lname, train_id, colour in cityscapes_table:
        raw_name, cls = raw[lid]
        assert raw_name == lname
        if train_id == 255:
            assert cls is None, f"{name} labelId {lid} ({lname}) should be void"
        else:
            assert cls.index == train_id and cls.name == lname and cls.colour == colour


def test_cityscapes_train_ids_and_voids(registry, cityscapes_table):
    space = registry.get("cityscapes")
    raw = _raw(space, "labelTrainIds")
    assert raw[255][1] is None and 0 in space.encodings["labelIds"].void_values
    for lid, lname, train_id, _ in cityscapes_table:
        if train_id != 255:
            assert raw[train_id][1].name == lname


def test_bdd_train_ids(registry, cityscapes_table):
    space = registry.get("bdd")
    raw = _raw(space, "trainIds")
    assert space.encodings["trainIds"].void_values == [255]
    for _, lname, train_id, colour in cityscapes_table:
        if train_id != 255:
            assert raw[train_id][1].name == lname and raw[train_id][1].colour == colour


def test_bdd_layouts(registry):
    layouts = registry.get("bdd").layouts
    assert layouts["bdd100k"].image == "images/10k/{split}/{id}.jpg"
    assert layouts["bdd100k"].labels[0].pattern == "labels/sem_seg/masks/{split}/{id}.png"
    assert layouts["legacy"].labels[0].pattern == "seg/labels/{split}/{id}_train_id.png"


def test_idd(registry, taxonomies):
    assert taxonomies["idd"]["columns"] == ["id", "name", "level3Id", "color"]
    rows = _rows(taxonomies["idd"])
    assert len(rows) == 40
    space = registry.get("idd")
    raw = _raw(space, "id")
    assert [c.name for c in space.classes] == taxonomies["idd"]["level3_names"]
    for rid, rname, l3, _ in rows:
        assert raw[rid][0] == rname
        assert (raw[rid][1] is None) if l3 == 255 else raw[rid][1].index == l3
    unified = {c.name: c.unified for c in space.classes}
    assert unified["drivable fallback"] == "parking" and unified["non-drivable fallback"] == "rail track"
    assert space.encodings["level3Ids"].void_values == [255]
    srcs = {s.name: s for s in space.layouts["gtFine"].labels}
    assert srcs["level3Ids"].pattern.endswith("_gtFine_labellevel3Ids.png")
    assert srcs["polygons"].format == "polygons" and srcs["polygons"].encoding == "id"


def test_mapillary(registry, taxonomies):
    labels = taxonomies["mapillary"]["labels"]
    assert [i for i, _, _ in labels] == list(range(66)) and labels[65][1] == "Unlabeled"
    space = registry.get("mapillary")
    assert space.num_classes == 65
    assert [c.name for c in space.classes] == [n for _, n, _ in labels[:65]]
    assert [c.colour for c in space.classes] == [tuple(c) for _, _, c in labels[:65]]
    raw = _raw(space, "ids")
    assert all(raw[i][0] == n for i, n, _ in labels)
    assert space.classes[50].name == "Traffic Sign (Front)" and space.classes[50].unified == "traffic sign"
    assert space.classes[49].unified == "traffic sign (back)"
    assert space.encodings["ids"].void_values == [65]
    assert {lay.labels[0].pattern for lay in space.layouts.values()} == {"{split}/v1.2/labels/{key}.png", "{split}/labels/{key}.png"}


def test_camvid(registry, taxonomies):
    facts = taxonomies["camvid"]
    assert len(facts["classes"]) == 32 and len(facts["kept"]) == 11
    space = registry.get("camvid")
    enc = space.encodings["rgb"]
    assert len(enc.values) == 32
    by_colour = {v.value: v for v in enc.values}
    for name, colour in facts["classes"]:
        v = by_colour[tuple(colour)]
        assert v.name == name
        assert (v.cls is not None) == (name in facts["kept"])
        if v.cls is not None:
            assert space.classes[v.cls].name == name and space.classes[v.cls].colour == tuple(colour)
    seg = registry.get("camvid-segnet")
    segnet = facts["segnet"]["classes"]
    assert [c.name for c in seg.classes] == segnet[:11]
    assert seg.encodings["segnet"].void_values == [segnet.index("Unlabelled")]
    assert sorted(c.unified for c in seg.classes) == sorted(c.unified for c in space.classes)


@pytest.mark.parametrize("name", ["cityscapes", "idd", "bdd", "mapillary", "kitti", "wilddash", "camvid"])
def test_unified_names_match_authors(registry, authors, name):
    assert [c.unified for c in registry.get(name).classes] == authors["categories"][name]


@pytest.mark.parametrize("name,encoding", [("cityscapes", "labelIds"), ("idd", "id"), ("bdd", "trainIds"), ("mapillary", "ids"), ("kitti", "labelIds"), ("wilddash", "labelIds")])
def test_label2train_matches_authors(registry, authors, name, encoding):
    lut = registry.get(name).encodings[encoding].class_lut()
    for raw, train in authors["label2train"][name]:
        if raw >= 0:  # license plate (-1) never appears in a PNG
            assert int(lut[raw]) == train, f"{name} raw {raw}"


def test_every_builtin_has_metadata_and_layouts(registry):
    assert set(registry.names) >= {"cityscapes", "bdd", "idd", "mapillary", "kitti", "wilddash", "camvid", "camvid-segnet"}
    for space in registry.all():
        assert space.version and space.homepage.startswith("http") and space.license
        assert space.layouts, space.name
        for lay in space.layouts.values():
            assert any(s.size for s in lay.splits.values())


def test_class_luts_default_to_ignore(registry):
    lut = registry.get("cityscapes").encodings["labelIds"].class_lut()
    assert lut.shape == (256,) and (lut[34:] == 255).all() and lut[0] == 255
    assert np.array_equal(registry.get("cityscapes").encodings["labelIds"].known_mask()[:35], [True] * 34 + [False])
