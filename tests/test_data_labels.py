"""Label decoding, IDD polygon rasterisation, and every reader end to end on real-layout fixtures."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image, ImageDraw

import fixtures_layouts as fx
from uniseg.data.labels import (
    build_dataset_lut,
    decode_label_image,
    load_unified,
    rasterize_polygons,
    read_label,
    unify_label,
)
from uniseg.errors import UnisegError
from uniseg.labelspaces.schema import Encoding, RawValue
from uniseg.unify.artifact import open_union
from uniseg.unify.lut import build_lut

ALL = ["bdd", "camvid", "camvid-segnet", "cityscapes", "idd", "kitti", "mapillary", "wilddash"]


@pytest.fixture(scope="module")
def union_all(registry):
    return open_union(ALL, registry)


# -- decoding ---------------------------------------------------------------------------------


def test_paletted_png_reads_indices_not_colours(tmp_path, registry):
    enc = registry.get("mapillary").encoding("ids")
    path = tmp_path / "k.png"
    fx.paletted((13, 55, 65)).save(path)
    assert Image.open(path).mode == "P"
    raw = read_label(path, enc)
    assert raw.dtype == np.uint8 and raw.shape == fx.SIZE
    assert sorted(np.unique(raw).tolist()) == [13, 55, 65]  # indices, not the palette colours


def test_l_png_reads_ids(tmp_path, registry):
    enc = registry.get("cityscapes").encoding("labelIds")
    path = tmp_path / "x_gtFine_labelIds.png"
    Image.fromarray(fx.stripes((7, 26, 0)), mode="L").save(path)
    raw = read_label(path, enc)
    assert raw[0, 0] == 7 and raw[0, -1] == 0 and raw[0, fx.SIZE[1] // 2] == 26


def test_sixteen_bit_png(tmp_path, registry):
    enc8 = registry.get("cityscapes").encoding("labelIds")
    small = tmp_path / "small.png"
    Image.fromarray(fx.stripes((7, 26)).astype(np.uint16)).save(small)
    assert Image.open(small).mode.startswith("I")
    raw = read_label(small, enc8)
    assert raw.dtype == np.uint8 and set(np.unique(raw).tolist()) == {7, 26}
    big = tmp_path / "instances.png"
    Image.fromarray(np.full(fx.SIZE, 26001, dtype=np.uint16)).save(big)
    with pytest.raises(UnisegError, match=r"instances\.png.*26001.*8-bit"):
        read_label(big, enc8)
    enc16 = Encoding("ids16", "index", (RawValue(26001, "car instance", 0), RawValue(0, "void", None)), bits=16)
    raw16 = read_label(big, enc16)
    assert raw16.dtype == np.uint16 and int(raw16[0, 0]) == 26001


def test_photo_where_ids_expected_is_refused(tmp_path, registry):
    enc = registry.get("cityscapes").encoding("labelIds")
    path = tmp_path / "aachen_000000_000019_leftImg8bit.png"
    Image.fromarray(fx.photo(0)).save(path)
    with pytest.raises(UnisegError, match=r"aachen_000000_000019_leftImg8bit\.png: RGB colour image.*photo"):
        read_label(path, enc)


def test_grey_rgb_ids_are_accepted(tmp_path, registry):
    enc = registry.get("cityscapes").encoding("labelIds")
    grey = fx.stripes((7, 26, 0))
    path = tmp_path / "grey.png"
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(path)
    assert np.array_equal(read_label(path, enc), grey)


def test_colour_encoding(tmp_path, registry):
    enc = registry.get("camvid").encoding("rgb")
    path = tmp_path / "f_L.png"
    Image.fromarray(fx.stripes(fx.CAMVID_COLOURS), mode="RGB").save(path)
    raw = read_label(path, enc)
    assert raw.shape == (*fx.SIZE, 3)
    assert tuple(raw[0, 0]) == (128, 64, 128) and tuple(raw[0, -1]) == (0, 0, 0)
    # a paletted colour file is expanded through its palette
    pal = Image.fromarray(fx.stripes((0, 1)), mode="L")
    pal.putpalette([128, 64, 128, 64, 0, 128] + [0] * (254 * 3))
    pal.save(tmp_path / "p_L.png")
    assert tuple(read_label(tmp_path / "p_L.png", enc)[0, -1]) == (64, 0, 128)
    # single-channel ids where colours are expected
    Image.fromarray(fx.stripes((1, 2)), mode="L").save(tmp_path / "ids.png")
    with pytest.raises(UnisegError, match=r"ids\.png: L image.*RGB colours"):
        read_label(tmp_path / "ids.png", enc)


def test_unreadable_file(tmp_path, registry):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(UnisegError, match=r"broken\.png"):
        read_label(path, registry.get("cityscapes").encoding())
    with pytest.raises(UnisegError, match="no such file"):
        read_label(tmp_path / "missing.png", registry.get("cityscapes").encoding())


def test_decode_refuses_two_channel_modes(registry):
    img = Image.new("LA", (4, 4))
    with pytest.raises(UnisegError, match="LA image"):
        decode_label_image(img, "index", 8, encoding="labelIds", path="a.png")


# -- IDD polygons -----------------------------------------------------------------------------


def test_polygons_rasterise_like_the_toolkit(registry):
    enc = registry.get("idd").encoding("id")
    h, w = fx.SIZE
    out = rasterize_polygons(fx.idd_polygon_doc(w, h), enc)
    raw = out.raw
    expected = np.full((h, w), 35, dtype=np.uint8)  # 'unlabeled'
    expected[h // 2 :, :] = 0  # road: rows h/2..h-1, all columns (inclusive corners)
    expected[h // 2 + 2 : h - 3, 4:21] = 12  # car drawn later, on top of road
    expected[2:9, 40:51] = 12  # 'cargroup' -> 'car'
    # sky (deleted), truck (2 points) and hovercraft (unknown) are not drawn
    assert raw.dtype == np.uint8
    np.testing.assert_array_equal(raw, expected)
    assert out.drawn == 3 and out.skipped_deleted == 1 and out.skipped_degenerate == 1
    assert out.unknown == {"hovercraft": 1}


def test_polygon_order_and_known_group_names(registry):
    enc = registry.get("idd").encoding("id")
    doc = {
        "imgHeight": 10,
        "imgWidth": 10,
        "objects": [
            {"label": "sky", "polygon": [[0, 0], [9, 0], [9, 9], [0, 9]], "deleted": 0},
            {"label": "polegroup", "polygon": [[2, 2], [5, 2], [5, 5], [2, 5]], "deleted": 0},
            {"label": "building", "polygon": [[4, 4], [7, 4], [7, 7], [4, 7]]},  # no 'deleted' key: drawn
        ],
    }
    raw = rasterize_polygons(doc, enc).raw
    assert raw[0, 0] == 33  # sky
    assert raw[2, 2] == 27  # 'polegroup' is a known IDD name: kept, not stripped to 'pole' (26)
    assert raw[4, 4] == 29 and raw[5, 5] == 29  # building drawn last wins the overlap
    assert raw[3, 3] == 27


def _toolkit_create_label_image(doc: dict, name2id: dict, background: int) -> np.ndarray:
    """The IDD toolkit's createLabelImage for the 'id' encoding, transcribed independently."""
    img = Image.new("L", (doc["imgWidth"], doc["imgHeight"]), background)
    drawer = ImageDraw.Draw(img)
    for obj in doc["objects"]:
        label, polygon = obj["label"], [tuple(p) for p in obj["polygon"]]
        if obj.get("deleted", 0) or len(polygon) < 3:
            continue
        if label not in name2id and label.endswith("group"):
            label = label[: -len("group")]
        if label not in name2id:
            continue
        drawer.polygon(polygon, fill=name2id[label])
    return np.asarray(img)


