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
from typing import Sequence

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

    def relations(self) -> list[Relation]:
        """Switched-on relations sorted by primary class, dataset (file order), then -score, secondary."""
        sim, names = self.similarity, self.similarity.classes
        out = []
        for d, c, c2 in np.argwhere(self.switched_on):
            out.append(Relation(
                dataset=sim.datasets[d], primary=names[c], secondary=names[c2], score=float(sim.score[d, c, c2]),
                own_score=float(sim.score[d, c, c]), in_space=bool(self.valid[d, c2]), pixels=int(sim.pixels[d, c]),
            ))
        order = {n: i for i, n in enumerate(sim.datasets)}
        return sorted(out, key=lambda r: (r.primary, order[r.dataset], -r.score, r.secondary))


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
        entries[-1]["secondary"].append({"class": r.secondary, "score": _r(r.score), "in_space": r.in_space})
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
    return doc


HEADER = """\
# Multi-label table of Eq. 6 (UniSeg, ECCV 2022) written by {generator}. Do not edit: fingerprints guard it.
# table.npy: datasets x classes x classes int8 [dataset, ground-truth class, class]: 1 / 0 / -1 (null),
#   rows in the order of `datasets`, classes in the order of union.yaml; `uniseg train --loss cr-bce` reads it.
# tau: the threshold of Eq. 6 (how: auto = the paper's rule, or given).
# relations: like the paper's Table A-1: a pixel of `primary` in `dataset` also trains each `secondary`
#   class (score = s_d,primary(secondary), own_score = s_d,primary(primary); in_space: the secondary class
#   is one of the dataset's own classes).
"""


def dump_relations_yaml(doc: dict) -> str:
    import yaml

    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None, width=200)
    return HEADER.format(generator=doc["generator"]) + body


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


def write_relations(out: str | Path, rs: RelationSet) -> list[Path]:
    """Write ``relations.yaml``, ``table.npy``, ``union.yaml`` and the similarity copy into ``out``
    (atomically; ``relations.yaml`` last); refuse a folder holding another union's artifacts."""
    from uniseg.io import atomic_save_npy, atomic_write_text
    from uniseg.unify.artifact import dump_union_yaml

    out = Path(out)
    check_folder_union(out, rs.union)
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
    from uniseg.yamlio import read_yaml
    from uniseg.unify.artifact import load_union

    rt = read_relation_table(path)
    yml = Path(rt.path)
    doc = read_yaml(yml)
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
    return RelationSet(sim, union, valid, tau, rt.table, str(yml.parent), min_support, rule)


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
