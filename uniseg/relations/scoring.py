"""A relation set scored against known relations (the synthetic world's planted ones).

``planted_score``: precision and recall of the switched-on relations, every hit, false relation
and miss listed; ``why_missed``: why Eq. 6 left each planted relation off, from the mining
statistics alone; ``planted_table``: the table an oracle miner would write (the demo's reference
run trains on it). The planted relations themselves come from ``uniseg data synth``
(``uniseg.data.synth.planted.expected_relations``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from uniseg.errors import UnisegError


def planted_table(table: np.ndarray, valid: np.ndarray, expected: Iterable[tuple[str, str, str]], datasets: Sequence[str],
                  classes: Sequence[str]) -> np.ndarray:
    """The multi-label table an oracle miner would write: ``table`` (Eq. 6, ``D x K x K`` int8) with
    every relation it switched on taken back (0 where the class is in the dataset's space, null
    elsewhere) and every planted ``(dataset, primary, secondary)`` of ``expected`` switched on.
    Trained with C-R BCE, it separates what relations can do from how well they were mined."""
    from uniseg.relations.eq6 import identity_table
    from uniseg.relations.artifact import check_table

    out = np.array(table, dtype=np.int8, copy=True)
    null_bce = identity_table(valid)  # 1 on the diagonal, 0 in the dataset's space, null elsewhere
    on = (out == 1) & (null_bce != 1)
    out[on] = null_bce[on]
    d_at = {n: i for i, n in enumerate(datasets)}
    c_at = {n: i for i, n in enumerate(classes)}
    for d, p, s in expected:
        if d not in d_at or p not in c_at or s not in c_at:
            raise UnisegError(f"planted relation {d}: {p} -> {s} names a dataset or class the table lacks; rebuild the world")
        out[d_at[d], c_at[p], c_at[s]] = 1
    check_table(out, valid, datasets)
    return out



def planted_score(rs, expected: dict[tuple[str, str, str], int]) -> dict:
    """Precision and recall of a relation set's switched-on relations (``rs.relations()``) against
    ``expected`` (:func:`expected_relations`), with every mined relation and every miss listed."""
    mined = {(r.dataset, r.primary, r.secondary): r.score for r in rs.relations()}
    hits = sorted(set(mined) & set(expected))
    return {
        "precision": len(hits) / len(mined) if mined else 0.0,
        "recall": len(hits) / len(expected) if expected else 0.0,
        "mined": [{"dataset": d, "primary": p, "secondary": s, "score": round(mined[(d, p, s)], 4), "planted": (d, p, s) in expected}
                  for d, p, s in sorted(mined)],
        "missed": [{"dataset": d, "primary": p, "secondary": s, "pixels": expected[(d, p, s)]}
                   for d, p, s in sorted(set(expected) - set(mined))],
        "expected": len(expected),
        "tau": float(rs.tau.tau),
        "tau_how": rs.tau.how,
    }


#: Why Eq. 6 left a planted relation off, in the order they are tested.
WHY = {
    "not learned": "the model does not know the secondary class",
    "not enough support": "too few interior pixels of the primary",
    "no conflict": "no other dataset lacks the primary and has the secondary (the rule)",
    "below tau": "s(c') <= tau",
    "primary higher": "s(c') <= s(c)",
}


def why_missed(planted: dict, score, pixels, valid, datasets, classes, *, min_support: int = 1, rule: str = "paper") -> dict:
    """Why Eq. 6 left each planted relation off, from the mining statistics alone.

    ``planted`` is :func:`planted_score`'s result. Each of its ``missed`` rows gains ``score``
    s(c'), ``own`` s(c) and ``why`` (a key of :data:`WHY`): ``not learned`` when the model hardly
    knows the secondary class (its own score, ``uniseg.relations.stats.class_own_scores``, is under
    ``KNOWN``), for no mining rule can find a class the model does not know; ``not enough
    support`` when the primary has fewer than ``min_support`` pixels to average over; ``no
    conflict`` when ``rule`` is ``conflict`` and no label space allows it; else ``below tau`` or
    ``primary higher`` (s(c') <= s(c)). ``learned`` counts the planted relations whose secondary
    class the model knows and how many of those were found, so that the rule's recall reads apart
    from the model's."""
    from uniseg.relations.eq6 import conflict_possible
    from uniseg.relations.stats import KNOWN, class_own_scores

    score = np.asarray(score, dtype=np.float64)
    known = class_own_scores(score, pixels, valid) >= KNOWN
    conflict = conflict_possible(valid) if rule == "conflict" else np.ones(score.shape, dtype=bool)
    di, ci = {n: i for i, n in enumerate(datasets)}, {n: i for i, n in enumerate(classes)}
    rows = []
    for m in planted["missed"]:
        d, c, c2 = di[m["dataset"]], ci[m["primary"]], ci[m["secondary"]]
        s2, s1 = float(score[d, c, c2]), float(score[d, c, c])
        if not known[c2]:
            why = "not learned"
        elif int(pixels[d, c]) < min_support:
            why = "not enough support"
        elif not conflict[d, c, c2]:
            why = "no conflict"
        else:
            why = "below tau" if s2 <= planted["tau"] else "primary higher"
        rows.append({**m, "score": round(s2, 4), "own": round(s1, 4), "why": why})
    found = sum(1 for m in planted["mined"] if m["planted"] and known[ci[m["secondary"]]])
    expected = found + sum(r["why"] != "not learned" for r in rows)
    return {"missed": rows, "learned": {"expected": expected, "found": found, "recall": found / expected if expected else 0.0}}
