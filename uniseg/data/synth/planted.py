"""The planted relations: which fine classes each synthetic dataset folds into which of its classes.

Written as ``planted_relations.yaml`` beside the synthetic datasets so that relation mining
(Eq. 7 of the paper) can be scored against the truth. The file is documented in its header.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import yaml

from uniseg.data.synth.spec import DatasetMapping, fine_classes
from uniseg.data.synth.truth import FINE_DIR, containment, finest_of
from uniseg.errors import UnisegError
from uniseg.io import atomic_write_text
from uniseg.labelspaces.schema import LabelSpace

if TYPE_CHECKING:
    from uniseg.labelspaces.registry import Registry
    from uniseg.unify.union import UnionSpace

FORMAT = "uniseg-planted-relations/1"

HEADER = """\
# Relations planted in the synthetic road world by `uniseg data synth` (format {format}).
#
# Every scene is drawn with fine classes (fine_classes below); each dataset's labels were written
# by mapping every fine class to one of the dataset's classes or to void, as its annotators would.
#
# datasets.<name>:
#   encoding     the label encoding the files were written in
#   images       images written
#   classes      official class name -> {{unified: its name in a union, fine: fine classes written
#                as that class}}; classes that no fine class maps to are left out
#   void         fine classes written as void (not part of the dataset's label space)
#   raw          fine class -> name of the raw value written for it (void values included)
#   fine_pixels  pixels of each fine class drawn in this dataset (support of each relation)
#   digest       of every image and fine label drawn for it, in order (part of the fingerprint)
#
# fingerprint: the world's: over the settings, each dataset's digest and its class table. Runs and
#   scores made on a world can name it; another world (seed, size, mapping, code) has another one.
#
# fine_truth: what only a synthetic world has. Each label file's fine ground truth is an 8-bit PNG
#   of fine ids (position in fine_classes) at fine/<dataset>/<label path relative to the dataset
#   root>. finest: for the union named (every dataset here), each fine class -> the finest union
#   class containing it (the one whose fine classes, over the union's datasets, are fewest), null
#   where every dataset writes it as void. `uniseg eval --fine-truth WORLD` works it out for the
#   model's own union.
#
# relations: the ground truth for relation mining. One row per (dataset, class, other unified
#   class): every fine class of `class` in `dataset` is also inside a class whose unified name is
#   `secondary` in each dataset of `holds_in` — so a pixel of `primary` is also a `secondary`
#   (bicyclist -> rider, lane marking - general -> road). kind: 'equivalent' when the fine sets are
#   equal in every holder, else 'subset'. pixels: support of the primary class in `dataset`.
#   For a training set S, the expected relations are the rows with dataset in S and at least one
#   holder in S. `pairs` lists each (primary, secondary) once with the datasets it comes from.
"""


def _fold_table(space: LabelSpace, mapping: DatasetMapping) -> dict[str, dict]:
    folds = mapping.folds()
    out: dict[str, dict] = {}
    for c in space.classes:
        if c.name in folds:
            out[c.name] = {"unified": c.unified, "fine": list(folds[c.name])}
    return out


def planted_relations(
    spaces: dict[str, LabelSpace],
    mappings: dict[str, DatasetMapping],
    images: dict[str, int],
    pixels: dict[str, dict[str, int]],
    *,
    seed: int,
    size: tuple[int, int],
    images_per_dataset: int,
    digests: dict[str, str] | None = None,
    registry: "Registry | None" = None,
) -> dict:
    """The document written to planted_relations.yaml (plain data). ``digests``: per dataset, the
    digest of what was drawn (the fingerprint covers it); ``registry``: for the union the fine
    truth's ``finest`` table is written for (default: the built-in registry)."""
    fines = [f.name for f in fine_classes()]
    datasets: dict[str, dict] = {}
    sets: dict[str, list[tuple[str, str, frozenset]]] = {}  # dataset -> [(class, unified, fine set)]
    for name, mapping in mappings.items():
        space = spaces[name]
        table = _fold_table(space, mapping)
        datasets[name] = {
            "encoding": mapping.encoding.name,
            "images": images.get(name, 0),
            "classes": table,
            "void": list(mapping.folds().get(None, [])),
            "raw": {t.fine: t.raw_name for t in mapping.targets},
            "fine_pixels": {f: int(n) for f, n in pixels.get(name, {}).items() if n},
            "digest": (digests or {}).get(name, ""),
        }
        sets[name] = [(cname, row["unified"], frozenset(row["fine"])) for cname, row in table.items()]

    relations = []
    for d, rows in sets.items():
        for cname, unified, fset in rows:
            support = sum(pixels.get(d, {}).get(f, 0) for f in fset)
            found: dict[str, list[tuple[str, bool]]] = {}
            for d2, rows2 in sets.items():
                if d2 == d:
                    continue
                for _c2, u2, fset2 in rows2:
                    if u2 != unified and fset <= fset2:
                        found.setdefault(u2, []).append((d2, fset == fset2))
            for u2 in sorted(found):
                holders = found[u2]
                relations.append({
                    "dataset": d,
                    "class": cname,
                    "primary": unified,
                    "secondary": u2,
                    "kind": "equivalent" if all(eq for _, eq in holders) else "subset",
                    "holds_in": sorted(h for h, _ in holders),
                    "pixels": int(support),
                })
    pairs: dict[tuple[str, str], set[str]] = {}
    for r in relations:
        pairs.setdefault((r["primary"], r["secondary"]), set()).add(r["dataset"])
    doc = {
        "format": FORMAT,
        "seed": int(seed),
        "images": int(images_per_dataset),
        "size": [int(size[0]), int(size[1])],
        "fine_classes": fines,
        "datasets": datasets,
        "relations": relations,
        "pairs": [{"primary": p, "secondary": s, "datasets": sorted(ds)} for (p, s), ds in sorted(pairs.items())],
    }
    doc["fingerprint"] = world_fingerprint(doc)
    doc["fine_truth"] = _fine_truth_doc(doc, list(mappings), registry)
    return doc


