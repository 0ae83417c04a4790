"""``uniseg relations review``: a person looks at the mined relations and fixes them before the second stage.

The candidates are the relations Eq. 6 switched on and its *near misses*: on a row Eq. 6 looks at
(a class of the dataset with enough support) and a pair its rule may switch on, a class c' whose
score is within ``margin`` below the bar max(tau, s(c)). Each edit (:mod:`uniseg.relations.edits`:
accept, reject, add) gives a new :class:`~uniseg.relations.artifact.RelationSet` whose table is the
old one with the edit applied and whose ``edits`` keep every edit in order; written with
:func:`~uniseg.relations.artifact.write_relations`, its ``relations.yaml`` records each relation's
source (mined / added / rejected), kind, note and date, and its ``table.npy`` trains C-R BCE as a
mined one does. The mined folder itself is never edited: a review is written to a new folder.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.relations.artifact import RelationSet
from uniseg.relations.edits import Edit, final_edits, locate, replay

MARGIN = 0.1  # the default of --margin: how far below the bar a near miss may score
STATUSES = ("on", "near miss", "rejected")


def bars(rs: RelationSet) -> np.ndarray:
    """``D x K``: max(tau, s(c)), the score a c' must exceed on row (d, c) for Eq. 6 to switch it on."""
    own = np.einsum("dcc->dc", rs.similarity.score)
    return np.maximum(float(rs.tau.tau), own)


def near_misses(rs: RelationSet, margin: float = MARGIN) -> np.ndarray:
    """``D x K x K`` bool: off, not rejected by hand, on a row and a pair Eq. 6 (with the set's rule
    and support) could switch on, scoring within ``margin`` below the bar (never on the diagonal)."""
    from uniseg.relations.eq6 import conflict_possible, measured_rows

    sim = rs.similarity
    bar = bars(rs)[:, :, None]
    near = (sim.score > bar - float(margin)) & (sim.score <= bar)
    near &= measured_rows(rs.valid, sim.pixels, rs.min_support)[:, :, None]
    if rs.rule == "conflict":
        near &= conflict_possible(rs.valid)
    near &= rs.table != 1
    k = near.shape[1]
    near[:, np.arange(k), np.arange(k)] = False
    for e in final_edits(rs.edits).values():  # a relation a person rejected is listed as such
        if e.action == "reject":
            near[sim.datasets.index(e.dataset), sim.classes.index(e.primary), sim.classes.index(e.secondary)] = False
    return near


def candidates(rs: RelationSet, margin: float = MARGIN) -> list[dict]:
    """The relations to review, one dict each: switched on, near misses and those rejected by hand,
    sorted by primary class, dataset and score (``id`` numbers them in that order)."""
    sim, names = rs.similarity, list(rs.similarity.classes)
    bar = bars(rs)
    on = rs.switched_on
    on_any = on.any(axis=0)
    hand = rs.hand_kinds()
    decided = final_edits(rs.edits)
    keys = [("on", tuple(int(v) for v in x)) for x in np.argwhere(on)]
    keys += [("near miss", tuple(int(v) for v in x)) for x in np.argwhere(near_misses(rs, margin))]
    for e in decided.values():
        if e.action == "reject":
            keys.append(("rejected", (sim.datasets.index(e.dataset), names.index(e.primary), names.index(e.secondary))))
    rows = []
    for status, (d, c, c2) in keys:
        e = decided.get((sim.datasets[d], names[c], names[c2]))
        kind = ""
        if status == "on":
            kind = hand.get((d, c, c2)) or ("equivalent" if on_any[c2, c] else "subset")
        source = "rejected" if status == "rejected" else ("added" if e is not None and e.action == "add" else "mined")
        score = float(sim.score[d, c, c2])
        rows.append({
            "status": status, "dataset": sim.datasets[d], "primary": names[c], "secondary": names[c2],
            "score": score, "own_score": float(sim.score[d, c, c]), "bar": float(bar[d, c]), "gap": score - float(bar[d, c]),
            "pixels": int(sim.pixels[d, c]), "in_space": bool(rs.valid[d, c2]), "kind": kind, "source": source,
            "reviewed": e.action if e is not None else "", "note": e.note if e is not None else "", "date": e.date if e is not None else "",
        })
    order = {n: i for i, n in enumerate(sim.datasets)}
    rows.sort(key=lambda r: (r["primary"], order[r["dataset"]], -r["score"], r["secondary"]))
    return [{"id": i, **r} for i, r in enumerate(rows, 1)]


