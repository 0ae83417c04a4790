"""The union artifact folder: ``union.yaml`` plus ``remap/<dataset>.<encoding>.{csv,npy}``.

``union.yaml`` records the fingerprint; loading re-computes it and refuses an edited file, and
writing into a folder that holds another union is refused. ``open_union`` gives a union and
its label spaces from a folder (a path) or from dataset names (a list).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

from uniseg import __version__
from uniseg.errors import ConfigError, FingerprintMismatch, UnisegError
from uniseg.io import atomic_save_npy, atomic_write_text, new_output
from uniseg.labelspaces.registry import Registry, default_registry
from uniseg.labelspaces.schema import IGNORE, LabelSpace
from uniseg.unify.lut import LookupTable, build_lut
from uniseg.unify.union import UnionSpace, build_union, fingerprint_of, union_from_records

UNION_FILE = "union.yaml"
FORMAT = "uniseg.union/v1"
CSV_COLUMNS = ["raw_id", "raw_name", "unified_index", "unified_name"]


def union_to_dict(union: UnionSpace) -> dict:
    """The ``union.yaml`` document (contract: top-level ``fingerprint`` and ``classes``)."""
    return {
        "format": FORMAT,
        "generator": f"uniseg {__version__}",
        "fingerprint": union.fingerprint,
        "num_classes": union.num_classes,
        "ignore_index": IGNORE,
        "datasets": list(union.datasets),
        "classes": [
            {"index": c.index, "name": c.name, "colour": list(c.colour), "members": {d: list(n) for d, n in c.members.items()}}
            for c in union.classes
        ],
    }


def dump_union_yaml(union: UnionSpace) -> str:
    import yaml

    body = yaml.safe_dump(union_to_dict(union), sort_keys=False, allow_unicode=True, default_flow_style=None, width=200)
    return f"# Unified label space written by uniseg {__version__}. Do not edit: the fingerprint guards it.\n" + body


def remap_csv(lut: LookupTable) -> str:
    """The remap table as CSV (columns ``raw_id,raw_name,unified_index,unified_name`` [,``colour``])."""
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    colour = lut.kind == "rgb"
    writer.writerow(CSV_COLUMNS + (["colour"] if colour else []))
    for r in lut.rows:
        row = [r.raw_id, r.raw_name, r.unified_index, r.unified_name]
        if colour:
            row.append(" ".join(str(v) for v in r.colour))  # type: ignore[union-attr]
        writer.writerow(row)
    return buf.getvalue()


def write_union_artifact(union: UnionSpace, spaces: Sequence[LabelSpace], out: str | Path) -> list[Path]:
    """Write ``union.yaml`` and every remap table; refuse a folder made for another union."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UnisegError(f"--out {out}: exists and is not a folder")
    existing = out / UNION_FILE
    if existing.exists():
        other = read_fingerprint(existing)
        if other != union.fingerprint:
            raise FingerprintMismatch(
                f"{existing}: folder holds union {other}, not {union.fingerprint}; choose another --out or delete it"
            )
    written = []
    with new_output(out):  # a folder made here goes again if a write fails (a full disk): no half-made union folder
        for space in spaces:
            for enc in space.encodings.values():
                lut = build_lut(union, space, enc)
                stem = out / "remap" / f"{space.name}.{enc.name}"
                atomic_write_text(stem.with_suffix(stem.suffix + ".csv"), remap_csv(lut))
                atomic_save_npy(stem.with_suffix(stem.suffix + ".npy"), lut.compact())
                written += [stem.with_suffix(stem.suffix + ".csv"), stem.with_suffix(stem.suffix + ".npy")]
        atomic_write_text(existing, dump_union_yaml(union))  # last: its presence means the folder is complete
    return [existing, *written]


def read_fingerprint(path: Path) -> str:
    from uniseg.yamlio import read_yaml

    doc = read_yaml(path)
    if not isinstance(doc, dict) or "fingerprint" not in doc:
        raise ConfigError(path, "no 'fingerprint' key: not a union written by 'uniseg labels union --out'")
    return str(doc["fingerprint"])


def load_union(folder: str | Path) -> UnionSpace:
    """Read ``union.yaml`` from a folder (or the file itself) and verify its fingerprint."""
    from uniseg.yamlio import read_yaml

    from uniseg.io import file_in

    path = file_in(folder, UNION_FILE)
    if not path.exists():
        raise UnisegError(f"{path}: no {UNION_FILE} here (write one with 'uniseg labels union NAME... --out DIR')")
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(path, "expected a mapping with fingerprint, datasets and classes")
    for key in ("fingerprint", "datasets", "classes"):
        if key not in doc:
            raise ConfigError(path, f"missing required key {key!r}", key=key)
    try:
        union = union_from_records(doc["datasets"], doc["classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(path, f"malformed class record ({exc})", key="classes") from None
    expected = str(doc["fingerprint"])
    actual = fingerprint_of(union.classes)
    if actual != expected:
        raise FingerprintMismatch(
            f"{path}: fingerprint {expected} does not match its classes ({actual}); the file was edited — rebuild it"
        )
    return union


def union_of(names: Sequence[str], registry: Registry | None = None) -> UnionSpace:
    """The union of the registered label spaces called ``names`` (each name once)."""
    return build_union((registry or default_registry()).get_many(list(names)))


def member_spaces(union: UnionSpace, registry: Registry | None = None) -> dict[str, LabelSpace]:
    """The registry's label spaces of the union's datasets, each checked against what the union
    recorded (a label space edited since the union was built is refused)."""
    registry = registry or default_registry()
    spaces = {}
    for name in union.datasets:
        space = registry.get(name)
        union.check_member(space)
        spaces[name] = space
    return spaces


def open_union(source: str | os.PathLike | Sequence[str], registry: Registry | None = None) -> tuple[UnionSpace, dict[str, LabelSpace]]:
    """``(union, label spaces of its datasets)`` from an artifact folder (a path) or dataset names
    (a list). Strings typed by a user (``--union DIR|NAMES``) are told apart by the CLI, not here."""
    if isinstance(source, (str, os.PathLike)):
        union = load_union(source)
    else:
        union = union_of(source, registry)
    return union, member_spaces(union, registry)
