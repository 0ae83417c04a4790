"""A bad sample file (a label of another size than its image, a truncated PNG) in every command that
reads samples, with DataLoader workers and without: ``--on-bad-file error`` ends the command with
exit 2 and one line naming the file (train writes ``last.pt`` first), never a hang or a worker's
traceback; ``--on-bad-file skip`` leaves the file out and lists it (``metrics.jsonl``, the eval
JSON, the mining and predict reports, the cache manifest)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli
from inprocess import cli
from engine_fixtures import small_world, tiny_config  # noqa: F401  (fixture)

TIMEOUT = 90  # seconds: the hang this file guards against shows as a timeout, not as a stuck test run


def _run(*args: str) -> subprocess.CompletedProcess:
    """``uniseg ARGS`` with a deadline (a command that hangs fails the test instead of blocking it)."""
    import os

    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    env.pop("UNISEG_DEBUG", None)
    try:
        return subprocess.run([sys.executable, "-m", "uniseg.cli.main", *args], capture_output=True, text=True, env=env,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"uniseg {' '.join(args[:2])} still running after {TIMEOUT} s (hung): {exc.stderr!r}")


def _one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and "worker process" not in res.stderr, res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def bad_root(small_world, tmp_path_factory) -> Path:
    """Cityscapes of the small world with one train label halved (32x64 for a 64x128 image) and one truncated."""
    root = tmp_path_factory.mktemp("bad") / "cityscapes"
    shutil.copytree(small_world / "cityscapes", root)
    labels = sorted((root / "gtFine" / "train").rglob("*_labelIds.png"))
    halved, truncated = labels[2], labels[4]  # good images before them: a stopped pass has something to keep
    with Image.open(halved) as im:
        im.resize((im.width // 2, im.height // 2), Image.NEAREST).save(halved)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return root


def _bad_labels(root: Path) -> set[str]:
    """The two damaged label files (the halved one by its size, the truncated one by failing to load)."""
    found = set()
    for p in sorted((root / "gtFine" / "train").rglob("*_labelIds.png")):
        try:
            with Image.open(p) as im:
                im.load()
                if im.size != (128, 64):
                    found.add(str(p))
        except OSError:
            found.add(str(p))
    return found


@pytest.fixture(scope="module")
def checkpoint(small_world, tmp_path_factory) -> Path:
    from uniseg.engine.config import DatasetSpec
    from uniseg.engine.trainer import train

    out = tmp_path_factory.mktemp("bad_ckpt") / "run"
    config = tiny_config(small_world, datasets=[DatasetSpec("cityscapes", str(small_world / "cityscapes"))], iterations=2)
    return train(config, out).last


def _train_args(root: Path, out: Path, workers: int, *extra: str) -> list[str]:
    return ["train", "--datasets", f"cityscapes={root}", "--model", "hrnet_tiny", "--iterations", "12", "--batch-size", "2",
            "--crop", "48x48", "--short-side", "0", "--workers", str(workers), "--log-every", "4", "--checkpoint-every", "100",
            "--out", str(out), "-q", *extra]


# -- train ------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_train_stops_at_a_bad_file_with_one_line_after_writing_last_pt(bad_root, tmp_path, workers):
    import torch

    out = tmp_path / "run"
    line = _one_line_error(_run(*_train_args(bad_root, out, workers)))
    assert any(f in line for f in _bad_labels(bad_root)), line
    assert "fix or remove" in line or "re-extract" in line
    assert f"--resume {out}" in line and "--on-bad-file skip" in line
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert f"iteration {ckpt['iteration']})" in line


def test_a_stopped_run_resumes_with_skip_and_lists_the_files(bad_root, tmp_path):
    out = tmp_path / "run"
    _one_line_error(_run(*_train_args(bad_root, out, 2)))
    res = _run("train", "--resume", str(out), "--on-bad-file", "skip", "--workers", "2", "-q")
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    listed = {f["file"] for r in records if r["type"] == "bad_files" for f in r["files"]}
    assert listed == _bad_labels(bad_root)
    train = [r for r in records if r["type"] == "train"]
    assert train[-1]["iteration"] == 12 and train[-1]["bad_files"] == 2
    assert "skipped 2 bad file(s)" in res.stderr
    for f in listed:
        assert f in res.stderr


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_skip_names_bad_validation_files_and_a_set_without_readable_images_has_no_score(small_world, tmp_path, capsys):
    """Validation under skip: a bad val label is named on the console, in the val record, in the run's
    bad_files record and in the end-of-run list; a set whose every val label is bad scores n/a (not
    0.0), stays out of the mean, and a validation with no readable set never makes a best.pt."""
    roots = {}
    for name in ("cityscapes", "idd"):
        roots[name] = tmp_path / name
        shutil.copytree(small_world / name, roots[name])
    city_val = sorted((roots["cityscapes"] / "gtFine" / "val").rglob("*_labelIds.png"))
    idd_val = sorted((roots["idd"] / "gtFine" / "val").rglob("*_gtFine_labellevel3Ids.png"))
    assert city_val and idd_val
    for p in city_val:
        _truncate(p)

    def train(out: Path) -> tuple[subprocess.CompletedProcess, dict]:
        args = _train_args(roots["cityscapes"], out, 0, "--on-bad-file", "skip", "--val-every", "0")
        args[args.index("--datasets") + 1: args.index("--datasets") + 2] = [f"cityscapes={roots['cityscapes']}", f"idd={roots['idd']}"]
        args.remove("-q")
        args[args.index("--iterations") + 1] = "2"  # validation is what is tested here
        res = cli(capsys, *args)  # in this process: the workers' side is the other tests' (workers 0 here)
        assert res.returncode == 0, res.stderr
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
        (val,) = [r for r in records if r["type"] == "val"]
        assert {f["file"] for r in records if r["type"] == "bad_files" for f in r["files"]} == {str(p) for p in bad}
        for p in bad:
            assert str(p) in res.stderr
        assert f"skipped {len(bad)} bad file(s)" in res.stderr, res.stderr
        return res, val

    bad = city_val
    res, val = train(tmp_path / "run")
    assert {b["file"] for b in val["bad_files"]["cityscapes"]} == {str(p) for p in city_val}
    assert val["val"]["cityscapes"] is None and val["mean_miou"] == val["val"]["idd"] and val["best"]
    assert "cityscapes n/a" in res.stderr and (tmp_path / "run" / "best.pt").is_file()

    for p in idd_val:
        _truncate(p)
    bad = city_val + idd_val
    res, val = train(tmp_path / "run2")
    assert val["val"] == {"cityscapes": None, "idd": None} and val["mean_miou"] is None and val["best"] is False
    assert "mean mIoU n/a" in res.stderr and not (tmp_path / "run2" / "best.pt").exists()


def test_skip_replaces_a_bad_training_sample_by_the_next_of_its_dataset_with_its_seed(bad_root, registry):
    from uniseg.data import SegDataset, TrainTransform
    from uniseg.data.faults import FAULTS, GuardedDataset
    from uniseg.unify.artifact import open_union

    union, _ = open_union(["cityscapes"], registry)
    ds = SegDataset("cityscapes", bad_root, union, transform=TrainTransform(crop=48, short_side=None), registry=registry)
    bad = [i for i, p in enumerate(ds.labels) if p in _bad_labels(bad_root)]
    guarded = GuardedDataset(ds, "skip", replace=True)
    for i in bad:
        item = guarded[(i, 7)]
        j = i + 1
        while j in bad:
            j += 1
        assert item["index"] == j % len(ds)
        assert [f for f, _ in item[FAULTS]] == [ds.labels[k] for k in range(i, j)]
        same = ds[(j % len(ds), 7)]
        assert (item["image"] == same["image"]).all() and (item["label"] == same["label"]).all()
    good = next(i for i in range(len(ds)) if i not in bad)
    assert FAULTS not in guarded[(good, 7)]


# -- eval -------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_eval_error_and_skip(bad_root, checkpoint, tmp_path, workers):
    base = ["eval", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={bad_root}", "--split", "train",
            "--workers", str(workers)]
    line = _one_line_error(_run(*base))
    assert any(f in line for f in _bad_labels(bad_root)) and "--on-bad-file skip" in line
    res = _run(*base, "--on-bad-file", "skip", "--out", str(tmp_path / "scores"), "-f", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "scores" / "cityscapes.json").read_text())
    assert {b["file"] for b in doc["bad_files"]} == _bad_labels(bad_root)
    assert doc["images"] == len(list((bad_root / "gtFine" / "train").rglob("*_labelIds.png"))) - 2
    assert json.loads(res.stdout)[0]["bad_files"] == doc["bad_files"]


# -- relations mine ---------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_mining_error_and_skip(bad_root, checkpoint, tmp_path, workers):
    base = ["relations", "mine", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={bad_root}", "--short-side", "0",
            "--workers", str(workers)]
    line = _one_line_error(_run(*base, "--out", str(tmp_path / "a")))
    assert any(f in line for f in _bad_labels(bad_root)) and "--on-bad-file skip" in line
    res = _run(*base, "--out", str(tmp_path / "b"), "--on-bad-file", "skip", "-f", "json")
    assert res.returncode == 0, res.stderr
    assert {b["file"] for b in json.loads(res.stdout)["bad_files"]} == _bad_labels(bad_root)
    assert (tmp_path / "b" / "similarity.npz").is_file()


def test_mining_resumed_after_a_bad_file_mines_every_good_image_once(bad_root, checkpoint, small_world, registry, tmp_path):
    """Stopped at a bad file, the pass keeps its partial sums; resumed with skip, it ends with the very
    sums of one uninterrupted skip pass."""
    import numpy as np

    from uniseg.data.faults import BadFileError
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.mining import mine

    import torch

    trained = load_trained(checkpoint, torch.device("cpu"))
    pairs = [("cityscapes", str(bad_root))]
    kw = dict(device=torch.device("cpu"), short_side=0, workers=0)
    with pytest.raises(BadFileError):
        mine(trained, pairs, registry, state_dir=tmp_path / "a", **kw)
    resumed = mine(trained, pairs, registry, state_dir=tmp_path / "a", on_bad_file="skip", **kw)
    whole = mine(trained, pairs, registry, state_dir=tmp_path / "b", on_bad_file="skip", **kw)
    assert resumed.resumed > 0
    assert np.array_equal(resumed.pixels, whole.pixels) and np.allclose(resumed.score, whole.score, atol=1e-12)
    assert {b["file"] for b in resumed.bad_files} == {b["file"] for b in whole.bad_files} == _bad_labels(bad_root)


# -- predict ----------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_predict_error_and_skip(bad_root, checkpoint, tmp_path, workers):
    images = tmp_path / "images"
    images.mkdir()
    sources = sorted((bad_root / "leftImg8bit" / "train").rglob("*.png"))[:3]
    for p in sources:
        shutil.copy(p, images / p.name)
    data = sources[0].read_bytes()
    (images / "truncated.png").write_bytes(data[: len(data) // 3])
    base = ["predict", str(images), "--checkpoint", str(checkpoint), "--label-space", "cityscapes", "--workers", str(workers)]
    line = _one_line_error(_run(*base, "--out", str(tmp_path / "a")))
    assert str(images / "truncated.png") in line
    res = _run(*base, "--out", str(tmp_path / "b"), "--on-bad-file", "skip", "-f", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [b["file"] for b in doc["bad_files"]] == [str(images / "truncated.png")]
    assert sorted(p.name for p in (tmp_path / "b").glob("*.png")) == sorted(p.name for p in sources)


# -- data prepare -----------------------------------------------------------------------------


def test_prepare_skip_leaves_bad_files_out_of_a_complete_cache(bad_root, tmp_path):
    base = ["data", "prepare", "--union", "cityscapes", "--dataset", "cityscapes", "--root", str(bad_root), "--short-side", "0",
            "--workers", "2"]
    line = _one_line_error(_run(*base, "--out", str(tmp_path / "a")))
    assert "2 of 9 files failed" in line and "--on-bad-file skip" in line
    res = _run(*base, "--out", str(tmp_path / "b"), "--on-bad-file", "skip", "-f", "json")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["complete"] and len(manifest["bad_files"]) == 2
    assert len(json.loads(res.stdout)["bad_files"]) == 2
    assert all(str(bad_root) in e for e in manifest["bad_files"].values())  # each message names its file


# -- the policy's value -----------------------------------------------------------------------


def test_an_unknown_policy_is_a_one_line_error(bad_root, checkpoint):
    res = run_cli("eval", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={bad_root}", "--on-bad-file", "ignore")
    line = _one_line_error(res)
    assert "--on-bad-file 'ignore'" in line and "skip" in line


# -- the mechanism ----------------------------------------------------------------------------


class _Flaky:
    """Items ``{"image": i}``; the indices in ``bad`` raise as a reader does for a bad file."""

    def __init__(self, n: int, bad: set[int]) -> None:
        self.n, self.bad = n, bad
        self.images = [f"/data/img{i}.png" for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key):
        from uniseg.errors import UnisegError

        i = key[0] if isinstance(key, tuple) else key
        if i in self.bad:
            raise UnisegError(f"{self.images[i]}: unreadable image; re-extract the dataset archive")
        return {"image": float(i), "index": i}


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_gives_up_on_a_run_of_bad_samples_and_collates_the_rest(workers):
    from uniseg.data.faults import MAX_REPLACEMENTS, BadFileError, BadFiles, SampleStream
    from uniseg.engine.inputs import sample_loader

    ok = sample_loader(_Flaky(8, {1, 2}), on_bad_file="skip", replace=True, workers=workers, batch_size=4)
    bad = BadFiles("skip")
    with SampleStream(ok, bad) as batches:
        indices = [b["index"].tolist() for b in batches]
    assert indices == [[0, 3, 3, 3], [4, 5, 6, 7]]  # 1 and 2 replaced by the next readable sample, 3
    assert [b.file for b in bad.files] == ["/data/img1.png", "/data/img2.png"]
    hopeless = sample_loader(_Flaky(40, set(range(40))), on_bad_file="skip", replace=True, workers=workers, batch_size=4)
    with pytest.raises(BadFileError, match=f"{MAX_REPLACEMENTS + 1} samples in a row .* cannot be read"):
        with SampleStream(hopeless, BadFiles("skip")) as batches:
            next(iter(batches))


def test_an_error_in_a_worker_that_escapes_to_exit_does_not_hang_the_interpreter(tmp_path):
    """Any exception out of a loop over workers (here a bug, not a bad file) ends the process: the
    loader's workers, which ignore SIGTERM, are stopped, not waited for at exit."""
    script = tmp_path / "boom.py"
    script.write_text(
        "from uniseg.data.faults import BadFiles, SampleStream\n"
        "from uniseg.engine.inputs import sample_loader\n"
        "class Buggy:\n"
        "    def __len__(self): return 8\n"
        "    def __getitem__(self, i): raise ZeroDivisionError('a bug')\n"
        "stream = SampleStream(sample_loader(Buggy(), workers=1, batch_size=1), BadFiles())\n"
        "for item in stream:\n"
        "    pass\n"
    )
    try:
        res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the interpreter hung at exit with a DataLoader worker alive")
    assert res.returncode == 1 and "ZeroDivisionError" in res.stderr
