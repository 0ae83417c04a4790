"""Export a union and its remap tables to the formats other codebases read.

Each exporter is a pure function ``(union, spaces) -> {relative path: bytes}`` so tests can
parse the output back; ``export`` writes the result atomically to a file or folder.
"""

from __future__ import annotations

import io
import json
import pprint
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from uniseg import __version__
from uniseg.errors import UnisegError
from uniseg.io import atomic_write_bytes
from uniseg.labelfiles import unpack_rgb
from uniseg.labelspaces.schema import IGNORE, LabelSpace
from uniseg.unify.artifact import union_to_dict
from uniseg.unify.lut import LookupTable, build_lut
from uniseg.unify.union import UnionSpace

Files = dict[str, bytes]  # relative name ('' = the --out file itself) -> content


def _luts(union: UnionSpace, spaces: Sequence[LabelSpace]) -> list[LookupTable]:
    return [build_lut(union, s, e) for s in spaces for e in s.encodings.values()]


def _raw_key(lut: LookupTable, raw_id: int) -> str:
    return ",".join(map(str, unpack_rgb(raw_id))) if lut.kind == "rgb" else str(raw_id)


def export_csv(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """One long table of every remap row: dataset, encoding, raw_id, raw_name, unified_index, unified_name."""
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", "encoding", "raw_id", "raw_name", "unified_index", "unified_name", "fingerprint"])
    for lut in _luts(union, spaces):
        for r in lut.rows:
            w.writerow([lut.dataset, lut.encoding, _raw_key(lut, r.raw_id), r.raw_name, r.unified_index, r.unified_name, union.fingerprint])
    return {"": buf.getvalue().encode()}


def export_json(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """The union (as ``union.yaml``) plus ``remap[dataset][encoding][raw] = unified index``."""
    doc = union_to_dict(union)
    doc["remap"] = {}
    for lut in _luts(union, spaces):
        doc["remap"].setdefault(lut.dataset, {})[lut.encoding] = {_raw_key(lut, r.raw_id): r.unified_index for r in lut.rows}
    return {"": (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()}


def export_npy(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """A folder: ``<dataset>.<encoding>.npy`` lookup arrays, ``null_mask.npy`` (D x K bool) and
    ``palette.npy`` (K x 3), described by ``index.json``."""
    files: Files = {}
    index: dict = {"fingerprint": union.fingerprint, "classes": union.names, "datasets": list(union.datasets), "luts": {}}

    def npy(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return buf.getvalue()

    for lut in _luts(union, spaces):
        name = f"{lut.dataset}.{lut.encoding}.npy"
        files[name] = npy(lut.compact())
        index["luts"][name] = (
            "uint8 [2^bits]: lut[raw_id] = unified index, 255 = ignore"
            if lut.kind == "index"
            else "uint8 [N, 4]: rows r, g, b, unified index; colours not listed = ignore"
        )
    files["null_mask.npy"] = npy(union.null_mask())
    files["palette.npy"] = npy(union.palette)
    index["null_mask.npy"] = "bool [D, K]: class k is in dataset d's label space (datasets in 'datasets' order)"
    index["palette.npy"] = "uint8 [K, 3]: RGB colour per unified class"
    files["index.json"] = (json.dumps(index, indent=2) + "\n").encode()
    return files


def export_mseg_tsv(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """MSeg-style master TSV: one row per unified class, one column per dataset; a cell holds
    the dataset's class name, ``{a, b}`` when several merge, empty when absent."""
    names = [s.name for s in spaces]
    lines = ["\t".join(["universal", *names])]
    for c in union.classes:
        cells = []
        for d in names:
            members = c.members.get(d, ())
            cells.append(members[0] if len(members) == 1 else ("{" + ", ".join(members) + "}" if members else ""))
        lines.append("\t".join([c.name, *cells]))
    return {"": ("\n".join(lines) + "\n").encode()}


def export_mmseg(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """An mmsegmentation config fragment: ``metainfo`` (classes, palette) for the unified space
    and ``label_maps[dataset][encoding]`` (raw id -> unified id) for ``BaseSegDataset(label_map=...)``."""
    label_maps: dict = {}
    for lut in _luts(union, spaces):
        if lut.kind == "rgb":
            continue  # mmseg's label_map takes integer ids; colour labels must be remapped first
        label_maps.setdefault(lut.dataset, {})[lut.encoding] = {r.raw_id: r.unified_index for r in lut.rows}
    body = [
        f"# mmsegmentation dataset settings for the uniseg union {union.fingerprint} (uniseg {__version__}).",
        "# Use: dict(type='BaseSegDataset', metainfo=metainfo, label_map=label_maps['<dataset>']['<encoding>'], ...).",
        "# Colour-encoded datasets are absent: remap them first with 'uniseg labels remap'.",
        f"uniseg_fingerprint = {union.fingerprint!r}",
        f"ignore_index = {IGNORE}",
        "metainfo = dict(",
        f"    classes={pprint.pformat(tuple(union.names), width=100, compact=True)},",
        f"    palette={pprint.pformat([list(c.colour) for c in union.classes], width=100, compact=True)},",
        ")",
        f"label_maps = {pprint.pformat(label_maps, width=100, compact=True, sort_dicts=False)}",
    ]
    return {"": ("\n".join(body) + "\n").encode()}


def export_detectron2(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """detectron2 ``MetadataCatalog`` fields: ``stuff_classes``, ``stuff_colors``, ``ignore_label``
    and per dataset/encoding ``stuff_dataset_id_to_contiguous_id`` (JSON keys are strings)."""
    doc: dict = {
        "uniseg_fingerprint": union.fingerprint,
        "stuff_classes": union.names,
        "stuff_colors": [list(c.colour) for c in union.classes],
        "ignore_label": IGNORE,
        "datasets": {},
    }
    for lut in _luts(union, spaces):
        if lut.kind == "rgb":
            continue
        doc["datasets"].setdefault(lut.dataset, {})[lut.encoding] = {
            "stuff_dataset_id_to_contiguous_id": {str(r.raw_id): r.unified_index for r in lut.rows if r.unified_index != IGNORE}
        }
    return {"": (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()}


def export_hf(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """Hugging Face ``id2label`` / ``label2id`` (the fields of a model ``config.json``)."""
    doc = {
        "id2label": {str(i): n for i, n in enumerate(union.names)},
        "label2id": {n: i for i, n in enumerate(union.names)},
        "num_labels": union.num_classes,
        "uniseg_fingerprint": union.fingerprint,
    }
    return {"": (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()}


EXPORTERS: Mapping[str, tuple[Callable[[UnionSpace, Sequence[LabelSpace]], Files], str]] = {
    "csv": (export_csv, "every remap row in one CSV (pandas, spreadsheets)"),
    "json": (export_json, "union + remap tables as JSON (any language)"),
    "npy": (export_npy, "folder of lookup arrays + null mask + palette (numpy / PyTorch training loops)"),
    "mseg-tsv": (export_mseg_tsv, "MSeg master-TSV style: a row per unified class, a column per dataset"),
    "mmseg": (export_mmseg, "Python config fragment: metainfo + label_map per dataset (mmsegmentation)"),
    "detectron2": (export_detectron2, "MetadataCatalog fields: stuff_classes, stuff_colors, id maps (detectron2)"),
    "hf": (export_hf, "id2label / label2id (Hugging Face transformers config)"),
}


def export(union: UnionSpace, spaces: Sequence[LabelSpace], fmt: str, out: str | Path) -> list[Path]:
    """Render ``fmt`` and write it to ``out`` (a file, or a folder for ``npy``); returns the paths."""
    if fmt not in EXPORTERS:
        import difflib

        close = difflib.get_close_matches(fmt, list(EXPORTERS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of: {', '.join(EXPORTERS)}"
        raise UnisegError(f"unknown export format {fmt!r} ({hint})")
    files = EXPORTERS[fmt][0](union, spaces)
    out = Path(out)
    folder = any(name for name in files)
    if folder and out.exists() and not out.is_dir():
        raise UnisegError(f"--out {out}: format {fmt} writes a folder, but this is a file")
    if not folder and out.is_dir():
        raise UnisegError(f"--out {out}: is a folder; format {fmt} writes one file (give a file path)")
    written = []
    for name, data in files.items():
        path = out / name if name else out
        atomic_write_bytes(path, data)
        written.append(path)
    return written
