"""Atomic writes and output folders.

A file is either absent or complete, never half-written (temp file + rename), and gets the mode
a plain ``open(path, "w")`` would give it: ``0666 & ~umask`` for a new file, the old mode when it
replaces one. Temp files are named ``.<name>.uniseg-XXXX.tmp``, so a later run can tell the
litter of a killed run from anything else and clean it (``output_folder``).

A write the file system refuses for a reason the user can fix (no space left, a quota, a file size
limit, a read-only file system, no permission) raises :class:`WriteFault`: one line naming the
file, the device and the fix. The file it would have replaced is left as it was, and neither the
temp file nor a folder made for it is left behind.

Output folders: ``output_folder`` (checked, locked, a killed run's temp files cleaned; a failed
run leaves neither the lock file it made nor an empty folder it made), ``new_output`` (a folder or
file written in one go: removed again on failure), and the record of what uniseg wrote there
(``claim_outputs``, ``refuse_foreign``): a file uniseg did not write is never replaced without
``--overwrite``, and a folder holds the outputs of one run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from uniseg.errors import UnisegError
from uniseg.filetree import inside

TEMP_TAG = ".uniseg-"  # in every temp file name: .<name>.uniseg-<random>.tmp
TEMP_SUFFIX = ".tmp"
LOCK_FILE = ".uniseg.lock"


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


# -- writes the file system refuses ------------------------------------------------------------

#: errno values of a refused write that the user can fix, and what a message calls them
WRITE_FAULTS = {
    errno.ENOSPC: "no space left on",
    errno.EDQUOT: "disk quota exceeded on",
    errno.EFBIG: "file too large for",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class WriteFault(UnisegError):
    """A write the file system refused for a reason the user can fix (``WRITE_FAULTS``); the
    message names the file, the device and the fix. Commands that work file by file stop at it:
    it is no fault of one file."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, code: int | None = None) -> None:
        super().__init__(message)  # (message,) are the args: a WriteFault pickles (worker processes)
        self.path = None if path is None else str(path)
        self.errno = code


def mount_of(path: str | os.PathLike) -> tuple[str, str]:
    """``(mount point, file system type)`` of the file system that holds ``path`` (or would)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    p = Path(os.path.realpath(p))
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    fstype = ""
    with contextlib.suppress(OSError):
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[1].replace("\\040", " ") == str(p):
                    fstype = parts[2]  # the last mount there is the one in use
    return str(p), fstype


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{max(1, round(n / 1e3))} kB"


def write_fault(path: str | os.PathLike, exc: BaseException | None, needs: int | None = None,
                wrote: int | None = None) -> Optional[WriteFault]:
    """The :class:`WriteFault` for ``exc`` when it is an ``OSError`` the user can fix (``WRITE_FAULTS``),
    else None. ``needs``: the file's size when known; ``wrote``: the bytes written when it failed."""
    code = getattr(exc, "errno", None)
    if not isinstance(exc, OSError) or code not in WRITE_FAULTS:
        return None
    mount, fstype = mount_of(path)
    device = f"{mount} ({fstype})" if fstype else mount
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        detail = []
        if needs:
            detail.append(f"needs ~{_size(needs)}")
        elif wrote:
            detail.append(f"needs more than {_size(wrote)}")
        if code == errno.ENOSPC:
            with contextlib.suppress(OSError):
                detail.append(f"{_size(shutil.disk_usage(mount).free)} free")
        fix = {
            errno.ENOSPC: "free some space there or write elsewhere",
            errno.EDQUOT: "free some of your files there or write elsewhere",
            errno.EFBIG: "it is over a file size limit (ulimit -f, or the file system's): raise it or write elsewhere",
        }[code]
        more = f" ({', '.join(detail)})" if detail else ""
        return WriteFault(f"{WRITE_FAULTS[code]} {device} writing {path}{more}; {fix}", path, code)
    if code == errno.EROFS:
        return WriteFault(f"cannot write {path}: {device} is a read-only file system; write elsewhere", path, code)
    return WriteFault(f"cannot write {path}: permission denied; write elsewhere, or make the folder writable for you", path, code)