def world_fingerprint(doc: dict) -> str:
    """16 hex digits over the settings, the fine classes and each dataset's digest and class table."""
    import hashlib
    import json

    blob = json.dumps([doc["format"], doc["seed"], doc["images"], doc["size"], doc["fine_classes"],
                       [[n, e.get("digest", ""), e["classes"], e["void"]] for n, e in doc["datasets"].items()]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _fine_truth_doc(doc: dict, names: Sequence[str], registry: "Registry | None") -> dict:
    """The ``fine_truth`` section: where the fine labels lie, and the finest union class of each
    fine class for the union of every dataset in the world."""
    from uniseg.unify.artifact import union_of

    union = union_of(list(names), registry)
    finest = finest_of(containment(doc, union.datasets, union.names))
    return {
        "folder": FINE_DIR,
        "files": f"{FINE_DIR}/<dataset>/<label path relative to the dataset root>, 8-bit PNG of fine ids",
        "union": {"datasets": list(union.datasets), "fingerprint": union.fingerprint},
        "finest": {f: None if k is None else union.names[k] for f, k in zip(doc["fine_classes"], finest)},
    }


def write_planted(path: Path, doc: dict) -> None:
    head = {k: doc[k] for k in ("format", "fingerprint", "seed", "images", "size") if k in doc}
    rest = {k: v for k, v in doc.items() if k not in head and k != "fine_classes"}
    opts = dict(sort_keys=False, allow_unicode=True, width=200)
    text = (
        HEADER.format(format=FORMAT)
        + yaml.safe_dump(head, default_flow_style=None, **opts)
        + yaml.safe_dump({"fine_classes": doc["fine_classes"]}, default_flow_style=False, **opts)
        + yaml.safe_dump(rest, default_flow_style=None, **opts)
    )
    atomic_write_text(path, text)


def read_planted(path: Path) -> dict:
    """A planted-relations file as written by ``write_planted``; anything else is a one-line error."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnisegError(f"{path}: unreadable ({first}); move it away or choose another --out") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("datasets"), dict):
        raise UnisegError(f"{path}: not a planted-relations file (format {FORMAT}); move it away or choose another --out")
    return doc


def expected_relations(doc: dict, train: Sequence[str]) -> dict[tuple[str, str, str], int]:
    """The relations mining should find when training on ``train``: ``(dataset, primary, secondary)``
    -> pixels, for rows whose dataset is trained on, that hold in at least one other trained
    dataset, and whose primary class has pixels (a relation without support cannot be mined)."""
    names = set(train)
    out: dict[tuple[str, str, str], int] = {}
    for row in doc.get("relations", []):
        if row["dataset"] in names and names & set(row["holds_in"]) and int(row["pixels"]) > 0:
            out[(row["dataset"], row["primary"], row["secondary"])] = int(row["pixels"])
    return out


def ideal_scores(doc: dict, train: Sequence[str], union: "UnionSpace") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. 7 for an ideal Null-BCE model of the world: ``(score, valid, pixels)`` over ``train`` x
    the ``union``'s classes (``D x K x K``, ``D x K``, ``D x K``), as :func:`uniseg.relations.eq6.auto_tau`
    and ``multilabel_table`` take them.

    The model tells every fine class apart but not the dataset it came from, so on a fine class f
    its output for class k is the share of positive targets Null BCE gives k on f: over the
    training datasets that label f and have k in their space (``union.null_mask``), each weighted
    by its share of f's pixels in it (balanced datasets), 0 where none does. A dataset's class
    scores the pixel-weighted mean over its fine classes. On this model the planted primaries score
    about 1 on their own pixels, all but IDD's rail track, and auto tau comes out 1, so Eq. 6
    switches nothing on (a test checks it): a real model mines a relation where it is less sure of
    the primary than of the secondary."""
    at = {n: i for i, n in enumerate(union.names)}
    fine = list(doc["fine_classes"])
    fine_at = {n: i for i, n in enumerate(fine)}
    d, k, f = len(train), union.num_classes, len(fine)
    label = np.zeros((d, f, k))  # one-hot: the unified class dataset d writes fine class f as
    valid = union.null_mask(train)
    count = np.zeros((d, f))
    for i, name in enumerate(train):
        ds = doc["datasets"][name]
        for entry in ds["classes"].values():
            for fc in entry["fine"]:
                label[i, fine_at[fc], at[entry["unified"]]] = 1.0
        for fc, n in ds["fine_pixels"].items():
            count[i, fine_at[fc]] = n
    share = count / np.maximum(count.sum(1, keepdims=True), 1)  # balanced: each dataset's pixel share
    labelled = label.sum(2, keepdims=True) > 0  # d x f x 1: f written as one of d's classes (not void)
    supervised = labelled & valid[:, None, :]  # d x f x k: Null BCE gives k a target on f in d
    positive = np.einsum("df,dfk->fk", share, label)
    total = np.einsum("df,dfk->fk", share, supervised.astype(float))
    p = np.divide(positive, total, out=np.zeros_like(positive), where=total > 0)
    pixels = np.einsum("df,dfc->dc", count, label)
    score = np.einsum("df,dfc,fk->dck", count, label, p)
    score = np.divide(score, pixels[:, :, None], out=np.zeros_like(score), where=pixels[:, :, None] > 0)
    return np.clip(score, 0.0, 1.0), valid, pixels.astype(np.int64)
