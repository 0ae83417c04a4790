"""A full disk, a read-only file system, a file size limit: a write the file system refuses ends the
command with one line naming the file, the device and the fix (exit 2), leaves the previous file
intact, no temp file and no half-made folder (the issue "nothing lost, nothing silently wrong",
parts 3 and 8).

The faults are the kernel's own where a test can get them without root: a full disk is a temp file
whose descriptor points at /dev/full (every write fails with ENOSPC), a size limit is RLIMIT_FSIZE
(EFBIG). A read-only file system (EROFS), which needs a mount, is raised by patched os calls.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO
from inprocess import cli as run_in_process
from engine_fixtures import file_size_limit, small_world, tiny_args, tiny_config  # noqa: F401  (fixture)

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not (FULL.exists() and Path("/proc/self/fd").is_dir()), reason="needs Linux's /dev/full")


class FullDisk:
    """From ``when(path)`` on, uniseg's atomic writes land on a full disk: the temp file's descriptor
    is pointed at /dev/full, so every write to it fails in the kernel with ENOSPC. (Patched:
    ``os.fdopen``, which :func:`uniseg.io.atomic_open` opens its temp files with.)"""

    def __init__(self, monkeypatch, when=lambda path: True) -> None:
        real = os.fdopen
        self.hits: list[str] = []

        def fdopen(fd, *args, **kwargs):
            path = os.readlink(f"/proc/self/fd/{fd}")
            if ".uniseg-" in Path(path).name and when(Path(path)):
                full = os.open(FULL, os.O_WRONLY)
                os.dup2(full, fd)
                os.close(full)
                self.hits.append(path)
            return real(fd, *args, **kwargs)

        monkeypatch.setattr(os, "fdopen", fdopen)


class ReadOnly:
    """Everything under ``root`` is on a read-only file system: creating a folder or opening a file
    for writing there fails with EROFS, as the kernel answers on a read-only mount."""

    def __init__(self, monkeypatch, root: Path) -> None:
        root = Path(root).resolve()

        def under(path) -> bool:
            try:
                Path(os.path.abspath(path)).relative_to(root)
                return True
            except (TypeError, ValueError):
                return False

        def refuse(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

        real_mkdir, real_open = os.mkdir, os.open
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

        def mkdir(path, *args, **kwargs):
            if under(path):
                refuse(path)
            return real_mkdir(path, *args, **kwargs)

        def open_(path, flags, *args, **kwargs):
            if flags & writing and under(path):
                refuse(path)
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(os, "open", open_)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``uniseg ARGS`` in this process (so that the patched faults apply): exit code, stdout, stderr."""
    res = run_in_process(capsys, *args)
    return res.returncode, res.stdout, res.stderr


def _temps(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.name.endswith(".tmp") and ".uniseg-" in p.name]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "OSError" not in err and "RuntimeError" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(small_world, tmp_path_factory) -> Path:
    from uniseg.engine.trainer import train

    return train(tiny_config(small_world, iterations=1, val_split="none"), tmp_path_factory.mktemp("ck") / "run").last


@pytest.fixture(scope="module")
def relations(registry, tmp_path_factory) -> Path:
    """A relations folder of 'uniseg relations labels' (cityscapes + mapillary, a hand-made similarity)."""
    from relations_fixtures import RIDER_CASE, hand_made

    from uniseg.relations.artifact import build_relations, write_relations
    from uniseg.relations.stats import write_similarity
    from uniseg.unify import build_union

    cm = build_union(registry.get_many(["cityscapes", "mapillary"]))
    base = tmp_path_factory.mktemp("rel")
    write_similarity(base / "mine", hand_made(cm, RIDER_CASE))
    from uniseg.relations.stats import read_similarity

    sim = read_similarity(base / "mine" / "similarity.npz")
    write_relations(base / "relations", build_relations(sim, cm, 0.5, source=str(base / "mine" / "similarity.npz")))
    return base / "relations"


