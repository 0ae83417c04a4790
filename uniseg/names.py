"""Lists of names a user or a file gives: the one check that none of them is given twice."""

from __future__ import annotations

from typing import Iterable, Optional

from uniseg.errors import UnisegError


def first_duplicate(names: Iterable[str]) -> Optional[str]:
    """The first name that appears a second time (None when every name is unique)."""
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None


def require_unique(names: Iterable[str], what: str = "--datasets") -> None:
    """A one-line error when ``what`` names something twice (a dataset's rows, scores or
    samples would overwrite or double each other)."""
    dup = first_duplicate(names)
    if dup is not None:
        raise UnisegError(f"{what} names {dup!r} twice; give each once")
