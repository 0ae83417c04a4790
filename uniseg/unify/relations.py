"""The multi-label table artifact: ``DIR/relations.yaml`` (for people) + ``DIR/table.npy`` (for training).

``table.npy`` is ``D x K x K`` int8 indexed ``[dataset, ground-truth class, class]``: 1 positive,
0 negative, -1 null (Eq. 6), datasets in the order ``relations.yaml`` lists them. The YAML
records the union fingerprint and the table's own fingerprint; ``--loss cr-bce`` refuses a table
made for another union, and a table that does not match its YAML.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from uniseg.errors import ConfigError, FingerprintMismatch, UnisegError
from uniseg.unify.union import UnionSpace

RELATIONS_FILE = "relations.yaml"
TABLE_FILE = "table.npy"
FORMAT = "uniseg.relations/v1"


def table_fingerprint(table: np.ndarray) -> str:
    """16 hex digits of SHA-256 over the table's shape and bytes."""
    t = np.ascontiguousarray(table, dtype=np.int8)
    h = hashlib.sha256(repr(t.shape).encode())
    h.update(t.tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class RelationTable:
    """A multi-label table read from disk, rows in the order of ``datasets``."""

    table: np.ndarray  # D x K x K int8
    datasets: tuple[str, ...]
    union_fingerprint: str
    fingerprint: str
    path: str

    def for_union(self, union: UnionSpace) -> np.ndarray:
        """The table with its dataset rows in ``union.datasets`` order; refuses another union."""
        if self.union_fingerprint != union.fingerprint:
            raise FingerprintMismatch(
                f"{self.path}: relations made for union {self.union_fingerprint}, not {union.fingerprint} "
                f"({'+'.join(union.datasets)}); mine relations for this union"
            )
        missing = [d for d in union.datasets if d not in self.datasets]
        if missing:
            raise UnisegError(f"{self.path}: no rows for dataset {missing[0]!r}; mine relations with every training dataset")
        order = [self.datasets.index(d) for d in union.datasets]
        return np.ascontiguousarray(self.table[order])


def _resolve(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.is_dir():
        p = p / RELATIONS_FILE
    if p.name == TABLE_FILE:
        p = p.with_name(RELATIONS_FILE)
    if not p.is_file():
        raise UnisegError(f"--relations {path}: no {RELATIONS_FILE} there (write one with 'uniseg relations labels')")
    return p, p.with_name(TABLE_FILE)


def read_relation_table(path: str | Path) -> RelationTable:
    """Read ``relations.yaml`` (or its folder) and the ``table.npy`` beside it, checking both fingerprints' records."""
    from uniseg.labelspaces.loader import read_yaml

    yml, npy = _resolve(path)
    doc = read_yaml(yml)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(yml, f"not a relations file (format {FORMAT!r} expected)")
    for key in ("fingerprint", "datasets", "table_fingerprint"):
        if key not in doc:
            raise ConfigError(yml, f"missing required key {key!r}", key=key)
    if not npy.is_file():
        raise UnisegError(f"{npy}: missing; {yml} needs the {TABLE_FILE} written beside it")
    try:
        table = np.load(npy, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UnisegError(f"{npy}: not a readable .npy table ({exc})") from None
    datasets = tuple(str(d) for d in doc["datasets"])
    if table.ndim != 3 or table.shape[0] != len(datasets) or table.shape[1] != table.shape[2]:
        raise UnisegError(f"{npy}: shape {table.shape}, expected {len(datasets)} x K x K for datasets {', '.join(datasets)}")
    if not np.isin(table, (-1, 0, 1)).all():
        raise UnisegError(f"{npy}: values other than 1 / 0 / -1")
    table = table.astype(np.int8, copy=False)
    fp = table_fingerprint(table)
    if fp != str(doc["table_fingerprint"]):
        raise FingerprintMismatch(f"{npy}: table fingerprint {fp} differs from {yml} ({doc['table_fingerprint']}); the files do not belong together")
    return RelationTable(table, datasets, str(doc["fingerprint"]), fp, str(yml))


def check_table(table: np.ndarray, valid: np.ndarray, datasets: Sequence[str] = ()) -> None:
    """Eq. 6 invariants: the diagonal of each dataset's own classes is 1, its other classes are
    never null, classes outside its space are never 0."""
    d, k, _ = table.shape
    for i in range(d):
        name = datasets[i] if i < len(datasets) else str(i)
        own = np.flatnonzero(valid[i])
        if (table[i, own, own] != 1).any():
            raise UnisegError(f"relation table: dataset {name!r} has a class whose own target is not 1")
        rows = table[i][own]
        if (rows[:, valid[i]] == -1).any():
            raise UnisegError(f"relation table: dataset {name!r} marks one of its own classes null")
        if (rows[:, ~valid[i]] == 0).any():
            raise UnisegError(f"relation table: dataset {name!r} marks a class outside its label space 0 (must be null or 1)")
