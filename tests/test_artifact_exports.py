"""The union artifact folder and every export format, parsed back."""

from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.unify import build_lut
from uniseg.unify.artifact import load_union, resolve_union, write_union_artifact
from uniseg.unify.exports import EXPORTERS, export

NAMES = ["cityscapes", "bdd", "idd", "mapillary"]


@pytest.fixture(scope="module")
def cibm(registry):
    return resolve_union(NAMES, registry)


def test_artifact_contract(tmp_path, cibm, authors):
    union, spaces = cibm
    write_union_artifact(union, list(spaces.values()), tmp_path)
    doc = yaml.safe_load((tmp_path / "union.yaml").read_text())
    assert doc["fingerprint"] == union.fingerprint
    assert [c["name"] for c in doc["classes"]] == authors["unions"]["city_idd_bdd_mapillary"]
    assert doc["classes"][0]["members"] == {"idd": ["autorickshaw"]}
    expected = {f"{d}.{e}" for d in NAMES for e in spaces[d].encodings}
    assert {p.name[: -len(".csv")] for p in (tmp_path / "remap").glob("*.csv")} == expected
    for stem in expected:
        df = pd.read_csv(tmp_path / "remap" / f"{stem}.csv", keep_default_na=False)
        assert list(df.columns) == ["raw_id", "raw_name", "unified_index", "unified_name"]
        lut = np.load(tmp_path / "remap" / f"{stem}.npy")
        assert lut.dtype == np.uint8 and lut.shape == (256,)
        assert (lut[df.raw_id.to_numpy()] == df.unified_index.to_numpy()).all()
        listed = np.zeros(256, bool)
        listed[df.raw_id.to_numpy()] = True
        assert (lut[~listed] == 255).all()  # unknown -> ignore
        names = ["" if u == 255 else doc["classes"][u]["name"] for u in df.unified_index]
        assert names == df.unified_name.tolist()
    mv = pd.read_csv(tmp_path / "remap" / "mapillary.ids.csv", keep_default_na=False).set_index("raw_id")
    assert mv.loc[20, "unified_name"] == "bicyclist" and mv.loc[65, "unified_index"] == 255


def test_artifact_is_deterministic_and_loads(tmp_path, cibm, registry):
    union, spaces = cibm
    write_union_artifact(union, list(spaces.values()), tmp_path / "a")
    union2, spaces2 = resolve_union(list(reversed(NAMES)), registry)
    write_union_artifact(union2, [spaces2[n] for n in NAMES], tmp_path / "b")
    for f in sorted((tmp_path / "a").rglob("*")):
        if f.is_file() and f.name != "union.yaml":
            assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f
    write_union_artifact(union, list(spaces.values()), tmp_path / "c")
    assert (tmp_path / "a/union.yaml").read_bytes() == (tmp_path / "c/union.yaml").read_bytes()
    loaded, lspaces = resolve_union(str(tmp_path / "a"), registry)
    assert loaded.fingerprint == union.fingerprint and loaded.datasets == tuple(NAMES) and set(lspaces) == set(NAMES)


def test_folder_of_another_union_refused(tmp_path, cibm, registry):
    union, spaces = cibm
    write_union_artifact(union, list(spaces.values()), tmp_path)
    other, ospaces = resolve_union(["cityscapes", "idd"], registry)
    with pytest.raises(FingerprintMismatch, match=f"holds union {union.fingerprint}"):
        write_union_artifact(other, list(ospaces.values()), tmp_path)


def test_edited_union_refused(tmp_path, cibm):
    union, spaces = cibm
    write_union_artifact(union, list(spaces.values()), tmp_path)
    text = (tmp_path / "union.yaml").read_text().replace("name: autorickshaw", "name: tuk-tuk")
    (tmp_path / "union.yaml").write_text(text)
    with pytest.raises(FingerprintMismatch, match="was edited"):
        load_union(tmp_path)


def test_union_whose_registry_changed_is_refused(tmp_path, cibm):
    union, spaces = cibm
    write_union_artifact(union, list(spaces.values()), tmp_path / "u")
    user = tmp_path / "reg"
    user.mkdir()
    src = spaces["bdd"].source.read_text().replace("- {name: terrain,", "- {name: grass, unified: terrain,")
    src = src.replace("class: terrain}", "class: grass}")
    (user / "bdd.yaml").write_text(src)
    from uniseg.labelspaces import Registry

    with pytest.raises(UnisegError, match="differs from the union"):
        resolve_union(str(tmp_path / "u"), Registry.from_dirs([user], use_env=False))


def test_missing_union_folder(tmp_path, registry):
    with pytest.raises(UnisegError, match="no such folder"):
        resolve_union(str(tmp_path / "nope") + "/", registry)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnisegError, match="no union.yaml in this folder"):
        resolve_union(str(tmp_path / "empty"), registry)


