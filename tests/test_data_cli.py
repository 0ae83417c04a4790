"""``uniseg data check | prepare | synth`` as a user runs them: output, exit codes, one-line errors."""

from __future__ import annotations

import json

from PIL import Image

import fixtures_layouts as fx
from conftest import run_cli, run_python


def _one_line_error(res) -> str:
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_cli_module_does_not_import_torch():
    code = "import sys, uniseg.cli.main, uniseg.cli.data; assert 'torch' not in sys.modules, 'torch imported'"
    res = run_python(code)
    assert res.returncode == 0, res.stderr


def test_check_sound_dataset_table_and_json(tmp_path):
    fx.make_cityscapes(tmp_path)
    res = run_cli("data", "check", "cityscapes", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "gtFine" in res.stdout and "ok" in res.stdout and res.stderr == ""
    data = json.loads(run_cli("data", "check", "cityscapes", str(tmp_path), "--format", "json").stdout)
    assert data["ok"] is True and data["layout"] == "gtFine" and data["labels"] == "labelIds"
    assert {s["split"]: s["paired"] for s in data["splits"]} == {"train": 2, "val": 1, "test": 0}


def test_check_wrong_root_exits_2_with_one_line(tmp_path):
    fx.make_bdd(tmp_path / "bdd")
    line = _one_line_error(run_cli("data", "check", "bdd", str(tmp_path)))
    assert "no BDD100K layout found" in line and "images/10k/train/<id>.jpg" in line and "did you mean" in line
    line = _one_line_error(run_cli("data", "check", "cityscapes", str(tmp_path / "nope")))
    assert "no such folder" in line
    line = _one_line_error(run_cli("data", "check", "citiscapes", str(tmp_path)))
    assert "did you mean 'cityscapes'" in line


def test_check_reports_problems_then_exits_2(tmp_path):
    built = fx.make_kitti(tmp_path, n=3, test=0)
    (tmp_path / built.labels[0]).unlink()
    Image.fromarray(fx.stray(fx.stripes(fx.KITTI_VALUES), 250), mode="L").save(tmp_path / built.labels[1])
    res = run_cli("data", "check", "kitti", str(tmp_path), "--sample", "0")
    line = _one_line_error(res)
    assert "1 images without labels" in line and "1 unknown raw values: 250" in line
    assert "000000_10.png" in res.stdout and "250" in res.stdout  # the full report came first
    res = run_cli("data", "check", "kitti", str(tmp_path), "--format", "json")
    _one_line_error(res)
    data = json.loads(res.stdout)
    assert data["ok"] is False and data["splits"][0]["missing_labels"] == [built.images[0]]
    assert [u["value"] for u in data["unknown"]] == [250]


def test_prepare_resume_and_refusal(tmp_path):
    fx.make_camvid_segnet(tmp_path / "raw")
    out = tmp_path / "cache"
    args = ["data", "prepare", "--union", "camvid-segnet,kitti", "--dataset", "camvid-segnet", "--root", str(tmp_path / "raw"), "--out", str(out), "--workers", "1"]
    res = run_cli(*args, "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert (data["done"], data["skipped"], data["total"]) == (4, 0, 4)
    assert (out / "manifest.json").is_file()
    res = run_cli(*args)
    assert res.returncode == 0 and "4 already done" in res.stdout
    args[args.index("--union") + 1] = "camvid-segnet,wilddash"
    line = _one_line_error(run_cli(*args))
    assert "cache made for union" in line


def test_synth_then_check_every_dataset(tmp_path):
    out = tmp_path / "world"
    res = run_cli("data", "synth", "--out", str(out), "--images", "3", "--size", "24x48", "--seed", "2", "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert (out / "planted_relations.yaml").is_file() and data["planted_relations"] == str(out / "planted_relations.yaml")
    assert set(data["datasets"]) >= {"cityscapes", "bdd", "idd", "mapillary"}
    for name in data["datasets"]:
        res = run_cli("data", "check", name, str(out / name), "--format", "json")
        assert res.returncode == 0, (name, res.stderr)
        assert json.loads(res.stdout)["ok"] is True
    line = _one_line_error(run_cli("data", "synth", "--out", str(out), "--size", "big"))
    assert "--size 'big' is not HxW" in line
