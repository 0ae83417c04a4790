"""The synthetic road world (issue #4): real layouts, registry encodings, the fine -> dataset
mapping, determinism, the planted relations and mapping validation.

Expectations come from the registry facts (raw values looked up by name in the registry
encodings, plus the literal ids of the official toolkits), never from the code under test.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from uniseg.data.synth import (
    MARKER,
    PLANTED_FILE,
    fine_classes,
    load_mapping,
    plan_samples,
    sample_scene,
    synthesize,
)
from uniseg.errors import UnisegError

SIZE = (64, 128)
IMAGES = 4
ALL = ["bdd", "camvid", "camvid-segnet", "cityscapes", "idd", "kitti", "mapillary", "wilddash"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, registry) -> Path:
    out = tmp_path_factory.mktemp("synth") / "world"
    report = synthesize(out, images=IMAGES, size=SIZE, seed=0, registry=registry)
    assert sorted(report.datasets) == ALL
    assert all(n == IMAGES for n in report.datasets.values())
    assert report.planted_relations == out / PLANTED_FILE
    return out


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != MARKER)


def _digest(root: Path) -> dict[str, str]:
    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in _files(root)}


# --------------------------------------------------------------------------- layouts

# Real file naming of each dataset (image regex, label template from the image's groups).
LAYOUTS = {
    "cityscapes": (r"leftImg8bit/(?P<split>train|val)/(?P<city>[a-z]+)/(?P=city)_\d{6}_\d{6}_leftImg8bit\.png",
                   lambda m: m.group(0).replace("leftImg8bit/", "gtFine/", 1).replace("_leftImg8bit.png", "_gtFine_labelIds.png")),
    "bdd": (r"images/10k/(?P<split>train|val)/(?P<id>[0-9a-f]{8}-[0-9a-f]{8})\.jpg",
            lambda m: f"labels/sem_seg/masks/{m['split']}/{m['id']}.png"),
    "idd": (r"leftImg8bit/(?P<split>train|val)/(?P<drive>\d+)/(?P<stem>\d{6})_leftImg8bit\.png",
            lambda m: f"gtFine/{m['split']}/{m['drive']}/{m['stem']}_gtFine_labellevel3Ids.png"),
    "mapillary": (r"(?P<split>training|validation)/images/(?P<key>[A-Za-z0-9_-]{22})\.jpg",
                  lambda m: f"{m['split']}/v1.2/labels/{m['key']}.png"),
    "kitti": (r"training/image_2/(?P<stem>\d{6}_10)\.png", lambda m: f"training/semantic/{m['stem']}.png"),
    "wilddash": (r"wd_val_01/(?P<name>[a-z]{2}\d{4}_\d{6})\.png", lambda m: f"wd_val_01/{m['name']}_labelIds.png"),
    "camvid": (r"701_StillsRaw_full/(?P<stem>[0-9A-Za-z]{6,7}_\d{6})\.png", lambda m: f"LabeledApproved_full/{m['stem']}_L.png"),
    "camvid-segnet": (r"(?P<split>train|val|test)/(?P<stem>[0-9A-Za-z]{6,7}_\d{6})\.png",
                      lambda m: f"{m['split']}annot/{m['stem']}.png"),
}


@pytest.mark.parametrize("name", ALL)
def test_files_land_at_the_real_layout_paths(world, name):
    root = world / name
    files = _files(root)
    rx, label_of = LAYOUTS[name]
    images = [f for f in files if re.fullmatch(rx, f)]
    assert len(images) == IMAGES, (name, files)
    labels = {label_of(re.fullmatch(rx, f)) for f in images}
    assert set(files) == set(images) | labels, f"unexpected files in {name}: {sorted(set(files) - set(images) - labels)}"
    for f in images:
        im = Image.open(root / f)
        assert im.size == (SIZE[1], SIZE[0]) and im.mode == "RGB"
        assert im.format == ("JPEG" if f.endswith(".jpg") else "PNG")


def test_concrete_paths_and_splits(world):
    cs = world / "cityscapes"
    stems = sorted(p.name[: -len("_gtFine_labelIds.png")] for p in cs.glob("gtFine/train/*/*_gtFine_labelIds.png"))
    assert stems, "no Cityscapes train labels"
    city = stems[0].split("_")[0]
    assert (cs / f"gtFine/train/{city}/{stems[0]}_gtFine_labelIds.png").is_file()
    assert (cs / f"leftImg8bit/train/{city}/{stems[0]}_leftImg8bit.png").is_file()
    # most images in train, at least one in val
    assert len(list(cs.glob("leftImg8bit/train/*/*.png"))) == 3
    assert len(list(cs.glob("leftImg8bit/val/*/*.png"))) == 1
    # KITTI and WildDash have one labelled split; camvid-segnet three
    assert len(list((world / "kitti/training/image_2").glob("*.png"))) == IMAGES
    assert (world / "kitti/training/semantic/000000_10.png").is_file()
    assert not (world / "kitti/testing").exists()
    seg = world / "camvid-segnet"
    assert [len(list((seg / s).glob("*.png"))) for s in ("train", "val", "test")] == [2, 1, 1]
    # stems stay unique over the splits of a dataset
    segstems = [p.name for s in ("train", "val", "test") for p in (seg / s).glob("*.png")]
    assert len(set(segstems)) == len(segstems)


def test_label_formats(world):
    lab = next((world / "mapillary").glob("training/v1.2/labels/*.png"))
    im = Image.open(lab)
    assert im.mode == "P"
    pal = im.getpalette()
    assert pal[3 * 20 : 3 * 20 + 3] == [255, 0, 0]  # Bicyclist
    assert pal[3 * 24 : 3 * 24 + 3] == [255, 255, 255]  # Lane Marking - General
    assert Image.open(next((world / "camvid").glob("LabeledApproved_full/*_L.png"))).mode == "RGB"
    for pattern in ("cityscapes/gtFine/*/*/*_labelIds.png", "bdd/labels/sem_seg/masks/*/*.png",
                    "idd/gtFine/*/*/*_labellevel3Ids.png", "kitti/training/semantic/*.png",
                    "wilddash/wd_val_01/*_labelIds.png", "camvid-segnet/*annot/*.png"):
        for p in world.glob(pattern):
            assert Image.open(p).mode == "L", p


@pytest.mark.parametrize("name", ALL)
def test_label_values_are_values_of_the_encoding(world, registry, name):
    space = registry.get(name)
    layout = next(iter(space.layouts.values()))
    source = next(s for s in layout.labels if s.format == "png")
    enc = space.encodings[source.encoding]
    rx, label_of = LAYOUTS[name]
    root = world / name
    for f in _files(root):
        m = re.fullmatch(rx, f)
        if not m:
            continue
        a = np.asarray(Image.open(root / label_of(m)))
        if enc.kind == "rgb":
            allowed = {tuple(v.value) for v in enc.values}
            seen = {tuple(c) for c in np.unique(a.reshape(-1, 3), axis=0).tolist()}
        else:
            allowed = {int(v.value) for v in enc.values}
            seen = set(np.unique(a).tolist())
        assert seen <= allowed, f"{name}: unknown raw values {seen - allowed}"
        assert len(seen) >= 3, f"{name}: a scene with fewer than 3 classes"


# --------------------------------------------------------------------------- mapping


def _raw(registry, name: str, raw_name: str):
    """The raw value the registry encoding (the layout's first PNG source) gives ``raw_name``."""
    space = registry.get(name)
    layout = next(iter(space.layouts.values()))
    enc = space.encodings[next(s for s in layout.labels if s.format == "png").encoding]
    v = enc.by_name()[raw_name].value
    return tuple(v) if isinstance(v, (list, tuple)) else int(v)


# fine class -> (raw value name in the dataset's encoding, the literal raw value from the toolkits)
EXPECT = {
    "cityscapes": {"bicyclist": ("rider", 25), "motorcyclist": ("rider", 25), "lane marking": ("road", 7),
                   "road": ("road", 7), "traffic sign back": ("static", 4), "traffic sign front": ("traffic sign", 20),
                   "curb": ("sidewalk", 8), "bicycle": ("bicycle", 33), "person": ("person", 24), "sky": ("sky", 23),
                   "ego vehicle": ("ego vehicle", 1), "street light": ("pole", 17)},
    "mapillary": {"bicyclist": ("Bicyclist", 20), "motorcyclist": ("Motorcyclist", 21), "road": ("Road", 13),
                  "lane marking": ("Lane Marking - General", 24), "traffic sign back": ("Traffic Sign (Back)", 49),
                  "traffic sign front": ("Traffic Sign (Front)", 50), "curb": ("Curb", 2), "sky": ("Sky", 27)},
    "idd": {"bicyclist": ("rider", 5), "motorcyclist": ("rider", 5), "curb": ("curb", 13), "autorickshaw": ("autorickshaw", 8),
            "lane marking": ("road", 0), "traffic sign back": ("obs-str-bar-fallback", 21), "ego vehicle": ("void", 255),
            "parking": ("drivable fallback", 1)},
    "bdd": {"bicyclist": ("rider", 12), "lane marking": ("road", 0), "parking": ("road", 0), "curb": ("sidewalk", 1),
            "traffic sign back": ("unknown", 255), "sky": ("sky", 10)},
    "camvid": {"bicyclist": ("Bicyclist", (0, 128, 192)), "bicycle": ("Bicyclist", (0, 128, 192)),
               "lane marking": ("LaneMkgsDriv", (128, 0, 192)), "road": ("Road", (128, 64, 128)), "sky": ("Sky", (128, 128, 128))},
    "camvid-segnet": {"bicyclist": ("Bicyclist", 10), "sidewalk": ("Pavement", 4), "lane marking": ("Unlabelled", 11)},
}


@pytest.fixture(scope="module")
def mapping_world(tmp_path_factory, registry) -> Path:
    out = tmp_path_factory.mktemp("synth") / "mapping"
    synthesize(out, images=8, size=(96, 192), seed=3, datasets=list(EXPECT), registry=registry)
    return out


@pytest.mark.parametrize("name", list(EXPECT))
def test_fine_classes_are_written_as_the_annotators_class(mapping_world, registry, name):
    space = registry.get(name)
    seen: set[str] = set()
    fines = [f.name for f in fine_classes()]
    for s in plan_samples(space, 8, 3):
        fine = sample_scene(name, s.index, seed=3, size=(96, 192)).fine
        label = np.asarray(Image.open(mapping_world / name / s.label))
        for fname, (raw_name, literal) in EXPECT[name].items():
            expected = _raw(registry, name, raw_name)
            assert expected == literal, f"registry {name} {raw_name!r} = {expected}, toolkit says {literal}"
            where = fine == fines.index(fname)
            if not where.any():
                continue
            seen.add(fname)
            got = label[where]
            if isinstance(expected, tuple):
                assert (got == np.array(expected, np.uint8)).all(), (name, fname)
            else:
                assert (got == expected).all(), (name, fname, np.unique(got))
    must = {"bicyclist", "lane marking"} & set(EXPECT[name])
    assert must <= seen, f"{name}: the sample showed no {must - seen}"


def test_every_pixel_has_a_fine_class_and_scenes_differ():
    a = sample_scene("cityscapes", 0, size=SIZE).fine
    b = sample_scene("cityscapes", 1, size=SIZE).fine
    assert (a > 0).all(), "unlabeled canvas pixels left"
    assert not np.array_equal(a, b)
    assert int(a.max()) < len(fine_classes())


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, registry):
    kw = dict(images=3, size=(48, 96), datasets=["cityscapes", "mapillary"], registry=registry)
    synthesize(tmp_path / "a", seed=7, **kw)
    synthesize(tmp_path / "b", seed=7, **kw)
    synthesize(tmp_path / "c", seed=8, **kw)
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() != c.keys() or a != c
    # a dataset's bytes do not depend on which other datasets are requested
    synthesize(tmp_path / "d", seed=7, images=3, size=(48, 96), datasets=["cityscapes"], registry=registry)
    only = _digest(tmp_path / "d")
    assert {k: v for k, v in a.items() if k.startswith("cityscapes/")} == {k: v for k, v in only.items() if k.startswith("cityscapes/")}


