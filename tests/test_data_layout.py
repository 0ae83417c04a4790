"""Discovering samples under dataset roots in their real layouts."""

from __future__ import annotations

import pytest
from PIL import Image

import fixtures_layouts as fx
from uniseg.data.layout import discover
from uniseg.errors import UnisegError


def test_cityscapes_pairs_by_city_and_stem(tmp_path, registry):
    built = fx.make_cityscapes(tmp_path, per_city=2)
    d = discover(registry.get("cityscapes"), tmp_path)
    assert d.layout.name == "gtFine" and d.source.name == "labelIds" and d.encoding == "labelIds"
    assert set(d.splits) == {"train", "val", "test"}
    train = d.splits["train"]
    assert len(train.images) == 4 and len(train.samples) == 4
    ref = next(s for s in train.samples if "bochum_000001" in s.image)
    assert ref.image == "leftImg8bit/train/bochum/bochum_000001_000020_leftImg8bit.png"
    assert ref.label == "gtFine/train/bochum/bochum_000001_000020_gtFine_labelIds.png"
    test = d.splits["test"]
    assert not test.labelled and len(test.samples) == 2 and test.samples[0].label is None
    assert sorted(s.image for s in d.samples(["train", "val"])) == sorted(built.images)


def test_cityscapes_train_ids_source_when_only_those_exist(tmp_path, registry):
    fx.make_cityscapes(tmp_path, labels="labelTrainIds")
    d = discover(registry.get("cityscapes"), tmp_path, split="train")
    assert d.source.name == "labelTrainIds" and d.encoding == "labelTrainIds"
    assert list(d.splits) == ["train"]


def test_cityscapes_both_sources_prefers_first_and_can_be_forced(tmp_path, registry):
    fx.make_cityscapes(tmp_path, labels="both")
    space = registry.get("cityscapes")
    assert discover(space, tmp_path).source.name == "labelIds"
    assert discover(space, tmp_path, labels="labelTrainIds").source.name == "labelTrainIds"


@pytest.mark.parametrize("legacy,layout", [(False, "bdd100k"), (True, "legacy")])
def test_bdd_current_and_legacy(tmp_path, registry, legacy, layout):
    built = fx.make_bdd(tmp_path, legacy=legacy)
    d = discover(registry.get("bdd"), tmp_path)
    assert d.layout.name == layout
    assert sorted(s.label for s in d.samples()) == sorted(built.labels)
    if legacy:
        assert all(s.label.endswith("_train_id.png") for s in d.samples())


@pytest.mark.parametrize("mode,source", [("level3", "level3Ids"), ("id", "id"), ("polygons", "polygons")])
def test_idd_label_sources(tmp_path, registry, mode, source):
    fx.make_idd(tmp_path, mode=mode)
    d = discover(registry.get("idd"), tmp_path)
    assert d.source.name == source
    assert d.format == ("polygons" if mode == "polygons" else "png")
    assert d.encoding == ("level3Ids" if mode == "level3" else "id")
    assert len(d.samples("train")) == 2


def test_idd_level3_png_preferred_over_polygons(tmp_path, registry):
    fx.make_idd(tmp_path, mode="polygons")
    fx.make_idd(tmp_path, mode="level3")
    d = discover(registry.get("idd"), tmp_path)
    assert d.source.name == "level3Ids"
    assert discover(registry.get("idd"), tmp_path, labels="polygons").source.name == "polygons"


def test_idd_polygons_chosen_when_pngs_are_incomplete(tmp_path, registry):
    fx.make_idd(tmp_path, mode="polygons", counts={"train": 3})
    fx.make_idd(tmp_path, mode="level3", counts={"train": 1})  # createLabels interrupted
    d = discover(registry.get("idd"), tmp_path)
    assert d.source.name == "polygons" and len(d.samples()) == 3


@pytest.mark.parametrize("version", ["v1.2", "v1.1"])
def test_mapillary_versions(tmp_path, registry, version):
    built = fx.make_mapillary(tmp_path, version=version, with_v2=(version == "v1.2"))
    d = discover(registry.get("mapillary"), tmp_path)
    assert d.layout.name == version
    assert set(d.splits) == {"train", "val"}
    assert d.splits["train"].dir == "training"
    assert sorted(s.label for s in d.samples()) == sorted(built.labels)
    assert not any("v2.0" in s.label for s in d.samples())


def test_kitti_training_and_unlabelled_testing(tmp_path, registry):
    fx.make_kitti(tmp_path, n=3, test=2)
    d = discover(registry.get("kitti"), tmp_path)
    assert d.splits["train"].dir == "training" and len(d.splits["train"].samples) == 3
    assert not d.splits["test"].labelled and len(d.splits["test"].images) == 2
    assert d.splits["test"].missing_labels == []