_point = st.tuples(st.floats(-3, 20, allow_nan=False), st.floats(-3, 14, allow_nan=False))
_obj = st.fixed_dictionaries(
    {
        "label": st.sampled_from(["road", "car", "cargroup", "polegroup", "sky", "unknownthing", "license plate", "bicyclegroup"]),
        "polygon": st.lists(_point, min_size=0, max_size=6).map(lambda ps: [list(p) for p in ps]),
        "deleted": st.sampled_from([0, 0, 0, 1]),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_obj, max_size=8))
def test_polygons_match_toolkit_reference(objects):
    from uniseg.labelspaces import Registry

    enc = Registry.from_dirs(use_env=False).get("idd").encoding("id")
    doc = {"imgWidth": 17, "imgHeight": 11, "objects": objects}
    name2id = {v.name: int(v.value) for v in enc.values}
    expected = _toolkit_create_label_image(doc, name2id, name2id["unlabeled"])
    np.testing.assert_array_equal(rasterize_polygons(doc, enc).raw, expected)


def test_bad_polygon_files(tmp_path, registry):
    enc = registry.get("idd").encoding("id")
    p = tmp_path / "x_gtFine_polygons.json"
    p.write_text("{not json")
    with pytest.raises(UnisegError, match=r"x_gtFine_polygons\.json: not a polygon JSON"):
        rasterize_polygons(p, enc)
    p.write_text(json.dumps({"objects": []}))
    with pytest.raises(UnisegError, match=r"x_gtFine_polygons\.json: not a polygon file.*imgWidth"):
        rasterize_polygons(p, enc)
    p.write_text(json.dumps({"imgWidth": 4, "imgHeight": 4, "objects": [{"label": "road"}]}))
    with pytest.raises(UnisegError, match=r"objects\[0\]"):
        rasterize_polygons(p, enc)