def test_dataset_folder_named_like_a_dataset_is_not_a_union(tmp_path, registry, monkeypatch):
    """Users keep dataset roots such as ./cityscapes next to their commands: names still win."""
    (tmp_path / "cityscapes").mkdir()
    monkeypatch.chdir(tmp_path)
    union, spaces = resolve_union("cityscapes", registry)
    assert union.num_classes == 19 and list(spaces) == ["cityscapes"]


def _expected_maps(union, spaces):
    out = {}
    for s in spaces.values():
        for e in s.encodings.values():
            lut = build_lut(union, s, e)
            out[(s.name, e.name)] = {r.raw_id: r.unified_index for r in lut.rows}
    return out


def test_export_csv(tmp_path, cibm):
    union, spaces = cibm
    export(union, list(spaces.values()), "csv", tmp_path / "x.csv")
    df = pd.read_csv(tmp_path / "x.csv", keep_default_na=False)
    expected = _expected_maps(union, spaces)
    got = {}
    for row in df.itertuples():
        got.setdefault((row.dataset, row.encoding), {})[int(row.raw_id)] = row.unified_index
    assert got == expected
    assert set(df.fingerprint) == {union.fingerprint}


def test_export_json(tmp_path, cibm):
    union, spaces = cibm
    export(union, list(spaces.values()), "json", tmp_path / "x.json")
    doc = json.loads((tmp_path / "x.json").read_text())
    assert doc["fingerprint"] == union.fingerprint and [c["name"] for c in doc["classes"]] == union.names
    expected = _expected_maps(union, spaces)
    assert {(d, e): {int(k): v for k, v in m.items()} for d, encs in doc["remap"].items() for e, m in encs.items()} == expected


def test_export_npy(tmp_path, cibm):
    union, spaces = cibm
    export(union, list(spaces.values()), "npy", tmp_path / "npy")
    index = json.loads((tmp_path / "npy/index.json").read_text())
    assert index["classes"] == union.names
    mask = np.load(tmp_path / "npy/null_mask.npy")
    assert mask.shape == (4, 70) and mask.sum(1).tolist() == [19, 19, 26, 65]
    assert np.load(tmp_path / "npy/palette.npy").shape == (70, 3)
    for (d, e), m in _expected_maps(union, spaces).items():
        lut = np.load(tmp_path / f"npy/{d}.{e}.npy")
        assert {k: int(lut[k]) for k in m} == m


def test_export_mseg_tsv(tmp_path, cibm):
    union, spaces = cibm
    export(union, list(spaces.values()), "mseg-tsv", tmp_path / "x.tsv")
    df = pd.read_csv(tmp_path / "x.tsv", sep="\t", keep_default_na=False)
    assert list(df.columns) == ["universal", *NAMES]
    assert df.universal.tolist() == union.names
    row = df.set_index("universal").loc["parking"]
    assert row.idd == "drivable fallback" and row.mapillary == "Parking" and row.cityscapes == ""


def test_export_mmseg(tmp_path, cibm):
    union, spaces = cibm
    export(union, list(spaces.values()), "mmseg", tmp_path / "cfg.py")
    tree = ast.parse((tmp_path / "cfg.py").read_text())
    env = {}
    exec(compile(tree, "cfg.py", "exec"), {"dict": dict}, env)
    assert list(env["metainfo"]["classes"]) == union.names
    assert [tuple(c) for c in env["metainfo"]["palette"]] == [c.colour for c in union.classes]
    expected = _expected_maps(union, spaces)
    assert env["label_maps"]["idd"]["id"] == expected[("idd", "id")]
    assert env["uniseg_fingerprint"] == union.fingerprint


def test_export_detectron2(tmp_path, cibm):
    union, spaces = cibm
    export(union, list(spaces.values()), "detectron2", tmp_path / "meta.json")
    doc = json.loads((tmp_path / "meta.json").read_text())
    assert doc["stuff_classes"] == union.names and len(doc["stuff_colors"]) == 70 and doc["ignore_label"] == 255
    m = doc["datasets"]["cityscapes"]["labelIds"]["stuff_dataset_id_to_contiguous_id"]
    assert m["7"] == union.index_of("road") and "0" not in m  # void ids are left out: detectron2 fills ignore_label


def test_export_hf(tmp_path, cibm):
    union, spaces = cibm
    export(union, list(spaces.values()), "hf", tmp_path / "labels.json")
    doc = json.loads((tmp_path / "labels.json").read_text())
    assert doc["id2label"]["0"] == "autorickshaw" and doc["label2id"]["wheeled slow"] == 69 and doc["num_labels"] == 70


def test_export_rejects_unknown_format_and_wrong_out(tmp_path, cibm):
    union, spaces = cibm
    assert set(EXPORTERS) == {"csv", "json", "npy", "mseg-tsv", "mmseg", "detectron2", "hf"}
    with pytest.raises(UnisegError, match="did you mean 'mmseg'"):
        export(union, list(spaces.values()), "mmsg", tmp_path / "x")
    with pytest.raises(UnisegError, match="is a folder"):
        export(union, list(spaces.values()), "json", tmp_path)