def _raise_fault(path, exc: BaseException, needs: int | None = None, wrote: int | None = None) -> None:
    fault = write_fault(path, exc, needs, wrote)
    if fault is not None:
        raise fault from None


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those above it that do not exist yet, deepest first."""
    missing = []
    p = Path(os.path.abspath(folder))
    while not p.exists() and not p.is_symlink() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def _remove_folders(folders: Iterable[Path]) -> None:
    """Remove the (empty) folders given, deepest first; one still in use stays."""
    for p in folders:
        try:
            os.rmdir(p)
        except OSError:
            break


def make_folder(folder: str | os.PathLike, what: str = "") -> list[Path]:
    """Create ``folder`` (and those above it); returns the folders made, deepest first. A refusal
    of the file system is a :class:`WriteFault`, or with ``what`` (an option such as ``--out``)
    the one-line error that names it."""
    folder = Path(folder)
    made = _missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UnisegError(f"{what + ' ' if what else ''}{folder}: a part of the path is a file, not a folder") from None
    except OSError as exc:
        _remove_folders(made)
        if what:
            raise _unwritable(folder, what, exc) from None
        _raise_fault(folder, exc)
        raise
    return made


class _Counted:
    """The temp file as the writer sees it: counts what is written and keeps the first ``OSError``
    (``torch.save`` reports a failed write as a ``RuntimeError`` without its cause)."""

    def __init__(self, fh: IO) -> None:
        self._fh = fh
        self.error: Optional[OSError] = None
        self.written = 0

    def write(self, data):
        try:
            n = self._fh.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise
        self.written += len(data)
        return n

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._fh.flush()
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name: str):
        return getattr(self._fh, name)

    def __iter__(self):
        return iter(self._fh)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, size: int | None = None, **kwargs) -> Iterator[IO]:
    """Open a temp file next to ``path``; on clean exit fsync and rename it over ``path``.

    ``size``: the file's expected size in bytes (for the message when the disk is full). A write
    the file system refuses raises :class:`WriteFault`; the old ``path``, if any, is left as it was.
    """
    path = Path(path)
    made = make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_TAG}", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        _remove_folders(made)
        _raise_fault(path, exc, size)
        raise
    counted: Optional[_Counted] = None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _mode_for(path))  # mkstemp makes 0600; outputs are meant to be shared
        with os.fdopen(fd, mode, **kwargs) as fh:
            counted = _Counted(fh)
            yield counted
            counted.flush()
            os.fsync(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _remove_folders(made)
        if isinstance(exc, Exception):
            cause = exc if isinstance(exc, OSError) else (counted.error if counted is not None else None)
            _raise_fault(path, cause, size, counted.written if counted is not None else None)
        raise


def file_in(path: str | os.PathLike, name: str) -> Path:
    """``path``, or the file ``name`` inside it when ``path`` is a folder (artifacts are named by either)."""
    p = Path(path)
    return p / name if p.is_dir() else p


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", size=len(text.encode("utf-8", "surrogatepass")), encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb", size=len(data)) as fh:
        fh.write(data)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_open(path, "wb", size=int(np.asarray(array).nbytes) + 128) as fh:
        np.save(fh, array, allow_pickle=False)


def atomic_save_image(path: str | os.PathLike, image, format: str | None = None, **params) -> None:
    """Save a PIL image atomically; the format follows the final suffix (not the temp name)."""
    path = Path(path)
    fmt = format or {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), "PNG")
    with atomic_open(path, "wb") as fh:
        image.save(fh, format=fmt, **params)


# -- output folders ----------------------------------------------------------------------------


def is_temp_file(name: str) -> bool:
    """True for the temp files ``atomic_open`` writes (``.<name>.uniseg-XXXX.tmp``)."""
    return name.startswith(".") and TEMP_TAG in name and name.endswith(TEMP_SUFFIX)


def clean_stale_temps(folder: str | os.PathLike) -> int:
    """Delete the temp files a killed run left under ``folder``; returns how many.

    Only safe while no other run writes there: ``output_folder`` holds the folder's lock first.
    """
    removed = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            if is_temp_file(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
    return removed


def check_output_path(out: str | os.PathLike, sources: Sequence[str | os.PathLike] = (), what: str = "--out") -> Path:
    """Refuse an output folder that names a file, or that is (inside) a source folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UnisegError(f"{what} {out}: is a file, not a folder; give a new or empty folder")
    for src in map(Path, sources):
        if src.is_dir() and inside(out, src):
            where = "is the source folder" if out.resolve() == src.resolve() else f"is inside the source folder {src}"
            raise UnisegError(f"{what} {out}: {where}; choose a folder outside the sources")
    return out


