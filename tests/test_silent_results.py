"""No silently wrong result (the issue "nothing lost, nothing silently wrong", part 7): the union's
multi-label view, images without labels, 16-bit and float inputs, a linear head loaded into a
cosine one. Each either comes out right or is said, by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from engine_fixtures import TRAIN, small_world, tiny_config  # noqa: F401  (fixture)
from inprocess import cli


@pytest.fixture(scope="module")
def checkpoint(small_world, tmp_path_factory):
    from uniseg.engine.trainer import train

    return train(tiny_config(small_world, iterations=2, val_split="none"), tmp_path_factory.mktemp("ck") / "run").last


class Notes:
    """Training events that keep the run's notes (what ``uniseg train`` prints as ``note: ...``)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, info) -> None:
        self.notes += info.notes

    def __getattr__(self, name):
        return lambda *a, **k: None


# -- predict --label-space union --multilabel ---------------------------------------------------


def test_multilabel_over_the_union_is_refused_and_nothing_is_outside_it(checkpoint, small_world, tmp_path, capsys):
    from uniseg.engine.predict import multilabel_override

    out = tmp_path / "out"
    res = cli(capsys, "predict", "--checkpoint", checkpoint, "-l", "union", "--multilabel", "--out", out,
              small_world / "kitti" / "training" / "image_2")
    assert res.returncode == 2 and "--multilabel" in res.stderr and "union has none" in res.stderr, res.stderr
    assert not out.exists()
    logits = torch.randn(1, 6, 4, 5) * 5
    over, _ = multilabel_override(logits, None, "sigmoid", 0.1)  # no channels: the union, every class inside it
    assert not over.any()
    over, cls = multilabel_override(logits, torch.tensor([0, 1, 2]), "sigmoid", 0.1)
    assert over.any() and set(cls[over].tolist()) <= {3, 4, 5}


# -- an image without its label ----------------------------------------------------------------


def test_eval_names_the_images_it_left_out_for_want_of_a_label(checkpoint, small_world, tmp_path, capsys):
    kitti = tmp_path / "kitti"
    shutil.copytree(small_world / "kitti", kitti)
    labels = sorted((kitti / "training" / "semantic").glob("*.png"))
    labels[0].unlink()
    image = f"training/image_2/{labels[0].name}"
    res = cli(capsys, "eval", "--checkpoint", checkpoint, "--datasets", f"kitti={kitti}", "--workers", "0", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)[0]
    assert doc["images"] == len(labels) - 1 and doc["images_without_labels"] == [image]
    res = cli(capsys, "eval", "--checkpoint", checkpoint, "--datasets", f"kitti={kitti}", "--workers", "0")
    text = " ".join(res.stdout.split())
    assert f"kitti: 1 of {len(labels)} images have no label and are not scored" in text, res.stdout


def test_train_names_the_images_it_left_out_for_want_of_a_label(small_world, tmp_path):
    from uniseg.engine.config import DatasetSpec
    from uniseg.engine.trainer import train

    cs = tmp_path / "cityscapes"
    shutil.copytree(small_world / "cityscapes", cs)
    label = sorted((cs / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))[0]
    label.unlink()
    image = label.relative_to(cs).as_posix().replace("gtFine/", "leftImg8bit/").replace("_gtFine_labelIds", "_leftImg8bit")
    events = Notes()
    datasets = [DatasetSpec("cityscapes", str(cs))] + [DatasetSpec(n, str(small_world / n)) for n in TRAIN[1:]]
    train(tiny_config(small_world, datasets=datasets, iterations=1, val_split="none"), tmp_path / "run", events=events)
    note = next((n for n in events.notes if n.startswith("cityscapes:") and "have no label" in n), "")
    total = len(list((cs / "leftImg8bit" / "train").rglob("*_leftImg8bit.png")))
    assert f"1 of {total} training images have no label and are left out" in note and image in note, events.notes