# -- mapping into the union -------------------------------------------------------------------


def test_unify_label_counts_unknown_values(tmp_path, registry, union_all):
    union, spaces = union_all
    lut = build_lut(union, spaces["cityscapes"], "labelIds")
    path = tmp_path / "a.png"
    Image.fromarray(fx.stray(fx.stripes((7, 26, 0)), 200, 3), mode="L").save(path)
    img, unknown = unify_label(path, lut)
    arr = np.asarray(img)
    road, car = union.index_of("road"), union.index_of("car")
    assert arr[1, 0] == road and arr[0, -1] == 255
    assert arr[0, :3].tolist() == [255] * 3  # unknown id 200 -> ignore, never a class
    assert arr[0, 32] == car
    assert unknown == {200: 3}
    np.testing.assert_array_equal(np.asarray(load_unified(path, lut)), arr)
    Image.fromarray(fx.stripes((7, 200, 26, 0)), mode="L").save(path)  # a quarter unknown: no Cityscapes label
    with pytest.raises(UnisegError, match=r"a\.png: not a label of cityscapes\.labelIds: 25% of its pixels"):
        unify_label(path, lut)


def test_unify_colour_labels_counts_unknown_colours(tmp_path, union_all):
    union, spaces = union_all
    lut = build_lut(union, spaces["camvid"], "rgb")
    path = tmp_path / "f_L.png"
    Image.fromarray(fx.stray(fx.stripes(((128, 64, 128), (0, 0, 0))), (1, 2, 3), 5), mode="RGB").save(path)
    img, unknown = unify_label(path, lut)
    arr = np.asarray(img)
    assert arr[1, 0] == union.index_of("road") and arr[0, 0] == 255 and arr[0, -1] == 255
    assert unknown == {(1 << 16) | (2 << 8) | 3: 5}


def test_dataset_lut_gives_dataset_class_indices(registry):
    space = registry.get("idd")
    lut = build_dataset_lut(space, "id")
    raw = np.array([[0, 1, 2, 35, 250]], dtype=np.uint8)
    # id 0 road -> level-3 class 0; ids 1 parking and 2 drivable fallback -> class 1; 35 void; 250 unknown
    assert lut.apply(raw).tolist() == [[0, 1, 1, 255, 255]]


# -- every reader, end to end ------------------------------------------------------------------

# (builder, kwargs, registry name, split, stripe -> unified name; None = ignore)
READERS = [
    ("cityscapes", fx.make_cityscapes, {}, "train", ("road", "car", None)),
    ("cityscapes", fx.make_cityscapes, {"labels": "labelTrainIds"}, "val", ("road", "car", None)),
    ("bdd", fx.make_bdd, {}, "train", ("road", "car", None)),
    ("bdd", fx.make_bdd, {"legacy": True}, "val", ("road", "car", None)),
    ("idd", fx.make_idd, {"mode": "level3"}, "train", ("road", "car", None)),
    ("idd", fx.make_idd, {"mode": "id"}, "train", ("road", "car", None)),
    ("mapillary", fx.make_mapillary, {"version": "v1.2", "with_v2": True}, "train", ("road", "car", None)),
    ("mapillary", fx.make_mapillary, {"version": "v1.1"}, "val", ("road", "car", None)),
    ("kitti", fx.make_kitti, {}, "train", ("road", "car", None)),
    ("wilddash", fx.make_wilddash, {}, "val", ("road", "car", None)),
    ("camvid", fx.make_camvid, {}, "all", ("road", "car", None)),
    ("camvid-segnet", fx.make_camvid_segnet, {}, "test", ("road", "car", None)),
]


