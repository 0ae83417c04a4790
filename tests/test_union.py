"""The union space: sizes and names as in the paper, order independence, LUTs, masks, eval maps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from uniseg.unify import build_lut, build_union

C, B, I, M = "cityscapes", "bdd", "idd", "mapillary"
COMBOS = {
    (C, I, B): ("city_idd_bdd", 28),
    (C, B, M): ("city_bdd_mapillary", 67),
    (I, B, M): ("idd_bdd_mapillary", 70),
    (C, I, M): ("city_idd_mapillary", 70),
    (C, I, B, M): ("city_idd_bdd_mapillary", 70),
}


@pytest.mark.parametrize("combo", list(COMBOS))
def test_union_sizes_and_names(registry, authors, combo):
    key, size = COMBOS[combo]
    union = build_union(registry.get_many(combo))
    assert union.num_classes == size
    assert union.names == authors["unions"][key]


def test_union_is_order_independent(registry):
    base = build_union(registry.get_many([C, I, B, M]))
    for perm in itertools.permutations([C, I, B, M]):
        other = build_union(registry.get_many(perm))
        assert other.names == base.names and other.fingerprint == base.fingerprint
        assert [c.colour for c in other.classes] == [c.colour for c in base.classes]
        assert other.datasets == perm


def test_fingerprint_changes_with_members(registry):
    assert build_union(registry.get_many([C, B])).fingerprint != build_union(registry.get_many([C, B, I])).fingerprint
    # same class names, different members -> different fingerprint
    assert build_union(registry.get_many([C])).fingerprint != build_union(registry.get_many([B])).fingerprint


@pytest.mark.parametrize("name,encoding", [(C, "labelIds"), (I, "id"), (B, "trainIds"), (M, "ids")])
def test_lut_matches_authors_to_combined(registry, authors, name, encoding):
    union = build_union(registry.get_many([C, I, B, M]))
    lut = build_lut(union, registry.get(name), encoding)
    for raw, combined in authors["to_combined"][name]:
        if raw >= 0:
            assert int(lut.table[raw]) == combined, f"{name} raw {raw}"


def test_members_record_official_names(registry):
    union = build_union(registry.get_many([C, I, B, M]))
    by_name = {c.name: c for c in union.classes}
    assert dict(by_name["parking"].members) == {"idd": ("drivable fallback",), "mapillary": ("Parking",)}
    assert dict(by_name["traffic sign"].members) == {"cityscapes": ("traffic sign",), "bdd": ("traffic sign",), "idd": ("traffic sign",), "mapillary": ("Traffic Sign (Front)",)}
    assert set(by_name["rider"].members) == {"cityscapes", "bdd", "idd"}
    assert len({c.colour for c in union.classes}) == union.num_classes  # palette decodable
    assert by_name["rider"].colour == (255, 0, 0) and by_name["road"].colour == (128, 64, 128)  # shared classes keep Cityscapes colours
    assert by_name["bicyclist"].colour != (255, 0, 0)


@pytest.mark.parametrize("name", [C, I, B, M])
def test_lut_round_trip_every_encoding(registry, name):
    """raw -> unified (LUT) -> dataset class (eval map) equals the encoding's own raw -> class table."""
    union = build_union(registry.get_many([C, I, B, M]))
    space = registry.get(name)
    emap = union.eval_map(space)
    back = np.full(256, 255, dtype=np.int64)
    back[emap.channels] = emap.classes
    for enc in space.encodings.values():
        lut = build_lut(union, space, enc)
        raw = np.arange(256, dtype=np.uint8).reshape(16, 16)
        unified = lut.apply(raw)
        assert unified.dtype == np.uint8
        expected = enc.class_lut()[raw]
        assert np.array_equal(back[unified], expected)
        known = enc.known_mask()
        counts = lut.unknown_counts(raw)
        assert set(counts) == set(np.flatnonzero(~known).tolist())
        assert all(v == 1 for v in counts.values())


def test_rgb_lut_decodes_camvid_colours(registry):
    union = build_union(registry.get_many([C, I, B, M, "camvid"]))
    lut = build_lut(union, registry.get("camvid"), "rgb")
    img = np.zeros((2, 3, 3), dtype=np.uint8)
    img[0, 0] = (0, 128, 192)  # Bicyclist -> bicyclist
    img[0, 1] = (128, 128, 0)  # Tree -> vegetation
    img[0, 2] = (128, 0, 192)  # LaneMkgsDriv: void
    img[1, 0] = (1, 2, 3)  # unknown
    img[1, 1] = (192, 128, 128)  # SignSymbol -> traffic sign
    img[1, 2] = (0, 0, 0)  # Void
    out = lut.apply(img)
    n = union.index_of
    assert out.tolist() == [[n("bicyclist"), n("vegetation"), 255], [255, n("traffic sign"), 255]]
    assert lut.unknown_counts(img) == {(1 << 16) | (2 << 8) | 3: 1}


def test_null_mask(registry):
    union = build_union(registry.get_many([C, I, B, M]))
    mask = union.null_mask()
    assert mask.shape == (4, 70) and mask.dtype == bool
    assert mask.sum(axis=1).tolist() == [19, 26, 19, 65]
    assert mask[0, union.index_of("rider")] and not mask[3, union.index_of("rider")]
    assert mask[3, union.index_of("bicyclist")] and not mask[0, union.index_of("bicyclist")]
    assert mask.any(axis=0).all()  # every unified class belongs to some dataset


def test_eval_map_for_unseen_datasets(registry):
    union = build_union(registry.get_many([C, I, B, M]))
    camvid = registry.get("camvid")
    emap = union.eval_map(camvid)
    assert emap.missing == ()
    assert [union.names[c] for c in emap.channels] == [c.unified for c in camvid.classes]
    cib = build_union(registry.get_many([C, I, B]))
    emap2 = cib.eval_map(camvid)
    assert emap2.missing == ("Bicyclist",)  # no dataset of C+I+B has 'bicyclist': ignored in the score
    assert len(emap2.channels) == 10


def test_empty_and_duplicate_unions_refused(registry):
    from uniseg.errors import UnisegError

    with pytest.raises(UnisegError):
        build_union([])
    with pytest.raises(UnisegError, match="named twice"):
        build_union([registry.get(C), registry.get(C)])
