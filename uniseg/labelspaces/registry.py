"""Find label spaces by name: built-in YAML files, then user folders that add or override them.

Search order (later wins): the package's ``data/`` folder, each folder in ``UNISEG_REGISTRY``
(``os.pathsep``-separated), then folders passed explicitly (``--registry DIR``).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from uniseg.errors import UnisegError
from uniseg.labelspaces.loader import load_labelspace
from uniseg.labelspaces.schema import LabelSpace

BUILTIN_DIR = Path(__file__).parent / "data"
ENV_VAR = "UNISEG_REGISTRY"


@dataclass
class Registry:
    """Label spaces by name; files are parsed on first use and cached."""

    files: dict[str, Path]  # name -> YAML file (after overrides)
    origins: dict[str, str] = field(default_factory=dict)  # name -> 'builtin' | user folder
    _cache: dict[str, LabelSpace] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dirs(cls, extra: Iterable[str | os.PathLike] = (), *, use_env: bool = True) -> "Registry":
        dirs: list[tuple[Path, str]] = [(BUILTIN_DIR, "builtin")]
        if use_env and os.environ.get(ENV_VAR):
            dirs += [(Path(p), ENV_VAR) for p in os.environ[ENV_VAR].split(os.pathsep) if p]
        dirs += [(Path(p), "--registry") for p in extra]
        files: dict[str, Path] = {}
        origins: dict[str, str] = {}
        for folder, how in dirs:
            if not folder.is_dir():
                raise UnisegError(f"{how} {folder}: not a folder (point it at a folder of <name>.yaml label-space files)")
            origin = "builtin" if how == "builtin" else str(folder)
            for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
                files[path.stem] = path
                origins[path.stem] = origin
        return cls(files=files, origins=origins)

    @property
    def names(self) -> list[str]:
        return sorted(self.files)

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def get(self, name: str) -> LabelSpace:
        """The label space called ``name``; an unknown name suggests close matches."""
        if name not in self.files:
            key = name.lower().replace("_", "-")
            if key in self.files:
                name = key
            else:
                close = difflib.get_close_matches(key, self.names, n=3, cutoff=0.5)
                hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"known: {', '.join(self.names)}"
                raise UnisegError(f"unknown label space {name!r} ({hint}; add one with --registry DIR)")
        if name not in self._cache:
            self._cache[name] = load_labelspace(self.files[name])
        return self._cache[name]

    def get_many(self, names: Sequence[str]) -> list[LabelSpace]:
        seen: set[str] = set()
        out = []
        for n in names:
            ls = self.get(n)
            if ls.name in seen:
                raise UnisegError(f"label space {ls.name!r} is named twice")
            seen.add(ls.name)
            out.append(ls)
        return out

    def all(self) -> list[LabelSpace]:
        return [self.get(n) for n in self.names]


_default: Registry | None = None


def default_registry() -> Registry:
    """The built-in registry plus ``UNISEG_REGISTRY`` (re-read if the variable changes)."""
    global _default
    if _default is None or getattr(_default, "_env", None) != os.environ.get(ENV_VAR):
        _default = Registry.from_dirs()
        _default._env = os.environ.get(ENV_VAR)  # type: ignore[attr-defined]
    return _default


def get_labelspace(name: str, registry: Registry | None = None) -> LabelSpace:
    return (registry or default_registry()).get(name)
