"""The multi-label table artifact: ``DIR/relations.yaml`` (for people) + ``DIR/table.npy`` (for training).

``table.npy`` is ``D x K x K`` int8 indexed ``[dataset, ground-truth class, class]``: 1 positive,
0 negative, -1 null (Eq. 6), datasets in the order ``relations.yaml`` lists them. The YAML
records the union fingerprint and the table's own fingerprint; ``--loss cr-bce`` refuses a table
made for another union, and a table that does not match its YAML.

``uniseg relations labels`` also leaves ``union.yaml`` and a copy of the ``similarity.npz`` it
read in DIR, so the graph commands work from the folder alone; ``relations.yaml`` names both
(with fingerprints), tau and how it was chosen, and the switched-on relations like the paper's
Table A-1. Same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from uniseg.errors import ConfigError, FingerprintMismatch, UnisegError
from uniseg.relations.eq6 import TauChoice, auto_tau, given_tau, multilabel_table
from uniseg.relations.stats import SIMILARITY_FILE, Similarity, read_similarity, write_similarity
from uniseg.unify.union import UnionSpace

RELATIONS_FILE = "relations.yaml"
TABLE_FILE = "table.npy"
UNION_COPY = "union.yaml"
FORMAT = "uniseg.relations/v1"
SCORE_DIGITS = 4  # scores in relations.yaml are for people; the table is computed at full precision


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
                f"({'+'.join(union.datasets)}); a table is never carried to another union: mine again for this one "
                "(train or --init a model of it, then 'uniseg relations mine' and 'uniseg relations labels')"
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
    return _read_table(path)[0]


def _read_table(path: str | Path, check_doc: bool = True) -> tuple[RelationTable, dict]:
    """``(table, relations.yaml document)``; ``check_doc``: refuse a hand-edited document here."""
    from uniseg.yamlio import read_yaml

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
    if check_doc:
        check_document(doc, yml)
    return RelationTable(table, datasets, str(doc["fingerprint"]), fp, str(yml)), doc


def check_document(doc: dict, yml: Path) -> None:
    """Refuse a ``relations.yaml`` edited by hand: its :data:`DOCUMENT_KEY` must match the rest of it
    (a file from before that key has none, and passes; :func:`read_relations` checks its relations)."""
    if DOCUMENT_KEY not in doc:
        return
    recorded, actual = str(doc[DOCUMENT_KEY]), document_fingerprint(doc)
    if recorded != actual:
        raise FingerprintMismatch(
            f"{yml}: edited by hand: its content gives document fingerprint {actual}, not the {recorded} it records; "
            "relations change only through 'uniseg relations review ... --out NEW' (a new folder), or write the folder again "
            "with 'uniseg relations labels'"
        )


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


# --------------------------------------------------------------------------------------------
# building and writing the artifact
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    """One switched-on multi-label: a pixel of ``primary`` in ``dataset`` also trains ``secondary``."""

    dataset: str
    primary: str
    secondary: str
    score: float  # s_{d,primary}(secondary)
    own_score: float  # s_{d,primary}(primary)
    in_space: bool  # secondary is a class of the dataset's own label space
    pixels: int  # pixels of primary in the dataset
    source: str = "mined"  # mined (Eq. 6, or a mined pair accepted by hand), added or rejected by hand
    kind: str = ""  # subset / equivalent / overlap when a person typed it ("" = the graph's kind)
    note: str = ""  # why, when reviewed by hand
    date: str = ""  # when (YYYY-MM-DD), when reviewed by hand
    reviewed: str = ""  # the hand edit that decided it: accept / add / reject ("" = none)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class RelationSet:
    """Eq. 6 applied to a similarity file: the table (rows in ``similarity.datasets`` order) and
    everything needed to explain it."""

    similarity: Similarity
    union: UnionSpace
    valid: np.ndarray  # D x K bool, similarity.datasets order
    tau: TauChoice
    table: np.ndarray  # D x K x K int8
    source: str = ""
    min_support: int = 1  # pixels a row needs for Eq. 6 to look at it (interior mining: MIN_SUPPORT)
    rule: str = "paper"  # which pairs Eq. 6 may switch on (uniseg.relations.eq6.RULES)
    edits: tuple = ()  # hand edits (uniseg.relations.edits.Edit) replayed onto the Eq. 6 table, in order
    origin: Optional[dict] = None  # reviewed: the relations it was reviewed from (path, fingerprints)

    @property
    def reviewed(self) -> bool:
        return bool(self.edits) or self.origin is not None

    @property
    def datasets(self) -> tuple[str, ...]:
        return self.similarity.datasets

    @property
    def switched_on(self) -> np.ndarray:
        """``D x K x K`` bool: off-diagonal ones of the table (the multi-labels Eq. 6 added)."""
        on = self.table == 1
        k = on.shape[1]
        on[:, np.arange(k), np.arange(k)] = False
        return on

    def filled_in(self) -> dict[str, list[str]]:
        """Unified class -> the datasets whose label space lacks it but whose relations switch it on:
        the classes the table teaches from data that Null BCE leaves out (null there)."""
        d, _, c2 = np.nonzero(self.switched_on & ~self.valid[:, None, :])
        out: dict[str, set[str]] = {}
        for i, k in zip(d.tolist(), c2.tolist()):
            out.setdefault(self.similarity.classes[k], set()).add(self.datasets[i])
        return {c: sorted(v, key=self.datasets.index) for c, v in sorted(out.items())}

    def unsupported(self) -> list[dict]:
        """The classes without enough support: labelled in a dataset, but with fewer than
        ``min_support`` pixels the statistics are over (interior mining), so Eq. 6 switches on no
        relation of theirs. Empty for the plain mean (any pixel is support)."""
        sim = self.similarity
        rows = self.valid & (sim.labelled_pixels > 0) & (sim.pixels < self.min_support)
        return [{"dataset": sim.datasets[d], "class": sim.classes[c], "pixels": int(sim.pixels[d, c]),
                 "all_pixels": int(sim.labelled_pixels[d, c])} for d, c in np.argwhere(rows)]

    def _relation(self, d: int, c: int, c2: int, decided=None) -> Relation:
        sim, names = self.similarity, self.similarity.classes
        prov = {}
        if decided is not None:
            source = {"accept": "mined", "add": "added", "reject": "rejected"}[decided.action]
            prov = {"source": source, "kind": decided.kind, "note": decided.note, "date": decided.date, "reviewed": decided.action}
        return Relation(
            dataset=sim.datasets[d], primary=names[c], secondary=names[c2], score=float(sim.score[d, c, c2]),
            own_score=float(sim.score[d, c, c]), in_space=bool(self.valid[d, c2]), pixels=int(sim.pixels[d, c]), **prov,
        )

    def _sorted(self, rels: list[Relation]) -> list[Relation]:
        order = {n: i for i, n in enumerate(self.similarity.datasets)}
        return sorted(rels, key=lambda r: (r.primary, order[r.dataset], -r.score, r.secondary))

    def relations(self) -> list[Relation]:
        """Switched-on relations sorted by primary class, dataset (file order), then -score, secondary;
        a reviewed set's carry where they came from (``source``, ``kind``, ``note``, ``date``)."""
        from uniseg.relations.edits import final_edits

        sim, names = self.similarity, self.similarity.classes
        decided = final_edits(self.edits)
        out = []
        for d, c, c2 in np.argwhere(self.switched_on):
            e = decided.get((sim.datasets[d], names[c], names[c2]))
            out.append(self._relation(d, c, c2, e if e is not None and e.action != "reject" else None))
        return self._sorted(out)

    def rejected(self) -> list[Relation]:
        """The relations a person switched off (``source`` "rejected"), sorted like :meth:`relations`."""
        from uniseg.relations.edits import final_edits

        sim, names = self.similarity, self.similarity.classes
        out = []
        for key, e in final_edits(self.edits).items():
            if e.action == "reject":
                d, c, c2 = sim.datasets.index(key[0]), names.index(key[1]), names.index(key[2])
                out.append(self._relation(d, c, c2, e))
        return self._sorted(out)

    def hand_kinds(self) -> dict[tuple[int, int, int], str]:
        """``(d, c, c2) -> kind`` of the switched-on relations a person typed (subset / equivalent / overlap)."""
        from uniseg.relations.edits import final_edits

        sim, names = self.similarity, list(self.similarity.classes)
        out = {}
        for (ds, p, s), e in final_edits(self.edits).items():
            if e.action != "reject" and e.kind:
                out[(sim.datasets.index(ds), names.index(p), names.index(s))] = e.kind
        return out


