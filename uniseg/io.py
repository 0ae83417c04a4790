"""Atomic writes and output folders.

A file is either absent or complete, never half-written (temp file + rename), and gets the mode
a plain ``open(path, "w")`` would give it: ``0666 & ~umask`` for a new file, the old mode when it
replaces one. Temp files are named ``.<name>.uniseg-XXXX.tmp``, so a later run can tell the
litter of a killed run from anything else and clean it (``output_folder``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Sequence

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


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temp file next to ``path``; on clean exit fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_TAG}", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _mode_for(path))  # mkstemp makes 0600; outputs are meant to be shared
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
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
    second run writing there at the same time, and cleared of a killed run's temp files."""
    out = check_output_path(out, sources, what)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UnisegError(f"{what} {out}: a part of the path is a file, not a folder") from None
    except OSError as exc:
        raise _unwritable(out, what, exc) from None
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)  # the kernel applies the umask
    except OSError as exc:
        raise _unwritable(out, what, exc) from None
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
    finally:
        os.close(fd)
