"""One runner for the commands that work file by file: ``labels remap``, ``data prepare`` and
``data synth``.

``imap(fn, jobs, context=..., workers=N)`` yields ``fn(job, context)`` for every job, computed in
``N`` worker processes (in this process for one worker or one job). ``context`` (a lookup table,
settings) goes to each worker once, not with every job. Ctrl-C stops at once: queued jobs are
dropped and the workers terminated (workers ignore SIGINT themselves, so they never print
tracebacks); outputs are written atomically, so nothing half-written is left.

``run_files`` adds what the resumable commands share: jobs already done are reported as skipped
without running, progress goes to ``on_start(total, skipped)`` / ``on_result(result)``, and
``flush()`` (saving the resume record) runs every couple of seconds, at the end and on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, TypeVar

J = TypeVar("J")
R = TypeVar("R")

FLUSH_SECONDS = 2.0


@dataclass
class FileResult:
    """What happened to one file (or one job over a file)."""

    src: str  # the source file; prepare: the image, relative to the dataset root
    status: str  # 'done' | 'skipped' | 'error'
    dst: str = ""
    error: str = ""
    unknown: dict = field(default_factory=dict)  # most frequent unknown raw values -> pixels (capped)
    unknown_pixels: int = 0  # all unknown pixels (polygons: unknown polygons)
    unknown_values: int = 0  # distinct unknown values
    pixels: int = 0
    record: dict | None = None  # what the command keeps to resume (a manifest entry)

    @property
    def key(self) -> str:
        return self.src


_WORKER: dict[str, Any] = {}


def _init_worker(fn: Callable, context: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _WORKER["fn"], _WORKER["context"] = fn, context


def _run_chunk(chunk: list) -> list:
    fn, context = _WORKER["fn"], _WORKER["context"]
    return [fn(job, context) for job in chunk]


def _terminate(pool: ProcessPoolExecutor) -> None:
    stop = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if stop is not None:
        stop()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.terminate()


def imap(fn: Callable[[J, Any], R], jobs: Sequence[J], *, context: Any = None, workers: int = 1,
         chunksize: int | None = None) -> Iterator[R]:
    """``fn(job, context)`` for every job, in the order they finish (``fn`` must be a module-level
    function when ``workers > 1``). Close the iterator (``contextlib.closing``) to stop early."""
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(job, context)
        return
    size = chunksize or max(1, min(32, len(jobs) // (workers * 4)))
    split = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    chunks = iter(split)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(split)), initializer=_init_worker, initargs=(fn, context))
    pending: set[Future] = set()
    try:
        for chunk in chunks:
            pending.add(pool.submit(_run_chunk, chunk))
            if len(pending) >= 2 * workers:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield from fut.result()
                nxt = next(chunks, None)
                if nxt is not None:
                    pending.add(pool.submit(_run_chunk, nxt))
    except BaseException:  # Ctrl-C, an error, or the consumer stopped early
        for fut in pending:
            fut.cancel()
        _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_files(
    fn: Callable[[J, Any], FileResult],
    jobs: Sequence[J],
    *,
    context: Any = None,
    workers: int = 1,
    done: Callable[[J], FileResult | None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    flush: Callable[[], None] | None = None,
) -> list[FileResult]:
    """Run ``fn`` over the jobs not ``done`` yet; every result goes to ``on_result``, in order of completion."""
    results: list[FileResult] = []
    todo = []
    for job in jobs:
        res = done(job) if done is not None else None
        if res is None:
            todo.append(job)
            continue
        results.append(res)
        if on_result is not None:
            on_result(res)
    if on_start is not None:
        on_start(len(jobs), len(results))
    last = time.monotonic()
    try:
        with contextlib.closing(imap(fn, todo, context=context, workers=workers)) as outcomes:
            for res in outcomes:
                results.append(res)
                if on_result is not None:
                    on_result(res)
                if flush is not None and time.monotonic() - last > FLUSH_SECONDS:
                    flush()
                    last = time.monotonic()
    finally:
        if flush is not None:
            flush()
    return results