#: Interior pixels a class needs in a dataset before Eq. 6 looks at its row (interior mining): a
#: mean over fewer is noise. The plain mean keeps the paper's rule (any pixel).
MIN_SUPPORT = 50


def default_support(sim: Similarity) -> int:
    return MIN_SUPPORT if sim.interior else 1


#: The default of ``relations labels --rule``: Eq. 6 on pairs a label conflict can explain (see
#: ``docs/relations.md``: on the demo it keeps every planted relation Eq. 6 finds and drops the
#: pole -> building kind); ``paper`` is the equation as printed.
DEFAULT_RULE = "conflict"


def build_relations(sim: Similarity, union: UnionSpace, tau: float | None = None, source: str = "",
                    min_support: int | None = None, rule: str = DEFAULT_RULE) -> RelationSet:
    """Eq. 6 over ``sim`` with ``tau`` (None: the automatic rule); checks the file against ``union``.
    ``min_support``: pixels a row needs (default :func:`default_support`); ``rule``: which pairs
    may switch on (:data:`uniseg.relations.eq6.RULES`)."""
    from uniseg.relations.eq6 import RULES

    if rule not in RULES:
        raise UnisegError(f"--rule {rule!r}: choose {' or '.join(RULES)}")
    valid = sim.valid_for(union)
    support = default_support(sim) if min_support is None else max(1, int(min_support))
    choice = auto_tau(sim.score, valid, sim.pixels, support) if tau is None else given_tau(tau)
    table = multilabel_table(sim.score, valid, sim.pixels, choice.tau, support, rule)
    check_table(table, valid, sim.datasets)
    return RelationSet(sim, union, valid, choice, table, source, support, rule)


