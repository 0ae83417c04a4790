"""``check_dataset``: wrong roots, unpaired files, unknown values, broken files, sampling."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import fixtures_layouts as fx
from uniseg.data.check import check_dataset, spread
from uniseg.errors import UnisegError


def test_sound_dataset(tmp_path, registry):
    fx.make_cityscapes(tmp_path)
    rep = check_dataset(registry.get("cityscapes"), tmp_path)
    assert rep.ok and rep.problems() == []
    by = {s.split: s for s in rep.splits}
    assert (by["train"].images, by["train"].labels, by["train"].paired) == (2, 2, 2)
    assert by["test"].labelled is False and by["test"].images == 1 and by["test"].missing_labels == []
    assert rep.sampled == rep.sampled_of == 3
    seen = {v.value: (v.name, v.cls) for v in rep.values}
    assert seen == {0: ("unlabeled", None), 7: ("road", "road"), 26: ("car", "car")}
    assert rep.to_dict()["ok"] is True


def test_missing_and_orphan_labels_are_problems(tmp_path, registry):
    built = fx.make_bdd(tmp_path)
    (tmp_path / built.labels[0]).unlink()
    Image.new("L", fx.SIZE[::-1]).save(tmp_path / "labels/sem_seg/masks/val/ffffffff-00000000.png")
    rep = check_dataset(registry.get("bdd"), tmp_path)
    assert not rep.ok
    assert rep.missing_labels == 1 and rep.orphan_labels == 1
    assert [p for s in rep.splits for p in s.missing_labels] == [built.images[0]]
    assert [p for s in rep.splits for p in s.orphan_labels] == ["labels/sem_seg/masks/val/ffffffff-00000000.png"]
    assert "1 images without labels" in rep.problems() and "1 labels without images" in rep.problems()


def test_unknown_ids_are_reported(tmp_path, registry):
    built = fx.make_kitti(tmp_path, n=2, test=0)
    arr = fx.stray(fx.stray(fx.stripes(fx.KITTI_VALUES), 201, 5), 99, 2)  # 99 x2, 201 x3
    Image.fromarray(arr, mode="L").save(tmp_path / built.labels[1])
    rep = check_dataset(registry.get("kitti"), tmp_path)
    assert [(v.value, v.pixels, v.files) for v in rep.unknown] == [(99, 2, 1), (201, 3, 1)]
    assert rep.problems() == ["2 unknown raw values: 99, 201"]


def test_unknown_colours_are_reported(tmp_path, registry):
    built = fx.make_camvid(tmp_path)
    arr = fx.stray(fx.stripes(fx.CAMVID_COLOURS), (10, 20, 30))
    Image.fromarray(arr, mode="RGB").save(tmp_path / built.labels[0])
    rep = check_dataset(registry.get("camvid"), tmp_path)
    assert [v.value for v in rep.unknown] == [(10, 20, 30)]
    assert rep.to_dict()["unknown"][0]["value"] == [10, 20, 30]
    names = {v.value: v.name for v in rep.values}
    assert names[(128, 64, 128)] == "Road" and names[(0, 0, 0)] == "Void"


def test_unknown_polygon_labels_are_reported(tmp_path, registry):
    fx.make_idd(tmp_path, mode="polygons")
    rep = check_dataset(registry.get("idd"), tmp_path, sample=0)
    assert rep.format == "polygons"
    assert [(v.value, v.pixels, v.files) for v in rep.unknown] == [("hovercraft", 3, 3)]
    assert {v.value for v in rep.values} == {0, 12, 35}


def test_size_mismatch_and_unreadable_files(tmp_path, registry):
    built = fx.make_wilddash(tmp_path)
    Image.new("L", (10, 10)).save(tmp_path / built.labels[0])
    (tmp_path / built.labels[1]).write_bytes(b"garbage")
    rep = check_dataset(registry.get("wilddash"), tmp_path)
    assert [m["label"] for m in rep.size_mismatches] == [built.labels[0]]
    assert rep.size_mismatches[0]["label_size"] == [10, 10] and rep.size_mismatches[0]["image_size"] == [64, 32]
    assert [u["file"] for u in rep.unreadable] == [built.labels[1]]
    assert any("size differs" in p for p in rep.problems()) and any("unreadable" in p for p in rep.problems())


def test_photo_as_label_is_reported_as_no_label(tmp_path, registry):
    built = fx.make_kitti(tmp_path, n=2, test=0)
    Image.fromarray(fx.photo(3)).save(tmp_path / built.labels[0])
    Image.fromarray(fx.stripes((7, 201, 26, 99)), mode="L").save(tmp_path / built.labels[1])  # half unknown
    rep = check_dataset(registry.get("kitti"), tmp_path)
    assert rep.unreadable == [] and [e["file"] for e in rep.not_labels] == built.labels[:2]
    assert "photo" in rep.not_labels[0]["error"] and "50% of its pixels" in rep.not_labels[1]["error"]
    assert rep.unknown == []  # values of files that are no labels are not counted
    assert rep.problems() == ["2 files that cannot be kitti.labelIds labels"]


def test_images_are_decoded_fully(tmp_path, registry):
    built = fx.make_kitti(tmp_path, n=3, test=0)
    data = (tmp_path / built.images[0]).read_bytes()
    (tmp_path / built.images[0]).write_bytes(data[: len(data) // 2])  # truncated: the header still reads
    (tmp_path / built.images[1]).write_bytes(b"")  # 0 bytes
    rep = check_dataset(registry.get("kitti"), tmp_path)
    assert [e["file"] for e in rep.unreadable_images] == built.images[:2]
    assert "0 bytes" in rep.unreadable_images[1]["error"] and rep.unreadable == []
    assert rep.problems() == ["2 unreadable images"]


def test_sample_is_bounded_and_zero_means_all(tmp_path, registry):
    built = fx.make_camvid_segnet(tmp_path, counts={"train": 9})
    Image.fromarray(fx.stray(fx.stripes(fx.SEGNET_VALUES), 77), mode="L").save(tmp_path / built.labels[4])  # the middle file
    space = registry.get("camvid-segnet")
    rep = check_dataset(space, tmp_path, sample=3)
    assert (rep.sampled, rep.sampled_of) == (3, 9)
    assert [v.value for v in rep.unknown] == [77]  # evenly spaced: first, middle, last
    rep2 = check_dataset(space, tmp_path, sample=2)
    assert rep2.sampled == 2 and rep2.unknown == []  # first and last only
    rep0 = check_dataset(space, tmp_path, sample=0)
    assert rep0.sampled == 9
    with pytest.raises(UnisegError, match="--sample"):
        check_dataset(space, tmp_path, sample=-1)


def test_spread():
    assert spread(list(range(10)), 3) == [0, 4, 9]  # linspace 0, 4.5, 9 rounded half to even
    assert spread([1, 2], 0) == [1, 2] and spread([1, 2], 5) == [1, 2]


def test_wrong_root_raises(tmp_path, registry):
    fx.make_kitti(tmp_path)
    with pytest.raises(UnisegError, match=r"no Cityscapes layout found"):
        check_dataset(registry.get("cityscapes"), tmp_path)


def test_split_filter(tmp_path, registry):
    fx.make_mapillary(tmp_path, counts={"training": 2, "validation": 3})
    rep = check_dataset(registry.get("mapillary"), tmp_path, split="val")
    assert [s.split for s in rep.splits] == ["val"] and rep.splits[0].images == 3
    json.dumps(rep.to_dict())  # serialisable


def test_no_labels_at_all_names_the_expected_files(tmp_path, registry):
    fx.make_cityscapes(tmp_path)  # same image layout as IDD, but Cityscapes label files
    rep = check_dataset(registry.get("idd"), tmp_path)
    assert rep.missing_labels == 3
    assert "no label file at all: expected gtFine/train/<drive>/<stem>_gtFine_labellevel3Ids.png" in rep.problems()[0]
