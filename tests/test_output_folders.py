"""Outputs: normal file modes, resume that notices changed sources, no litter, and one-line
errors for output folders that cannot work (issue 9, items 3 and 5)."""

from __future__ import annotations

import contextlib
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

import fixtures_layouts as fx
from conftest import run_cli
from uniseg.data.cache import prepare_cache, read_manifest
from uniseg.errors import UnisegError
from uniseg.io import LOCK_FILE, atomic_write_text, clean_stale_temps, output_folder
from uniseg.unify.artifact import open_union
from uniseg.unify.lut import build_lut
from uniseg.unify.remap import MARKER, remap_paths


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root) -> set[int]:
    return {stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}


@pytest.fixture()
def cs(tmp_path):
    return fx.make_cityscapes(tmp_path / "cs", labels="all")


@pytest.fixture()
def union(registry):
    return open_union(["cityscapes", "mapillary"], registry)[0]


def _remap(registry, union, src, out, **kw):
    lut = build_lut(union, registry.get("cityscapes"), "labelIds")
    return remap_paths(lut, [src], out, space=registry.get("cityscapes"), **kw)


# -- item 3: modes ----------------------------------------------------------------------------


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_every_output_gets_the_mode_the_umask_gives(tmp_path, registry, union, cs, mask, mode):
    from uniseg.data.synth import synthesize
    from uniseg.unify.artifact import write_union_artifact

    with umask(mask):
        _remap(registry, union, tmp_path / "cs/gtFine", tmp_path / "remapped")
        prepare_cache(union, registry.get("cityscapes"), tmp_path / "cs", tmp_path / "cache", short_side=0)
        write_union_artifact(union, list(open_union(["cityscapes", "mapillary"], registry)[1].values()), tmp_path / "union")
        synthesize(tmp_path / "world", images=1, size=(32, 64), datasets=["kitti"], registry=registry)
    for folder in ("remapped", "cache", "union", "world"):
        assert _modes(tmp_path / folder) == {mode}, folder


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "a")
    os.chmod(path, 0o640)
    atomic_write_text(path, "b")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "b"


# -- item 5: resume notices changed sources ----------------------------------------------------


def test_remap_redoes_outputs_whose_source_changed(tmp_path, registry, union, cs):
    src, out = tmp_path / "cs/gtFine/train", tmp_path / "out"
    first = _remap(registry, union, src, out)
    assert first.count("done") == 2
    changed = tmp_path / "cs" / cs.labels[0]
    Image.fromarray(fx.stripes((26, 26, 7)), mode="L").save(changed)  # same size on disk is possible: mtime tells
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 5_000_000_000))
    again = _remap(registry, union, src, out)
    assert (again.count("done"), again.count("skipped")) == (1, 1)
    assert next(f for f in again.files if f.status == "done").src == str(changed)
    got = np.asarray(Image.open(out / cs.labels[0].removeprefix("gtFine/train/")))
    assert np.array_equal(got, fx.stripes((union.index_of("car"), union.index_of("car"), union.index_of("road"))))
    doc = json.loads((out / MARKER).read_text())
    rec = doc["files"][cs.labels[0].removeprefix("gtFine/train/")]
    assert (rec["size"], rec["mtime_ns"]) == (changed.stat().st_size, changed.stat().st_mtime_ns)
    # a source that now fails drops its stale output
    Image.fromarray(fx.photo(2)).save(changed)
    rep = _remap(registry, union, src, out)
    assert rep.count("error") == 1 and not (out / cs.labels[0].removeprefix("gtFine/train/")).exists()


def test_prepare_redoes_files_whose_image_or_label_changed(tmp_path, registry, union, cs):
    space, root, out = registry.get("cityscapes"), tmp_path / "cs", tmp_path / "cache"
    prepare_cache(union, space, root, out, short_side=0)
    img = root / cs.images[1]
    Image.fromarray(fx.photo(77)).save(img)
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 5_000_000_000))
    rep = prepare_cache(union, space, root, out, short_side=0)
    assert (rep.done, rep.skipped) == (1, 2)
    rec = read_manifest(out)["files"][cs.images[1]]
    assert rec["source"]["image"] == [img.stat().st_size, img.stat().st_mtime_ns]


