"""Remap, check, prepare and SegDataset on dataset copies laid out as the real ones ship,
sibling files and a user's mistakes included (issue 9, items 1, 2 and 7).

A real Cityscapes gtFine copy holds, per frame, ``_labelIds``, ``_labelTrainIds`` (made by
createTrainIdLabelImgs), ``_instanceIds`` (16-bit), ``_color`` (RGBA) and ``_polygons.json``
(``fixtures_layouts.make_cityscapes(labels="all")``).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import fixtures_layouts as fx
from conftest import run_cli
from uniseg.data.cache import prepare_cache, read_manifest
from uniseg.data.check import check_dataset
from uniseg.errors import UnisegError
from uniseg.labelfiles import REPORT_TOP
from uniseg.unify.artifact import open_union
from uniseg.unify.lut import build_lut
from uniseg.unify.remap import remap_paths

H, W = fx.SIZE


@pytest.fixture(scope="module")
def union(registry):
    return open_union(["cityscapes", "bdd", "idd", "mapillary", "camvid"], registry)[0]


def _unified(union, names) -> np.ndarray:
    """The unified label of a 3-stripe fixture whose stripes are ``names`` (None = ignore)."""
    return fx.stripes(tuple(255 if n is None else union.index_of(n) for n in names))


# -- item 1: only the encoding's files are taken -----------------------------------------------


def test_remap_of_a_real_cityscapes_copy_takes_only_the_label_ids(tmp_path, registry, union):
    built = fx.make_cityscapes(tmp_path / "cs", labels="all", per_city=2)
    lut = build_lut(union, registry.get("cityscapes"), "labelIds")
    rep = remap_paths(lut, [tmp_path / "cs/gtFine/train"], tmp_path / "out", space=registry.get("cityscapes"))
    train = [p for p in built.labels if "/train/" in p]
    assert rep.ok and rep.count("done") == len(train) == 4
    assert sorted(f.src for f in rep.files) == sorted(str(tmp_path / "cs" / p) for p in train)
    assert rep.left_out == {"labelTrainIds": 4, "other files": 12}  # instanceIds, color, polygons
    for p in train:
        out = np.asarray(Image.open(tmp_path / "out" / p.removeprefix("gtFine/train/")))
        assert np.array_equal(out, _unified(union, ("road", "car", None)))
    # the other encoding, from the whole root: images and every other sibling are left out
    lut_t = build_lut(union, registry.get("cityscapes"), "labelTrainIds")
    rep_t = remap_paths(lut_t, [tmp_path / "cs"], tmp_path / "out_t", space=registry.get("cityscapes"))
    assert rep_t.ok and rep_t.count("done") == 6  # train and val
    assert rep_t.left_out == {"labelIds": 6, "other files": 6 * 3 + 8}  # + 8 images (test split too)
    assert all(f.src.endswith("_gtFine_labelTrainIds.png") for f in rep_t.files)


def test_remap_cli_on_a_real_copy_exits_0_and_says_what_it_left_out(tmp_path, union):
    fx.make_cityscapes(tmp_path / "cs", labels="all")
    args = ["labels", "remap", "--dataset", "cityscapes", "--union", "cityscapes,bdd,idd,mapillary",
            str(tmp_path / "cs/gtFine/train"), "--out", str(tmp_path / "out"), "--workers", "1"]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    assert "2 written" in res.stdout and "left out 8 files that are not cityscapes.labelIds labels: 2 labelTrainIds, 6 other files" in res.stdout
    data = json.loads(run_cli(*args, "--format", "json").stdout)
    assert data["left_out"] == {"labelTrainIds": 2, "other files": 6} and data["skipped"] == 2


def test_labels_copied_out_of_their_tree_are_told_apart_by_name(tmp_path, registry, union):
    built = fx.make_cityscapes(tmp_path / "cs", labels="all")
    loose = tmp_path / "loose"
    loose.mkdir()
    for rel in built.labels + built.siblings:
        shutil.copy(tmp_path / "cs" / rel, loose / rel.rsplit("/", 1)[1])
    lut = build_lut(union, registry.get("cityscapes"), "labelIds")
    rep = remap_paths(lut, [loose], tmp_path / "out", space=registry.get("cityscapes"))
    assert rep.ok and sorted(f.src.rsplit("/", 1)[1] for f in rep.files) == sorted(p.rsplit("/", 1)[1] for p in built.labels)
    assert rep.left_out == {"labelTrainIds": 3, "other files": 9}


def test_a_loose_folder_with_no_known_pattern_is_taken_whole(tmp_path, registry, union):
    src = tmp_path / "mine"
    src.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(fx.stripes(fx.CITYSCAPES_VALUES), mode="L").save(src / name)
    (src / "notes.txt").write_text("not a label")
    lut = build_lut(union, registry.get("cityscapes"), "labelIds")
    rep = remap_paths(lut, [src], tmp_path / "out", space=registry.get("cityscapes"))
    assert rep.ok and rep.count("done") == 2 and rep.left_out == {"other files": 1}
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out/a.png")), _unified(union, ("road", "car", None)))


def test_mapillary_root_with_v2_labels_remaps_only_the_v1_2_labels(tmp_path, registry, union):
    built = fx.make_mapillary(tmp_path / "mv", with_v2=True)
    lut = build_lut(union, registry.get("mapillary"), "ids")
    rep = remap_paths(lut, [tmp_path / "mv"], tmp_path / "out", space=registry.get("mapillary"))
    assert rep.ok and sorted(f.src for f in rep.files) == sorted(str(tmp_path / "mv" / p) for p in built.labels)
    assert rep.left_out == {"other files": 6}  # 3 images and 3 v2.0 labels (another label space)


def test_idd_id_encoding_uses_one_source_per_frame(tmp_path, registry, union):
    fx.make_idd(tmp_path / "idd", mode="id")
    fx.make_idd(tmp_path / "idd", mode="polygons")  # the same frames' polygon JSON beside the raw-id PNGs
    lut = build_lut(union, registry.get("idd"), "id")
    rep = remap_paths(lut, [tmp_path / "idd/gtFine"], tmp_path / "out", space=registry.get("idd"))
    assert rep.ok and rep.count("done") == 3 and all(f.src.endswith("_gtFine_labelids.png") for f in rep.files)
    assert rep.left_out == {"polygons": 3}
    # polygons alone: rasterised as the IDD toolkit does, as every other reader does
    for p in (tmp_path / "idd/gtFine").rglob("*_labelids.png"):
        p.unlink()
    rep = remap_paths(lut, [tmp_path / "idd/gtFine"], tmp_path / "out2", space=registry.get("idd"))
    assert rep.ok and rep.count("done") == 3 and all(f.dst.endswith("_gtFine_polygons.png") for f in rep.files)
    assert rep.files[0].unknown == {"hovercraft": 1}


def test_only_other_encodings_files_is_a_one_line_error(tmp_path, registry, union):
    built = fx.make_cityscapes(tmp_path / "cs", labels="all")
    lut = build_lut(union, registry.get("cityscapes"), "labelIds")
    trainids = tmp_path / "cs" / built.siblings[0]
    with pytest.raises(UnisegError, match=r"no cityscapes\.labelIds label files among the 1 files given \(1 labelTrainIds\)"):
        remap_paths(lut, [trainids], tmp_path / "out", space=registry.get("cityscapes"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UnisegError, match="no cityscapes.labelIds label files under"):
        remap_paths(lut, [empty], tmp_path / "out", space=registry.get("cityscapes"))


def test_check_and_prepare_on_a_real_copy_use_label_ids_and_count_the_rest(tmp_path, registry, union):
    fx.make_cityscapes(tmp_path / "cs", labels="all")
    rep = check_dataset(registry.get("cityscapes"), tmp_path / "cs", sample=0)
    assert rep.ok and rep.labels == "labelIds" and rep.left_out == {"labelTrainIds": 3}
    assert {v.value for v in rep.values} == set(fx.CITYSCAPES_VALUES)
    prep = prepare_cache(union, registry.get("cityscapes"), tmp_path / "cs", tmp_path / "cache", short_side=0)
    assert prep.ok and prep.done == 3 and prep.left_out == {"labelTrainIds": 3}


# -- item 2: files that cannot be labels are refused, reports stay small -------------------------


def test_a_photo_given_to_camvid_is_refused_and_the_report_is_capped(tmp_path, registry, union):
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(fx.photo(1, (64, 96))).save(src / "0001TP_006690_L.png")
    Image.fromarray(fx.stripes(fx.CAMVID_COLOURS), mode="RGB").save(src / "0001TP_006720_L.png")
    args = ["labels", "remap", "--dataset", "camvid", "--union", "cityscapes,camvid", str(src), "--out", str(tmp_path / "out"),
            "--format", "json", "--workers", "1"]
    res = run_cli(*args)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "1 of 2 files failed" in res.stderr and "0001TP_006690_L.png" in res.stderr and "not a label of camvid.rgb" in res.stderr
    assert len(res.stdout) < 2000  # a 3.3 MB report before
    data = json.loads(res.stdout)
    assert data["done"] == 1 and data["failed"] == 1
    assert not (tmp_path / "out/0001TP_006690_L.png").exists()
    # --strict with thousands of unknown colours still lists only the most frequent ones
    lut = build_lut(open_union(["cityscapes", "camvid"], registry)[0], registry.get("camvid"), "rgb")
    few = np.array(fx.stripes(fx.CAMVID_COLOURS, (64, 96)))
    few[:2, :3] = [[(1, 2, 3), (4, 5, 6), (7, 8, 9)], [(10, 11, 12), (13, 14, 15), (16, 17, 18)]]  # 6 unknown colours
    Image.fromarray(few, mode="RGB").save(src / "0001TP_006690_L.png")
    rep = remap_paths(lut, [src / "0001TP_006690_L.png"], tmp_path / "strict", strict=True)
    assert rep.files[0].status == "error" and rep.files[0].unknown_values == 6
    assert "unknown raw values: (1,2,3) (1 px), (4,5,6) (1 px)" in rep.files[0].error


def test_many_distinct_unknown_values_are_capped_in_the_result(tmp_path, registry, union):
    arr = np.full((100, 100), 7, np.uint8)
    arr[0, :9] = np.arange(40, 49)  # 9 distinct unknown ids on 0.09% of the pixels: more than a few values
    Image.fromarray(arr, mode="L").save(tmp_path / "a_gtFine_labelIds.png")
    lut = build_lut(union, registry.get("cityscapes"), "labelIds")
    rep = remap_paths(lut, [tmp_path / "a_gtFine_labelIds.png"], tmp_path / "out")
    assert rep.files[0].status == "error" and "9 values the encoding does not list" in rep.files[0].error
    assert len(rep.files[0].unknown) == 0  # refused before counting into the report
    arr[0, :9] = 40  # one unknown id on a few pixels: counted, written as 255
    Image.fromarray(arr, mode="L").save(tmp_path / "a_gtFine_labelIds.png")
    rep = remap_paths(lut, [tmp_path / "a_gtFine_labelIds.png"], tmp_path / "out2")
    assert rep.ok and rep.files[0].unknown == {40: 9} and rep.unknown_pixels == 9
    assert REPORT_TOP == 10


def test_a_jpeg_ids_label_is_refused(tmp_path, registry, union):
    (tmp_path / "x_gtFine_labelIds.jpg").write_bytes(fx.jpeg_bytes(fx.CITYSCAPES_VALUES))
    lut = build_lut(union, registry.get("cityscapes"), "labelIds")
    rep = remap_paths(lut, [tmp_path / "x_gtFine_labelIds.jpg"], tmp_path / "out")
    assert rep.files[0].status == "error" and "a JPEG file cannot hold labels" in rep.files[0].error


# -- item 7: one decoder: the four readers agree on every file ---------------------------------

BAD = {  # frame -> (what is written at its _labelIds.png, refused as 'not label' | 'unreadable' | None)
    "aachen_000000_000019": ("good", None),
    "aachen_000001_000020": ("grey_rgb", None),  # ids saved as grey RGB: the same ids
    "aachen_000002_000021": ("sixteen_bit", None),  # ids in a 16-bit PNG
    "aachen_000003_000022": ("few_unknown", None),  # 4 stray unknown pixels: counted, 255
    "bochum_000000_000019": ("jpeg", "not label"),
    "bochum_000001_000020": ("photo", "not label"),
    "bochum_000002_000021": ("mostly_unknown", "not label"),
    "bochum_000003_000022": ("truncated", "unreadable"),
}


def _write_label(path, kind: str) -> None:
    ids = fx.stripes(fx.CITYSCAPES_VALUES)
    if kind == "grey_rgb":
        Image.fromarray(np.stack([ids] * 3, axis=-1), mode="RGB").save(path)
    elif kind == "sixteen_bit":
        Image.fromarray(ids.astype(np.uint16)).save(path)
    elif kind == "few_unknown":
        arr = ids.copy()
        arr[0, :4] = 250
        Image.fromarray(arr, mode="L").save(path)
    elif kind == "jpeg":
        path.write_bytes(fx.jpeg_bytes(fx.CITYSCAPES_VALUES))
    elif kind == "photo":
        Image.fromarray(fx.photo(9)).save(path)
    elif kind == "mostly_unknown":
        Image.fromarray(fx.stripes((7, 200, 201)), mode="L").save(path)
    elif kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


@pytest.fixture()
def messy_copy(tmp_path):
    root = tmp_path / "cs"
    fx.make_cityscapes(root, labels="all", per_city=4, cities={"train": ["aachen", "bochum"]})
    for stem, (kind, _) in BAD.items():
        _write_label(root / f"gtFine/train/{stem.split('_')[0]}/{stem}_gtFine_labelIds.png", kind)
    return root


def test_remap_check_prepare_and_the_dataset_agree_on_every_file(tmp_path, registry, union, messy_copy):
    from uniseg.data import SegDataset

    root, space = messy_copy, registry.get("cityscapes")
    label_of = {stem: f"gtFine/train/{stem.split('_')[0]}/{stem}_gtFine_labelIds.png" for stem in BAD}
    want_bad = {stem for stem, (_, why) in BAD.items() if why}
    expected = _unified(union, ("road", "car", None))

    # remap
    rep = remap_paths(build_lut(union, space, "labelIds"), [root / "gtFine"], tmp_path / "remapped", space=space)
    status = {f.src.rsplit("/", 1)[1].removesuffix("_gtFine_labelIds.png"): f for f in rep.files}
    assert set(status) == set(BAD) and rep.left_out == {"labelTrainIds": 8, "other files": 24}
    assert {s for s, f in status.items() if f.status == "error"} == want_bad
    remapped = {s: np.asarray(Image.open(f.dst)) for s, f in status.items() if f.status == "done"}
    assert status["aachen_000003_000022"].unknown == {250: 4}

    # check
    chk = check_dataset(space, root, sample=0)
    assert {e["file"] for e in chk.not_labels} == {label_of[s] for s, (_, why) in BAD.items() if why == "not label"}
    assert {e["file"] for e in chk.unreadable} == {label_of[s] for s, (_, why) in BAD.items() if why == "unreadable"}
    assert [(v.value, v.pixels) for v in chk.unknown] == [(250, 4)]
    assert not chk.ok and chk.unreadable_images == []

    # prepare (native size, lossless): the same files fail, the same labels are written
    prep = prepare_cache(union, space, root, tmp_path / "cache", short_side=0, image_format="png")
    failed = {f.key.rsplit("/", 1)[1].removesuffix("_leftImg8bit.png") for f in prep.failed}
    assert failed == want_bad and prep.unknown == {"250": 4}
    doc = read_manifest(tmp_path / "cache")
    for key, rec in doc["files"].items():
        stem = key.rsplit("/", 1)[1].removesuffix("_leftImg8bit.png")
        assert np.array_equal(np.asarray(Image.open(tmp_path / "cache" / rec["label"])), remapped[stem])

    # SegDataset: the same files raise, the others give the same labels
    ds = SegDataset(space, root, union, split="train")
    for i, image in enumerate(ds.images):
        stem = image.rsplit("/", 1)[1].removesuffix("_leftImg8bit.png")
        if stem in want_bad:
            with pytest.raises(UnisegError, match=stem):
                ds[i]
        else:
            assert np.array_equal(ds[i]["label"].numpy(), remapped[stem])
    for stem in set(BAD) - want_bad:
        want = expected.copy()
        if stem == "aachen_000003_000022":
            want[0, :4] = 255
        assert np.array_equal(remapped[stem], want), stem
