"""Export a union and its remap tables to the formats other codebases read.

Each exporter is a pure function ``(union, spaces) -> {relative path: bytes}`` so tests can
parse the output back; ``export`` writes the result atomically to a file or folder.
``mmseg`` and ``detectron2`` write Python modules their users import as they are (typed
values, registered classes); what a format cannot carry is listed by :func:`left_out`.
Every format but ``hf`` stores unified ids as uint8 with 255 = ignore, so a union of more
than 255 classes is refused rather than wrapped around.
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
from uniseg.io import atomic_write_bytes, new_output
from uniseg.labelfiles import unpack_rgb
from uniseg.labelspaces.schema import IGNORE, LabelSpace
from uniseg.unify.artifact import union_to_dict
from uniseg.unify.lut import LookupTable, build_lut
from uniseg.unify.union import MAX_CLASSES, UnionSpace

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


# Formats whose per-dataset maps take integer label ids, and what else they cannot take.
_ID_MAP_FORMATS = ("mmseg", "detectron2")


def left_out(union: UnionSpace, spaces: Sequence[LabelSpace], fmt: str) -> dict[str, str]:
    """``{"<dataset>.<encoding>": why}`` for the encodings ``fmt`` cannot carry (colour labels in
    ``mmseg``/``detectron2``, 16-bit ids in ``mmseg``); their labels go through ``uniseg labels remap``."""
    out: dict[str, str] = {}
    if fmt not in _ID_MAP_FORMATS:
        return out
    remap = "remap the labels with 'uniseg labels remap' first"
    for s in spaces:
        for e in s.encodings.values():
            if e.kind == "rgb":
                out[f"{s.name}.{e.name}"] = f"colour-encoded, and {fmt} label maps take integer ids: {remap}"
            elif fmt == "mmseg" and e.bits > 8:
                out[f"{s.name}.{e.name}"] = f"16-bit ids, and mmseg's LoadAnnotations reads labels as uint8: {remap}"
    return out


def _id_luts(union: UnionSpace, spaces: Sequence[LabelSpace], fmt: str) -> list[LookupTable]:
    """The lookup tables ``fmt`` carries; refuses a union none of whose encodings it can take."""
    skipped = left_out(union, spaces, fmt)
    luts = [lut for lut in _luts(union, spaces) if f"{lut.dataset}.{lut.encoding}" not in skipped]
    if not luts:
        why = "; ".join(f"{key} is {reason}" for key, reason in skipped.items())
        raise UnisegError(f"nothing to export as {fmt}: {why} (--to json or hf give the union's classes)")
    return luts


def _py(value, indent: int = 0) -> str:
    """A Python literal of ``value``; continuation lines indented by ``indent`` spaces. Maps of
    int to int are written a row of items per line (pprint gives each item a line)."""
    if isinstance(value, dict) and value and all(isinstance(k, int) and isinstance(v, int) for k, v in value.items()):
        lines = [""]
        for k, v in value.items():
            item = f"{k}: {v}"
            if lines[-1] and indent + len(lines[-1]) + len(item) + 3 > 100:
                lines.append("")
            lines[-1] += (", " if lines[-1] else "") + item
        return "{" + (",\n" + " " * (indent + 1)).join(lines) + "}"
    if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
        rows = [f"{k!r}: {_py(v, indent + len(repr(k)) + 3)}" for k, v in value.items()]
        return "{" + (",\n" + " " * (indent + 1)).join(rows) + "}"
    text = pprint.pformat(value, width=100 - indent, compact=True, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


# Appended verbatim to the generated mmseg module: registers the union's dataset class and the
# label-remapping transform with mmseg 1.x's registries when mmseg is installed.
_MMSEG_REGISTRATION = '''

# -- mmseg 1.x registration: runs on import where mmseg is installed (custom_imports) ------------
try:
    import mmseg as _mmseg
except ModuleNotFoundError:  # no mmseg here: the data above still reads
    _mmseg = None

if _mmseg is not None:
    import numpy as _np
    from mmcv.transforms import BaseTransform as _BaseTransform
    from mmseg.datasets import BaseSegDataset as _BaseSegDataset
    from mmseg.registry import DATASETS as _DATASETS
    from mmseg.registry import TRANSFORMS as _TRANSFORMS

    @_DATASETS.register_module(name="UnisegDataset", force=True)
    class UnisegDataset(_BaseSegDataset):
        """BaseSegDataset over the union's classes and palette (``metainfo``)."""

        METAINFO = metainfo

    @_TRANSFORMS.register_module(name="UnisegLabelRemap", force=True)
    class UnisegLabelRemap(_BaseTransform):
        """``gt_seg_map`` raw ids -> unified ids (255 = ignore) for one dataset encoding.

        Place it right after ``LoadAnnotations``. Ids the encoding does not list become 255.
        """

        def __init__(self, dataset, encoding=None):
            if dataset not in label_maps:
                have = ", ".join(label_maps)
                raise KeyError(f"UnisegLabelRemap: no label map for dataset {dataset!r} in union {uniseg_fingerprint} (have: {have})")
            encoding = encoding or next(iter(label_maps[dataset]))
            if encoding not in label_maps[dataset]:
                have = ", ".join(label_maps[dataset])
                raise KeyError(f"UnisegLabelRemap: dataset {dataset!r} has no encoding {encoding!r} here (have: {have})")
            self.dataset, self.encoding = dataset, encoding
            self.lut = _np.full(256, ignore_index, dtype=_np.uint8)
            for raw, unified in label_maps[dataset][encoding].items():
                self.lut[raw] = unified

        def transform(self, results):
            seg = _np.asarray(results["gt_seg_map"])
            if seg.ndim != 2 or seg.dtype != _np.uint8:
                raise ValueError(
                    f"UnisegLabelRemap({self.dataset}.{self.encoding}) needs an H x W uint8 gt_seg_map "
                    f"(LoadAnnotations' output), got {seg.dtype} {seg.shape}"
                )
            results["gt_seg_map"] = self.lut[seg]
            return results

        def __repr__(self):
            return f"{type(self).__name__}(dataset={self.dataset!r}, encoding={self.encoding!r})"