def test_remap_resumes_after_an_interruption_in_parallel(tmp_path, registry, union):
    fx.make_cityscapes(tmp_path / "cs", labels="all", per_city=6)
    seen = []

    def stop(res):
        seen.append(res)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _remap(registry, union, tmp_path / "cs/gtFine", tmp_path / "out", workers=2, on_result=stop)
    recorded = json.loads((tmp_path / "out" / MARKER).read_text())["files"]
    assert len(recorded) == 3  # flushed on the way out
    rep = _remap(registry, union, tmp_path / "cs/gtFine", tmp_path / "out", workers=2)
    assert (rep.count("skipped"), rep.count("done")) == (3, 15)
    assert not [p for p in (tmp_path / "out").rglob("*.tmp")]


def test_stale_temp_files_are_cleaned_and_nothing_else(tmp_path, registry, union, cs):
    out = tmp_path / "out"
    _remap(registry, union, tmp_path / "cs/gtFine", out)
    stale = out / "train/aachen/.aachen_000000_000019_gtFine_labelIds.png.uniseg-k2j4h1.tmp"
    stale.write_bytes(b"half a png")
    mine = out / ".my-notes.tmp"
    mine.write_text("keep")
    _remap(registry, union, tmp_path / "cs/gtFine", out)
    assert not stale.exists() and mine.read_text() == "keep"
    cache = tmp_path / "cache"
    prepare_cache(union, registry.get("cityscapes"), tmp_path / "cs", cache, short_side=0)
    (cache / "images/.x.jpg.uniseg-abc.tmp").write_bytes(b"")
    prepare_cache(union, registry.get("cityscapes"), tmp_path / "cs", cache, short_side=0)
    assert not (cache / "images/.x.jpg.uniseg-abc.tmp").exists()
    assert clean_stale_temps(cache) == 0


def test_out_equal_to_or_inside_a_source_is_refused(tmp_path, registry, union, cs):
    src = tmp_path / "cs/gtFine"
    for out in (src, src / "unified"):
        with pytest.raises(UnisegError, match=r"--out .*(is the source folder|is inside the source folder)"):
            _remap(registry, union, src, out)
    assert not (src / MARKER).exists() and not (src / "unified").exists() and not (src / LOCK_FILE).exists()


def test_out_naming_a_file_is_a_one_line_error_everywhere(tmp_path, cs):
    afile = tmp_path / "taken.txt"
    afile.write_text("x")
    for args in (
        ["labels", "remap", "--dataset", "cityscapes", "--union", "cityscapes", str(tmp_path / "cs/gtFine"), "--out", str(afile)],
        ["data", "prepare", "--union", "cityscapes", "--dataset", "cityscapes", "--root", str(tmp_path / "cs"), "--out", str(afile)],
        ["data", "synth", "--out", str(afile), "--dataset", "kitti", "--images", "1"],
    ):
        res = run_cli(*args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, (args, res.stderr)
        assert f"--out {afile}: is a file, not a folder" in res.stderr


def test_a_folder_that_cannot_be_written_is_a_one_line_error(tmp_path, monkeypatch, registry, union, cs):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    real_open = os.open

    def deny(path, flags, *args, **kw):  # what a non-root user meets in a read-only folder (root ignores modes)
        if str(path).startswith(str(ro)) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", deny)
    try:
        with pytest.raises(UnisegError, match=r"--out .*ro: cannot write there \(permission denied\); choose a folder you can write to"):
            _remap(registry, union, tmp_path / "cs/gtFine", ro)
        with pytest.raises(UnisegError, match="cannot write there"):
            prepare_cache(union, registry.get("cityscapes"), tmp_path / "cs", ro / "cache", short_side=0)
    finally:
        ro.chmod(0o755)


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, registry, union, cs):
    with output_folder(tmp_path / "out"):
        with pytest.raises(UnisegError, match="another uniseg run is writing there"):
            _remap(registry, union, tmp_path / "cs/gtFine", tmp_path / "out")
    assert _remap(registry, union, tmp_path / "cs/gtFine", tmp_path / "out").ok