RULE_NOTES = {
    "paper": "Eq. 6 as printed: any c' with s(c') > max(tau, s(c))",
    "conflict": "Eq. 6 on pairs a label conflict can explain: c' with s(c') > max(tau, s(c)) where another training "
                "dataset lacks c and has c' (its annotators can have written c as c')",
}


def _r(x: float) -> float:
    return round(float(x), SCORE_DIGITS)


def relations_doc(rs: RelationSet) -> dict:
    """The ``relations.yaml`` document (contract keys: format, fingerprint, datasets, table_fingerprint)."""
    from uniseg import __version__

    entries: list[dict] = []
    for r in rs.relations():
        if not entries or (entries[-1]["primary"], entries[-1]["dataset"]) != (r.primary, r.dataset):
            entries.append({"primary": r.primary, "dataset": r.dataset, "own_score": _r(r.own_score), "pixels": r.pixels, "secondary": []})
        entries[-1]["secondary"].append({"class": r.secondary, "score": _r(r.score), "in_space": r.in_space, **_provenance(r, rs)})
    rels = rs.relations()
    doc = {
        "format": FORMAT,
        "generator": f"uniseg {__version__}",
        "fingerprint": rs.union.fingerprint,
        "datasets": list(rs.datasets),
        "num_classes": rs.union.num_classes,
        "table": TABLE_FILE,
        "table_fingerprint": table_fingerprint(rs.table),
        "union": UNION_COPY,
        "similarity": {"file": SIMILARITY_FILE, "fingerprint": rs.similarity.content_fingerprint, "source": rs.source},
        "tau": {"value": float(rs.tau.tau), "how": rs.tau.how, "rows": int(rs.tau.rows), "note": rs.tau.note},
        "rule": {"name": rs.rule, "note": RULE_NOTES[rs.rule]},
        "counts": {
            "relations": len(rels),
            "outside_space": sum(not r.in_space for r in rels),
            "in_space": sum(r.in_space for r in rels),
            "measured_classes": int((rs.valid & rs.similarity.measured).sum()),
        },
        "relations": entries,
    }
    if rs.similarity.interior or rs.min_support > 1:  # the plain mean's file reads as it always did
        doc["support"] = {
            "interior": int(rs.similarity.interior), "min_pixels": int(rs.min_support),
            "note": "statistics over interior pixels (each class mask eroded by `interior` pixels); a class with fewer "
                    "than min_pixels of them in a dataset has not enough support: Eq. 6 switches on no relation of its",
            "not_enough": rs.unsupported(),
        }
    if rs.reviewed:  # by hand: where each relation came from, what was switched off, and the edits in order
        rejected = rs.rejected()
        doc["counts"].update(added=sum(r.source == "added" for r in rels), accepted=sum(r.reviewed == "accept" for r in rels),
                             rejected=len(rejected))
        doc["rejected"] = [{"primary": r.primary, "dataset": r.dataset, "secondary": r.secondary, "score": _r(r.score),
                            "in_space": r.in_space, **_provenance(r, rs)} for r in rejected]
        doc["review"] = {"from": dict(rs.origin or {}), "edits": [e.as_dict() for e in rs.edits]}
    return with_document_fingerprint(doc)


