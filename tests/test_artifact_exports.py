"""The union artifact folder and every export format, parsed back."""

from __future__ import annotations

import importlib.util
import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
import yaml

from uniseg.cli.options import parse_union, union_source
from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.unify import build_lut
from uniseg.unify.artifact import load_union, open_union, write_union_artifact
from uniseg.unify.exports import EXPORTERS, export

from conftest import run_cli

NAMES = ["cityscapes", "bdd", "idd", "mapillary"]


@pytest.fixture(scope="module")
def cibm(registry):
    return open_union(NAMES, registry)


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
    union2, spaces2 = open_union(list(reversed(NAMES)), registry)
    write_union_artifact(union2, [spaces2[n] for n in NAMES], tmp_path / "b")
    for f in sorted((tmp_path / "a").rglob("*")):
        if f.is_file() and f.name != "union.yaml":
            assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f
    write_union_artifact(union, list(spaces.values()), tmp_path / "c")
    assert (tmp_path / "a/union.yaml").read_bytes() == (tmp_path / "c/union.yaml").read_bytes()
    loaded, lspaces = open_union(str(tmp_path / "a"), registry)
    assert loaded.fingerprint == union.fingerprint and loaded.datasets == tuple(NAMES) and set(lspaces) == set(NAMES)


def test_folder_of_another_union_refused(tmp_path, cibm, registry):
    union, spaces = cibm
    write_union_artifact(union, list(spaces.values()), tmp_path)
    other, ospaces = open_union(["cityscapes", "idd"], registry)
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
        open_union(str(tmp_path / "u"), Registry.from_dirs([user], use_env=False))


def test_missing_union_folder(tmp_path, registry):
    with pytest.raises(UnisegError, match="no such folder"):
        parse_union(str(tmp_path / "nope") + "/", registry)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnisegError, match="no union.yaml in this folder"):
        parse_union(str(tmp_path / "empty"), registry)
    with pytest.raises(UnisegError, match="no union.yaml here"):
        open_union(tmp_path / "empty", registry)


def test_union_argument_is_a_folder_or_names(tmp_path, registry, cibm):
    union, spaces = cibm
    write_union_artifact(union, list(spaces.values()), tmp_path / "u")
    assert union_source(str(tmp_path / "u"), registry) == tmp_path / "u"
    assert union_source(str(tmp_path / "u" / "union.yaml"), registry) == tmp_path / "u" / "union.yaml"
    assert union_source("cityscapes,bdd+idd mapillary", registry) == NAMES
    assert parse_union(str(tmp_path / "u"), registry)[0].fingerprint == union.fingerprint
    with pytest.raises(UnisegError, match="give a folder"):
        union_source(" , ", registry)
    # the library takes typed values: a folder path or a list of names
    from uniseg.unify.artifact import open_union

    assert open_union(["cityscapes", "bdd", "idd", "mapillary"], registry)[0].fingerprint == union.fingerprint
    assert open_union(tmp_path / "u", registry)[0].fingerprint == union.fingerprint
    assert parse_union("cityscapes,bdd+idd mapillary", registry)[0].fingerprint == union.fingerprint


def test_dataset_folder_named_like_a_dataset_is_not_a_union(tmp_path, registry, monkeypatch):
    """Users keep dataset roots such as ./cityscapes next to their commands: names still win."""
    (tmp_path / "cityscapes").mkdir()
    monkeypatch.chdir(tmp_path)
    union, spaces = parse_union("cityscapes", registry)
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


