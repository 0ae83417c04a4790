"""Remapping label images in their real formats: parallel, resumable, strict, bad files reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from uniseg.unify import build_lut, build_union
from uniseg.unify.remap import remap_paths

def cityscapes_tree(root):
    """gtFine/train/<city>/<stem>_gtFine_labelIds.png files as the official package has them."""
    rng = np.random.default_rng(0)
    files = {}
    for city, frame in (("aachen", 19), ("aachen", 20), ("bochum", 7)):
        stem = f"{city}_000000_{frame:06d}"
        arr = rng.choice([0, 7, 8, 11, 24, 26, 33], size=(8, 12)).astype(np.uint8)
        path = root / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr, mode="L").save(path)
        files[path] = arr
    return files


@pytest.fixture()
def cibm(registry):
    return build_union(registry.get_many(["cityscapes", "bdd", "idd", "mapillary"]))


def test_remap_cityscapes_tree(tmp_path, registry, cibm):
    files = cityscapes_tree(tmp_path / "src")
    lut = build_lut(cibm, registry.get("cityscapes"), "labelIds")
    report = remap_paths(lut, [tmp_path / "src"], tmp_path / "out", workers=2)
    assert report.ok and report.count("done") == 3 and report.unknown_pixels == 0
    expected_of = {0: 255, 7: cibm.index_of("road"), 8: cibm.index_of("sidewalk"), 11: cibm.index_of("building"),
                   24: cibm.index_of("person"), 26: cibm.index_of("car"), 33: cibm.index_of("bicycle")}
    for src, arr in files.items():
        dst = tmp_path / "out" / src.relative_to(tmp_path / "src")
        out = np.asarray(Image.open(dst))
        assert Image.open(dst).mode == "L"
        assert np.array_equal(out, np.vectorize(expected_of.get)(arr))
    # resumable: a second run skips everything; a deleted output is redone
    next(iter((tmp_path / "out").rglob("*_labelIds.png"))).unlink()
    again = remap_paths(lut, [tmp_path / "src"], tmp_path / "out")
    assert again.count("skipped") == 2 and again.count("done") == 1


def test_mapillary_paletted_png_reads_indices(tmp_path, registry, cibm):
    space = registry.get("mapillary")
    arr = np.array([[20, 50, 65], [13, 49, 2]], dtype=np.uint8)
    img = Image.fromarray(arr, mode="P")
    palette = [v for c in space.classes for v in c.colour] + [0, 0, 0]
    img.putpalette(palette + [0] * (768 - len(palette)))
    img.save(tmp_path / "k.png")
    lut = build_lut(cibm, space, "ids")
    report = remap_paths(lut, [tmp_path / "k.png"], tmp_path / "out")
    out = np.asarray(Image.open(tmp_path / "out" / "k.png"))
    n = cibm.index_of
    assert out.tolist() == [[n("bicyclist"), n("traffic sign"), 255], [n("road"), n("traffic sign (back)"), n("curb")]]
    assert report.ok


def test_camvid_rgb_labels(tmp_path, registry):
    union = build_union(registry.get_many(["cityscapes", "mapillary"]))
    rgb = np.zeros((5, 5, 3), dtype=np.uint8)  # (0, 0, 0): Void
    rgb[0, 0] = (0, 128, 192)  # Bicyclist
    rgb[0, 1] = (128, 64, 128)  # Road
    rgb[1, 0] = (64, 128, 64)  # Animal: void in the 11-class space
    rgb[1, 1] = (9, 9, 9)  # not a CamVid colour (1 pixel in 25: counted, written as 255)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "0001TP_006690_L.png")
    lut = build_lut(union, registry.get("camvid"), "rgb")
    report = remap_paths(lut, [tmp_path / "0001TP_006690_L.png"], tmp_path / "out")
    out = np.asarray(Image.open(tmp_path / "out" / "0001TP_006690_L.png"))
    assert out[:2, :2].tolist() == [[union.index_of("bicyclist"), union.index_of("road")], [255, 255]]
    assert report.files[0].unknown == {(9 << 16) | (9 << 8) | 9: 1}


def test_unknown_values_counted_and_strict(tmp_path, registry, cibm):
    arr = np.full((8, 8), 7, dtype=np.uint8)
    arr[:2, :3] = [[7, 40, 40], [200, 8, 0]]  # 40 and 200 are no Cityscapes labelIds (3 pixels in 64)
    (tmp_path / "src").mkdir()
    Image.fromarray(arr, mode="L").save(tmp_path / "src" / "a_gtFine_labelIds.png")
    lut = build_lut(cibm, registry.get("cityscapes"), "labelIds")
    report = remap_paths(lut, [tmp_path / "src"], tmp_path / "out")
    assert report.ok and report.files[0].unknown == {40: 2, 200: 1}
    out = np.asarray(Image.open(tmp_path / "out" / "a_gtFine_labelIds.png"))
    assert out[0, 1] == 255 and out[1, 0] == 255
    strict = remap_paths(lut, [tmp_path / "src"], tmp_path / "strict", strict=True)
    assert not strict.ok and "unknown raw values: 40 (2 px), 200 (1 px)" in strict.files[0].error
    assert not (tmp_path / "strict" / "a_gtFine_labelIds.png").exists()


def test_bad_files_reported_run_continues(tmp_path, registry, cibm):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.full((4, 4), 7, np.uint8), mode="L").save(src / "good.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    photo = np.zeros((4, 4, 3), np.uint8)
    photo[..., 0] = 200  # not grey: a colour image
    Image.fromarray(photo, mode="RGB").save(src / "photo.png")
    Image.fromarray(np.full((4, 4, 3), 7, np.uint8), mode="RGB").save(src / "grey.png")  # ids saved as grey RGB
    lut = build_lut(cibm, registry.get("cityscapes"), "labelIds")
    report = remap_paths(lut, [src], tmp_path / "out")
    status = {f.src.rsplit("/", 1)[1]: (f.status, f.error) for f in report.files}
    assert status["good.png"][0] == "done" and status["grey.png"][0] == "done"
    assert np.all(np.asarray(Image.open(tmp_path / "out/grey.png")) == cibm.index_of("road"))
    assert status["broken.png"][0] == "error" and "unreadable label (Truncated File Read)" in status["broken.png"][1]
    assert status["photo.png"][0] == "error" and "RGB colour image, but encoding 'labelIds' stores single-channel ids" in status["photo.png"][1]


def test_out_folder_for_another_union_refused(tmp_path, registry, cibm):
    cityscapes_tree(tmp_path / "src")
    lut = build_lut(cibm, registry.get("cityscapes"), "labelIds")
    remap_paths(lut, [tmp_path / "src"], tmp_path / "out")
    other = build_union(registry.get_many(["cityscapes", "idd"]))
    from uniseg.errors import FingerprintMismatch

    with pytest.raises(FingerprintMismatch, match=f"holds labels for union {cibm.fingerprint}"):
        remap_paths(build_lut(other, registry.get("cityscapes"), "labelIds"), [tmp_path / "src"], tmp_path / "out")


def test_remap_cli(tmp_path, registry):
    cityscapes_tree(tmp_path / "src")
    union_dir = tmp_path / "union"
    res = run_cli("labels", "union", "cityscapes", "bdd", "idd", "mapillary", "--out", str(union_dir), "--format", "json")
    assert res.returncode == 0, res.stderr
    args = ["labels", "remap", "--dataset", "cityscapes", "--union", str(union_dir), str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--format", "json"]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    import yaml

    assert data["done"] == 3 and data["failed"] == 0
    assert data["fingerprint"] == yaml.safe_load((union_dir / "union.yaml").read_text())["fingerprint"]
    res = run_cli(*args)
    assert json.loads(res.stdout)["skipped"] == 3
    (tmp_path / "src" / "gtFine" / "train" / "aachen" / "junk_gtFine_labelIds.png").write_bytes(b"junk")
    res = run_cli(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "1 of 4 files failed" in res.stderr and "junk_gtFine_labelIds.png" in res.stderr


def test_remap_dataset_outside_union_reports_lost_classes(tmp_path):
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (0, 128, 192)  # Bicyclist: Cityscapes+BDD have no 'bicyclist'
    rgb[0, 1] = (128, 64, 128)  # Road
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "0001TP_006690_L.png")
    res = run_cli("labels", "remap", "--dataset", "camvid", "--union", "cityscapes,bdd", str(tmp_path / "0001TP_006690_L.png"),
                  "--out", str(tmp_path / "out"), "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["classes_not_in_union"] == ["Bicyclist"]
    out = np.asarray(Image.open(tmp_path / "out" / "0001TP_006690_L.png"))
    # alphabetical: bicycle building bus car fence motorcycle person pole rider road -> 'road' is 9
    assert out[0, 0] == 255 and out[0, 1] == 9


def test_remap_table_cuts_long_file_names_in_the_middle(tmp_path):
    from uniseg.cli.render import middle_cut

    assert middle_cut("abcdefghijklmnopqrstuvwxyz", 10) == "ab…tuvwxyz" and middle_cut("short", 10) == "short"
    src = tmp_path / ("a_very_long_folder_name_that_goes_on_and_on_" * 2)
    src.mkdir()
    for i in range(2):  # two photos whose names differ only near the end
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(src / f"frankfurt_000000_00029{i}_gtFine_labelIds.png")
    res = run_cli("labels", "remap", "--dataset", "cityscapes", "--union", "cityscapes", str(src), "--out", str(tmp_path / "out"),
                  env={"COLUMNS": "120"})
    assert res.returncode == 2
    assert "…" in res.stdout
    assert "000290_gtFine_labelIds.png" in res.stdout and "000291_gtFine_labelIds.png" in res.stdout


def test_lookup_tables_pickle_without_their_dense_tables(registry, cibm):
    import pickle

    lut = build_lut(build_union(registry.get_many(["camvid", "cityscapes"])), registry.get("camvid"), "rgb")
    assert lut.table.nbytes == 1 << 24  # the 2^24 colour table, built on first use
    data = pickle.dumps(lut)
    assert len(data) < 50_000  # workers and DataLoader copies rebuild it themselves
    copy = pickle.loads(data)
    rgb = np.array([[[128, 64, 128], [1, 2, 3]]], dtype=np.uint8)
    assert np.array_equal(copy.apply(rgb), lut.apply(rgb)) and copy == lut
