"""``uniseg eval`` and ``uniseg predict`` on a trained tiny model: the JSON contract, seen and unseen
datasets, predict's PNGs reproducing eval's numbers, and agreement with the official Cityscapes
evaluator (cityscapesscripts) on the same predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from inprocess import cli
from conftest import run_cli
from engine_fixtures import TRAIN, small_world, tiny_config  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def checkpoint(small_world, tmp_path_factory):
    from uniseg.engine.trainer import train

    out = tmp_path_factory.mktemp("eval_run") / "run"
    result = train(tiny_config(small_world, iterations=8, lr=0.05), out)
    return result.last


@pytest.fixture(scope="module")
def evaluated(checkpoint, small_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out")
    res = run_cli("eval", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={small_world / 'cityscapes'}",
                  f"kitti={small_world / 'kitti'}", f"camvid={small_world / 'camvid'}", "--out", str(out), "--workers", "0")
    assert res.returncode == 0, res.stderr
    return out, res


def _gt_classes(space, encoding: str, path) -> np.ndarray:
    """Ground truth in the dataset's class indices, decoded here from the registry's value table (255 = void)."""
    enc = space.encoding(encoding)
    img = Image.open(path)
    if enc.kind == "rgb":
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
        keys = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
        out = np.full(keys.shape, 255, np.int64)
        for v in enc.values:
            if v.cls is not None:
                r, g, b = v.value
                out[keys == (r << 16 | g << 8 | b)] = v.cls
        return out
    ids = np.asarray(img).astype(np.int64)
    lut = np.full(256, 255, np.int64)
    for v in enc.values:
        if v.cls is not None:
            lut[v.value] = v.cls
    return lut[ids]


def _miou_from_pngs(pairs, n: int):
    conf = np.zeros((n, n), np.int64)
    for pred_png, gt in pairs:
        pred = np.asarray(Image.open(pred_png)).astype(np.int64)
        keep = gt != 255
        conf += np.bincount(gt[keep] * n + pred[keep], minlength=n * n).reshape(n, n)
    tp = np.diag(conf)
    denom = conf.sum(0) + conf.sum(1) - tp
    iou = [float(tp[i] / denom[i]) if denom[i] else None for i in range(n)]
    present = [v for v in iou if v is not None]
    return sum(present) / len(present), iou


def test_eval_writes_the_json_contract_for_seen_and_unseen_datasets(evaluated, registry):
    out, res = evaluated
    for name, split, seen in (("cityscapes", "val", True), ("kitti", "train", False), ("camvid", "all", False)):
        doc = json.loads((out / f"{name}.json").read_text())
        space = registry.get(name)
        assert 0.0 <= doc["miou"] <= 1.0 and 0.0 <= doc["pixel_accuracy"] <= 1.0
        assert list(doc["per_class"]) == [c.name for c in space.classes]
        assert doc["split"] == split and doc["seen"] is seen and doc["images"] > 0
        assert np.asarray(doc["confusion"]).shape == (space.num_classes, space.num_classes)
        scored = [v for v in doc["per_class"].values() if v is not None]
        assert doc["miou"] == pytest.approx(sum(scored) / len(scored))
        assert doc["union_fingerprint"] and doc["checkpoint"].endswith("last.pt")
        assert (out / f"{name}.csv").read_text().startswith("class,iou,")
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("dataset,split,images,miou") and len(summary) == 4
    assert "unseen" in res.stdout and "cityscapes" in res.stdout


@pytest.mark.parametrize("name, encoding, images", [("cityscapes", "labelIds", "leftImg8bit/val"), ("camvid", "rgb", None)])
def test_predict_pngs_reproduce_evals_miou(name, encoding, images, checkpoint, evaluated, small_world, tmp_path, registry):
    from uniseg.engine.inputs import eval_set
    from uniseg.engine.checkpoint import load_trained

    out, _ = evaluated
    trained = load_trained(checkpoint)
    es = eval_set(name, small_world / name, trained.union, registry)
    root = small_world / name / images if images else None
    inputs = [str(root)] if root else list(es.dataset.images)
    res = run_cli("predict", "--checkpoint", str(checkpoint), "--label-space", name, "--out", str(tmp_path / "p"), *inputs)
    assert res.returncode == 0, res.stderr
    pairs = []
    space = registry.get(name)
    for img, lab in zip(es.dataset.images, es.dataset.labels):
        from pathlib import Path

        rel = Path(img).relative_to(root) if root else Path(Path(img).name)
        png = tmp_path / "p" / rel.with_suffix(".png")
        assert png.is_file(), png
        pred = Image.open(png)
        assert pred.mode == "L" and pred.size == Image.open(img).size
        pairs.append((png, _gt_classes(space, encoding, lab)))
    miou, iou = _miou_from_pngs(pairs, space.num_classes)
    doc = json.loads((out / f"{name}.json").read_text())
    assert doc["miou"] == pytest.approx(miou, abs=1e-12)
    assert list(doc["per_class"].values()) == pytest.approx(iou, abs=1e-12)


def test_uniseg_agrees_with_the_official_cityscapes_evaluator(checkpoint, evaluated, small_world, tmp_path, registry):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
    from cityscapesscripts.helpers.labels import name2label

    from uniseg.engine.inputs import eval_set
    from uniseg.engine.checkpoint import load_trained

    out, _ = evaluated
    space = registry.get("cityscapes")
    trained = load_trained(checkpoint)
    es = eval_set("cityscapes", small_world / "cityscapes", trained.union, registry)
    res = run_cli("predict", "--checkpoint", str(checkpoint), "--label-space", "cityscapes", "--out", str(tmp_path / "p"),
                  str(small_world / "cityscapes" / "leftImg8bit" / "val"))
    assert res.returncode == 0, res.stderr
    to_label_id = np.zeros(256, np.uint8)  # train-order class index -> labelIds value, from the registry
    for v in space.encoding("labelIds").values:
        if v.cls is not None:
            to_label_id[v.cls] = v.value
    preds, gts = [], []
    for img, lab in zip(es.dataset.images, es.dataset.labels):
        rel = __import__("pathlib").Path(img).relative_to(small_world / "cityscapes" / "leftImg8bit" / "val")
        classes = np.asarray(Image.open(tmp_path / "p" / rel.with_suffix(".png")))
        dst = tmp_path / "official" / rel.name.replace("_leftImg8bit", "_pred_labelIds")
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_label_id[classes]).save(dst)
        preds.append(str(dst))
        gts.append(lab)
    args = official.args
    args.evalInstLevelScore, args.JSONOutput, args.quiet, args.evalPixelAccuracy = False, False, True, False
    result = official.evaluateImgLists(preds, gts, args)
    doc = json.loads((out / "cityscapes.json").read_text())
    evaluated_classes = {n: v for n, v in result["classScores"].items() if not name2label[n].ignoreInEval}
    assert sorted(evaluated_classes) == sorted(doc["per_class"])
    for name, iou in evaluated_classes.items():
        ours = doc["per_class"][name]
        if np.isnan(iou):
            assert ours is None, name
        else:
            assert ours == pytest.approx(iou, abs=1e-12), name
    assert doc["miou"] == pytest.approx(np.nanmean(list(evaluated_classes.values())), abs=1e-12)


def test_predict_keeps_the_tree_and_writes_colour_and_multilabel_views(checkpoint, small_world, tmp_path):
    src = small_world / "cityscapes" / "leftImg8bit" / "val"
    res = run_cli("predict", "--checkpoint", str(checkpoint), "--label-space", "cityscapes", "--colour", "--multilabel",
                  "--threshold", "0.0001", "--out", str(tmp_path / "p"), str(src), "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    images = sorted(p for p in src.rglob("*.png"))
    assert data["images"] == len(images)
    for img in images:
        rel = img.relative_to(src).with_suffix(".png")
        base = tmp_path / "p" / rel
        colour = base.with_name(base.stem + "_colour.png")
        multi = base.with_name(base.stem + "_multilabel.png")
        w, h = Image.open(img).size
        assert Image.open(colour).mode == "RGB" and Image.open(colour).size == (w, h)
        mw, mh = Image.open(multi).size
        assert mw == w and mh > h  # the picture plus its legend
    assert data["outside_classes"]  # at a very low threshold some class outside Cityscapes shows up
    assert not set(data["outside_classes"]) & {"road", "car", "rider", "sky"}  # Cityscapes' own never count as outside


def test_multilabel_override_takes_the_best_outside_class_above_threshold():
    import torch

    from uniseg.engine.predict import multilabel_override

    logits = torch.full((1, 4, 1, 3), -10.0)
    logits[0, 0] = torch.tensor([[5.0, 5.0, 5.0]])  # an inside class, always high
    logits[0, 2, 0, 1] = 2.0  # outside class 2 above 0.5 at pixel 1
    logits[0, 3, 0, 1] = 1.0  # outside class 3 lower there
    logits[0, 3, 0, 2] = -0.5  # below 0.5 at pixel 2
    mask, cls = multilabel_override(logits, torch.tensor([0, 1]), "sigmoid", 0.5)
    assert mask[0].tolist() == [False, True, False] and int(cls[0, 1]) == 2
    mask, _ = multilabel_override(logits, torch.tensor([0, 1]), "softmax", 0.5)
    assert not bool(mask.any())  # softmax: class 0 dominates every pixel


def test_predict_in_the_union_and_bad_inputs(checkpoint, small_world, tmp_path):
    img = next((small_world / "kitti").rglob("*.png"))
    res = run_cli("predict", "--checkpoint", str(checkpoint), "--label-space", "union", "--out", str(tmp_path), str(img))
    assert res.returncode == 0, res.stderr
    pred = np.asarray(Image.open(tmp_path / img.name))
    assert pred.max() < 70
    not_ckpt = tmp_path / "weights.pt"
    not_ckpt.write_bytes(b"not a checkpoint")
    res = run_cli("predict", "--checkpoint", str(not_ckpt), "--label-space", "kitti", "--out", str(tmp_path / "x"), str(img))
    assert res.returncode == 2 and "not a checkpoint (torch.save writes" in res.stderr and res.stderr.count("\n") == 1
    res = run_cli("eval", "--checkpoint", str(checkpoint), "--datasets", f"bdd={small_world / 'kitti'}")
    assert res.returncode == 2 and res.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def cityscapes_cache(checkpoint, small_world, tmp_path_factory):
    """A lossless, native-size prepare cache of Cityscapes for the checkpoint's union."""
    from uniseg.data import prepare_cache
    from uniseg.engine.checkpoint import load_trained
    from uniseg.labelspaces import default_registry

    out = tmp_path_factory.mktemp("cache") / "cityscapes"
    union = load_trained(checkpoint).union
    prepare_cache(union, default_registry().get("cityscapes"), small_world / "cityscapes", out, short_side=0, image_format="png")
    return out