def _unwritable(out: Path, what: str, exc: OSError) -> UnisegError:
    why = exc.strerror or type(exc).__name__
    return UnisegError(f"{what} {out}: cannot write there ({why.lower()}); choose a folder you can write to")


@contextlib.contextmanager
def output_folder(out: str | os.PathLike, sources: Sequence[str | os.PathLike] = (), what: str = "--out") -> Iterator[Path]:
    """Make ``out`` ready for a (resumable) run: checked, created, writable, locked against a
    second run writing there at the same time, and cleared of a killed run's temp files.

    A run that fails leaves no lock file it made (nor a folder it made, when nothing else was written
    there): a refused or failed run leaves a folder as it found it, but for what it wrote."""
    out = check_output_path(out, sources, what)
    made = make_folder(out, what)
    lock = out / LOCK_FILE
    had_lock = lock.exists()
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)  # the kernel applies the umask
    except OSError as exc:
        _remove_folders(made)
        raise _unwritable(out, what, exc) from None
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _HELD_LOCKS[fd] = True
        except ImportError:  # pragma: no cover - not POSIX: no lock, stale temps are still cleaned
            pass
        except BlockingIOError:
            raise UnisegError(f"{what} {out}: another uniseg run is writing there; wait for it or choose another folder") from None
        except OSError:  # a filesystem without locks (some network mounts): go on unlocked
            pass
        try:  # the lock file may exist from an earlier run: make sure new files can be created
            probe_fd, probe = tempfile.mkstemp(prefix=f".probe{TEMP_TAG}", suffix=TEMP_SUFFIX, dir=out)
            os.close(probe_fd)
            os.unlink(probe)
        except OSError as exc:
            raise _unwritable(out, what, exc) from None
        clean_stale_temps(out)
        yield out
    except BaseException:
        if not had_lock:
            _drop_lock(out, made)
        raise
    finally:
        if _HELD_LOCKS.pop(fd, True):  # False: a forked child that closed it already
            os.close(fd)


# An flock() lock belongs to the open file description, which a forked child (a DataLoader worker,
# a process-pool worker) shares: after a kill -9 of the run, its orphaned workers would hold the
# folder's lock until they notice (seconds). Each forked child closes its copies at once, so the
# lock lives exactly as long as the process that took it. (POSIX record locks, fcntl.lockf, are
# not inherited, but they do not exclude a second lock from the same process and are dropped when
# the process closes any descriptor of the file.)
_HELD_LOCKS: dict[int, bool] = {}  # descriptor -> open in this process


def _close_inherited_locks() -> None:
    for fd, is_open in list(_HELD_LOCKS.items()):
        if is_open:
            with contextlib.suppress(OSError):
                os.close(fd)
            _HELD_LOCKS[fd] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def _drop_lock(out: Path, made: list[Path]) -> None:
    """After a failed run: the lock this run made goes, and so do the folders it made if they are empty."""
    with contextlib.suppress(OSError):
        os.unlink(out / LOCK_FILE)
        _remove_folders(made)