def test_processes_write_the_same_bytes(tmp_path, registry, monkeypatch):
    kw = dict(images=7, size=(48, 96), seed=1, datasets=["idd", "bdd"], registry=registry)
    monkeypatch.setenv("UNISEG_SYNTH_WORKERS", "1")
    synthesize(tmp_path / "serial", **kw)
    monkeypatch.setenv("UNISEG_SYNTH_WORKERS", "2")
    calls = []
    synthesize(tmp_path / "pool", progress=lambda d, done, total: calls.append((d, done, total)), **kw)
    assert _digest(tmp_path / "serial") == _digest(tmp_path / "pool")
    assert ("idd", 7, 7) in calls and ("bdd", 7, 7) in calls


def test_progress_and_rerun_replaces_an_earlier_world(tmp_path, registry):
    calls = []
    synthesize(tmp_path / "w", images=4, size=(32, 64), datasets=["kitti"], registry=registry,
               progress=lambda d, done, total: calls.append((d, done, total)))
    assert calls == [("kitti", i, 4) for i in range(1, 5)]
    synthesize(tmp_path / "w", images=2, size=(32, 64), datasets=["kitti"], registry=registry, overwrite=True)  # other settings: asked for
    assert sorted(p.name for p in (tmp_path / "w/kitti/training/image_2").iterdir()) == ["000000_10.png", "000001_10.png"]