def test_validation_on_a_prepare_cache_scores_as_the_raw_dataset(checkpoint, cityscapes_cache, small_world, registry):
    """A cache holds unified ids; validation maps them back to Cityscapes' classes (``label_map``)."""
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.evaluate import evaluate_set
    from uniseg.engine.inputs import eval_set

    trained = load_trained(checkpoint)
    raw = evaluate_set(trained.model, eval_set("cityscapes", small_world / "cityscapes", trained.union, registry, "val"), device=torch.device("cpu"))
    cached = evaluate_set(trained.model, eval_set("cityscapes", cityscapes_cache, trained.union, registry, "val"), device=torch.device("cpu"))
    assert raw.confusion.sum() > 0 and np.array_equal(raw.confusion, cached.confusion)
    assert raw.miou == cached.miou


def _bad_input_cases(small_world, cache, tmp_path):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    img = str(next((small_world / "kitti").rglob("*.png")))
    cs = f"cityscapes={small_world / 'cityscapes'}"
    return {
        "eval --out a file": (["eval", "--datasets", cs, "--out", str(a_file)], "is a file, not a folder"),
        "eval a dataset twice": (["eval", "--datasets", cs, cs], "twice"),
        "eval a prepare cache": (["eval", "--datasets", f"cityscapes={cache}"], "give its raw root"),
        "eval a split that is not there": (["eval", "--datasets", cs, "--split", "test"], "no labelled split 'test'"),
        "predict --out a file": (["predict", "--label-space", "kitti", "--out", str(a_file), img], "is a file, not a folder"),
        "predict an unknown label space": (["predict", "--label-space", "kitty", "--out", str(tmp_path / "p"), img], "'union'"),
    }


@pytest.mark.parametrize("case", ["eval --out a file", "eval a dataset twice", "eval a prepare cache", "eval a split that is not there",
                                  "predict --out a file", "predict an unknown label space"])
def test_eval_and_predict_refuse_bad_input_in_one_line(case, checkpoint, cityscapes_cache, small_world, tmp_path, capsys):
    args, message = _bad_input_cases(small_world, cityscapes_cache, tmp_path)[case]
    res = cli(capsys, args[0], "--checkpoint", str(checkpoint), *args[1:])
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