def _provenance(r: Relation, rs: RelationSet) -> dict:
    """A reviewed set's per-relation record: source (mined / added / rejected), and for a hand-edited
    relation its kind, note and date. Nothing for a set no person reviewed (every relation is mined)."""
    if not rs.reviewed:
        return {}
    out: dict = {"source": r.source}
    if r.reviewed:
        out["reviewed"] = r.reviewed
        if r.kind:
            out["kind"] = r.kind
        out.update(note=r.note, date=r.date)
    return out


#: The key of ``relations.yaml`` that holds the fingerprint of every other key (tau, rule, support,
#: the relations and their review included): a hand edit anywhere in the file is refused. Files
#: from before it have none and still load (their relations are checked against the table).
DOCUMENT_KEY = "document_fingerprint"


def document_fingerprint(doc: dict) -> str:
    """16 hex digits of SHA-256 over the document less :data:`DOCUMENT_KEY`, as canonical JSON (the
    values a YAML reader gives back: the same before writing and after reading)."""
    import json

    body = {k: v for k, v in doc.items() if k != DOCUMENT_KEY}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def with_document_fingerprint(doc: dict) -> dict:
    """``doc`` with :data:`DOCUMENT_KEY` after ``table_fingerprint`` (computed over what YAML gives back)."""
    import yaml

    body = {k: v for k, v in doc.items() if k != DOCUMENT_KEY}
    fp = document_fingerprint(yaml.safe_load(_yaml_body(body)))  # what a reader of the file gets back
    out: dict = {}
    for k, v in body.items():
        out[k] = v
        if k == "table_fingerprint":
            out[DOCUMENT_KEY] = fp
    out.setdefault(DOCUMENT_KEY, fp)
    return out


