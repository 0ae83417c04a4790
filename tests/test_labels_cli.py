"""``uniseg labels`` as a user runs it: JSON for scripts, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import run_cli, run_python


def test_list_json(authors):
    res = run_cli("labels", "list", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["mapillary"]["classes"] == 65 and rows["idd"]["encodings"] == ["level3Ids", "id"]
    assert set(rows) >= {"cityscapes", "bdd", "idd", "mapillary", "kitti", "wilddash", "camvid", "camvid-segnet"}


def test_list_table_mentions_every_space():
    res = run_cli("labels", "list")
    assert res.returncode == 0 and "camvid-segnet" in res.stdout and "Mapillary" in res.stdout


def run_at(columns: int, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``run_cli`` in a terminal ``columns`` wide (stdout is still a pipe unless FORCE_COLOR says otherwise)."""
    full_env = dict(os.environ, **(env or {}), COLUMNS=str(columns))
    full_env.pop("UNISEG_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "uniseg.cli.main", *args], capture_output=True, text=True, env=full_env)


def test_list_table_fits_80_columns_one_or_two_lines_per_space():
    res = run_at(80, "labels", "list")
    lines = res.stdout.splitlines()
    assert res.returncode == 0 and max(len(line) for line in lines) <= 80
    assert len(lines) <= 20, res.stdout  # 8 spaces, title and header
    for name, count in (("cityscapes", "19"), ("idd", "26"), ("mapillary", "65"), ("camvid-segnet", "11")):
        assert any(line.split()[:2] == [name, count] for line in lines if line.strip()), name


# The union of Cityscapes, BDD, IDD and Mapillary: facts of the four label spaces. Mapillary has
# no 'rider' (it splits riders into Bicyclist / Motorcyclist / Other Rider), only IDD has an
# autorickshaw, and 'train' is a Cityscapes and BDD class (Mapillary files trains under 'On Rails').
FOUR = ("cityscapes", "bdd", "idd", "mapillary")


def _summary_rows(stdout: str) -> dict[str, str]:
    """``in`` label -> the classes text of that row (continuation lines joined)."""
    rows: dict[str, str] = {}
    key = None
    for line in stdout.splitlines():
        m = re.match(r"^  (\S.*?)\s{2,}(\d+)   (.*)$", line)
        if m:
            key = m.group(1).strip()
            rows[key] = m.group(3).strip()
        elif key is not None and line.startswith(" " * 10) and line.strip():
            rows[key] += " " + line.strip()
        elif not line.strip():
            key = None
    return rows


def test_union_default_is_a_summary_that_fits_a_screen():
    res = run_at(80, "labels", "union", *FOUR)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) <= 40, res.stdout  # the full table takes 100+ lines at 80 columns
    rows = _summary_rows(res.stdout)
    assert "rider" in rows["all but mapillary"].split(", ")
    assert rows["idd"].startswith("autorickshaw")
    assert "train" in rows["cityscapes + bdd"].split(", ")
    assert {"road", "car", "person"} <= set(rows["all"].split(", "))
    assert "--all" in res.stdout


def test_union_summary_names_every_class_once(authors):
    res = run_at(200, "labels", "union", *FOUR)
    named = [n for text in _summary_rows(res.stdout).values() for n in text.split(", ")]
    assert sorted(named) == sorted(authors["unions"]["city_idd_bdd_mapillary"])


def test_union_all_prints_colour_numbers_when_not_a_terminal():
    res = run_at(200, "labels", "union", *FOUR, "--all")
    road = next(line for line in res.stdout.splitlines() if re.match(r"^\s+\d+\s+road\s", line))
    assert "128,64,128" in road  # the Cityscapes road colour (labels.py), kept by the union
    assert len([line for line in res.stdout.splitlines() if re.match(r"^\s+\d+\s", line)]) == 70


def test_colour_swatches_on_a_colour_terminal():
    res = run_at(200, "labels", "show", "cityscapes", env={"FORCE_COLOR": "1", "COLORTERM": "truecolor", "TERM": "xterm-256color"})
    assert "\x1b[48;2;128;64;128m" in res.stdout  # road's background block
    assert "128,64,128" in res.stdout


def test_show_json_and_yaml():
    data = json.loads(run_cli("labels", "show", "idd", "--format", "json").stdout)
    parking = data["classes"][1]
    assert parking["name"] == "drivable fallback" and parking["unified"] == "parking"
    assert parking["ids"] == {"level3Ids": [1], "id": [1, 2]}
    assert data["encodings"]["id"]["void"] == [35, 36, 37, 38, 39]
    ydata = yaml.safe_load(run_cli("labels", "show", "camvid", "--encoding", "rgb", "--format", "yaml").stdout)
    assert len(ydata["values"]) == 32 and ydata["values"][0] == {"raw": [64, 128, 64], "name": "Animal", "class": None}


def test_union_json(authors):
    res = run_cli("labels", "union", "mapillary", "idd", "bdd", "cityscapes", "--format", "json")
    data = json.loads(res.stdout)
    assert [c["name"] for c in data["classes"]] == authors["unions"]["city_idd_bdd_mapillary"]
    assert data["num_classes"] == 70 and data["datasets"] == ["mapillary", "idd", "bdd", "cityscapes"]


def test_diff_json():
    data = json.loads(run_cli("labels", "diff", "cityscapes", "mapillary", "--format", "json").stdout)
    assert {r["unified"] for r in data["only_a"]} == {"rider", "train"}
    assert len(data["shared"]) == 17
    kinds = {(c["kind"], c.get("unified")) for c in data["collisions"]}
    assert ("merged under another name", "traffic sign") in kinds


def test_export_cli(tmp_path):
    res = run_cli("labels", "export", "--union", "cityscapes,idd", "--to", "hf", "--out", str(tmp_path / "l.json"), "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "l.json").read_text())["num_labels"] == 28  # BDD has the Cityscapes classes, so C+I = C+I+B = 28


@pytest.mark.parametrize(
    "args,needle",
    [
        (["labels", "show", "citscapes"], "unknown label space 'citscapes' (did you mean 'cityscapes'?"),
        (["labels", "union", "cityscapes", "bdx"], "unknown label space 'bdx' (did you mean 'bdd'?"),
        (["labels", "show", "cityscapes", "--encoding", "trainIdz"], "has no encoding 'trainIdz'; choose one of: labelIds, labelTrainIds"),
        (["labels", "export", "--union", "cityscapes", "--to", "xml", "--out", "x"], "unknown export format 'xml'"),
        (["labels", "remap", "--dataset", "cityscapes", "--union", "cityscapes", "/nonexistent/x.png", "--out", "o"], "/nonexistent/x.png: no such file or folder"),
        (["labels", "union", "cityscapes", "--registry", "/nonexistent"], "--registry /nonexistent: not a folder"),
        (["labels", "frobnicate"], "No such command"),
    ],
)
def test_errors_are_one_line_exit_2(args, needle, tmp_path):
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert needle in res.stderr


def test_debug_shows_traceback():
    res = run_cli("--debug", "labels", "show", "citscapes")
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_labels_commands_do_not_import_torch():
    code = "import sys; from uniseg.cli.main import main\ntry:\n main(['labels','union','cityscapes','bdd','idd','mapillary','--format','json'])\nexcept SystemExit: pass\nassert 'torch' not in sys.modules, 'torch imported'"
    res = run_python(code)
    assert res.returncode == 0, res.stderr
