"""Label decoding, IDD polygon rasterisation, and every reader end to end on real-layout fixtures."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

import fixtures_layouts as fx
from uniseg.data.labels import (
    build_dataset_lut,
    decode_label_image,
    rasterize_polygons,
    read_label,
    read_unified,
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


# Hand-drawn cases of the IDD toolkit's createLabelImage (preperation/json2labelImg.py in
# github.com/AutoNUE/public-code): start from 'unlabeled' (35); draw objects in file order with
# Pillow's ImageDraw.polygon(points, fill=id), so a later object covers an earlier one and a pixel
# (x, y) is filled when that point lies inside the polygon or on its edge; skip objects marked
# 'deleted' (a missing key means 0, helpers/annotation.py) or with fewer than 3 points; a label
# the toolkit does not know that ends in 'group' is looked up once more without that suffix
# (whether or not the class has instances); labels still unknown are skipped. Grids below: one
# character per pixel, rows top to bottom.
_IDS = {".": 35, "r": 0, "c": 12, "p": 26, "P": 27, "b": 29, "s": 33}


def _grid(*rows: str) -> np.ndarray:
    return np.array([[_IDS[ch] for ch in row] for row in rows], dtype=np.uint8)


def _box(x0: int, y0: int, x1: int, y1: int) -> list[list[int]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _obj(label: str, polygon: list, **extra) -> dict:
    return {"label": label, "polygon": polygon, **extra}


POLYGON_CASES = {
    "rectangle: corners and edges included": (
        [_obj("road", _box(1, 1, 4, 3), deleted=0)],
        ("......", ".rrrr.", ".rrrr.", ".rrrr.", "......"),
    ),
    "triangle: the pixels with x + y <= 4": (
        [_obj("car", [[0, 0], [4, 0], [0, 4]], deleted=0)],
        ("ccccc.", "cccc..", "ccc...", "cc....", "c.....", "......"),
    ),
    "later objects cover earlier ones": (
        [_obj("building", _box(0, 0, 3, 2), deleted=0), _obj("sky", _box(2, 1, 5, 3), deleted=0)],
        ("bbbb..", "bbssss", "bbssss", "..ssss"),
    ),
    "the same objects in the other order": (
        [_obj("sky", _box(2, 1, 5, 3), deleted=0), _obj("building", _box(0, 0, 3, 2), deleted=0)],
        ("bbbb..", "bbbbss", "bbbbss", "..ssss"),
    ),
    "deleted objects are skipped; no 'deleted' key means drawn": (
        [_obj("road", _box(0, 0, 3, 2), deleted=1), _obj("car", _box(0, 0, 1, 2)), _obj("sky", _box(2, 0, 3, 2), deleted=0)],
        ("ccss", "ccss", "ccss"),
    ),
    "fewer than 3 points are skipped, 3 are enough": (
        [_obj("road", [[0, 0], [3, 2]], deleted=0), _obj("car", [[1, 1]], deleted=0), _obj("building", [], deleted=0),
         _obj("sky", [[0, 0], [1, 0], [0, 1]], deleted=0)],
        ("ss..", "s...", "...."),
    ),
    "'group' is stripped once, only from names the toolkit does not know": (
        [_obj("cargroup", _box(0, 0, 1, 1)), _obj("polegroup", _box(2, 0, 3, 1)), _obj("roadgroup", _box(4, 0, 5, 1)),
         _obj("treegroup", _box(6, 0, 7, 1)), _obj("cargroupgroup", _box(8, 0, 9, 1))],
        ("ccPPrr....", "ccPPrr...."),
    ),
}


@pytest.mark.parametrize("objects,rows", POLYGON_CASES.values(), ids=list(POLYGON_CASES))
def test_polygons_follow_the_toolkit_on_hand_drawn_cases(registry, objects, rows):
    expected = _grid(*rows)
    doc = {"imgHeight": expected.shape[0], "imgWidth": expected.shape[1], "objects": objects}
    out = rasterize_polygons(doc, registry.get("idd").encoding("id"))
    np.testing.assert_array_equal(out.raw, expected)


def test_polygon_counts_say_what_was_skipped(registry):
    enc = registry.get("idd").encoding("id")
    deleted = POLYGON_CASES["deleted objects are skipped; no 'deleted' key means drawn"][0]
    degenerate = POLYGON_CASES["fewer than 3 points are skipped, 3 are enough"][0]
    group = POLYGON_CASES["'group' is stripped once, only from names the toolkit does not know"][0]
    out = rasterize_polygons({"imgHeight": 3, "imgWidth": 4, "objects": deleted + degenerate}, enc)
    assert (out.drawn, out.skipped_deleted, out.skipped_degenerate, out.unknown) == (3, 1, 3, {})
    out = rasterize_polygons({"imgHeight": 2, "imgWidth": 10, "objects": group}, enc)
    assert out.drawn == 3 and out.unknown == {"tree": 1, "cargroup": 1}  # the toolkit's "Label 'tree' not known."


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


def test_read_unified_counts_unknown_values(tmp_path, registry, union_all):
    union, spaces = union_all
    lut = build_lut(union, spaces["cityscapes"], "labelIds")
    path = tmp_path / "a.png"
    Image.fromarray(fx.stray(fx.stripes((7, 26, 0)), 200, 3), mode="L").save(path)
    got = read_unified(path, lut)
    img, unknown = got.image, got.unknown
    arr = np.asarray(img)
    road, car = union.index_of("road"), union.index_of("car")
    assert arr[1, 0] == road and arr[0, -1] == 255
    assert arr[0, :3].tolist() == [255] * 3  # unknown id 200 -> ignore, never a class
    assert arr[0, 32] == car
    assert unknown == {200: 3}
    Image.fromarray(fx.stripes((7, 200, 26, 0)), mode="L").save(path)  # a quarter unknown: no Cityscapes label
    with pytest.raises(UnisegError, match=r"a\.png: not a label of cityscapes\.labelIds: 25% of its pixels"):
        read_unified(path, lut)


def test_read_unified_counts_unknown_colours(tmp_path, union_all):
    union, spaces = union_all
    lut = build_lut(union, spaces["camvid"], "rgb")
    path = tmp_path / "f_L.png"
    Image.fromarray(fx.stray(fx.stripes(((128, 64, 128), (0, 0, 0))), (1, 2, 3), 5), mode="RGB").save(path)
    got = read_unified(path, lut)
    img, unknown = got.image, got.unknown
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