def test_wilddash_label_files_are_not_images(tmp_path, registry):
    built = fx.make_wilddash(tmp_path)
    d = discover(registry.get("wilddash"), tmp_path)
    val = d.splits["val"]
    assert sorted(val.images) == sorted(built.images)  # no *_labelIds.png among the images
    assert val.missing_labels == [] and val.orphan_labels == []
    assert {s.label for s in val.samples} == set(built.labels)


def test_camvid_original_and_segnet(tmp_path, registry):
    fx.make_camvid(tmp_path / "camvid")
    d = discover(registry.get("camvid"), tmp_path / "camvid")
    assert list(d.splits) == ["all"] and len(d.samples()) == 3
    assert d.samples()[0].label.startswith("LabeledApproved_full/") and d.samples()[0].label.endswith("_L.png")
    fx.make_camvid_segnet(tmp_path / "segnet")
    d = discover(registry.get("camvid-segnet"), tmp_path / "segnet")
    assert set(d.splits) == {"train", "val", "test"}
    assert all(s.label.split("/")[0] == s.split + "annot" for s in d.samples())


def test_missing_and_orphan_labels(tmp_path, registry):
    built = fx.make_cityscapes(tmp_path)
    (tmp_path / built.labels[0]).unlink()  # an image loses its label
    orphan = tmp_path / "gtFine/train/aachen/aachen_000009_000099_gtFine_labelIds.png"
    Image.new("L", (4, 4)).save(orphan)  # a label without image
    d = discover(registry.get("cityscapes"), tmp_path, split="train")
    train = d.splits["train"]
    assert train.missing_labels == [built.images[0]]
    assert train.orphan_labels == ["gtFine/train/aachen/aachen_000009_000099_gtFine_labelIds.png"]
    assert len(train.samples) == 1


def test_hidden_and_temp_files_are_ignored(tmp_path, registry):
    fx.make_kitti(tmp_path, n=1, test=0)
    (tmp_path / "training/image_2/.000001_10.png.abc.tmp").write_bytes(b"partial")
    (tmp_path / ".uniseg-synth").write_text("x")
    d = discover(registry.get("kitti"), tmp_path)
    assert d.splits["train"].images == ["training/image_2/000000_10.png"]


def test_wrong_root_says_what_was_expected(tmp_path, registry):
    fx.make_cityscapes(tmp_path / "cityscapes")
    with pytest.raises(UnisegError) as err:
        discover(registry.get("cityscapes"), tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{tmp_path}: no Cityscapes layout found")
    assert "leftImg8bit/train/<city>/<stem>_leftImg8bit.png" in msg
    assert "gtFine/train/<city>/<stem>_gtFine_labelIds.png" in msg
    assert f"did you mean {tmp_path / 'cityscapes'}?" in msg


def test_wrong_dataset_for_root(tmp_path, registry):
    fx.make_mapillary(tmp_path)
    with pytest.raises(UnisegError, match=r"no BDD100K layout found \(expected images/10k/train/<id>\.jpg"):
        discover(registry.get("bdd"), tmp_path)


def test_labels_without_images_is_a_wrong_root(tmp_path, registry):
    fx.make_cityscapes(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "leftImg8bit")
    with pytest.raises(UnisegError, match=r"found \d+ label files but no images"):
        discover(registry.get("cityscapes"), tmp_path)


def test_missing_root_and_file_root(tmp_path, registry):
    with pytest.raises(UnisegError, match=r"nowhere: no such folder \(expected the Mapillary Vistas dataset root"):
        discover(registry.get("mapillary"), tmp_path / "nowhere")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(UnisegError, match="is not a folder"):
        discover(registry.get("mapillary"), f)


def test_unknown_split_layout_source(tmp_path, registry):
    fx.make_kitti(tmp_path)
    space = registry.get("kitti")
    with pytest.raises(UnisegError, match=r"kitti has no split 'val'; choose one of: test, train"):
        discover(space, tmp_path, split="val")
    with pytest.raises(UnisegError, match=r"no layout 'gtFine'; choose one of: semantics"):
        discover(space, tmp_path, layout="gtFine")
    with pytest.raises(UnisegError, match=r"no label source 'polygons'"):
        discover(space, tmp_path, labels="polygons")


def test_synth_output_is_discovered(tmp_path, registry):
    import uniseg.data.synth as synth
    rep = synth.synthesize(tmp_path, images=3, size=(24, 48), seed=1, registry=registry)
    for name, n in rep.datasets.items():
        d = discover(registry.get(name), tmp_path / name)
        total = sum(len(s.images) for s in d.splits.values())
        assert total == n, name
        assert all(not s.missing_labels and not s.orphan_labels for s in d.splits.values()), name
