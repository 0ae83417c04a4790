"""What a new union changes against an old one (``uniseg labels union A... --compare OLD``).

Classes are compared by unified name and by their members (dataset, official name): *added* and
*dropped* classes are names only one union has; an old class whose members now fall into several
new classes is *split*, a new class whose members come from several old ones is *merged*, an old
class whose members all moved to one new class of another name is *renamed*; a kept class that new
datasets also label *gains* members. A remap table changes when some raw value of a dataset goes to
another unified index (the index of every class after an added one shifts: classes are sorted by
name) or to another class. This tells a lab what ``uniseg train --init OLD.pt`` carries over: the
classifier rows of the classes both unions hold, by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from uniseg.errors import UnisegError
from uniseg.unify.union import UnionSpace


def load_old_union(source: str | Path) -> tuple[UnionSpace, str]:
    """``(union, what it is)`` of ``--compare OLD``: a folder holding ``union.yaml`` (``labels union
    --out``, a run folder, a relations folder), that file, or a checkpoint (``.pt``, an export folder)."""
    from uniseg.unify.artifact import UNION_FILE, load_union

    p = Path(source)
    if (p.is_dir() and (p / UNION_FILE).is_file()) or (p.is_file() and p.name == UNION_FILE):
        return load_union(p), "union"
    if not p.exists():
        raise UnisegError(f"--compare {source}: no such file or folder (give a union folder, its union.yaml, or a checkpoint)")
    from uniseg.engine.checkpoint import checkpoint_union, read_checkpoint  # torch, only for a checkpoint

    try:
        doc = read_checkpoint(p)
    except UnisegError as exc:
        raise UnisegError(f"--compare {source}: neither a union (no {UNION_FILE}) nor a checkpoint ({exc})") from None
    return checkpoint_union(doc), "checkpoint"


def _members(union: UnionSpace) -> dict[tuple[str, str], str]:
    """(dataset, official name) -> unified class name."""
    return {(d, n): c.name for c in union.classes for d, names in c.members.items() for n in names}


def _member_changes(a: UnionSpace, b: UnionSpace) -> list[dict]:
    """Classes of ``a`` that ``b`` holds too, with the datasets that have them in ``a`` but not in ``b``."""
    out = []
    for c in a.classes:
        if b.index_of(c.name) is not None:
            held = set(b.classes[b.index_of(c.name)].members)
            extra = [d for d in c.members if d not in held]
            if extra:
                out.append({"class": c.name, "datasets": extra})
    return out


def compare_unions(old: UnionSpace, new: UnionSpace, registry=None) -> dict:
    """Everything ``--compare`` reports, as plain data (see the module docstring)."""
    old_m, new_m = _members(old), _members(new)
    both = [d for d in new.datasets if d in old.datasets]
    old_names, new_names = set(old.names), set(new.names)
    into: dict[str, set[str]] = {}  # old class -> new classes its members (on shared datasets) fall into
    outof: dict[str, set[str]] = {}  # new class -> old classes its members (on shared datasets) come from
    for (d, n), o in old_m.items():
        if d in both and (d, n) in new_m:
            into.setdefault(o, set()).add(new_m[(d, n)])
            outof.setdefault(new_m[(d, n)], set()).add(o)
    split = [{"class": o, "into": sorted(v)} for o, v in sorted(into.items()) if len(v) > 1]
    merged = [{"class": n, "from": sorted(v)} for n, v in sorted(outof.items()) if len(v) > 1]
    renamed = [{"from": o, "to": next(iter(v))} for o, v in sorted(into.items())
               if len(v) == 1 and next(iter(v)) != o and outof.get(next(iter(v))) == {o}]
    gained = _member_changes(new, old)
    lost = _member_changes(old, new)
    return {
        "old": {"fingerprint": old.fingerprint, "datasets": list(old.datasets), "num_classes": old.num_classes},
        "new": {"fingerprint": new.fingerprint, "datasets": list(new.datasets), "num_classes": new.num_classes},
        "same": old.fingerprint == new.fingerprint,
        "datasets": {"added": [d for d in new.datasets if d not in old.datasets], "dropped": [d for d in old.datasets if d not in new.datasets],
                     "kept": both},
        "classes": {"added": sorted(new_names - old_names), "dropped": sorted(old_names - new_names),
                    "kept": sum(1 for n in new.names if n in old_names)},
        "split": split, "merged": merged, "renamed": renamed, "gained_members": gained, "lost_members": lost,
        "remap_tables": remap_changes(old, new, registry),
    }


def remap_changes(old: UnionSpace, new: UnionSpace, registry=None) -> list[dict]:
    """Per dataset and encoding: ``new`` (only the new union has the dataset), ``dropped``, ``unchanged``
    or ``changed`` with how many raw values go to another index (``moved``) and of those how many to
    another class (``reclassed``; the rest only shift with the class order)."""
    from uniseg.labelspaces.registry import default_registry
    from uniseg.unify.lut import build_lut

    registry = registry or default_registry()
    rows = []
    for d in [*new.datasets, *(d for d in old.datasets if d not in new.datasets)]:
        if d not in registry:
            rows.append({"dataset": d, "encoding": None, "status": "unknown", "why": "not in the registry"})
            continue
        space = registry.get(d)
        drift: Optional[str] = None
        for u in (old, new):
            try:
                u.check_member(space)
            except UnisegError:
                drift = f"the registry's label space differs from union {u.fingerprint}"
        for enc in space.encodings:
            row = {"dataset": d, "encoding": enc}
            if drift is not None:
                rows.append({**row, "status": "unknown", "why": drift})
            elif d not in old.datasets:
                rows.append({**row, "status": "new"})
            elif d not in new.datasets:
                rows.append({**row, "status": "dropped"})
            else:
                a, b = build_lut(old, space, enc).rows, build_lut(new, space, enc).rows
                moved = [(x, y) for x, y in zip(a, b) if x.unified_index != y.unified_index]
                reclassed = sum(x.unified_name != y.unified_name for x, y in moved)
                rows.append({**row, "status": "changed" if moved else "unchanged", "values": len(a), "moved": len(moved), "reclassed": reclassed})
    return rows