def _resolve_dataset(rs: RelationSet, action: str, primary: str, secondary: str, dataset: str | None, margin: float) -> str:
    """The dataset of an accept / reject given without ``--dataset``: the one candidate that fits."""
    if dataset:
        return dataset
    wanted = {"reject": ("on",), "accept": ("on", "near miss", "rejected")}.get(action)
    if wanted is None:
        raise UnisegError(f"{action} {primary!r} {secondary!r}: give --dataset D (which dataset's {primary!r} pixels also train {secondary!r})")
    fits = [r["dataset"] for r in candidates(rs, margin) if (r["primary"], r["secondary"]) == (primary, secondary) and r["status"] in wanted]
    if len(fits) == 1:
        return fits[0]
    if not fits:
        verb = "switched on" if action == "reject" else "switched on, a near miss or rejected"
        raise UnisegError(f"{action} {primary!r} {secondary!r}: no dataset has this relation {verb} (see 'uniseg relations review --relations DIR'); "
                          f"to switch on another pair use 'add {primary!r} {secondary!r} --dataset D'")
    raise UnisegError(f"{action} {primary!r} {secondary!r}: in {', '.join(fits)}; give --dataset D")


def apply_edit(rs: RelationSet, action: str, primary: str, secondary: str, *, dataset: str | None = None, kind: str = "",
               note: str = "", date: str = "", margin: float = MARGIN) -> tuple[RelationSet, Edit]:
    """``rs`` with one hand edit applied: ``accept`` (a relation switched on, a near miss within
    ``margin`` or one rejected before: it is switched on and marked accepted), ``reject`` (a
    switched-on one: off) or ``add`` (a pair not switched on: on). Returns the new set and the edit."""
    if action not in ("accept", "reject", "add"):
        raise UnisegError(f"unknown review action {action!r}: accept, reject or add")
    ds = _resolve_dataset(rs, action, primary, secondary, dataset, margin)
    edit = Edit(action, ds, primary, secondary, kind if action != "reject" else "", note, date)
    sim = rs.similarity
    d, c, c2 = locate(edit, sim.datasets, sim.classes, rs.valid)
    label = f"{ds}: {primary} -> {secondary}"
    on = bool(rs.table[d, c, c2] == 1)
    if action == "reject" and not on:
        raise UnisegError(f"reject {label}: not switched on, nothing to reject (see 'uniseg relations review --relations DIR')")
    if action == "add" and on:
        raise UnisegError(f"add {label}: already switched on; 'accept' it to record a kind or a note")
    if action == "accept" and not on:
        last = final_edits(rs.edits).get(edit.key)
        if not (last is not None and last.action == "reject") and not near_misses(rs, margin)[d, c, c2]:
            gap = float(sim.score[d, c, c2]) - float(bars(rs)[d, c])
            raise UnisegError(f"accept {label}: neither switched on nor a near miss (score {sim.score[d, c, c2]:.3f}, {gap:+.3f} from the bar "
                              f"max(tau, own score), --margin {margin:g}); switch it on with 'add {primary!r} {secondary!r} --dataset {ds}'")
    origin = rs.origin if rs.origin is not None else _origin(rs)  # the first edit: where the review started
    table = replay(rs.table, [edit], sim.datasets, sim.classes, rs.valid)
    return replace(rs, table=table, edits=(*rs.edits, edit), origin=origin), edit


def carry_review(reviewed: RelationSet, target: RelationSet) -> RelationSet:
    """``target`` (relations mined again, say) with every edit of ``reviewed`` replayed in order;
    refused for relations of another union (mine and review those again)."""
    if reviewed.union.fingerprint != target.union.fingerprint:
        raise FingerprintMismatch(
            f"--review {reviewed.source}: reviewed for union {reviewed.union.fingerprint} ({'+'.join(reviewed.union.datasets)}), "
            f"not {target.union.fingerprint} ({'+'.join(target.union.datasets)}); review the relations of this union afresh"
        )
    if not reviewed.edits:
        raise UnisegError(f"--review {reviewed.source}: holds no hand edits to carry over (write some with 'uniseg relations review reject|accept|add')")
    sim = target.similarity
    table = replay(target.table, reviewed.edits, sim.datasets, sim.classes, target.valid, f"--review {reviewed.source}: review.edits")
    origin = target.origin if target.origin is not None else _origin(target)
    return replace(target, table=table, edits=(*target.edits, *reviewed.edits), origin=origin)


def _origin(rs: RelationSet) -> dict:
    """Where a review starts: the relations folder and the fingerprints of its table and of its
    ``relations.yaml`` as written (computed over the file for one from before document fingerprints)."""
    from uniseg.relations.artifact import DOCUMENT_KEY, RELATIONS_FILE, document_fingerprint, relations_doc, table_fingerprint
    from uniseg.yamlio import read_yaml

    yml = Path(rs.source) / RELATIONS_FILE
    doc = read_yaml(yml) if yml.is_file() else relations_doc(rs)
    return {"relations": rs.source, "table_fingerprint": table_fingerprint(rs.table),
            "document_fingerprint": str(doc.get(DOCUMENT_KEY) or document_fingerprint(doc))}


def same_folder(a: str | Path, b: str | Path) -> bool:
    a, b = Path(a), Path(b)
    return a.exists() and b.exists() and a.resolve() == b.resolve()