# -- part 3: a checkpoint on a full disk -------------------------------------------------------


def test_a_full_disk_at_a_checkpoint_names_the_device_and_keeps_the_last_good_one(small_world, tmp_path, monkeypatch):
    from uniseg.engine.checkpoint import read_checkpoint
    from uniseg.engine.trainer import train
    from uniseg.errors import UnisegError

    out = tmp_path / "run"
    disk = FullDisk(monkeypatch, when=lambda path: (out / "last.pt").exists())  # the disk fills after the first checkpoint
    with pytest.raises(UnisegError) as err:
        train(tiny_config(small_world, iterations=4, checkpoint_every=2, val_split="none"), out)
    msg = str(err.value)
    assert disk.hits and msg.startswith("no space left on ") and f"writing {out / 'last.pt'}" in msg, msg
    assert "needs ~" in msg and " MB" in msg and "\n" not in msg, msg
    assert "iteration 2" in msg and f"--resume {out}" in msg, msg  # and where the run can go on from
    doc = read_checkpoint(out / "last.pt")  # the previous checkpoint is whole
    assert doc["iteration"] == 2 and torch.load(out / "last.pt", weights_only=True)["iteration"] == 2
    assert not _temps(out)


def test_a_file_size_limit_ends_train_with_one_line_and_exit_2(small_world, tmp_path):
    """The kernel's own refusal (RLIMIT_FSIZE, EFBIG) in a real ``uniseg train``: no torch message."""
    out = tmp_path / "run"
    small_files = file_size_limit(1 << 20)  # the first checkpoint of hrnet_tiny is over 2 MB
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)}
    env.pop("UNISEG_DEBUG", None)
    res = subprocess.run([sys.executable, "-m", "uniseg.cli.main", *tiny_args(small_world, out, iterations=1), "--quiet"],
                         capture_output=True, text=True, env=env, preexec_fn=small_files, timeout=300)
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: file too large for ") and f"writing {out}" in line and ".pt (needs ~" in line, line
    assert "ulimit -f" in line and "inline_container" not in res.stderr and "Traceback" not in res.stderr
    assert not (out / "last.pt").exists() and not _temps(out)


def test_an_atomic_write_on_a_full_disk_leaves_the_old_file(tmp_path, monkeypatch):
    from uniseg.errors import UnisegError
    from uniseg.io import atomic_write_text

    path = tmp_path / "a" / "notes.txt"
    atomic_write_text(path, "old")
    FullDisk(monkeypatch)
    with pytest.raises(UnisegError, match=r"^no space left on .* writing .*notes\.txt \(needs ~"):
        atomic_write_text(path, "new" * 100_000)
    assert path.read_text() == "old" and not _temps(tmp_path)
    with pytest.raises(UnisegError, match="no space left"):  # a new file in a new folder: neither is left
        atomic_write_text(tmp_path / "b" / "c" / "x.txt", "x")
    assert not (tmp_path / "b").exists()


# -- every command that writes: one line, exit 2, nothing half-made ------------------------------


def _commands(world: Path, checkpoint: Path, relations: Path, out: Path) -> dict[str, list[str]]:
    cs = str(world / "cityscapes")
    return {
        "labels union": ["labels", "union", "cityscapes", "idd", "--out", str(out)],
        "labels export": ["labels", "export", "-u", "cityscapes,idd", "--to", "npy", "--out", str(out)],
        "labels remap": ["labels", "remap", "-u", "cityscapes,idd", "--dataset", "cityscapes", "--workers", "1", "--out", str(out), f"{cs}/gtFine"],
        "data prepare": ["data", "prepare", "-u", "cityscapes,idd", "--dataset", "cityscapes", "--root", cs, "--workers", "1", "--out", str(out)],
        "predict": ["predict", "--checkpoint", str(checkpoint), "-l", "kitti", "--out", str(out), str(world / "kitti" / "training" / "image_2")],
        "eval": ["eval", "--checkpoint", str(checkpoint), "--datasets", f"kitti={world / 'kitti'}", "--workers", "0", "--out", str(out)],
        "relations mine": ["relations", "mine", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={cs}", "--workers", "0", "--short-side", "0", "--out", str(out)],
        "relations labels": ["relations", "labels", "--similarity", str(relations / "similarity.npz"), "--out", str(out)],
        "relations export": ["relations", "export", "--relations", str(relations), "-f", "graphml", "--out", str(out / "g.graphml")],
        "relations plot": ["relations", "plot", "--relations", str(relations), "--out", str(out / "rel")],
        "models export": ["models", "export", "--checkpoint", str(checkpoint), "--out", str(out)],
    }


ONE_GO = ("labels union", "labels export", "relations labels", "relations export", "relations plot", "eval")  # all or nothing


@pytest.mark.parametrize("command", list(_commands(Path("w"), Path("c"), Path("r"), Path("o"))))
def test_a_full_disk_gives_one_line_naming_the_file_and_leaves_no_half_made_folder(
        command, small_world, checkpoint, relations, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = _commands(small_world, checkpoint, relations, out)[command]
    writes: list[Path] = []

    def after_the_first(path: Path) -> bool:  # a command that writes several files fills the disk half way
        if tmp_path not in path.parents:
            return False
        writes.append(path)
        return len(writes) > (0 if command == "relations export" else 1)

    FullDisk(monkeypatch, when=after_the_first)
    code, _, err = cli(capsys, *args)
    line = _one_line(err)
    assert code == 2 and line.startswith("error: no space left on ") and f"writing {out}" in line, line
    assert "free some space" in line, line
    assert not _temps(tmp_path)
    if command in ONE_GO:
        assert not out.exists(), sorted(out.rglob("*"))


@pytest.mark.parametrize("command", ["labels union", "labels export", "relations labels", "relations export", "relations plot", "eval",
                                     "predict", "data prepare", "models export"])
def test_a_read_only_file_system_gives_one_line_before_any_work(
        command, small_world, checkpoint, relations, tmp_path, monkeypatch, capsys):
    from uniseg.engine import evaluate

    ro = tmp_path / "ro"
    ro.mkdir()
    out = ro / "out"
    args = _commands(small_world, checkpoint, relations, out)[command]
    monkeypatch.setattr(evaluate, "evaluate_set", lambda *a, **k: pytest.fail("scored before finding --out read-only"))
    ReadOnly(monkeypatch, ro)
    code, _, err = cli(capsys, *args)
    line = _one_line(err)
    assert code == 2 and "read-only file system" in line and str(out) in line, line
    assert "write elsewhere" in line or "choose a folder you can write to" in line, line
    assert not out.exists()


def test_a_full_disk_stops_remap_at_the_first_file_and_it_resumes(small_world, tmp_path, monkeypatch, capsys):
    """A full disk is no fault of one file: the run stops at once (not 8 'failed' files), keeps its
    record, and the same command finishes it once there is space."""
    out = tmp_path / "out"
    args = ["labels", "remap", "-u", "cityscapes,idd", "--dataset", "cityscapes", "--workers", "1", "--out", str(out),
            str(small_world / "cityscapes" / "gtFine")]
    labels: list[Path] = []

    def after_three(path: Path) -> bool:  # the disk fills after three label PNGs (the small record still fits)
        if ".png.uniseg-" not in path.name:
            return False
        labels.append(path)
        return len(labels) > 3

    FullDisk(monkeypatch, when=after_three)
    code, _, err = cli(capsys, *args)
    assert code == 2 and _one_line(err).startswith("error: no space left on "), err
    monkeypatch.undo()
    code, out_json, err = cli(capsys, *args, "--format", "json")
    assert code == 0, err
    doc = json.loads(out_json)
    total = len(list((small_world / "cityscapes" / "gtFine").rglob("*_labelIds.png")))
    assert (doc["skipped"], doc["done"], doc["failed"]) == (3, total - 3, 0), doc