def test_relations_mine_names_the_images_it_left_out_for_want_of_a_label(checkpoint, small_world, tmp_path, capsys):
    cs = tmp_path / "cityscapes"
    shutil.copytree(small_world / "cityscapes", cs)
    label = sorted((cs / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))[0]
    label.unlink()
    image = label.relative_to(cs).as_posix().replace("gtFine/", "leftImg8bit/").replace("_gtFine_labelIds", "_leftImg8bit")
    total = len(list((cs / "leftImg8bit" / "train").rglob("*_leftImg8bit.png")))
    sets = [f"cityscapes={cs}", *(f"{n}={small_world / n}" for n in TRAIN[1:])]
    args = ["relations", "mine", "--checkpoint", checkpoint, "--datasets", *sets, "--short-side", "48", "--workers", "0"]
    res = cli(capsys, *args, "--out", tmp_path / "json", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["images_without_labels"] == {"cityscapes": [image]}
    assert next(r["images"] for r in doc["datasets"] if r["dataset"] == "cityscapes") == total - 1
    res = cli(capsys, *args, "--out", tmp_path / "table")
    text = " ".join(res.stdout.split())
    assert res.returncode == 0 and f"cityscapes: 1 of {total} mined images have no label and are left out" in text, res.stdout


# -- 16-bit and float inputs -------------------------------------------------------------------


def test_16_bit_and_float_images_are_scaled_not_clipped(checkpoint, small_world, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rgb = Image.open(next((small_world / "kitti" / "training" / "image_2").glob("*.png"))).convert("RGB")
    grey = np.asarray(rgb.convert("L"))
    Image.fromarray(grey, "L").save(photos / "grey8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(photos / "grey16.png")  # 16-bit PNG: the same picture
    Image.fromarray(grey.astype(np.float32) / 255.0, "F").save(photos / "greyf.tif")  # float TIFF in [0, 1]
    from uniseg.labelfiles import photo_rgb

    for name in ("grey16.png", "greyf.tif"):  # what the network is given: the 8-bit picture, not a white or black one
        got, how = photo_rgb(Image.open(photos / name), photos / name)
        assert np.array_equal(np.asarray(got), np.asarray(Image.fromarray(grey, "L").convert("RGB"))) and how, name
    out = tmp_path / "out"
    res = cli(capsys, "predict", "--checkpoint", checkpoint, "-l", "kitti", "--out", out, photos, "--format", "json")
    assert res.returncode == 0, res.stderr
    pred = {n: np.asarray(Image.open(out / f"{n}.png")) for n in ("grey8", "grey16", "greyf")}
    assert np.array_equal(pred["grey16"], pred["grey8"]) and np.array_equal(pred["greyf"], pred["grey8"])
    converted = json.loads(res.stdout)["converted"]
    assert len(converted) == 2 and any("grey16.png: 16-bit" in c for c in converted) and any("greyf.tif: float" in c for c in converted)

    Image.fromarray(grey.astype(np.float32) * 4.0, "F").save(photos / "bright.tif")  # floats of no known range
    res = cli(capsys, "predict", "--checkpoint", checkpoint, "-l", "kitti", "--out", tmp_path / "out2", photos / "bright.tif")
    assert res.returncode == 2 and "bright.tif: a float image with values from 0 to" in res.stderr, res.stderr


# -- --init across heads -----------------------------------------------------------------------


def test_init_from_a_linear_head_into_a_cosine_head_says_what_it_dropped(small_world, tmp_path):
    from uniseg.engine.trainer import train

    linear = train(tiny_config(small_world, iterations=1, val_split="none", head="linear", loss="ce"), tmp_path / "linear").last
    events = Notes()
    train(tiny_config(small_world, iterations=1, val_split="none", init=str(linear)), tmp_path / "cosine", events=events)
    note = next(n for n in events.notes if n.startswith("initialised from"))
    assert "its linear head into this cosine head" in note, note
    assert "last_layer.3.weight carried over" in note and "last_layer.3.bias dropped" in note, note