HEADER = """\
# Multi-label table of Eq. 6 (UniSeg, ECCV 2022) written by {generator}. Do not edit: fingerprints guard it
#   (document_fingerprint covers every key); change relations with 'uniseg relations review', which writes a new folder.
# table.npy: datasets x classes x classes int8 [dataset, ground-truth class, class]: 1 / 0 / -1 (null),
#   rows in the order of `datasets`, classes in the order of union.yaml; `uniseg train --loss cr-bce` reads it.
# tau: the threshold of Eq. 6 (how: auto = the paper's rule, or given).
# relations: like the paper's Table A-1: a pixel of `primary` in `dataset` also trains each `secondary`
#   class (score = s_d,primary(secondary), own_score = s_d,primary(primary); in_space: the secondary class
#   is one of the dataset's own classes).
# A reviewed folder (uniseg relations review) adds per relation its source (mined, added or rejected by hand)
#   with kind, note and date, the `rejected` relations, and `review`: where it came from and every edit in order.
"""


def _yaml_body(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None, width=200)


def dump_relations_yaml(doc: dict) -> str:
    return HEADER.format(generator=doc["generator"]) + _yaml_body(doc)


def folder_fingerprint(out: Path) -> str | None:
    """The union fingerprint of the relation artifacts already in ``out``: recorded by its
    union.yaml or relations.yaml, else its similarity.npz (None when it holds none)."""
    from uniseg.unify.artifact import read_fingerprint

    if not out.is_dir():
        return None
    for name in (UNION_COPY, RELATIONS_FILE):
        if (out / name).is_file():
            return read_fingerprint(out / name)
    if (out / SIMILARITY_FILE).is_file():
        return read_similarity(out / SIMILARITY_FILE).fingerprint
    return None


def check_folder_union(out: str | Path, union: UnionSpace) -> None:
    """Refuse an output folder that holds relation artifacts of another union (mining and
    ``relations labels`` never mix two unions in one folder)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UnisegError(f"--out {out}: exists and is not a folder")
    held = folder_fingerprint(out)
    if held is not None and held != union.fingerprint:
        raise FingerprintMismatch(f"--out {out}: holds artifacts of union {held}, not {union.fingerprint} "
                                  f"({'+'.join(union.datasets)}); choose another --out")


def _describe(folder: Path) -> str:
    """A few words on the relations in ``folder`` for a refusal (what would be lost)."""
    from uniseg.yamlio import read_yaml

    try:
        doc = read_yaml(folder / RELATIONS_FILE)
        tau = doc.get("tau", {})
        what = f"tau {float(tau.get('value')):.4f} ({tau.get('how')}), {doc.get('counts', {}).get('relations', '?')} relations"
        return what + (", reviewed by hand" if "review" in doc else "")
    except Exception:  # a broken file is still something the write would replace
        return "relations"


def _same_relations(yml: Path, rs: RelationSet) -> bool:
    """Whether ``yml`` holds the relations ``rs`` gives (the same table, statistics, tau, rule and
    support, not reviewed): writing them again changes nothing a reader uses."""
    from uniseg.yamlio import read_yaml

    try:
        doc = read_yaml(yml)
        held = (str(doc["table_fingerprint"]), str(doc["similarity"]["fingerprint"]), float(doc["tau"]["value"]), str(doc["tau"]["how"]),
                str(doc.get("rule", {}).get("name", "paper")), int((doc.get("support") or {}).get("min_pixels", 1)), "review" in doc)
    except Exception:  # not a relations file this uniseg reads: something else the write would replace
        return False
    new = (table_fingerprint(rs.table), rs.similarity.content_fingerprint, float(rs.tau.tau), rs.tau.how, rs.rule, int(rs.min_support), rs.reviewed)
    return held == new


def check_replacing(out: str | Path, rs: RelationSet) -> None:
    """Refuse to replace relation artifacts in ``out`` other than the ones ``rs`` gives: a
    ``relations.yaml`` (a table made otherwise, or reviewed by hand), a ``table.npy`` without one,
    or a ``similarity.npz`` other than ``rs``'s. The same relations again pass."""
    out = Path(out)
    fix = "choose another --out, or give --replace to replace them"
    yml, npy = out / RELATIONS_FILE, out / TABLE_FILE
    if yml.is_file():
        if not _same_relations(yml, rs):
            raise UnisegError(f"--out {out}: holds other relations ({_describe(out)}) than these (tau {rs.tau.tau:.4f}, {rs.tau.how}, "
                              f"rule {rs.rule}, {len(rs.relations())} relations); {fix}")
    elif npy.is_file():
        raise UnisegError(f"--out {out}: holds a {TABLE_FILE} without its {RELATIONS_FILE}; {fix}")
    copy, src = out / SIMILARITY_FILE, Path(rs.similarity.path)
    if copy.is_file() and not (src.is_file() and src.resolve() == copy.resolve()):
        try:
            held = read_similarity(copy).content_fingerprint
        except UnisegError:
            held = None
        if held != rs.similarity.content_fingerprint:
            raise UnisegError(f"--out {out}: holds a {SIMILARITY_FILE} other than {rs.similarity.path} (fingerprint {held}, not "
                              f"{rs.similarity.content_fingerprint}), which these relations would replace; {fix}")