def _load_module(path, name="uniseg_export_under_test"):
    """Import a generated module from its file, as ``custom_imports`` / a user's import would."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def no_mmseg(monkeypatch):
    monkeypatch.setitem(sys.modules, "mmseg", None)  # import mmseg -> ModuleNotFoundError


def test_export_mmseg_data_reads_without_mmseg(tmp_path, cibm, no_mmseg):
    """mmseg 1.x takes ``metainfo=dict(classes=..., palette=...)`` (one [r, g, b] per class, else
    BaseSegDataset raises) and ignore_index 255; the label maps cover every integer encoding."""
    union, spaces = cibm
    export(union, list(spaces.values()), "mmseg", tmp_path / "union_mmseg.py")
    mod = _load_module(tmp_path / "union_mmseg.py")
    assert not hasattr(mod, "UnisegDataset") and not hasattr(mod, "UnisegLabelRemap")
    assert isinstance(mod.metainfo["classes"], tuple) and list(mod.metainfo["classes"]) == union.names
    assert mod.metainfo["palette"] == [list(c.colour) for c in union.classes]
    assert all(len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in mod.metainfo["palette"])
    assert mod.ignore_index == 255 and mod.uniseg_fingerprint == union.fingerprint and mod.left_out == {}
    expected = _expected_maps(union, spaces)
    assert {(d, e): m for d, encs in mod.label_maps.items() for e, m in encs.items()} == expected
    assert all(isinstance(k, int) for m in expected.values() for k in m)


# The part of mmseg 1.x / mmcv 2.x the generated module uses, as documented: registries whose
# ``register_module(name=..., force=...)`` decorates a class, ``BaseSegDataset`` with a class-level
# ``METAINFO``, and ``BaseTransform`` whose ``__call__`` runs ``transform(results)``.
# tools/check_mmseg_export.py runs the same module against a real install.
_MMSEG_API = {
    "mmseg/__init__.py": "__version__ = '1.2.2'\n",
    "mmseg/registry.py": (
        "class Registry:\n"
        "    def __init__(self, name):\n"
        "        self.name, self.module_dict = name, {}\n"
        "    def register_module(self, name=None, force=False, module=None):\n"
        "        def deco(cls):\n"
        "            key = name or cls.__name__\n"
        "            if key in self.module_dict and not force:\n"
        "                raise KeyError(f'{key} is already registered in {self.name}')\n"
        "            self.module_dict[key] = cls\n"
        "            return cls\n"
        "        return deco if module is None else deco(module)\n"
        "    def get(self, key):\n"
        "        return self.module_dict.get(key)\n"
        "DATASETS = Registry('dataset')\n"
        "TRANSFORMS = Registry('transform')\n"
    ),
    "mmseg/datasets/__init__.py": "class BaseSegDataset:\n    METAINFO = dict()\n",
    "mmcv/__init__.py": "",
    "mmcv/transforms/__init__.py": (
        "class BaseTransform:\n"
        "    def __call__(self, results):\n"
        "        return self.transform(results)\n"
    ),
}


@pytest.fixture()
def mmseg_api(tmp_path, monkeypatch):
    root = tmp_path / "site"
    for rel, text in _MMSEG_API.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for name in [m for m in sys.modules if m.split(".")[0] in ("mmseg", "mmcv")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(root))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in ("mmseg", "mmcv")]:
        del sys.modules[name]


def test_export_mmseg_registers_a_dataset_and_a_remap_transform(tmp_path, registry, mmseg_api):
    union, spaces = open_union(NAMES + ["camvid"], registry)
    export(union, list(spaces.values()), "mmseg", tmp_path / "union_mmseg.py")
    mod = _load_module(tmp_path / "union_mmseg.py")
    from mmcv.transforms import BaseTransform
    from mmseg.datasets import BaseSegDataset
    from mmseg.registry import DATASETS, TRANSFORMS

    assert DATASETS.get("UnisegDataset") is mod.UnisegDataset and issubclass(mod.UnisegDataset, BaseSegDataset)
    assert mod.UnisegDataset.METAINFO == mod.metainfo
    remap_cls = TRANSFORMS.get("UnisegLabelRemap")
    assert remap_cls is mod.UnisegLabelRemap and issubclass(remap_cls, BaseTransform)
    every = np.arange(256, dtype=np.uint8).reshape(16, 16)  # what LoadAnnotations leaves: H x W uint8
    for d, e in (("idd", "id"), ("mapillary", "ids"), ("cityscapes", "labelIds")):
        results = remap_cls(dataset=d, encoding=e)({"gt_seg_map": every.copy(), "seg_fields": ["gt_seg_map"]})
        assert results["gt_seg_map"].dtype == np.uint8
        assert np.array_equal(results["gt_seg_map"], build_lut(union, spaces[d], e).table[every]), (d, e)
    assert repr(remap_cls(dataset="idd")) == "UnisegLabelRemap(dataset='idd', encoding='level3Ids')"  # default: first encoding
    with pytest.raises(KeyError, match="no label map for dataset 'camvid'"):
        remap_cls(dataset="camvid")
    with pytest.raises(KeyError, match="has no encoding 'trainIds'"):
        remap_cls(dataset="idd", encoding="trainIds")
    with pytest.raises(ValueError, match="H x W uint8"):
        remap_cls(dataset="idd")({"gt_seg_map": every.astype(np.int64)})
    assert set(mod.left_out) == {"camvid.rgb"} and "uniseg labels remap" in mod.left_out["camvid.rgb"]


def test_export_detectron2_is_one_flat_metadata_dict_per_encoding(tmp_path, registry):
    """Per detectron2's docs (tutorials/datasets.md, "Metadata"): stuff_classes list[str],
    stuff_colors list[tuple(r, g, b)] in [0, 255], ignore_label int, stuff_dataset_id_to_contiguous_id
    dict[int->int] into [0, num_categories); ``Metadata.set(**kwargs)`` sets each as an attribute
    (and refuses a second value for one), so no key may be ``name``, which every Metadata has."""
    union, spaces = open_union(NAMES + ["camvid"], registry)
    export(union, list(spaces.values()), "detectron2", tmp_path / "union_d2.py")
    mod = _load_module(tmp_path / "union_d2.py")
    expected = _expected_maps(union, spaces)
    assert set(mod.metadata) == {f"{d}.{e}" for d, e in expected if d != "camvid"}
    assert set(mod.left_out) == {"camvid.rgb"}
    documented = {"stuff_classes", "stuff_colors", "ignore_label", "stuff_dataset_id_to_contiguous_id", "evaluator_type"}
    for key, meta in mod.metadata.items():
        assert set(meta) == documented | {"uniseg_fingerprint"} and "name" not in meta
        assert meta["stuff_classes"] == union.names and all(isinstance(c, str) for c in meta["stuff_classes"])
        assert meta["stuff_colors"] == [c.colour for c in union.classes]
        assert all(isinstance(c, tuple) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in meta["stuff_colors"])
        assert meta["ignore_label"] == 255 and meta["evaluator_type"] == "sem_seg" and meta["uniseg_fingerprint"] == union.fingerprint
        ids = meta["stuff_dataset_id_to_contiguous_id"]
        assert all(type(k) is int and type(v) is int and 0 <= v < union.num_classes for k, v in ids.items())
        dataset, encoding = key.split(".")
        assert ids == {k: v for k, v in expected[(dataset, encoding)].items() if v != 255}  # void ids out: detectron2 ignores them
        ns = types.SimpleNamespace(name=key)
        for k, v in meta.items():  # what Metadata.set(**meta) does
            setattr(ns, k, v)
        assert {v: k for k, v in ns.stuff_dataset_id_to_contiguous_id.items()}  # SemSegEvaluator's inverse map
    cs = mod.metadata["cityscapes.labelIds"]["stuff_dataset_id_to_contiguous_id"]
    assert cs[7] == union.index_of("road") and 0 not in cs


def test_export_hf_loads_into_a_transformers_config(tmp_path, cibm):
    from transformers import PretrainedConfig

    union, spaces = cibm
    export(union, list(spaces.values()), "hf", tmp_path / "config.json")
    doc = json.loads((tmp_path / "config.json").read_text())
    assert list(doc["id2label"]) == [str(i) for i in range(70)]  # JSON object keys are strings
    config = PretrainedConfig.from_json_file(str(tmp_path / "config.json"))
    assert config.num_labels == 70 == len(config.id2label)
    assert config.id2label == dict(enumerate(union.names))  # ints again after loading
    assert config.label2id["wheeled slow"] == 69 and config.label2id == {n: i for i, n in enumerate(union.names)}
    assert config.uniseg_fingerprint == union.fingerprint


@pytest.mark.parametrize("fmt", ["mmseg", "detectron2"])
def test_colour_only_union_is_refused_not_exported_empty(tmp_path, fmt):
    out = tmp_path / "x.py"
    res = run_cli("labels", "export", "--union", "camvid", "--to", fmt, "--out", str(out))
    assert res.returncode == 2 and not out.exists()
    assert res.stderr.count("\n") == 1 and f"nothing to export as {fmt}: camvid.rgb is colour-encoded" in res.stderr


def test_export_cli_names_what_it_left_out(tmp_path):
    args = ["labels", "export", "--union", "cityscapes,camvid", "--to", "detectron2", "--out", str(tmp_path / "d2.py")]
    res = run_cli(*args)
    assert res.returncode == 0 and "left out camvid.rgb: colour-encoded" in res.stdout
    data = json.loads(run_cli(*args, "--format", "json").stdout)
    assert list(data["left_out"]) == ["camvid.rgb"]
    data = json.loads(run_cli("labels", "export", "--union", "cityscapes,camvid", "--to", "json", "--out", str(tmp_path / "u.json"), "--format", "json").stdout)
    assert data["left_out"] == {}  # json carries colour encodings (as r,g,b keys)


def _big_registry(folder, sizes: dict[str, int]) -> None:
    """Label spaces named by ``sizes`` with that many classes each, disjoint unified names."""
    folder.mkdir()
    for name, n in sizes.items():
        lines = [f"name: {name}", f"title: {name}", "version: '1'", "homepage: https://example.org", "license: test",
                 "description: synthetic, for the class-count limit", "classes:"]
        lines += [f"  - {{name: {name}_{i:03d}, colour: [{i}, {len(name)}, 9]}}" for i in range(n)]
        lines += ["encodings:", "  ids:", "    kind: index", "    description: ids", "    values:"]
        lines += [f"      - {{id: {i}, name: {name}_{i:03d}, class: {name}_{i:03d}}}" for i in range(n)]
        (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n")


def test_union_past_255_classes_is_never_wrapped_into_uint8(tmp_path):
    reg = tmp_path / "reg"
    _big_registry(reg, {"alpha": 150, "beta": 150})
    res = run_cli("labels", "union", "alpha", "beta", "--registry", str(reg), "--out", str(tmp_path / "u"))
    assert res.returncode == 2 and "300 classes" in res.stderr  # the union itself is refused
    # a union.yaml of 300 classes (written by hand or another tool) is refused by every uint8 export
    from uniseg.labelspaces import Registry
    from uniseg.unify.artifact import dump_union_yaml
    from uniseg.unify.union import union_from_records

    spaces = Registry.from_dirs([reg], use_env=False).get_many(["alpha", "beta"])
    records = sorted(({"name": c.name, "colour": list(c.colour), "members": {s.name: [c.name]}} for s in spaces for c in s.classes), key=lambda r: r["name"])
    big = union_from_records(["alpha", "beta"], records)
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "union.yaml").write_text(dump_union_yaml(big))
    for fmt in ("npy", "csv", "json", "mmseg", "detectron2", "mseg-tsv"):
        out = tmp_path / f"out.{fmt}"
        res = run_cli("labels", "export", "--union", str(tmp_path / "big"), "--registry", str(reg), "--to", fmt, "--out", str(out))
        assert res.returncode == 2 and not out.exists(), fmt
        assert "has 300 classes" in res.stderr and "uint8" in res.stderr and res.stderr.count("\n") == 1, res.stderr
    res = run_cli("labels", "export", "--union", str(tmp_path / "big"), "--registry", str(reg), "--to", "hf", "--out", str(tmp_path / "hf.json"))
    assert res.returncode == 0 and json.loads((tmp_path / "hf.json").read_text())["num_labels"] == 300


def test_union_of_255_classes_fits_uint8_exactly(tmp_path):
    reg = tmp_path / "reg"
    _big_registry(reg, {"alpha": 200, "beta": 55})
    res = run_cli("labels", "export", "--union", "alpha,beta", "--registry", str(reg), "--to", "npy", "--out", str(tmp_path / "npy"))
    assert res.returncode == 0, res.stderr
    alpha, beta = np.load(tmp_path / "npy/alpha.ids.npy"), np.load(tmp_path / "npy/beta.ids.npy")
    assert alpha.dtype == beta.dtype == np.uint8
    assert alpha[:200].tolist() == list(range(200)) and beta[:55].tolist() == list(range(200, 255))  # alphabetical: alpha_*, beta_*
    assert (alpha[200:] == 255).all() and (beta[55:] == 255).all()  # no class lands on ignore


def test_export_rejects_unknown_format_and_wrong_out(tmp_path, cibm):
    union, spaces = cibm
    assert set(EXPORTERS) == {"csv", "json", "npy", "mseg-tsv", "mmseg", "detectron2", "hf"}
    with pytest.raises(UnisegError, match="did you mean 'mmseg'"):
        export(union, list(spaces.values()), "mmsg", tmp_path / "x")
    with pytest.raises(UnisegError, match="is a folder"):
        export(union, list(spaces.values()), "json", tmp_path)
