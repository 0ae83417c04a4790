"""Bad registry files fail with file, line and key; user folders add and override label spaces."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from uniseg.errors import ConfigError, UnisegError
from uniseg.labelspaces import Registry, load_labelspace

GOOD = """\
name: toy
title: Toy
classes:
  - {name: road, colour: [128, 64, 128]}
  - {name: Car, unified: car, colour: [0, 0, 142]}
encodings:
  ids:
    values:
      - {id: 0, name: road, class: road}
      - {id: 1, name: car, class: Car}
      - {id: 9, name: unlabeled, class: null}
"""


def write(tmp_path: Path, text: str, name: str = "toy") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_file_loads(tmp_path):
    space = load_labelspace(write(tmp_path, GOOD))
    assert [c.unified for c in space.classes] == ["road", "car"]
    assert space.encodings["ids"].void_values == [9]
    assert list(space.encodings["ids"].class_lut()[:3]) == [0, 1, 255]


@pytest.mark.parametrize(
    "old,new,line,needle",
    [
        ("title: Toy", "titel: Toy", 2, "unknown key (did you mean 'title'?)"),
        ("  - {name: Car, unified: car, colour: [0, 0, 142]}", "  - {name: road, colour: [0, 0, 142]}", 5, "duplicate class name 'road'"),
        ("  - {name: Car, unified: car, colour: [0, 0, 142]}", "  - {name: Car, unified: road, colour: [0, 0, 142]}", 5, "duplicate unified name 'road'"),
        ("colour: [0, 0, 142]", "colour: [0, 0, 300]", 5, "expected [r, g, b] with 0-255 integers"),
        ("colour: [0, 0, 142]", "colour: red", 5, "expected [r, g, b]"),
        ("{id: 1, name: car, class: Car}", "{id: 0, name: car, class: Car}", 10, "id 0 is listed twice"),
        ("{id: 9, name: unlabeled, class: null}", "{id: 256, name: unlabeled, class: null}", 11, "id 256 out of range 0-255"),
        ("{id: 1, name: car, class: Car}", "{id: 1, name: car, class: Cra}", 10, "unknown class 'Cra' (did you mean 'Car'?)"),
        ("{id: 1, name: car, class: Car}", "{id: one, name: car, class: Car}", 10, "expected an integer"),
        ("name: toy", "name: other", 1, "differs from the file name 'toy'"),
        ("{id: 1, name: car, class: Car}", "{id: 1, name: car, class: road}", 8, "classes with no raw value in this encoding: Car"),
        ("    values:", "    kind: pixels\n    values:", 8, "expected 'index' or 'rgb'"),
    ],
)
def test_invalid_files_name_file_line_key(tmp_path, old, new, line, needle):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_labelspace(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}"), msg
    assert needle in msg
    assert "\n" not in msg


def test_malformed_yaml_names_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  - {name: road, colour: [128, 64, 128]}", "  - {name: road, colour: [128, 64, 128]"))
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: invalid YAML"):
        load_labelspace(path)


def test_duplicate_yaml_key(tmp_path):
    path = write(tmp_path, GOOD.replace("title: Toy", "title: Toy\ntitle: Again"))
    with pytest.raises(ConfigError, match=rf"^{path}:3: title: duplicate key"):
        load_labelspace(path)


def test_colour_collision_in_rgb_encoding(tmp_path):
    text = GOOD.replace(
        """  ids:
    values:
      - {id: 0, name: road, class: road}
      - {id: 1, name: car, class: Car}
      - {id: 9, name: unlabeled, class: null}""",
        """  rgb:
    kind: rgb
    values:
      - {colour: [128, 64, 128], name: road, class: road}
      - {colour: [0, 0, 142], name: car, class: Car}
      - {colour: [128, 64, 128], name: lane, class: road}""",
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r":12: encodings.rgb.values\[2\].colour: colour \[128, 64, 128\] is listed twice"):
        load_labelspace(path)


def test_layout_must_name_known_encoding(tmp_path):
    text = GOOD + "layouts:\n  main:\n    image: img/{split}/{stem}.png\n    labels:\n      idz: lab/{split}/{stem}.png\n    splits:\n      train: {size: 3}\n"
    with pytest.raises(ConfigError, match=r"names encoding 'idz', which is not defined"):
        load_labelspace(write(tmp_path, text))
    text2 = text.replace("idz: lab/{split}/{stem}.png", "ids: lab/{split}/{other}.png")
    with pytest.raises(ConfigError, match=r"fields \['other'\] that the image pattern lacks"):
        load_labelspace(write(tmp_path, text2))


def test_user_registry_adds_and_overrides(tmp_path, monkeypatch):
    write(tmp_path, GOOD)
    override = GOOD.replace("name: toy", "name: bdd").replace("title: Toy", "title: My BDD")
    write(tmp_path, override, name="bdd")
    reg = Registry.from_dirs([tmp_path], use_env=False)
    assert "toy" in reg.names and reg.get("bdd").title == "My BDD" and reg.origins["bdd"] == str(tmp_path)
    assert reg.get("cityscapes").num_classes == 19  # built-ins remain
    monkeypatch.setenv("UNISEG_REGISTRY", str(tmp_path))
    assert Registry.from_dirs().get("toy").num_classes == 2


def test_unknown_name_suggests(registry):
    with pytest.raises(UnisegError, match=r"unknown label space 'mapilary' \(did you mean 'mapillary'"):
        registry.get("mapilary")


def test_missing_registry_folder(tmp_path):
    with pytest.raises(UnisegError, match=r"--registry .*nope: not a folder"):
        Registry.from_dirs([tmp_path / "nope"], use_env=False)


def test_bad_user_file_reported_by_cli(tmp_path):
    from conftest import run_cli

    write(tmp_path, GOOD.replace("colour: [0, 0, 142]", "color: [0, 0, 142]"))
    res = run_cli("labels", "show", "toy", "--registry", str(tmp_path))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "toy.yaml:5" in lines[0] and "unknown key (did you mean 'colour'?)" in lines[0]
