"""The prepare cache: content, manifest, reading it like a raw root, resuming, refusing."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

import fixtures_layouts as fx
from uniseg.data.cache import MANIFEST, prepare_cache, read_manifest
from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.unify.artifact import open_union

BIG = (40, 80)


@pytest.fixture()
def setup(tmp_path, registry):
    union, spaces = open_union(["cityscapes", "mapillary"], registry)
    built = fx.make_mapillary(tmp_path / "raw", counts={"training": 4, "validation": 2}, size=BIG)
    return union, spaces["mapillary"], tmp_path / "raw", built


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root) -> dict:
    return {p.relative_to(root).as_posix(): _sha(p) for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def test_cache_content_and_manifest(tmp_path, setup):
    union, space, raw, built = setup
    out = tmp_path / "cache"
    rep = prepare_cache(union, space, raw, out, short_side=20)
    assert rep.ok and (rep.total, rep.done, rep.skipped) == (6, 6, 0)
    doc = read_manifest(out)
    assert doc["fingerprint"] == union.fingerprint and doc["dataset"] == "mapillary"
    assert doc["layout"] == "v1.2" and doc["encoding"] == "ids" and doc["short_side"] == 20
    assert doc["splits"] == {"train": {"files": 4, "complete": True}, "val": {"files": 2, "complete": True}}
    assert sorted(doc["files"]) == sorted(built.images)
    road, car = union.index_of("road"), union.index_of("car")
    for key, rec in doc["files"].items():
        img, lab = out / rec["image"], out / rec["label"]
        assert rec["image_bytes"] == img.stat().st_size and rec["image_sha256"] == _sha(img)
        assert rec["label_bytes"] == lab.stat().st_size and rec["label_sha256"] == _sha(lab)
        im = Image.open(img)
        assert im.format == "JPEG" and im.size == (40, 20) and (rec["width"], rec["height"]) == (40, 20)
        la = Image.open(lab)
        assert la.mode == "L" and la.size == (40, 20)
        arr = np.asarray(la)
        assert set(np.unique(arr).tolist()) == {road, car, 255}  # unified ids, nearest-resized
        assert np.all(arr[:, :12] == road) and np.all(arr[:, 15:25] == car) and np.all(arr[:, 28:] == 255)


def test_cache_reads_like_the_raw_root(tmp_path, setup):
    from uniseg.data import EvalTransform, SegDataset

    union, space, raw, _ = setup
    out = tmp_path / "cache"
    prepare_cache(union, space, raw, out, short_side=0, image_format="png")
    a = SegDataset("mapillary", raw, union, split="train")
    b = SegDataset("mapillary", out, union, split="train")
    assert b.source == "cache" and len(a) == len(b) == 4
    for i in range(4):
        x, y = a[i], b[i]
        assert x["dataset_index"] == y["dataset_index"] == 1
        assert np.array_equal(x["label"].numpy(), y["label"].numpy())
        assert np.array_equal(x["image"].numpy(), y["image"].numpy())  # png, native size: lossless

    out2 = tmp_path / "cache20"
    prepare_cache(union, space, raw, out2, short_side=20)
    t = EvalTransform(short_side=20, resize_label=True)
    c = SegDataset("mapillary", out2, union, split="val", transform=EvalTransform())
    r = SegDataset("mapillary", raw, union, split="val", transform=t)
    for i in range(2):
        assert np.array_equal(c[i]["label"].numpy(), r[i]["label"].numpy())


def test_resume_after_interruption(tmp_path, setup):
    union, space, raw, _ = setup
    reference = tmp_path / "reference"
    prepare_cache(union, space, raw, reference, short_side=20)

    out = tmp_path / "cache"
    seen = []

    def interrupt(res):
        seen.append(res.key)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_cache(union, space, raw, out, short_side=20, on_result=interrupt)
    doc = read_manifest(out)
    assert len(doc["files"]) == 2 and not doc["splits"]["train"]["complete"]
    from uniseg.data import SegDataset

    with pytest.raises(UnisegError, match="incomplete.*run the same 'uniseg data prepare' again"):
        SegDataset("mapillary", out, union, split="train")

    rep = prepare_cache(union, space, raw, out, short_side=20)
    assert (rep.skipped, rep.done) == (2, 4)
    assert _tree(out) == _tree(reference)  # identical to an uninterrupted run
    assert read_manifest(out)["files"] == read_manifest(reference)["files"]
    again = prepare_cache(union, space, raw, out, short_side=20)
    assert (again.skipped, again.done) == (6, 0)


def test_resume_redoes_damaged_or_unrecorded_files(tmp_path, setup):
    union, space, raw, _ = setup
    out = tmp_path / "cache"
    prepare_cache(union, space, raw, out, short_side=20)
    doc = read_manifest(out)
    keys = sorted(doc["files"])
    # 1) same size, different bytes: only the hash can tell
    lab = out / doc["files"][keys[0]]["label"]
    data = bytearray(lab.read_bytes())
    data[-20] ^= 0xFF
    lab.write_bytes(bytes(data))
    # 2) truncated image
    img = out / doc["files"][keys[1]]["image"]
    img.write_bytes(img.read_bytes()[:50])
    # 3) written, but the manifest never recorded it (killed before the flush)
    del doc["files"][keys[2]]
    (out / MANIFEST).write_text(json.dumps(doc))
    rep = prepare_cache(union, space, raw, out, short_side=20)
    assert (rep.done, rep.skipped) == (3, 3)
    fresh = read_manifest(out)
    for k in keys[:3]:
        rec = fresh["files"][k]
        assert _sha(out / rec["label"]) == rec["label_sha256"] and _sha(out / rec["image"]) == rec["image_sha256"]
    # without --verify the same-size corruption goes unnoticed (sizes only)
    lab = out / fresh["files"][keys[0]]["label"]
    data = bytearray(lab.read_bytes())
    data[-20] ^= 0xFF
    lab.write_bytes(bytes(data))
    assert prepare_cache(union, space, raw, out, short_side=20, verify=False).done == 0
    assert prepare_cache(union, space, raw, out, short_side=20, verify=True).done == 1


def test_parallel_workers_write_the_same_cache(tmp_path, setup):
    union, space, raw, _ = setup
    prepare_cache(union, space, raw, tmp_path / "one", short_side=20, workers=1)
    rep = prepare_cache(union, space, raw, tmp_path / "two", short_side=20, workers=2)
    assert rep.done == 6
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


def test_cache_for_another_union_is_refused(tmp_path, setup, registry):
    from uniseg.data import SegDataset

    union, space, raw, _ = setup
    out = tmp_path / "cache"
    prepare_cache(union, space, raw, out, short_side=20)
    other, spaces = open_union(["bdd", "mapillary"], registry)
    with pytest.raises(FingerprintMismatch, match=rf"cache made for union {union.fingerprint}.*not {other.fingerprint}"):
        prepare_cache(other, spaces["mapillary"], raw, out, short_side=20)
    with pytest.raises(FingerprintMismatch, match="cache made for union"):
        SegDataset("mapillary", out, other, split="train")
    with pytest.raises(UnisegError, match="short-side 20, not 30"):
        prepare_cache(union, space, raw, out, short_side=30)


def test_failures_and_unknown_values_are_reported(tmp_path, setup):
    union, space, raw, built = setup
    (raw / built.labels[0]).write_bytes(b"not a png")
    fx.paletted(fx.stray(fx.stripes((13, 55), BIG), 70, 6)).save(raw / built.labels[1])  # 70: not a Mapillary id
    fx.paletted((13, 70), size=BIG).save(raw / built.labels[2])  # half the pixels unknown: no Mapillary label
    out = tmp_path / "cache"
    rep = prepare_cache(union, space, raw, out, short_side=20)
    assert [f.key for f in rep.failed] == [built.images[0], built.images[2]]
    assert built.labels[0].split("/")[-1] in rep.failed[0].error
    assert "not a label of mapillary.ids: 50% of its pixels" in rep.failed[1].error
    assert rep.unknown == {"70": 6}
    doc = read_manifest(out)
    assert doc["splits"]["train"]["complete"] is False and doc["splits"]["val"]["complete"] is True
    assert doc["files"][built.images[1]]["unknown"] == {"70": 6}


def test_refuses_a_non_cache_folder_and_the_root_itself(tmp_path, setup):
    union, space, raw, _ = setup
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(UnisegError, match="not empty and holds no manifest.json"):
        prepare_cache(union, space, raw, busy)
    with pytest.raises(UnisegError, match="is the source folder"):
        prepare_cache(union, space, raw, raw)
    with pytest.raises(UnisegError, match=r"is inside the source folder .*raw; choose a folder outside"):
        prepare_cache(union, space, raw, raw / "cache")
    assert not (raw / "cache").exists()


def test_idd_polygons_and_camvid_colours_are_cached(tmp_path, registry):
    union, spaces = open_union(["idd", "camvid"], registry)
    fx.make_idd(tmp_path / "idd", mode="polygons")
    fx.make_camvid(tmp_path / "camvid")
    r1 = prepare_cache(union, spaces["idd"], tmp_path / "idd", tmp_path / "c_idd", short_side=0)
    r2 = prepare_cache(union, spaces["camvid"], tmp_path / "camvid", tmp_path / "c_camvid", short_side=0)
    assert r1.ok and r2.ok and r1.done == 3 and r2.done == 3
    assert r1.unknown == {"hovercraft": 3}
    rec = next(iter(read_manifest(tmp_path / "c_camvid")["files"].values()))
    lab = np.asarray(Image.open(tmp_path / "c_camvid" / rec["label"]))
    assert lab[0, 0] == union.index_of("road") and lab[0, -1] == 255
