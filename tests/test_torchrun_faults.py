"""A bad file met by one process under torchrun (two CPU processes, gloo): in training, validation,
eval and relation mining every process stops at the same point, none is left waiting in an
all-reduce for the one that left (before, the other process died on gloo's "connection closed" or
hung), the process that met the file names it and the others say that another one met it.

Which process meets the file is fixed by the data: each process takes every other image (eval,
mining, validation) or the sampler's seeded order (training), so each test truncates a label one
given process meets first (mostly process 1: process 0, the one that writes, was left waiting)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine_fixtures import file_size_limit, small_world, tiny_config  # noqa: F401  (fixture)

TIMEOUT = 90  # seconds: a process left waiting shows as a timeout, not as a stuck test run
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "uniseg"]


@pytest.fixture(scope="module")
def checkpoint(small_world, tmp_path_factory) -> Path:
    from uniseg.engine.config import DatasetSpec
    from uniseg.engine.trainer import train

    out = tmp_path_factory.mktemp("ckpt") / "run"
    config = tiny_config(small_world, datasets=[DatasetSpec("cityscapes", str(small_world / "cityscapes"))], iterations=2)
    return train(config, out).last


def _with_truncated_label(small_world: Path, tmp_path: Path, split: str, which: int) -> tuple[Path, Path, bytes]:
    """A copy of the small world's Cityscapes with label ``which`` (sorted) of ``split`` truncated."""
    root = tmp_path / "cityscapes"
    shutil.copytree(small_world / "cityscapes", root)
    label = sorted((root / "gtFine" / split).rglob("*_labelIds.png"))[which]
    whole = label.read_bytes()
    label.write_bytes(whole[:200])
    return root, label, whole


def _torchrun(*args: str, preexec_fn=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    env.pop("UNISEG_DEBUG", None)
    try:
        return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, env=env, timeout=TIMEOUT, preexec_fn=preexec_fn)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"torchrun still running after {TIMEOUT} s (a process waits for one that left): {exc.stderr!r}")


def _both_lines(res: subprocess.CompletedProcess, label: Path) -> tuple[str, str]:
    """Both processes' one-line errors: the one naming ``label``, and the other."""
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and not any("RuntimeError" in line for line in errors), res.stderr  # not gloo's "connection closed"
    named, other = sorted(errors, key=lambda line: str(label) not in line)
    assert str(label) in named and str(label) not in other and "another process met a bad file" in other, errors
    return named, other


def _train_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--datasets", f"cityscapes={root}", "--model", "hrnet_tiny", "--iterations", "12", "--batch-size", "4",
            "--crop", "48x48", "--short-side", "0", "--workers", "0", "--log-every", "4", "--checkpoint-every", "100",
            "--out", str(out), "-q", *extra]


def test_training_stops_every_process_and_rank_0_writes_last_pt(small_world, tmp_path):
    """Under --on-bad-file skip the sample is replaced, and metrics.jsonl (rank 0 writes it) lists
    the file process 1 met; it used to list rank 0's alone."""
    import torch

    root, label, _ = _with_truncated_label(small_world, tmp_path, "train", 0)  # process 1's, with seed 0
    out = tmp_path / "run"
    named, other = _both_lines(_torchrun(*_train_args(root, out)), label)
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["iteration"] < 12 and ckpt["sampler"]["world_size"] == 2
    wrote = f"wrote {out / 'last.pt'} (iteration {ckpt['iteration']})"
    assert f"rank 0 {wrote}" in named and wrote in other  # process 1 met it; rank 0 wrote
    assert f"--resume {out}" in named and f"--resume {out}" in other
    skip = tmp_path / "skip"  # the same run with skip, to the step where process 1 met the file (process 0 has not)
    res = _torchrun(*_train_args(root, skip, "--on-bad-file", "skip", "--iterations", str(ckpt["iteration"] + 1)))
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in (skip / "metrics.jsonl").read_text().splitlines()]
    listed = [f["file"] for r in records if r.get("type") == "bad_files" for f in r["files"]]
    assert listed == [str(label)], records
    assert [r["bad_files"] for r in records if r.get("type") == "train"][-1] == 1


