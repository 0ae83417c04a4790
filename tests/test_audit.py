"""``uniseg labels audit``: class shares recounted with numpy, union facts, planted problems, the CLI and the chart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from engine_fixtures import small_world  # noqa: F401  (fixture)
from PIL import Image

import fixtures_layouts as fx
from uniseg.data.audit import RARE_SHARE, audit_datasets, count_label, value_counts
from uniseg.data.audit_plot import chart_size
from uniseg.data.layout import discover
from uniseg.errors import UnisegError
from uniseg.labelfiles import LabelFileError
from uniseg.unify.apply import read_unified
from uniseg.unify.lut import build_dataset_lut

WORLD = ("cityscapes", "idd", "mapillary", "kitti", "camvid")  # ids (L), ids (L), paletted (P), ids, colours


def numpy_recount(space, root: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Pixels and images per class of every paired label file, straight from the PNGs with numpy
    (the registry's raw values, no uniseg decoder or lookup table): the audit must agree."""
    found = discover(space, root)
    enc = space.encoding(found.encoding)
    pixels = np.zeros(space.num_classes, dtype=np.int64)
    images = np.zeros(space.num_classes, dtype=np.int64)
    total = 0
    for ref in found.samples():
        arr = np.array(Image.open(root / ref.label))
        if enc.kind == "rgb":
            arr = arr[..., :3].reshape(-1, 3)
            ids = np.full(len(arr), -1)
            for v in enc.values:
                if v.cls is not None:
                    ids[(arr == np.array(v.value)).all(axis=1)] = v.cls
        else:
            ids = enc.class_lut().astype(np.int64)[arr.ravel()]
            ids[ids == 255] = -1
        per = np.bincount(ids[ids >= 0], minlength=space.num_classes)
        pixels += per
        images += per > 0
        total += arr.shape[0] if enc.kind == "rgb" else arr.size
    return pixels, images, total


@pytest.fixture(scope="module")
def world_report(small_world, registry):  # noqa: F811
    return audit_datasets([(registry.get(n), small_world / n) for n in WORLD], workers=2)


def test_shares_equal_a_numpy_recount_of_the_synthetic_world(world_report, small_world, registry):  # noqa: F811
    rep = world_report
    assert [d.dataset for d in rep.datasets] == list(WORLD)
    union_px = {c.name: 0 for c in rep.union.classes}
    for d in rep.datasets:
        space = registry.get(d.dataset)
        pixels, images, total = numpy_recount(space, small_world / d.dataset)
        assert d.files == d.files_of == 9 and d.pixels == total == 9 * 64 * 128
        assert [c.pixels for c in d.classes] == pixels.tolist()
        assert [c.images for c in d.classes] == images.tolist()
        assert [c.share for c in d.classes] == pytest.approx((pixels / total).tolist(), abs=1e-8)
        assert [c.name for c in d.classes if c.rare] == [c.name for c, n in zip(space.classes, pixels) if n < RARE_SHARE * total]
        assert d.void_pixels + sum(c.pixels for c in d.classes) == total and d.unknown == []
        for c, n in zip(space.classes, pixels):
            union_px[c.unified] += int(n)
    assert {c.name: c.pixels for c in rep.classes} == union_px
    grand = sum(d.pixels for d in rep.datasets)
    assert [c.share for c in rep.classes] == pytest.approx([union_px[c.name] / grand for c in rep.union.classes], abs=1e-8)


def test_union_facts_of_the_synthetic_world(world_report):
    rep = world_report
    by = {c.name: c for c in rep.classes}
    # taught by one dataset only: pixels in exactly one dataset; untaught: none anywhere
    assert all(len(c.taught_by) == 1 for c in rep.one_teacher) and all(c.pixels == 0 for c in rep.untaught)
    assert "autorickshaw" in [c.name for c in rep.one_teacher] and by["autorickshaw"].taught_by == ["idd"]
    assert by["road"].taught_by == list(WORLD) and by["road"].per_dataset["camvid"]["pixels"] > 0
    # null: the union classes each label space lacks (Null BCE), as a share of the union
    null = rep.union.null_mask()
    for i, d in enumerate(rep.datasets):
        assert len(d.null_classes) == int((~null[i]).sum())
        assert d.null_share == pytest.approx(1 - null[i].mean(), abs=1e-8)
        assert all(by[n].per_dataset[d.dataset] is None for n in d.null_classes)
    # one unified name, members that differ: CamVid's own palette and its names
    mism = {m.name: m for m in rep.mismatches}
    assert mism["car"].differs == ["colour"] and mism["car"].members["camvid"]["colours"] == [[64, 0, 128]]
    assert mism["person"].differs == ["colour", "name"] and mism["person"].members["camvid"]["names"] == ["Pedestrian"]
    assert "road" not in mism or "name" not in mism["road"].differs
    data = rep.to_dict()
    assert set(data) >= {"datasets", "union", "sample", "rare_share", "files", "problems"}
    assert set(data["union"]) >= {"classes", "one_dataset_only", "untaught", "null_share", "mismatches", "name_collisions", "rare"}
    json.dumps(data)  # plain data