'''


def export_mmseg(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """A Python module for mmsegmentation 1.x: ``metainfo`` (classes, palette), ``label_maps``
    ``[dataset][encoding]`` (raw id -> unified id), and, on import where mmseg is installed, the
    registered ``UnisegDataset`` and ``UnisegLabelRemap`` (goes after ``LoadAnnotations``)."""
    label_maps: dict = {}
    for lut in _id_luts(union, spaces, "mmseg"):
        label_maps.setdefault(lut.dataset, {})[lut.encoding] = {r.raw_id: r.unified_index for r in lut.rows}
    body = [
        f'"""mmsegmentation 1.x settings for the uniseg union {union.fingerprint} ({union.num_classes} classes; uniseg {__version__}).',
        "",
        "Generated by 'uniseg labels export --to mmseg': do not edit. Put this file on PYTHONPATH and, in",
        "an mmseg config:",
        "",
        "    custom_imports = dict(imports=['<this module>'], allow_failed_imports=False)",
        "    dataset = dict(type='UnisegDataset', ...,  # classes and palette of the union",
        "                   pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),",
        "                             dict(type='UnisegLabelRemap', dataset='<dataset>', encoding='<encoding>'), ...])",
        "",
        "Labels already remapped by 'uniseg labels remap' need no UnisegLabelRemap. Encodings in",
        "'left_out' have no label map here: remap their labels first.",
        '"""',
        "",
        f"uniseg_fingerprint = {union.fingerprint!r}",
        f"ignore_index = {IGNORE}",
        "metainfo = dict(",
        f"    classes={_py(tuple(union.names), 12)},",
        f"    palette={_py([list(c.colour) for c in union.classes], 12)},",
        ")",
        "# raw id -> unified id (255 = ignore); ids not listed are unknown and become 255",
        f"label_maps = {_py(label_maps, 13)}",
        f"left_out = {_py(left_out(union, spaces, 'mmseg'), 11)}",
    ]
    return {"": ("\n".join(body) + "\n" + _MMSEG_REGISTRATION).encode()}


def export_detectron2(union: UnionSpace, spaces: Sequence[LabelSpace]) -> Files:
    """A Python module for detectron2: ``metadata["<dataset>.<encoding>"]``, one flat dict each
    that ``MetadataCatalog.get(name).set(**metadata[key])`` takes as it is (``stuff_classes``,
    ``stuff_colors`` as tuples, ``ignore_label``, ``stuff_dataset_id_to_contiguous_id`` with int keys)."""
    entries = {}
    for lut in _id_luts(union, spaces, "detectron2"):
        ids = {r.raw_id: r.unified_index for r in lut.rows if r.unified_index != IGNORE}
        entries[f"{lut.dataset}.{lut.encoding}"] = ids
    body = [
        f'"""detectron2 metadata for the uniseg union {union.fingerprint} ({union.num_classes} classes; uniseg {__version__}).',
        "",
        "Generated by 'uniseg labels export --to detectron2': do not edit. detectron2 reads contiguous ids",
        "from sem_seg_file_name, so point it at labels remapped by 'uniseg labels remap' (unified ids,",
        "255 = ignore), then:",
        "",
        "    from detectron2.data import MetadataCatalog",
        "    from <this module> import metadata",
        "    MetadataCatalog.get('<your dataset name>').set(**metadata['<dataset>.<encoding>'])",
        "",
        "stuff_dataset_id_to_contiguous_id maps that dataset's raw class ids to unified ids: detectron2's",
        "SemSegEvaluator uses it to write predictions back in the dataset's ids (every predicted class",
        "must then be one of the dataset's). Encodings in 'left_out' have no id map here.",
        '"""',
        "",
        f"uniseg_fingerprint = {union.fingerprint!r}",
        f"stuff_classes = {_py(union.names, 16)}",
        f"stuff_colors = {_py([tuple(c.colour) for c in union.classes], 15)}",
        f"ignore_label = {IGNORE}",
        "metadata = {",
    ]
    for key, ids in entries.items():
        body += [
            f"    {key!r}: dict(",
            "        stuff_classes=stuff_classes,",
            "        stuff_colors=stuff_colors,",
            "        ignore_label=ignore_label,",
            "        evaluator_type='sem_seg',",
            f"        stuff_dataset_id_to_contiguous_id={_py(ids, 43)},",
            "        uniseg_fingerprint=uniseg_fingerprint,",
            "    ),",
        ]
    body += ["}", f"left_out = {_py(left_out(union, spaces, 'detectron2'), 11)}"]
    return {"": ("\n".join(body) + "\n").encode()}


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
    "mmseg": (export_mmseg, "Python module: metainfo, label maps, UnisegDataset + UnisegLabelRemap (mmsegmentation 1.x)"),
    "detectron2": (export_detectron2, "Python module: one MetadataCatalog dict per dataset encoding (detectron2)"),
    "hf": (export_hf, "id2label / label2id (Hugging Face transformers config)"),
}


EXPORT_COMMAND = "labels export"  # the command named in a folder export's record of outputs


def export(union: UnionSpace, spaces: Sequence[LabelSpace], fmt: str, out: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Render ``fmt`` and write it to ``out`` (a file, or a folder for ``npy``); returns the paths.

    A folder export records what it wrote (``.uniseg-outputs.json``): it refuses a folder holding
    another union's or format's export, or files uniseg did not write, unless ``overwrite``."""
    if fmt not in EXPORTERS:
        import difflib

        close = difflib.get_close_matches(fmt, list(EXPORTERS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of: {', '.join(EXPORTERS)}"
        raise UnisegError(f"unknown export format {fmt!r} ({hint})")
    if union.num_classes > MAX_CLASSES and fmt != "hf":
        raise UnisegError(
            f"union {union.fingerprint} has {union.num_classes} classes: {fmt} stores unified ids as uint8 "
            f"(0-{MAX_CLASSES - 1}, {IGNORE} = ignore), which cannot hold them without wrapping around; use --to hf, or a smaller union"
        )
    files = EXPORTERS[fmt][0](union, spaces)
    out = Path(out)
    folder = any(name for name in files)
    if folder and out.exists() and not out.is_dir():
        raise UnisegError(f"--out {out}: format {fmt} writes a folder, but this is a file")
    if not folder and out.is_dir():
        raise UnisegError(f"--out {out}: is a folder; format {fmt} writes one file (give a file path)")
    written = []
    with new_output(out):  # a folder (npy) made here goes again if a write fails: no half-made export
        if folder:
            from uniseg.io import claim_outputs, make_folder

            make_folder(out, "--out")
            claim_outputs(out, EXPORT_COMMAND, {"format": fmt, "union": union.fingerprint}, [out / n for n in files],
                          overwrite=overwrite)
        for name, data in files.items():
            path = out / name if name else out
            atomic_write_bytes(path, data)
            written.append(path)
    return written