def test_a_checkpoint_rank_0_cannot_write_stops_every_process_with_one_line_each(small_world, tmp_path):
    """A file size limit (RLIMIT_FSIZE: the kernel refuses the checkpoint with EFBIG) under torchrun:
    rank 0 names the file and the fix, the other process says rank 0 could not write it, both exit
    2 at the same step. Before, the other process ran on into the next step's all-reduce after rank
    0 had left, and died on gloo's "connection closed" with a traceback."""
    small_files = file_size_limit(1 << 20)  # hrnet_tiny's checkpoint is over 2 MB; the run's other files are far smaller
    out = tmp_path / "run"
    res = _torchrun(*_train_args(small_world / "cityscapes", out, "--checkpoint-every", "4"), preexec_fn=small_files)
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "RuntimeError" not in res.stderr, res.stderr  # not gloo's "connection closed"
    assert not any('File "' in line and f"{os.sep}uniseg{os.sep}" in line for line in res.stderr.splitlines()), res.stderr  # no worker traceback (torchrun's own summary is one)
    own, other = sorted(errors, key=lambda line: line.startswith("error: rank 0 could not write"))
    assert own.startswith("error: file too large for ") and "ulimit -f" in own, own
    assert other.startswith(f"error: rank 0 could not write {out / 'last.pt'} (its own line says why)"), other
    assert not (out / "last.pt").exists()


def test_validation_stops_every_process_and_rank_0_writes_last_pt(small_world, tmp_path):
    import torch

    # the one val image is process 0's (each scores every other one): process 1, with none, used to wait for it
    root, label, _ = _with_truncated_label(small_world, tmp_path, "val", 0)
    out = tmp_path / "run"
    named, other = _both_lines(_torchrun(*_train_args(root, out, "--val-every", "4")), label)
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["iteration"] == 4  # the first validation
    assert f"wrote {out / 'last.pt'} (iteration 4)" in named and f"rank 0 wrote {out / 'last.pt'} (iteration 4)" in other


def test_eval_stops_every_process(checkpoint, small_world, tmp_path):
    root, label, _ = _with_truncated_label(small_world, tmp_path, "train", 1)
    _both_lines(_torchrun("eval", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={root}", "--split", "train",
                          "--workers", "0"), label)


def test_mining_stops_every_process_and_goes_on_from_its_partial_sums(checkpoint, small_world, tmp_path):
    """Stopped by process 1's bad file, the same command with --on-bad-file skip goes on from every
    process's partial sums, and the report rank 0 prints lists process 1's file."""
    root, label, _ = _with_truncated_label(small_world, tmp_path, "train", 5)  # process 1's third image
    args = ["relations", "mine", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={root}", "--short-side", "0",
            "--workers", "0", "--out", str(tmp_path / "mine"), "-f", "json"]
    named, _ = _both_lines(_torchrun(*args), label)
    assert "partial sums are kept" in named
    res = _torchrun(*args, "--on-bad-file", "skip")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["processes"] == 2 and doc["resumed_images"] >= 3 and (tmp_path / "mine" / "similarity.npz").is_file()
    assert [b["file"] for b in doc["bad_files"]] == [str(label)], doc["bad_files"]  # process 1's, in rank 0's report


def test_eval_skip_reports_every_process_bad_files(checkpoint, small_world, tmp_path):
    """Under --on-bad-file skip, the scores rank 0 prints list the file process 1 left out (they used
    to list rank 0's share only)."""
    root, label, _ = _with_truncated_label(small_world, tmp_path, "train", 1)  # process 1's first image
    res = _torchrun("eval", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={root}", "--split", "train",
                    "--workers", "0", "--on-bad-file", "skip", "-f", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    (row,) = doc["datasets"] if isinstance(doc, dict) else doc
    assert [b["file"] for b in row["bad_files"]] == [str(label)], row["bad_files"]


def test_gather_records_puts_every_process_list_in_rank_order():
    """The gather on three simulated processes (threads summing their tensors in lockstep)."""
    import threading

    import torch

    from uniseg.engine.runtime import gather_records

    world = 3
    barrier = threading.Barrier(world)
    deposits: list = [None] * world
    results: list = [None] * world

    def process(rank: int, records: list) -> None:
        def all_reduce(t: torch.Tensor) -> torch.Tensor:
            deposits[rank] = t.clone()
            barrier.wait()
            total = sum(deposits[1:], deposits[0].clone())
            barrier.wait()
            t.copy_(total)
            return t

        results[rank] = gather_records(records, all_reduce, rank, world)

    lists = [[{"file": "a.png", "error": "truncated"}], [], [{"file": "b/ü.png", "error": "x"}, {"file": "c.png", "error": "y"}]]
    threads = [threading.Thread(target=process, args=(r, lists[r])) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    want = lists[0] + lists[1] + lists[2]
    assert results == [want, want, want]
    assert gather_records(lists[2], None, 0, 1) == lists[2]