def test_parallel_and_serial_passes_agree(small_world, registry, world_report):  # noqa: F811
    serial = audit_datasets([(registry.get(n), small_world / n) for n in WORLD], workers=1)
    assert serial.to_dict() == world_report.to_dict()


def test_count_label_agrees_with_the_reader_every_command_uses(tmp_path, registry):
    """One decoder: the audit's histogram path gives read_unified's classes, file by file."""
    cases = [("cityscapes", fx.make_cityscapes), ("mapillary", fx.make_mapillary), ("camvid", fx.make_camvid),
             ("idd", lambda r: fx.make_idd(r, mode="polygons"))]
    for name, make in cases:
        root = tmp_path / name
        built = make(root)
        space = registry.get(name)
        found = discover(space, root)
        enc = space.encoding(found.encoding)
        lut = build_dataset_lut(space, enc)
        for rel in built.labels:
            got = count_label(root / rel, lut, found.format, enc)
            ref = read_unified(root / rel, lut, found.format, enc)
            assert got.classes.tolist() == ref.image.histogram(), (name, rel)
            assert got.unknown == ref.unknown and got.pixels == ref.pixels


def test_planted_problems_are_found_with_their_files(tmp_path, registry):
    kitti = fx.make_kitti(tmp_path / "kitti", n=3, test=0)
    planted = kitti.labels[1]
    Image.fromarray(fx.stray(fx.stripes(fx.KITTI_VALUES), 201, 5), mode="L").save(tmp_path / "kitti" / planted)
    bdd = fx.make_bdd(tmp_path / "bdd", counts={"train": 3, "val": 1})
    (tmp_path / "bdd" / bdd.images[0]).unlink()  # its label is now a label without image
    (tmp_path / "bdd" / bdd.labels[1]).unlink()  # its image is now an image without label
    camvid = fx.make_camvid(tmp_path / "camvid")
    (tmp_path / "camvid" / camvid.labels[0]).write_bytes(b"garbage")
    Image.fromarray(fx.stray(fx.stripes(fx.CAMVID_COLOURS), (10, 20, 30), 3), mode="RGB").save(tmp_path / "camvid" / camvid.labels[2])
    rep = audit_datasets([(registry.get(n), tmp_path / n) for n in ("kitti", "bdd", "camvid")])
    k, b, c = rep.datasets
    assert [(u.value, u.pixels, u.files) for u in k.unknown] == [(201, 5, [planted])]
    assert k.unknown_pixels == 5 and k.pixels == 3 * fx.SIZE[0] * fx.SIZE[1]
    assert b.orphan_labels == [bdd.labels[0]] and b.missing_labels == [bdd.images[1]]
    assert b.files == b.files_of == 2  # the paired files only
    assert [e["file"] for e in c.unreadable] == [camvid.labels[0]]
    assert [(u.value, u.pixels, u.files) for u in c.unknown] == [((10, 20, 30), 3, [camvid.labels[2]])]
    assert rep.problems() == [
        "kitti: 1 unknown raw values (201)",
        "bdd: 1 images without labels", "bdd: 1 labels without images",
        "camvid: 1 unknown raw values ((10,20,30))", "camvid: 1 unreadable label files",
    ]
    split = {s.split: s for s in b.splits}
    assert (split["train"].images, split["train"].expected, split["train"].matches) == (2, 7000, False)


def test_polygons_jpeg_labels_and_sampling(tmp_path, registry):
    fx.make_idd(tmp_path / "idd", mode="polygons", counts={"train": 3})
    cs = fx.make_cityscapes(tmp_path / "cityscapes", cities={"train": ["aachen"]}, per_city=4)
    (tmp_path / "cityscapes" / cs.labels[3]).write_bytes(fx.jpeg_bytes(fx.CITYSCAPES_VALUES))  # a JPEG named .png
    rep = audit_datasets([(registry.get("idd"), tmp_path / "idd"), (registry.get("cityscapes"), tmp_path / "cityscapes")])
    idd, city = rep.datasets
    assert [(u.value, u.pixels, len(u.files)) for u in idd.unknown] == [("hovercraft", 3, 3)]  # polygons, not pixels
    assert idd.unknown_pixels == 0
    assert [e["file"] for e in city.not_labels] == [cs.labels[3]] and city.pixels == 3 * fx.SIZE[0] * fx.SIZE[1]
    one = audit_datasets([(registry.get("cityscapes"), tmp_path / "cityscapes")], sample=2).datasets[0]
    assert (one.files, one.files_of) == (2, 4)