def check_no_relations(out: str | Path, what: str) -> None:
    """Refuse an ``out`` holding a relations table made from its ``similarity.npz``: writing a new
    similarity there (``what``: mining) would orphan the table (the graph commands would refuse it)."""
    out = Path(out)
    for name in (RELATIONS_FILE, TABLE_FILE):
        if (out / name).is_file():
            raise UnisegError(f"--out {out}: holds {name}, made from its {SIMILARITY_FILE}; {what} would replace that file and leave "
                              f"the table without its statistics; choose another --out (or delete {RELATIONS_FILE} and {TABLE_FILE})")


def write_relations(out: str | Path, rs: RelationSet, replace: bool = True) -> list[Path]:
    """Write ``relations.yaml``, ``table.npy``, ``union.yaml`` and the similarity copy into ``out``
    (atomically; ``relations.yaml`` last); refuse a folder holding another union's artifacts, and
    with ``replace=False`` one holding other relations (:func:`check_replacing`)."""
    from uniseg.io import atomic_save_npy, atomic_write_text
    from uniseg.unify.artifact import dump_union_yaml

    out = Path(out)
    check_folder_union(out, rs.union)
    if not replace:
        check_replacing(out, rs)
    written = [out / UNION_COPY]
    atomic_write_text(out / UNION_COPY, dump_union_yaml(rs.union))
    copy = out / SIMILARITY_FILE
    src = Path(rs.similarity.path)
    if not (src.is_file() and copy.is_file() and src.resolve() == copy.resolve()):
        written += write_similarity(out, rs.similarity)
    atomic_save_npy(out / TABLE_FILE, np.ascontiguousarray(rs.table, dtype=np.int8))
    atomic_write_text(out / RELATIONS_FILE, dump_relations_yaml(relations_doc(rs)))
    return [out / RELATIONS_FILE, out / TABLE_FILE, *written]