@contextlib.contextmanager
def new_output(out: str | os.PathLike) -> Iterator[Path]:
    """For a folder (or file) written in one go: when the block fails (an error, Ctrl-C), what this
    call found missing is removed again: ``out`` with everything written into it, and the folders
    above it that were made for it. An ``out`` that existed before is left to the atomic writes."""
    out = Path(out)
    made = _missing_folders(out)
    try:
        yield out
    except BaseException:
        if made:
            if out.is_dir() and not out.is_symlink():
                shutil.rmtree(out, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    out.unlink()
            _remove_folders(made[1:])
        raise


# -- what uniseg wrote in an output folder -----------------------------------------------------

OUTPUTS_FILE = ".uniseg-outputs.json"
OUTPUTS_FORMAT = "uniseg.outputs/v1"


class OutputRecord:
    """``OUT/.uniseg-outputs.json``: which command wrote the folder's outputs, from what
    (``made_from``: checkpoint, union, settings) and which files (POSIX paths relative to OUT)."""

    def __init__(self, folder: Path, command: str, made_from: dict, files: Iterable[str] = ()) -> None:
        self.folder, self.command, self.made_from = Path(folder), command, dict(made_from)
        self.files: set[str] = set(files)

    def rel(self, path: str | os.PathLike) -> str:
        return Path(path).relative_to(self.folder).as_posix()

    def owns(self, path: str | os.PathLike) -> bool:
        return self.rel(path) in self.files

    def save(self) -> None:
        doc = {"format": OUTPUTS_FORMAT, "command": self.command, "made_from": self.made_from, "files": sorted(self.files)}
        atomic_write_text(self.folder / OUTPUTS_FILE, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def read_output_record(folder: str | os.PathLike) -> Optional[OutputRecord]:
    """The record of ``folder`` (None when it has none); an unreadable one is a one-line error."""
    path = Path(folder) / OUTPUTS_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != OUTPUTS_FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, not {OUTPUTS_FORMAT!r}")
        return OutputRecord(Path(folder), str(doc["command"]), dict(doc["made_from"]), [str(f) for f in doc["files"]])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnisegError(f"{path}: unreadable record of uniseg's outputs ({exc}); delete it, and give --overwrite "
                          "to replace the files there") from None


def _shown(value) -> str:
    return "none" if value is None else str(value)


def refuse_foreign(out: Path, planned: Iterable[Path], owned: Callable[[Path], bool], *, overwrite: bool = False,
                   what: str = "--out") -> list[Path]:
    """Refuse (unless ``overwrite``) to replace files under ``out`` that uniseg did not write
    (``owned(path)`` False); returns those files."""
    foreign = [p for p in planned if (p.exists() or p.is_symlink()) and not owned(p)]
    if foreign and not overwrite:
        more = f" and {len(foreign) - 1} more file(s)" if len(foreign) > 1 else ""
        raise UnisegError(
            f"{what} {out}: would replace {foreign[0]}{more} that uniseg did not write there; choose another {what}, "
            "or give --overwrite to replace them"
        )
    return foreign


def claim_outputs(out: str | os.PathLike, command: str, made_from: dict, planned: Iterable[Path], *,
                  overwrite: bool = False, what: str = "--out", check_only: bool = False) -> OutputRecord:
    """Before the first write of a run into ``out`` (an existing folder): refuse a folder holding
    another run's outputs (another command, or ``made_from`` differs) and files uniseg did not
    write, unless ``overwrite`` (then the other run's recorded outputs are deleted first); then
    record ``planned`` as this run's and return the record (``save()`` it as more is written).
    ``check_only``: refuse as above but change nothing (the other processes of a torchrun job)."""
    out = Path(out)
    if check_only and not out.is_dir():
        return OutputRecord(out, command, made_from)
    planned = list(planned)
    record = read_output_record(out)
    if record is not None and (record.command != command or record.made_from != made_from):
        if not overwrite:
            if record.command != command:
                why = f"the outputs of 'uniseg {record.command}'"
            else:
                keys = [k for k in {**record.made_from, **made_from} if record.made_from.get(k) != made_from.get(k)]
                why = f"the outputs of another run ({'; '.join(f'{k} {_shown(record.made_from.get(k))} there, {_shown(made_from.get(k))} now' for k in keys)})"
            raise UnisegError(f"{what} {out}: holds {why}; a folder holds one run's outputs: choose another {what}, "
                              "or give --overwrite to replace them")
        if check_only:
            return OutputRecord(out, command, made_from)
        for rel in sorted(record.files):
            with contextlib.suppress(OSError):
                (out / rel).unlink()
        record = None
    if record is None:
        record = OutputRecord(out, command, made_from)
    refuse_foreign(out, planned, record.owns, overwrite=overwrite, what=what)
    if check_only:
        return record
    record.files.update(record.rel(p) for p in planned)
    record.save()
    return record