@pytest.mark.parametrize("name,builder,kwargs,split,names", READERS, ids=[f"{r[0]}-{r[2]}" for r in READERS])
def test_reader_yields_unified_labels(tmp_path, registry, union_all, name, builder, kwargs, split, names):
    from uniseg.data import SegDataset

    union, _ = union_all
    builder(tmp_path / name, **kwargs)
    ds = SegDataset(name, tmp_path / name, union, split=split, registry=registry)
    assert len(ds) >= 1
    item = ds[0]
    h, w = fx.SIZE
    assert item["image"].shape == (3, h, w) and str(item["image"].dtype) == "torch.float32"
    assert item["label"].shape == (h, w) and str(item["label"].dtype) == "torch.int64"
    assert item["dataset_index"] == union.datasets.index(name)
    assert item["path"].startswith(str(tmp_path / name))
    label = item["label"].numpy()
    third = w // 3
    for k, unified in enumerate(names):
        want = 255 if unified is None else union.index_of(unified)
        cols = label[:, k * third + 1 : (k + 1) * third - 1]
        assert np.all(cols == want), (name, k, np.unique(cols))
    ds2 = pickle.loads(pickle.dumps(ds))  # DataLoader workers get a pickled copy
    assert np.array_equal(ds2[0]["label"].numpy(), label)


def test_idd_polygons_reader(tmp_path, union_all):
    from uniseg.data import SegDataset

    union, _ = union_all
    fx.make_idd(tmp_path, mode="polygons")
    ds = SegDataset("idd", tmp_path, union, split="train")
    label = ds[0]["label"].numpy()
    h, w = fx.SIZE
    road, car = union.index_of("road"), union.index_of("car")
    assert label[0, 0] == 255  # unlabeled (35) is void
    assert label[h - 1, w - 1] == road
    assert label[h // 2 + 2, 4] == car and label[2, 40] == car
    assert set(np.unique(label).tolist()) == {road, car, 255}


def test_dataset_target_dataset_classes(tmp_path, registry, union_all):
    from uniseg.data import SegDataset

    union, _ = union_all
    fx.make_idd(tmp_path, mode="id")
    ds = SegDataset("idd", tmp_path, union, split="train", target="dataset")
    label = ds[0]["label"].numpy()
    assert set(np.unique(label).tolist()) == {0, 9, 255}  # IDD level-3 road = 0, car = 9
    assert ds.num_classes == 26


def test_dataset_outside_union_has_index_minus_one(tmp_path, registry):
    from uniseg.data import SegDataset

    union, _ = open_union(["cityscapes", "bdd"], registry)
    fx.make_camvid(tmp_path)
    ds = SegDataset("camvid", tmp_path, union, split="all")
    item = ds[0]
    assert item["dataset_index"] == -1
    label = item["label"].numpy()
    assert label[0, 0] == union.index_of("road")


def test_dataset_refuses_label_of_other_size(tmp_path, union_all):
    from uniseg.data import SegDataset

    union, _ = union_all
    built = fx.make_kitti(tmp_path, n=1, test=0)
    Image.fromarray(np.zeros((16, 16), np.uint8), mode="L").save(tmp_path / built.labels[0])
    ds = SegDataset("kitti", tmp_path, union, split="train")
    with pytest.raises(UnisegError, match=r"semantic/000000_10\.png: label is 16x16 but its image .* is 64x32"):
        ds[0]


def test_dataset_no_labels_for_split(tmp_path, union_all):
    from uniseg.data import SegDataset

    union, _ = union_all
    fx.make_kitti(tmp_path)
    with pytest.raises(UnisegError, match="no such split|no split 'val'"):
        SegDataset("kitti", tmp_path, union, split="val")
    for p in (tmp_path / "training" / "semantic").iterdir():
        p.unlink()
    with pytest.raises(UnisegError, match=r"no KITTI.*labels for split train"):
        SegDataset("kitti", tmp_path, union, split="train")
