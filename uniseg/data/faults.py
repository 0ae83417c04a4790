"""What a command does with a sample whose file cannot be used: ``--on-bad-file error|skip``.

Every command that reads samples (``train`` and its validation, ``eval``, ``relations mine``,
``predict``) reads them through the one mechanism here:

* :class:`GuardedDataset` wraps the dataset. In the reading process (a DataLoader worker, or the
  main process with ``workers=0``) a sample whose file is bad (a ``UnisegError`` of the readers:
  truncated, unreadable, a label of another size than its image...; or an ``OSError``) never
  raises: the item comes back as a *fault record* under the key :data:`FAULTS`, a tuple of
  ``(file, one-line message)``. With ``replace=True`` (training, policy ``skip``) the sample is
  replaced by the next readable one of the same dataset, with the same augmentation seed, so a
  resumed run still meets the very same samples (after :data:`MAX_REPLACEMENTS` bad ones in a row,
  the command stops: skipping cannot help then); otherwise (scoring, mining, predicting: a
  replacement would count an image twice) the item is a fault record alone and is left out.
* :class:`FaultCollate` keeps fault records out of the collate function and gathers them per batch.
* :class:`SampleStream`, in the main process, takes each batch's faults: ``error`` raises
  :class:`BadFileError` (one line naming the file and the fix: exit 2), ``skip`` counts and lists
  them in :class:`BadFiles`. Leaving it (``with``, or ``close()``) stops the DataLoader's workers
  at once, whatever the exception; streams left open at interpreter exit are closed first.

Why the records travel as data and not as exceptions: torch re-raises a worker's exception by
calling its type with the worker's whole traceback as the one argument, so the main process got a
many-line message (or a ``RuntimeError`` for exception types with another signature), and with
the iterator kept alive by that traceback, the interpreter's exit joined a worker that ignores
SIGTERM (``uniseg.engine.inputs.quiet_worker``): the command hung.
"""

from __future__ import annotations

import atexit
import os
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from uniseg.errors import UnisegError

POLICIES = ("error", "skip")
FAULTS = "bad_files"  # item / batch key of the fault records: a tuple of (file, message)
GAVE_UP = "bad_files_gave_up"  # item / batch key: no readable replacement was found (one line)
MAX_REPLACEMENTS = 16  # readable samples sought in a row before training gives up (policy skip)
SKIP_HINT = "or pass --on-bad-file skip to leave such files out"


def check_policy(policy: str, flag: str = "--on-bad-file") -> str:
    """``policy`` if it is one of :data:`POLICIES`, else a one-line error naming the flag."""
    if policy not in POLICIES:
        raise UnisegError(f"{flag} {policy!r}: choose error (stop at a bad file, the default) or skip (leave it out and list it)")
    return policy


@dataclass(frozen=True)
class BadFile:
    """A file that could not be used: the path and the reader's one-line message."""

    file: str
    error: str

    def to_dict(self) -> dict:
        return {"file": self.file, "error": self.error}

    @staticmethod
    def line(record: dict) -> str:
        """One line for a ``to_dict`` record: the message (which names the file), else file: message."""
        return record["error"] if record["file"] in record["error"] else f"{record['file']}: {record['error']}"


class BadFileError(UnisegError):
    """A bad sample file under ``--on-bad-file error`` (exit code 2); ``bad`` names it."""

    def __init__(self, message: str, *, bad: Optional[BadFile] = None, reason: Optional[str] = None) -> None:
        super().__init__(message)
        self.bad = bad
        self.reason = message if reason is None else reason  # the message without the advice added to it

    @classmethod
    def of(cls, bad: BadFile, then: str = SKIP_HINT) -> "BadFileError":
        return cls(f"{bad.error}; {then}" if then else bad.error, bad=bad, reason=bad.error)