def read_relations(path: str | Path) -> RelationSet:
    """A relations folder (or its ``relations.yaml``) with its table, union and similarity copy,
    each checked against the fingerprints ``relations.yaml`` records."""
    from uniseg.unify.artifact import load_union

    rt, doc = _read_table(path, check_doc=False)  # the document is checked below, naming the key edited where it can
    yml = Path(rt.path)
    for key in ("union", "similarity", "tau"):
        if key not in doc:
            raise ConfigError(yml, f"missing key {key!r}: written without its union and similarity; rewrite it with 'uniseg relations labels'", key=key)
    try:
        sim_file, sim_fp = str(doc["similarity"]["file"]), str(doc["similarity"]["fingerprint"])
        tau = TauChoice(float(doc["tau"]["value"]), int(doc["tau"].get("rows", 0)), str(doc["tau"]["how"]), str(doc["tau"].get("note", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(yml, f"malformed similarity/tau record ({exc})") from None
    union = load_union(yml.parent / str(doc["union"]))
    if union.fingerprint != rt.union_fingerprint:
        raise FingerprintMismatch(f"{yml.parent / str(doc['union'])}: union {union.fingerprint}, but {yml} was made for {rt.union_fingerprint}")
    sim = read_similarity(yml.parent / sim_file)
    if sim.content_fingerprint != sim_fp:
        raise FingerprintMismatch(f"{sim.path}: similarity fingerprint {sim.content_fingerprint} differs from {yml} ({sim_fp}); the files do not belong together")
    if sim.datasets != rt.datasets:
        raise UnisegError(f"{yml}: datasets {', '.join(rt.datasets)} differ from {sim.path} ({', '.join(sim.datasets)})")
    valid = sim.valid_for(union)
    support = doc.get("support") if isinstance(doc.get("support"), dict) else {}
    min_support = int(support.get("min_pixels", 1))
    rule = doc.get("rule", {}).get("name", "paper") if isinstance(doc.get("rule"), dict) else "paper"  # older files: the paper's
    edits, origin = _review_of(doc, yml)
    rs = RelationSet(sim, union, valid, tau, rt.table, str(yml.parent), min_support, rule, edits, origin)
    _check_contents(doc, rs, yml)
    check_document(doc, yml)
    return rs


def _review_of(doc: dict, yml: Path) -> tuple[tuple, Optional[dict]]:
    """``(edits, origin)`` of a reviewed file's ``review`` record (none: a file no person reviewed)."""
    from uniseg.relations.edits import edit_from_record

    review = doc.get("review")
    if review is None:
        return (), None
    if not isinstance(review, dict) or not isinstance(review.get("edits", []), list):
        raise ConfigError(yml, "expected a mapping with `from` and a list of `edits`", line=getattr(review, "line", None), key="review")
    edits = tuple(edit_from_record(e, f"{yml}:{getattr(e, 'line', '?')}: review.edits[{i}]") for i, e in enumerate(review.get("edits", [])))
    origin = review.get("from")
    return edits, dict(origin) if isinstance(origin, dict) else {}


def _line(node, key: Optional[str] = None) -> Optional[int]:
    lines = getattr(node, "key_lines", None)
    if key is not None and lines and key in lines:
        return lines[key]
    return getattr(node, "line", None)


def _check_contents(doc: dict, rs: RelationSet, yml: Path) -> None:
    """What the human-readable keys say must be what the table and the similarity say (a file from
    before ``document_fingerprint`` is checked this way alone): the rule, tau (the automatic one is
    recomputed; Eq. 6 with it, and the review's edits, must give table.npy) and every listed
    relation (classes of the union, switched on in the table, with the similarity's scores)."""
    from uniseg.relations.edits import replay
    from uniseg.relations.eq6 import RULES

    sim, names = rs.similarity, list(rs.similarity.classes)
    fix = "relations.yaml is not edited by hand: change relations with 'uniseg relations review', tau with 'uniseg relations labels --tau'"
    rule_node = doc.get("rule")
    if rs.rule not in RULES:
        raise ConfigError(yml, f"{rs.rule!r} is not a rule ({', '.join(RULES)}); {fix}", line=_line(rule_node, "name"), key="rule.name")
    if not (0.0 <= rs.tau.tau <= 1.0):
        raise ConfigError(yml, f"{rs.tau.tau!r} lies outside [0, 1]; {fix}", line=_line(doc.get("tau"), "value"), key="tau.value")
    if replay(rs.table, rs.edits, sim.datasets, names, rs.valid, f"{yml}: review.edits").tobytes() != rs.table.tobytes():
        raise ConfigError(yml, f"table.npy does not hold the relations its review edits decide; {fix}", key="review.edits")
    if rs.tau.how == "auto":
        expect = auto_tau(sim.score, rs.valid, sim.pixels, rs.min_support).tau
        if abs(expect - rs.tau.tau) > 1e-9:
            raise ConfigError(yml, f"{rs.tau.tau!r}, but the automatic tau of {SIMILARITY_FILE} is {expect!r}; {fix}",
                              line=_line(doc.get("tau"), "value"), key="tau.value")
    if rs.tau.how in ("auto", "given"):  # Eq. 6 made the table: it must give it again (then the review's edits)
        eq6 = multilabel_table(sim.score, rs.valid, sim.pixels, rs.tau.tau, rs.min_support, rs.rule)
        if replay(eq6, rs.edits, sim.datasets, names, rs.valid).tobytes() != rs.table.tobytes():
            raise ConfigError(yml, f"tau {rs.tau.tau!r} ({rs.tau.how}), rule {rs.rule!r} and min_pixels {rs.min_support} give another "
                              f"table than table.npy from {SIMILARITY_FILE}; {fix}", line=_line(doc.get("tau"), "value"), key="tau")
    listed = doc.get("relations", [])
    if not isinstance(listed, list):
        raise ConfigError(yml, "expected a list", line=_line(doc, "relations"), key="relations")
    seen: set[tuple[int, int, int]] = set()
    for i, entry in enumerate(listed):
        where = f"relations[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("secondary"), list):
            raise ConfigError(yml, f"expected primary, dataset and a list of secondary classes; {fix}", line=_line(entry), key=where)
        ds, primary = str(entry.get("dataset")), str(entry.get("primary"))
        if ds not in sim.datasets:
            raise ConfigError(yml, f"dataset {ds!r} is not one of {', '.join(sim.datasets)}; {fix}", line=_line(entry, "dataset"), key=f"{where}.dataset")
        if primary not in names:
            raise ConfigError(yml, f"class {primary!r} is not in the union; {fix}", line=_line(entry, "primary"), key=f"{where}.primary")
        d, c = sim.datasets.index(ds), names.index(primary)
        for j, sec in enumerate(entry["secondary"]):
            key = f"{where}.secondary[{j}]"
            name = str(sec.get("class")) if isinstance(sec, dict) else None
            if name not in names:
                raise ConfigError(yml, f"class {name!r} is not in the union; {fix}", line=_line(sec), key=f"{key}.class")
            c2 = names.index(name)
            if c2 == c or rs.table[d, c, c2] != 1:
                raise ConfigError(yml, f"{ds}: {primary} -> {name} is not switched on in table.npy; {fix}", line=_line(sec), key=key)
            score = sec.get("score")
            if not isinstance(score, (int, float)) or isinstance(score, bool) or abs(float(score) - _r(sim.score[d, c, c2])) > 1e-9:
                raise ConfigError(yml, f"{score!r}, but {SIMILARITY_FILE} gives {ds}: {primary} -> {name} the score {_r(sim.score[d, c, c2])}; {fix}",
                                  line=_line(sec, "score"), key=f"{key}.score")
            seen.add((d, c, c2))
    on = {tuple(int(v) for v in x) for x in np.argwhere(rs.switched_on)}
    if on - seen:
        d, c, c2 = sorted(on - seen)[0]
        raise ConfigError(yml, f"table.npy switches on {sim.datasets[d]}: {names[c]} -> {names[c2]}, which the list leaves out; {fix}",
                          line=_line(doc, "relations"), key="relations")


def union_for(sim: Similarity, registry=None) -> UnionSpace:
    """The union a similarity file was mined over when none is named: the ``union.yaml`` beside the
    file, else the registry's union of its datasets (refused when it is not the one mined over)."""
    from uniseg.unify.artifact import UNION_FILE, load_union, union_of

    beside = Path(sim.path).parent / UNION_FILE
    if beside.is_file():
        return load_union(beside)
    union = union_of(sim.datasets, registry)
    if union.fingerprint != sim.fingerprint:
        raise FingerprintMismatch(
            f"{sim.path}: made for union {sim.fingerprint}, but the registry's union of {'+'.join(sim.datasets)} is "
            f"{union.fingerprint}; pass the union used for mining with --union DIR"
        )
    return union