def test_refuses_to_overwrite_a_foreign_folder(tmp_path, registry):
    (tmp_path / "w/kitti").mkdir(parents=True)
    (tmp_path / "w/kitti/mine.txt").write_text("precious")
    with pytest.raises(UnisegError, match="not written by 'uniseg data synth'"):
        synthesize(tmp_path / "w", images=1, size=(32, 64), datasets=["kitti"], registry=registry)
    assert (tmp_path / "w/kitti/mine.txt").read_text() == "precious"
    # nothing is replaced or written before every dataset folder is known to be writable
    synthesize(tmp_path / "v", images=1, size=(32, 64), datasets=["bdd"], registry=registry)
    before = _digest(tmp_path / "v/bdd")
    (tmp_path / "v/kitti").mkdir()
    (tmp_path / "v/kitti/mine.txt").write_text("precious")
    with pytest.raises(UnisegError, match="kitti"):
        synthesize(tmp_path / "v", images=2, size=(32, 64), datasets=["bdd", "kitti"], registry=registry)
    assert _digest(tmp_path / "v/bdd") == before


@pytest.mark.parametrize("kw, msg", [
    (dict(images=0), "--images"),
    (dict(size=(8, 64)), "--size"),
    (dict(seed=-1), "--seed"),
    (dict(datasets=["citiscapes"]), "did you mean 'cityscapes'"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, registry, kw, msg):
    with pytest.raises(UnisegError) as err:
        synthesize(tmp_path / "w", registry=registry, **{"images": 1, "size": (32, 64), **kw})
    assert msg in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- one dataset into a world


def test_writing_one_dataset_into_a_world_merges_its_planted_relations(world, tmp_path, registry):
    w = tmp_path / "w"
    shutil.copytree(world, w)
    before = (w / PLANTED_FILE).read_bytes()
    idd = _digest(w / "idd")
    (w / "idd/leftImg8bit/train").rename(w / "idd/gone")  # the rewrite must restore it
    rep = synthesize(w, images=IMAGES, size=SIZE, seed=0, datasets=["idd"], registry=registry)
    assert rep.datasets == {"idd": IMAGES} and _digest(w / "idd") == idd
    doc = yaml.safe_load((w / PLANTED_FILE).read_text())
    assert sorted(doc["datasets"]) == ALL and len(doc["relations"]) > 40  # not 1 dataset / 0 relations
    assert (w / PLANTED_FILE).read_bytes() == before  # merged and recomputed: the file of a full run


def test_a_world_of_other_settings_is_refused_not_mixed(world, tmp_path, registry):
    w = tmp_path / "w"
    shutil.copytree(world, w)
    before, idd = (w / PLANTED_FILE).read_bytes(), _digest(w / "idd")
    with pytest.raises(UnisegError, match=rf"holds a world made with seed 0, {IMAGES} images, size 64x128 .*same --seed/--images/--size"):
        synthesize(w, images=IMAGES, size=SIZE, seed=1, datasets=["idd"], registry=registry)
    assert (w / PLANTED_FILE).read_bytes() == before and _digest(w / "idd") == idd
    (w / PLANTED_FILE).write_text("format: something else\n")
    with pytest.raises(UnisegError, match=r"planted_relations\.yaml: not a planted-relations file"):
        synthesize(w, images=IMAGES, size=SIZE, seed=0, datasets=["idd"], registry=registry)
    assert _digest(w / "idd") == idd


def test_ctrl_c_stops_synth_within_moments(tmp_path):
    out = tmp_path / "w"
    env = dict(os.environ, UNISEG_SYNTH_WORKERS="2", PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("UNISEG_DEBUG", None)
    cmd = [sys.executable, "-m", "uniseg.cli.main", "data", "synth", "--out", str(out), "--dataset", "cityscapes",
           "--images", "600", "--size", "256x512"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    labels = out / "cityscapes/gtFine"
    try:
        deadline = time.monotonic() + 60  # start-up (imports, worker processes) on a busy machine: seconds
        while not any(labels.rglob("*_labelIds.png")):  # wait for work to be under way
            if proc.poll() is not None:
                pytest.fail(f"synth ended (exit {proc.returncode}) before it wrote a label: {proc.communicate()[1]}")
            if time.monotonic() > deadline:
                pytest.fail("synth wrote no label within 60 s of its start")
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: the whole process group
        try:
            _, stderr = proc.communicate(timeout=20)  # running on to the end would take far longer
        except subprocess.TimeoutExpired:
            pytest.fail("synth was still running 20 s after Ctrl-C")
    finally:
        if proc.poll() is None:  # a failed wait above: leave no synth running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr.strip() == "interrupted — rerun the same command to write the world"
    assert len(list(labels.rglob("*_labelIds.png"))) < 600


# --------------------------------------------------------------------------- planted relations


def test_planted_relations_file(world):
    doc = yaml.safe_load((world / PLANTED_FILE).read_text())
    assert doc["format"] == "uniseg-planted-relations/1"
    assert (doc["seed"], doc["images"], doc["size"]) == (0, IMAGES, list(SIZE))
    assert sorted(doc["datasets"]) == ALL
    cs = doc["datasets"]["cityscapes"]
    assert {"bicyclist", "motorcyclist"} <= set(cs["classes"]["rider"]["fine"])
    assert {"road", "lane marking", "crosswalk marking"} <= set(cs["classes"]["road"]["fine"])
    assert "traffic sign back" in cs["void"] and cs["raw"]["traffic sign back"] == "static"
    assert doc["datasets"]["mapillary"]["classes"]["Bicyclist"] == {"unified": "bicyclist", "fine": ["bicyclist"]}
    rel = {(r["dataset"], r["primary"], r["secondary"]): r for r in doc["relations"]}
    r = rel[("mapillary", "bicyclist", "rider")]
    assert r["kind"] == "subset" and {"cityscapes", "bdd", "idd"} <= set(r["holds_in"])
    assert ("mapillary", "lane marking - general", "road") in rel
    assert ("mapillary", "traffic sign (back)", "obs-str-bar-fallback") in rel
    assert rel[("idd", "rail track", "terrain")]["kind"] == "equivalent"
    # the planted world covers most of the paper's Table A-1
    table_a1 = {("bike lane", "road"), ("catch basin", "road"), ("crosswalk - plain", "road"),
                ("lane marking - general", "road"), ("parking", "road"), ("pothole", "road"),
                ("junction box", "obs-str-bar-fallback"), ("mailbox", "obs-str-bar-fallback"),
                ("phone booth", "obs-str-bar-fallback"), ("traffic sign (back)", "obs-str-bar-fallback"),
                ("trash can", "obs-str-bar-fallback"), ("curb cut", "sidewalk"), ("bicyclist", "rider"),
                ("motorcyclist", "rider"), ("ground animal", "person"), ("banner", "billboard"),
                ("phone booth", "building"), ("caravan", "car"), ("trailer", "truck")}
    pairs = {(p["primary"], p["secondary"]) for p in doc["pairs"]}
    assert table_a1 <= pairs, table_a1 - pairs


def test_an_ideal_null_bce_model_mines_no_relation(world, registry):
    """Eq. 6 needs s(c') > s(c): a model that tells every fine class apart scores the planted
    primaries about 1 on their own pixels (no training dataset labels them otherwise), all but
    IDD's rail track, and auto tau comes out 1, so nothing is switched on. The scores are
    recomputed here from the file by a plain loop over datasets."""
    from uniseg.data.synth.planted import expected_relations, ideal_scores
    from uniseg.relations.eq6 import auto_tau, multilabel_table, switched_on
    from uniseg.unify.union import build_union

    doc = yaml.safe_load((world / PLANTED_FILE).read_text())
    train = ["cityscapes", "bdd", "idd", "mapillary"]
    union = build_union([registry.get(n) for n in train])
    classes = union.names
    score, valid, pixels = ideal_scores(doc, train, union)

    def target_share(k: str, fine: str) -> float:  # Null BCE's positive share for class k on a fine class
        pos = tot = 0.0
        for n in train:
            ds = doc["datasets"][n]
            writes = {f: e["unified"] for e in ds["classes"].values() for f in e["fine"]}
            share = ds["fine_pixels"].get(fine, 0) / sum(ds["fine_pixels"].values())
            if fine in writes and n in union.classes[classes.index(k)].members:  # k in n's label space
                tot += share
                pos += share * (writes[fine] == k)
        return pos / tot if tot else 0.0

    m, cs = train.index("mapillary"), train.index("cityscapes")
    lane, road = classes.index("lane marking - general"), classes.index("road")
    assert score[m, lane, road] == pytest.approx(target_share("road", "lane marking"))
    assert 0 < score[m, lane, road] < 1  # Cityscapes says road, Mapillary says not
    cs_road = doc["datasets"]["cityscapes"]["classes"]["road"]["fine"]
    px = doc["datasets"]["cityscapes"]["fine_pixels"]
    want = sum(px.get(f, 0) * target_share("road", f) for f in cs_road) / sum(px.get(f, 0) for f in cs_road)
    assert score[cs, road, road] == pytest.approx(want) and want < 1
    assert pixels[cs, road] == sum(px.get(f, 0) for f in cs_road)
    assert valid[cs, road] and not valid[cs, lane]
    idd, rail, terrain = train.index("idd"), classes.index("rail track"), classes.index("terrain")
    for d, p, _ in expected_relations(doc, train):
        if (d, p) != ("idd", "rail track"):
            assert score[train.index(d), classes.index(p), classes.index(p)] > 0.99, (d, p)
    # IDD's non-drivable fallback (unified 'rail track') is the one planted primary another dataset
    # contradicts: Mapillary has a rail track class of its own and labels terrain as terrain
    assert score[idd, rail, rail] < 0.99 and score[idd, rail, terrain] == pytest.approx(1.0)
    tau = auto_tau(score, valid, pixels)
    assert tau.tau == 1.0  # the only rows topped outside their space score 1
    table = multilabel_table(score, valid, pixels, tau.tau)
    k = len(classes)
    on = table == 1
    on[:, np.arange(k), np.arange(k)] = False
    assert not on.any()
    on = switched_on(score, valid, pixels, 0.9)  # any tau under 1 switches on that one relation only
    assert [tuple(x) for x in np.argwhere(on)] == [(idd, rail, terrain)]


# --------------------------------------------------------------------------- mapping validation


def _mapping_with(tmp_path: Path, edit) -> Path:
    from uniseg.data.synth.spec import MAPPING_FILE

    doc = yaml.safe_load(MAPPING_FILE.read_text())
    edit(doc)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["cityscapes"]["classes"].__setitem__("bicyclist", "ryder"), ["cityscapes", "bicyclist", "'ryder'", "rider"]),
    (lambda d: d["cityscapes"]["classes"].pop("curb"), ["cityscapes", "not mapped", "'curb'"]),
    (lambda d: d["cityscapes"]["classes"].__setitem__("hovercraft", "car"), ["cityscapes", "'hovercraft'", "not a fine class"]),
    (lambda d: d["cityscapes"].__setitem__("void", "road"), ["cityscapes", "void", "'unlabeled'"]),
    (lambda d: d["cityscapes"].__setitem__("label", "labelTrainIds"), ["cityscapes", "labelIds"]),
    (lambda d: d.pop("cityscapes") and d["kitti"].__setitem__("like", "kitti"), ["cityscapes"]),
])
def test_bad_mapping_is_a_one_line_error(tmp_path, registry, edit, words):
    path = _mapping_with(tmp_path, edit)
    with pytest.raises(UnisegError) as err:
        load_mapping(registry.get("cityscapes"), path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_shipped_mapping_covers_every_registry_dataset(registry):
    for name in ALL:
        m = load_mapping(registry.get(name))
        assert [t.fine for t in m.targets] == [f.name for f in fine_classes()]
    # the required fine classes exist
    names = {f.name for f in fine_classes()}
    assert {"road", "lane marking", "crosswalk marking", "sidewalk", "curb", "parking", "bike lane", "building", "wall",
            "fence", "guard rail", "vegetation", "terrain", "sky", "pole", "utility pole", "street light", "traffic light",
            "traffic sign front", "traffic sign back", "traffic sign frame", "billboard", "car", "truck", "bus",
            "autorickshaw", "caravan", "trailer", "person", "bicyclist", "motorcyclist", "bicycle", "motorcycle",
            "ego vehicle"} <= names


@pytest.mark.parametrize("name", ALL)
def test_the_readers_discover_and_read_every_synthetic_dataset(world, registry, name):
    """uniseg.data.layout / labels read the synthetic datasets like the real ones, no special case."""
    import uniseg.data.labels as labels_mod
    import uniseg.data.layout as layout_mod

    space = registry.get(name)
    found = layout_mod.discover(space, world / name)
    first = next(iter(space.layouts.values()))
    assert found.layout.name == first.name
    assert found.source is not None and found.source.format == "png"
    assert found.source.encoding == next(s for s in first.labels if s.format == "png").encoding
    samples = found.samples()
    assert len(samples) == IMAGES
    for sf in found.splits.values():
        assert not sf.missing_labels and not sf.orphan_labels, (name, sf.split)
    enc = space.encodings[found.source.encoding]
    known = {tuple(v.value) if enc.kind == "rgb" else int(v.value) for v in enc.values}
    for ref in samples:
        raw = labels_mod.read_label(world / name / ref.label, enc)
        values = {tuple(c) for c in np.unique(raw.reshape(-1, 3), axis=0).tolist()} if enc.kind == "rgb" else set(np.unique(raw).tolist())
        assert values <= known


def test_the_fast_weighted_pick_is_numpys_choice():
    """sampling.weighted_pick stands in for Generator.choice(n, p=p): same indices, same random stream after."""
    from uniseg.data.synth.sampling import weighted_cdf, weighted_pick

    for weights in ([0.82, 0.05, 0.08, 0.05], [1, 1, 1], [0.0, 3.0, 1.0], [0.7, 0.3]):
        p = np.array(weights, np.float64)
        a, b = np.random.default_rng(7), np.random.default_rng(7)
        cdf = weighted_cdf(weights)
        assert [int(a.choice(len(p), p=p / p.sum())) for _ in range(2000)] == [weighted_pick(b, cdf) for _ in range(2000)]
        assert a.random() == b.random()


def test_frac_is_the_float_modulo_one():
    from uniseg.data.synth.ground import frac

    v = np.concatenate([np.random.default_rng(0).normal(0, 40, 100_000), [-1e-9, -0.5, 0.0, 1.0, -3.0, 2.5]]).astype(np.float32)
    assert np.array_equal(frac(v), v % 1.0)