@dataclass
class BadFiles:
    """The bad files a command met, in order, each once; ``policy`` says whether one is an error."""

    policy: str = "error"
    files: list[BadFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_policy(self.policy)
        self._seen = {b.file for b in self.files}

    def add(self, faults: Iterable) -> list[BadFile]:
        """Take fault records (``BadFile`` or ``(file, message)``); the new ones. Policy ``error``
        raises :class:`BadFileError` for the first."""
        new = []
        for f in faults:
            bad = f if isinstance(f, BadFile) else BadFile(str(f[0]), str(f[1]))
            if self.policy == "error":
                raise BadFileError.of(bad)
            if bad.file not in self._seen:
                self._seen.add(bad.file)
                self.files.append(bad)
                new.append(bad)
        return new

    def to_list(self) -> list[dict]:
        return [b.to_dict() for b in self.files]

    def __len__(self) -> int:
        return len(self.files)


# -- the reading side (a DataLoader worker, or the main process) --------------------------------


def _sample_files(dataset, index: int) -> list[str]:
    """The files behind item ``index`` of ``dataset`` (or of the dataset it wraps), as far as known."""
    files: list[str] = []
    while dataset is not None:
        for attr in ("images", "labels", "paths"):
            seq = getattr(dataset, attr, None)
            if isinstance(seq, (list, tuple)) and 0 <= index < len(seq) and seq[index] is not None:
                files.append(str(seq[index]))
        dataset = getattr(dataset, "dataset", None)
    return files


def culprit(dataset, index: int, message: str) -> str:
    """The file a reader's message is about: the sample's file that starts the message (the
    readers' messages begin with the path), else the path the message starts with, else the
    sample's first file."""
    files = _sample_files(dataset, index)
    for f in sorted(files, key=len, reverse=True):
        if message.startswith(f):
            return f
    head = message.split(": ", 1)[0]
    if os.sep in head:
        return head
    return files[0] if files else f"item {index}"


def _rekey(key, index: int):
    """``key`` (an index, or ``(index, seed)``) pointing at ``index`` instead, with its seed."""
    if isinstance(key, (tuple, list)):
        return (index, key[1])
    return index


class GuardedDataset:
    """``dataset`` whose bad samples come back as fault records (see the module docstring).

    Attributes not defined here (``name``, ``images``, ``root``...) are the wrapped dataset's.
    """

    def __init__(self, dataset, policy: str = "error", *, replace: bool = False) -> None:
        self.dataset = dataset
        self.policy = check_policy(policy)
        self.replace = bool(replace) and policy == "skip"

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key) -> dict:
        from uniseg.data.dataset import sample_key, wrap_index

        n = len(self.dataset)
        index = wrap_index(sample_key(key)[0], n)
        faults = []
        for attempt in range(min(n, MAX_REPLACEMENTS + 1) if self.replace else 1):
            i = (index + attempt) % n
            try:
                item = self.dataset[key if attempt == 0 else _rekey(key, i)]
            except (UnisegError, OSError) as exc:
                message = " ".join(str(exc).split()) or type(exc).__name__
                faults.append((culprit(self.dataset, i, message), message))
                continue
            if faults:
                item[FAULTS] = tuple(faults)
            return item
        if self.replace:  # a run of bad samples: skipping cannot help any more
            return {FAULTS: tuple(faults), GAVE_UP: f"{len(faults)} samples in a row from item {index} on cannot be read "
                    f"(the last: {faults[-1][1]}); check the dataset with 'uniseg data check'"}
        return {FAULTS: tuple(faults)}


def is_fault(item) -> bool:
    """A fault record alone: a sample that was left out."""
    return isinstance(item, dict) and FAULTS in item and set(item) <= {FAULTS, GAVE_UP}


class FaultCollate:
    """A collate function that keeps fault records away from ``collate`` (torch's default, or the
    given one) and returns the batch with its faults under :data:`FAULTS` (a batch of fault records
    only: ``{FAULTS: [...]}``). ``batched=False``: for ``batch_size=None`` loaders (one item)."""

    def __init__(self, collate: Optional[Callable] = None, batched: bool = True) -> None:
        self.collate, self.batched = collate, batched

    def __call__(self, batch):
        from torch.utils.data import default_collate, default_convert

        inner = self.collate or (default_collate if self.batched else default_convert)
        if not self.batched:
            return batch if is_fault(batch) else inner(batch)
        faults = [f for item in batch if isinstance(item, dict) for f in item.get(FAULTS, ())]
        gave_up = [item[GAVE_UP] for item in batch if isinstance(item, dict) and GAVE_UP in item]
        good = [item for item in batch if not is_fault(item)]
        if faults:
            good = [{k: v for k, v in item.items() if k != FAULTS} for item in good]
        out = inner(good) if good else {}
        if faults:
            out[FAULTS] = faults
        if gave_up:
            out[GAVE_UP] = gave_up[0]
        return out


# -- the main process ---------------------------------------------------------------------------

_OPEN: "weakref.WeakSet[SampleStream]" = weakref.WeakSet()


def _close_open_streams() -> None:
    """Stop the workers of streams still open at exit (an exception's traceback may keep a loader's
    iterator alive past the command): multiprocessing's own exit handler would wait for them."""
    for stream in list(_OPEN):
        stream.close()


def _close_at_exit() -> None:
    """(Re-)register :func:`_close_open_streams` after ``multiprocessing`` registered its exit
    handler (by now: workers have started), as exit handlers run last registered first."""
    atexit.unregister(_close_open_streams)
    atexit.register(_close_open_streams)


class SampleStream:
    """The batches of a DataLoader over a :class:`GuardedDataset`, their faults taken by ``bad``.

    Use as ``with SampleStream(loader, bad) as batches: for batch in batches: ...``. ``consumed``
    counts the loader's items taken so far, those left out included (positions, for resuming).
    """

    def __init__(self, loader, bad: BadFiles) -> None:
        self.loader, self.bad = loader, bad
        self.consumed = 0
        self._it = None

    def __enter__(self) -> "SampleStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> "SampleStream":
        if self._it is None:
            self._it = iter(self.loader)
            _OPEN.add(self)
            if getattr(self.loader, "num_workers", 0):
                _close_at_exit()
        return self

    def __next__(self):
        if self._it is None:
            iter(self)
        while True:
            batch = next(self._it)
            self.consumed += 1
            faults = batch.pop(FAULTS, ()) if isinstance(batch, dict) else ()
            if faults:
                self.bad.add(faults)
            if isinstance(batch, dict) and GAVE_UP in batch:
                raise BadFileError(batch[GAVE_UP], bad=BadFile(str(faults[-1][0]), str(faults[-1][1])) if faults else None)
            if not (isinstance(batch, dict) and not batch):
                return batch

    def close(self) -> None:
        """Stop the loader's worker processes now (not when the iterator happens to be collected)."""
        it, self._it = self._it, None
        _OPEN.discard(self)
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
