"""The folder lock of ``output_folder`` lives exactly as long as the process that took it: a forked
child (a DataLoader worker) does not hold it, so a ``kill -9`` of a run frees the folder at once,
however long its orphaned workers take to notice."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine_fixtures import small_world, tiny_args  # noqa: F401  (fixture)

DEADLINE = 60.0


def _wait_forever(conn) -> None:
    conn.send("running")  # the fork's handlers (which close the inherited lock) have run by now
    conn.recv()  # until the test lets it go (or the pipe closes)


def test_a_forked_child_does_not_hold_the_folder_lock(tmp_path):
    from uniseg.errors import UnisegError
    from uniseg.io import output_folder

    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    with output_folder(tmp_path / "out"):
        child = ctx.Process(target=_wait_forever, args=(child_end,), daemon=True)
        child.start()  # forked while the lock is held, as DataLoader workers are
        assert parent_end.poll(DEADLINE) and parent_end.recv() == "running"
        with pytest.raises(UnisegError, match="another uniseg run is writing there"):
            with output_folder(tmp_path / "out"):
                pass  # the lock is still this run's
    try:
        assert child.is_alive()
        with output_folder(tmp_path / "out"):  # the run is over; its child lives on, but holds nothing
            pass
    finally:
        parent_end.send("go")
        child.join(10)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """``pid`` runs, and is one of our ``uniseg`` processes (not a reused pid)."""
    try:
        running = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
        return running and b"uniseg.cli.main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads process trees from /proc (Linux)")
def test_a_killed_training_run_frees_its_folder_at_once(small_world, tmp_path):
    from uniseg.io import output_folder

    out = tmp_path / "run"
    args = tiny_args(small_world, out, iterations=100000, workers=1, extra=("--checkpoint-every", "2", "--quiet"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "uniseg.cli.main", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + DEADLINE
        while not (out / "last.pt").exists():  # training, with its DataLoader worker running
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not reach its first checkpoint"
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert workers, "no DataLoader worker found"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert any(_alive(pid) for pid in workers)  # orphaned, still there (it notices within seconds)
        with output_folder(out):  # at once: the orphaned worker does not hold the lock
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in workers:  # the orphans would leave by themselves within seconds
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
