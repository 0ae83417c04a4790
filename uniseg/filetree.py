"""Mirror input files into an output folder: a file goes to ``out/<name>``, a folder keeps its tree.

Shared by the commands that turn many files into as many outputs (``labels remap``, ``predict``):
same planning rules, same refusals (an output that would overwrite its input, two inputs that
would write the same output).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from uniseg.errors import UnisegError


def inside(path: Path, folder: Path) -> bool:
    """True when ``path`` lies in ``folder`` (both resolved)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def visible_files(folder: str | os.PathLike) -> list[str]:
    """Sorted POSIX paths, relative to ``folder``, of the files under it; hidden files and folders
    (``.name``) are left out. Empty when ``folder`` is not a folder."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, folder)
        rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        out.extend(rel + f for f in filenames if not f.startswith("."))
    out.sort()
    return out


def mirror_tree(sources: Sequence[str | os.PathLike], out: str | os.PathLike, suffixes: Sequence[str],
                out_suffix: str = ".png", what: str = "files") -> list[tuple[Path, Path]]:
    """``(source, destination)`` pairs for every file with one of ``suffixes`` under ``sources``.

    Files found under ``out`` itself are left out (outputs of an earlier run). Raises a one-line
    ``UnisegError`` for a missing source, an output that is its own input, or two inputs that
    would be written to the same place.
    """
    out = Path(out)
    pairs: list[tuple[Path, Path]] = []
    for src in map(Path, sources):
        if src.is_file():
            pairs.append((src, out / src.with_suffix(out_suffix).name))
        elif src.is_dir():
            files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            files = [p for p in files if not inside(p, out)]
            pairs += [(p, (out / p.relative_to(src)).with_suffix(out_suffix)) for p in files]
        else:
            raise UnisegError(f"{src}: no such file or folder (give {what} or folders of them)")
    seen: dict[Path, Path] = {}
    for s, d in pairs:
        if s.resolve() == d.resolve():
            raise UnisegError(f"{s}: --out would overwrite the source; choose another --out folder")
        if d in seen and seen[d] != s:
            raise UnisegError(f"{s} and {seen[d]} would both be written to {d}; write them into separate --out folders")
        seen[d] = s
    return pairs