def test_bad_input_is_refused_before_reading(tmp_path, registry):
    fx.make_kitti(tmp_path / "kitti")
    cs = registry.get("cityscapes")
    with pytest.raises(UnisegError, match="no such folder"):
        audit_datasets([(cs, tmp_path / "nope")])
    with pytest.raises(UnisegError, match="no Cityscapes layout found"):
        audit_datasets([(cs, tmp_path / "kitti")])
    with pytest.raises(UnisegError, match="named twice"):
        audit_datasets([(registry.get("kitti"), tmp_path / "kitti")] * 2)
    with pytest.raises(UnisegError, match="no datasets"):
        audit_datasets([])
    with pytest.raises(UnisegError, match="only unlabelled splits"):
        audit_datasets([(registry.get("kitti"), tmp_path / "kitti")], split="test")
    assert [s.split for s in audit_datasets([(registry.get("kitti"), tmp_path / "kitti")], split="train").datasets[0].splits] == ["train"]
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "manifest.json").write_text("{}")
    with pytest.raises(UnisegError, match="'data prepare' cache"):
        audit_datasets([(registry.get("kitti"), tmp_path / "cache")])
    with pytest.raises(LabelFileError):
        count_label(tmp_path / "missing.png", build_dataset_lut(cs))


def test_cli_json_and_chart(small_world, tmp_path):  # noqa: F811
    png = tmp_path / "charts" / "audit.png"
    args = [f"{n}={small_world / n}" for n in ("cityscapes", "mapillary", "camvid")]
    res = run_cli("labels", "audit", "--datasets", *args, "--sample", "4", "--workers", "2", "--chart", str(png), "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [d["dataset"] for d in data["datasets"]] == ["cityscapes", "mapillary", "camvid"]
    d0 = data["datasets"][0]
    assert set(d0) >= {"classes", "void", "unknown", "missing_labels", "orphan_labels", "splits", "null", "rare", "problems"}
    assert (d0["files"], d0["files_of"], data["sample"], data["chart"]) == (4, 9, 4, str(png))
    assert {"name", "share", "images", "rare", "taught_by", "in_spaces", "datasets"} <= set(data["union"]["classes"][0])
    k = data["union"]["num_classes"]
    img = Image.open(png)
    assert img.format == "PNG" and img.size == chart_size(k)
    rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
    colours = {tuple(c) for c in np.unique(rgb, axis=0)}
    assert len(colours) > 50 and (rgb != 255).any(axis=1).mean() > 0.02  # drawn, not blank
    for marker in ((31, 119, 180), (255, 127, 14), (44, 160, 44)):  # one tab10 colour per dataset
        assert marker in colours


def test_cli_table_strict_and_one_line_errors(tmp_path):
    fx.make_kitti(tmp_path / "kitti")
    built = fx.make_bdd(tmp_path / "bdd")
    (tmp_path / "bdd" / built.labels[0]).unlink()
    ok = run_cli("labels", "audit", "--datasets", f"kitti={tmp_path / 'kitti'}", f"bdd={tmp_path / 'bdd'}", "--workers", "1")
    assert ok.returncode == 0, ok.stderr
    for text in ("Audit of 2 datasets", "Splits against the registry", "Union classes", "images without labels", built.images[0]):
        assert text in ok.stdout
    strict = run_cli("labels", "audit", "-d", f"bdd={tmp_path / 'bdd'}", "--strict", "-f", "json")
    assert strict.returncode == 2 and strict.stderr.strip().splitlines() == ["error: the audit found problems (--strict): bdd: 1 images without labels"]
    for args, needle in [
        (["-d", f"cityscapes={tmp_path / 'nope'}"], "no such folder"),
        (["-d", f"nosuch={tmp_path / 'kitti'}"], "unknown label space 'nosuch'"),
        (["-d", "kitti"], "expected NAME=ROOT"),
        ([], "no datasets given"),
        (["-d", f"kitti={tmp_path / 'kitti'}", "--chart", str(tmp_path / "chart.jpg")], "give a file name ending in .png"),
    ]:
        res = run_cli("labels", "audit", *args)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr


@pytest.mark.parametrize("dtype,high,runs", [(np.uint8, 256, True), (np.uint8, 4, False), (np.uint16, 60000, True), (np.uint32, 1 << 24, True)])
def test_value_counts_equal_numpy_unique(dtype, high, runs):
    """Run-length counting (label images) and the per-pixel fallback (noise) both equal ``np.unique``."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, high, 400)
    arr = np.repeat(base, rng.integers(1, 60, 400)) if runs else rng.integers(0, high, 3001)
    arr = arr.astype(dtype)
    for start in (0, 1, 3, 7, len(arr) - 9, len(arr) - 1, len(arr)):  # every length modulo 8, one and none
        part = arr[start:]
        keys, counts = value_counts(part)
        want_keys, want_counts = np.unique(part, return_counts=True)
        assert keys.tolist() == want_keys.tolist() and counts.tolist() == want_counts.tolist()


def test_the_docs_open_with_the_command_and_name_its_options():
    import typer

    from uniseg.cli.labels import app

    docs = (Path(__file__).resolve().parents[1] / "docs" / "audit.md").read_text(encoding="utf-8")
    first_block = docs.split("```bash\n", 1)[1].split("```", 1)[0]
    assert first_block.startswith("uniseg labels audit --datasets ")
    command = typer.main.get_group(app).commands["audit"]
    for param in command.params:
        longest = max(getattr(param, "opts", []), key=len, default="")
        if longest.startswith("--") and longest != "--help":
            assert f"`{longest}" in docs, longest
