"""Outputs never replace what uniseg did not write, and a folder holds one run's outputs (the issue
"nothing lost, nothing silently wrong", parts 5 and 6): a world made with other settings, a
dataset's ground truth under predict's --out, a file remap did not write, two outputs with one
name, two checkpoints' scores in one eval folder, predictions of two unions in one folder, two
unions' npy exports in one folder. Each is
refused before anything is written, and ``--overwrite`` lets it go ahead."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from inprocess import cli
from engine_fixtures import small_world, tiny_config  # noqa: F401  (fixture)


def _bytes(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_refusal(res) -> str:
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def checkpoints(small_world, tmp_path_factory):
    """Two tiny checkpoints of different unions: cityscapes + idd + mapillary, and cityscapes + idd."""
    from uniseg.engine.config import DatasetSpec
    from uniseg.engine.trainer import train

    base = tmp_path_factory.mktemp("ck")
    three = train(tiny_config(small_world, iterations=1, val_split="none"), base / "three").last
    two = train(tiny_config(small_world, iterations=1, val_split="none",
                            datasets=[DatasetSpec(n, str(small_world / n)) for n in ("cityscapes", "idd")]), base / "two").last
    return three, two


# -- part 5: a world overwritten without a word -----------------------------------------------


def test_synth_refuses_a_world_made_with_other_settings_unless_overwrite(tmp_path, capsys):
    world = tmp_path / "world"
    args = ["data", "synth", "--out", str(world), "--images", "2", "--size", "32x64", "--dataset", "kitti", "--dataset", "camvid"]
    assert cli(capsys, *args).returncode == 0
    before = _bytes(world)
    line = _one_line_refusal(cli(capsys, *args, "--seed", "3"))
    assert str(world) in line and "seed 0" in line and "seed 3" in line and "--overwrite" in line, line
    assert _bytes(world) == before  # nothing touched
    line = _one_line_refusal(cli(capsys, *args[:-2], "--seed", "3"))  # one dataset of it, other settings: refused too
    assert "seed 0" in line and _bytes(world) == before
    assert cli(capsys, *args).returncode == 0 and _bytes(world) == before  # the same settings: the same world, fine
    res = cli(capsys, *args[:-2], "--seed", "3", "--overwrite")  # kitti alone, seed 3: the old world goes whole
    assert res.returncode == 0, res.stderr
    doc = yaml.safe_load((world / "planted_relations.yaml").read_text())
    assert doc["seed"] == 3 and list(doc["datasets"]) == ["kitti"] and not (world / "camvid").exists()


# -- part 6: outputs never replace what uniseg did not write ----------------------------------


def test_predict_refuses_to_replace_ground_truth_it_did_not_write(checkpoints, small_world, tmp_path, capsys):
    kitti = tmp_path / "kitti"
    shutil.copytree(small_world / "kitti", kitti)
    truth = kitti / "training" / "semantic"
    before = _bytes(truth)
    args = ["predict", "--checkpoint", str(checkpoints[0]), "--label-space", "kitti", "--out", str(truth), str(kitti / "training" / "image_2")]
    line = _one_line_refusal(cli(capsys, *args))
    assert str(truth) in line and "uniseg did not write" in line and "--overwrite" in line, line
    assert _bytes(truth) == before  # every ground-truth label is still there, byte for byte
    res = cli(capsys, *args, "--overwrite")
    assert res.returncode == 0, res.stderr
    assert _bytes(truth) != before
    again = cli(capsys, *args)  # its own predictions: a rerun replaces them without --overwrite
    assert again.returncode == 0, again.stderr


def test_remap_refuses_to_replace_a_file_it_did_not_write(small_world, tmp_path, capsys):
    out = tmp_path / "out"
    src = small_world / "cityscapes" / "gtFine"
    first = sorted(src.rglob("*_labelIds.png"))[0]
    mine = out / first.relative_to(src)
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own notes")
    args = ["labels", "remap", "-u", "cityscapes,idd", "--dataset", "cityscapes", "--workers", "1", "--out", str(out), str(src)]
    line = _one_line_refusal(cli(capsys, *args))
    assert str(mine) in line and "uniseg did not write" in line and "--overwrite" in line, line
    assert mine.read_bytes() == b"my own notes" and len([p for p in out.rglob("*.png")]) == 1
    assert cli(capsys, *args, "--overwrite").returncode == 0
    assert np.asarray(Image.open(mine)).ndim == 2
    res = cli(capsys, *args)  # a rerun resumes over its own outputs
    assert res.returncode == 0, res.stderr


def test_an_npy_export_folder_holds_one_unions_export_and_refuses_files_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "npy"
    export = ["labels", "export", "--to", "npy", "--out", str(out)]
    assert cli(capsys, *export, "-u", "cityscapes,idd").returncode == 0
    first = _bytes(out)
    assert cli(capsys, *export, "-u", "cityscapes,idd").returncode == 0  # the same export again: allowed
    line = _one_line_refusal(cli(capsys, *export, "-u", "kitti,camvid"))
    assert str(out) in line and "another run" in line and "--overwrite" in line, line
    assert _bytes(out) == first  # nothing of the other union's export mixed in
    assert cli(capsys, *export, "-u", "kitti,camvid", "--overwrite").returncode == 0
    names = {p.name for p in out.iterdir()}
    assert "cityscapes.labelIds.npy" not in names and "kitti.labelIds.npy" in names, names  # no stale tables left beside
    index = json.loads((out / "index.json").read_text())
    assert {n for n in names if n.endswith(".npy")} == {*index["luts"], "null_mask.npy", "palette.npy"}

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.json").write_text("my own index")
    line = _one_line_refusal(cli(capsys, "labels", "export", "-u", "cityscapes,idd", "--to", "npy", "--out", str(mine)))
    assert str(mine / "index.json") in line and "uniseg did not write" in line, line
    assert (mine / "index.json").read_text() == "my own index"


def test_remap_resumes_over_outputs_a_killed_run_wrote_before_recording_them(small_world, tmp_path, capsys):
    """Outputs are claimed before they are written: a run killed between a write and its record
    leaves files the next run may replace."""
    from uniseg.unify.remap import MARKER

    out = tmp_path / "out"
    args = ["labels", "remap", "-u", "cityscapes,idd", "--dataset", "cityscapes", "--workers", "1", "--out", str(out),
            str(small_world / "cityscapes" / "gtFine")]
    assert cli(capsys, *args).returncode == 0
    doc = json.loads((out / MARKER).read_text())
    doc["files"] = {}  # as if killed (SIGKILL) before the record was saved
    (out / MARKER).write_text(json.dumps(doc))
    res = cli(capsys, *args, "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["done"] == len(doc["outputs"])


def test_predict_refuses_two_outputs_with_one_name_before_writing(checkpoints, small_world, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    image = next((small_world / "kitti" / "training" / "image_2").glob("*.png"))
    shutil.copy(image, photos / "a.png")
    shutil.copy(image, photos / "a_colour.png")
    out = tmp_path / "out"
    res = cli(capsys, "predict", "--checkpoint", str(checkpoints[0]), "-l", "kitti", "--colour", "--out", str(out), str(photos))
    line = _one_line_refusal(res)
    assert "a_colour.png" in line and "colour view" in line and "a.png" in line, line
    assert not out.exists()  # refused before anything was written


def test_predict_in_unified_indices_writes_its_union_and_refuses_another_unions_run(checkpoints, small_world, tmp_path, capsys):
    from uniseg.unify.artifact import read_fingerprint

    out = tmp_path / "out"
    photos = small_world / "kitti" / "training" / "image_2"
    three, two = checkpoints
    assert cli(capsys, "predict", "--checkpoint", str(three), "-l", "union", "--out", str(out), str(photos)).returncode == 0
    fp = torch_doc(three)["union_fingerprint"]
    assert read_fingerprint(out / "union.yaml") == fp
    before = _bytes(out)
    line = _one_line_refusal(cli(capsys, "predict", "--checkpoint", str(two), "-l", "union", "--out", str(out), str(photos)))
    assert fp in line and torch_doc(two)["union_fingerprint"] in line and "--overwrite" in line, line
    assert _bytes(out) == before
    res = cli(capsys, "predict", "--checkpoint", str(two), "-l", "union", "--out", str(out), str(photos), "--overwrite")
    assert res.returncode == 0, res.stderr
    assert read_fingerprint(out / "union.yaml") == torch_doc(two)["union_fingerprint"]


def torch_doc(path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _summary(folder) -> list[dict]:
    with open(folder / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_an_eval_folder_holds_one_checkpoints_scores(checkpoints, small_world, tmp_path, capsys):
    out = tmp_path / "eval"
    three, two = checkpoints

    def evaluate(ck, name, *extra):
        return cli(capsys, "eval", "--checkpoint", str(ck), "--datasets", f"{name}={small_world / name}", "--workers", "0",
                       "--out", str(out), *extra)

    assert evaluate(three, "kitti").returncode == 0
    assert evaluate(three, "camvid").returncode == 0  # the same checkpoint: the folder grows, the summary too
    assert {r["dataset"] for r in _summary(out)} == {"kitti", "camvid"}
    before = _bytes(out)
    line = _one_line_refusal(evaluate(two, "camvid"))
    assert str(two) in line and str(three) in line and "--overwrite" in line, line
    assert _bytes(out) == before  # refused before scoring: nothing of the other checkpoint's
    res = evaluate(two, "camvid", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert not (out / "kitti.json").exists()  # the other checkpoint's scores went: no mix
    rows = _summary(out)
    assert [r["dataset"] for r in rows] == ["camvid"] and rows[0]["checkpoint"] == str(two)
    assert json.loads((out / "camvid.json").read_text())["checkpoint"] == str(two)


def test_eval_refuses_a_file_it_did_not_write(checkpoints, small_world, tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "kitti.json").write_text('{"mine": true}')
    res = cli(capsys, "eval", "--checkpoint", str(checkpoints[0]), "--datasets", f"kitti={small_world / 'kitti'}", "--workers", "0",
                  "--out", str(out))
    line = _one_line_refusal(res)
    assert str(out / "kitti.json") in line and "uniseg did not write" in line, line
    assert json.loads((out / "kitti.json").read_text()) == {"mine": True}
