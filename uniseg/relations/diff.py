"""What changed between two relation artifacts: tau, relations switched on / off, score changes.

Artifacts of different unions are compared on the dataset and class names they share; the
relations are matched by (dataset, primary, secondary) name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from uniseg.relations.graph import EDGE_FLOOR
from uniseg.relations.artifact import RelationSet

MIN_CHANGE = 0.05


@dataclass(frozen=True)
class RelationDiff:
    """The differences of B against A (``switched_on``: in B only; ``switched_off``: in A only)."""

    a: str
    b: str
    same_union: bool
    tau: dict
    switched_on: list[dict]
    switched_off: list[dict]
    score_changes: list[dict]
    min_change: float
    only_in_a: dict = field(default_factory=dict)  # datasets / classes
    only_in_b: dict = field(default_factory=dict)
    kind_changes: list = field(default_factory=list)  # on in both, typed otherwise by hand
    review: list = field(default_factory=list)  # B's hand edits that A does not hold, in order

    @property
    def unchanged(self) -> bool:
        return (not (self.switched_on or self.switched_off or self.score_changes or self.kind_changes or self.review)
                and self.tau["a"] == self.tau["b"])

    def to_dict(self) -> dict:
        return {**asdict(self), "unchanged": self.unchanged}


def _scores(rs: RelationSet) -> dict[tuple[str, str, str], float]:
    return {(r.dataset, r.primary, r.secondary): r.score for r in rs.relations()}


def _entry(key: tuple[str, str, str], a: RelationSet, b: RelationSet) -> dict:
    """One relation switched on or off from A to B, with the hand edit that decided it (B's, else A's; None: mined)."""
    from uniseg.relations.edits import final_edits

    d, c, c2 = key
    e = final_edits(b.edits).get(key) or final_edits(a.edits).get(key)
    hand = None if e is None else {k: v for k, v in e.as_dict().items() if k in ("action", "kind", "note", "date")}
    return {"dataset": d, "primary": c, "secondary": c2, "score_a": _score_of(a, d, c, c2), "score_b": _score_of(b, d, c, c2), "by_hand": hand}


def _kinds(rs: RelationSet) -> dict[tuple[str, str, str], str]:
    sim = rs.similarity
    return {(sim.datasets[d], sim.classes[c], sim.classes[c2]): k for (d, c, c2), k in rs.hand_kinds().items()}


def _score_of(rs: RelationSet, d: str, c: str, c2: str) -> float | None:
    sim = rs.similarity
    if d not in sim.datasets or c not in sim.classes or c2 not in sim.classes:
        return None
    i, j, k = sim.datasets.index(d), sim.classes.index(c), sim.classes.index(c2)
    return float(sim.score[i, j, k]) if sim.measured[i, j] else None


def diff_relations(a: RelationSet, b: RelationSet, min_change: float = MIN_CHANGE, floor: float = EDGE_FLOOR) -> RelationDiff:
    """Compare two relation sets; score changes are |s_B - s_A| >= ``min_change`` on rows measured
    in both, where either score reaches ``floor`` (weaker pairs are noise), largest first."""
    sa, sb = _scores(a), _scores(b)
    on = [_entry(k, a, b) for k in sorted(set(sb) - set(sa))]
    off = [_entry(k, a, b) for k in sorted(set(sa) - set(sb))]
    A, B = a.similarity, b.similarity
    datasets = [d for d in A.datasets if d in B.datasets]
    classes = [c for c in A.classes if c in B.classes]
    changes: list[dict] = []
    if datasets and classes:
        da, db = [A.datasets.index(d) for d in datasets], [B.datasets.index(d) for d in datasets]
        ca, cb = [A.classes.index(c) for c in classes], [B.classes.index(c) for c in classes]
        xa, xb = A.score[np.ix_(da, ca, ca)], B.score[np.ix_(db, cb, cb)]
        rows = (A.measured & a.valid)[np.ix_(da, ca)] & (B.measured & b.valid)[np.ix_(db, cb)]
        delta = xb - xa
        mask = rows[:, :, None] & (np.abs(delta) >= min_change) & (np.maximum(xa, xb) >= floor)
        mask &= ~np.eye(len(classes), dtype=bool)[None]
        for i, j, k in np.argwhere(mask):
            changes.append({
                "dataset": datasets[i], "class": classes[j], "other_class": classes[k],
                "score_a": float(xa[i, j, k]), "score_b": float(xb[i, j, k]), "change": float(delta[i, j, k]),
            })
        changes.sort(key=lambda r: (-abs(r["change"]), r["dataset"], r["class"], r["other_class"]))
    ka, kb = _kinds(a), _kinds(b)
    kind_changes = [{"dataset": k[0], "primary": k[1], "secondary": k[2], "kind_a": ka.get(k, ""), "kind_b": kb.get(k, "")}
                    for k in sorted(set(sa) & set(sb)) if ka.get(k, "") != kb.get(k, "")]
    held = list(a.edits)
    review = [e.as_dict() for e in (b.edits[len(held):] if list(b.edits[:len(held)]) == held else b.edits)]
    return RelationDiff(
        kind_changes=kind_changes, review=review,
        a=a.source, b=b.source, same_union=a.union.fingerprint == b.union.fingerprint,
        tau={"a": a.tau.tau, "b": b.tau.tau, "how_a": a.tau.how, "how_b": b.tau.how},
        switched_on=on, switched_off=off, score_changes=changes, min_change=float(min_change),
        only_in_a={"datasets": [d for d in A.datasets if d not in B.datasets], "classes": [c for c in A.classes if c not in B.classes]},
        only_in_b={"datasets": [d for d in B.datasets if d not in A.datasets], "classes": [c for c in B.classes if c not in A.classes]},
    )
