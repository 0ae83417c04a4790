"""``similarity.npz``: the writer's bytes and CSV, the reader's checks (one-line errors naming the array)."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest

from relations_fixtures import RIDER_CASE, hand_made
from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.unify import build_union
from uniseg.relations.stats import CSV_COLUMNS, Similarity, read_similarity, write_similarity


@pytest.fixture(scope="module")
def cm(registry):
    return build_union(registry.get_many(["cityscapes", "mapillary"]))


@pytest.fixture()
def sim(cm):
    return hand_made(cm, RIDER_CASE)


def _arrays(sim, **override):
    arrays = {
        "score": sim.score, "cosine": sim.cosine, "pixels": sim.pixels,
        "datasets": np.array(sim.datasets), "classes": np.array(sim.classes), "fingerprint": np.array(sim.fingerprint),
    }
    arrays.update(override)
    return arrays


def test_write_then_read_round_trips_with_stable_bytes(tmp_path, sim, cm):
    write_similarity(tmp_path / "a", sim)
    write_similarity(tmp_path / "b", sim)
    assert (tmp_path / "a" / "similarity.npz").read_bytes() == (tmp_path / "b" / "similarity.npz").read_bytes()
    back = read_similarity(tmp_path / "a")  # the folder or the file
    assert back.datasets == ("cityscapes", "mapillary") and back.classes == tuple(cm.names) and back.fingerprint == cm.fingerprint
    for name in ("score", "cosine", "pixels"):
        assert np.array_equal(getattr(back, name), getattr(sim, name)) and getattr(back, name).dtype == getattr(sim, name).dtype
    assert back.content_fingerprint == sim.content_fingerprint
    with np.load(tmp_path / "a" / "similarity.npz", allow_pickle=False) as npz:  # plain numpy reads it
        assert npz["score"].dtype == np.float64 and npz["pixels"].dtype == np.int64 and npz["fingerprint"].shape == ()


def test_csv_is_tidy_and_exact(tmp_path, sim, cm):
    write_similarity(tmp_path, sim)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "similarity.csv").read_text())))
    assert list(rows[0]) == CSV_COLUMNS
    measured = int((sim.pixels > 0).sum())  # 19 Cityscapes + 65 Mapillary classes, each against 67
    assert measured == 84 and len(rows) == measured * cm.num_classes
    hit = [r for r in rows if (r["dataset"], r["class"], r["other_class"]) == ("mapillary", "bicyclist", "rider")]
    assert len(hit) == 1 and float(hit[0]["score"]) == 0.70 and float(hit[0]["cosine"]) == 2 * 0.70 - 1 and hit[0]["pixels"] == "1000"
    assert not [r for r in rows if r["dataset"] == "cityscapes" and r["class"] == "bicyclist"]  # no pixels, no rows


def test_a_plain_np_savez_file_is_accepted(tmp_path, sim):
    """Whoever wrote it: float32 scores, int32 pixels, bytes strings and NaN rows without pixels."""
    score = sim.score.astype(np.float32)
    pixels = sim.pixels.astype(np.int32)
    score[0, sim.classes.index("bicyclist")] = np.nan  # not a Cityscapes class: no pixels, no measurement
    np.savez(tmp_path / "similarity.npz", **_arrays(sim, score=score, pixels=pixels, datasets=np.array([b"cityscapes", b"mapillary"])))
    back = read_similarity(tmp_path / "similarity.npz")
    assert back.score.dtype == np.float64 and back.pixels.dtype == np.int64 and back.datasets == sim.datasets
    assert (back.score[0, sim.classes.index("bicyclist")] == 0).all()
    assert back.score[1, sim.classes.index("bicyclist"), sim.classes.index("rider")] == pytest.approx(0.70, abs=1e-7)


@pytest.mark.parametrize(
    "override,needle",
    [
        ({"score": None}, "missing array 'score'"),
        ({"score": np.zeros((2, 67, 66))}, "score: shape (2, 67, 66), expected (2, 67, 67)"),
        ({"pixels": np.zeros((2, 67), dtype=np.float64)}, "pixels: expected integers"),
        ({"pixels": -np.ones((2, 67), dtype=np.int64)}, "pixels: negative count -1"),
        ({"fingerprint": np.array("not-a-fingerprint")}, "fingerprint: 'not-a-fingerprint' is not 16"),
        ({"classes": np.array(["road"] * 67)}, "classes: 'road' appears twice"),
        ({"datasets": np.array([1, 2])}, "datasets: expected a non-empty 1-d string array"),
        ({"cosine": np.full((2, 67, 67), 1.5)}, "cosine: value 1.5 at [0, 3, 0] outside [-1, 1]"),
    ],
)
def test_bad_arrays_are_one_line_errors_naming_file_and_array(tmp_path, sim, override, needle):
    arrays = {k: v for k, v in _arrays(sim, **override).items() if v is not None}
    np.savez(tmp_path / "similarity.npz", **arrays)
    with pytest.raises(UnisegError) as exc:
        read_similarity(tmp_path / "similarity.npz")
    msg = str(exc.value)
    assert needle in msg and str(tmp_path / "similarity.npz") in msg and "\n" not in msg


def test_a_score_above_one_or_nan_in_a_measured_row_is_refused(tmp_path, sim):
    for bad in (1.2, np.nan):
        score = sim.score.copy()
        score[1, 4, 44] = bad
        np.savez(tmp_path / "similarity.npz", **_arrays(sim, score=score))
        with pytest.raises(UnisegError, match=r"score: value .* at \[1, 4, 44\] outside \[0, 1\]"):
            read_similarity(tmp_path / "similarity.npz")


def test_unreadable_files_are_one_line_errors(tmp_path, sim):
    with pytest.raises(UnisegError, match="no such file"):
        read_similarity(tmp_path / "nothing.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(UnisegError, match="not a readable .npz"):
        read_similarity(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", **_arrays(sim, classes=np.array(list(sim.classes), dtype=object)))
    with pytest.raises(UnisegError, match="classes: unreadable without pickle"):
        read_similarity(tmp_path / "obj.npz")
    with zipfile.ZipFile(tmp_path / "obj.npz") as zf:  # the file really held a pickled array
        assert "classes.npy" in zf.namelist()


def test_the_file_is_checked_against_its_union(sim, cm, registry):
    valid = sim.valid_for(cm)
    assert np.array_equal(valid, cm.null_mask())
    other = build_union(registry.get_many(["cityscapes", "idd"]))
    with pytest.raises(FingerprintMismatch, match="made for union"):
        sim.valid_for(other)
    pixels = sim.pixels.copy()
    pixels[0, cm.index_of("bicyclist")] = 3  # Cityscapes has no bicyclist class
    stray = Similarity(sim.score, sim.cosine, pixels, sim.datasets, sim.classes, sim.fingerprint, path="x.npz")
    with pytest.raises(UnisegError, match="3 pixels of 'bicyclist' in 'cityscapes', a class outside its label space"):
        stray.valid_for(cm)
    one = Similarity(sim.score[:1], sim.cosine[:1], sim.pixels[:1], ("cityscapes",), sim.classes, sim.fingerprint, path="x.npz")
    with pytest.raises(UnisegError, match="no rows for 'mapillary'"):
        one.valid_for(cm)


def test_dataset_order_may_differ_from_the_union(cm):
    flipped = hand_made(cm, RIDER_CASE, datasets=("mapillary", "cityscapes"))
    assert np.array_equal(flipped.valid_for(cm), cm.null_mask()[::-1])
