"""``uniseg data prepare``: a training cache of resized images and unified-id labels.

One pass over a raw dataset root writes, under ``OUT``::

    manifest.json                      what is in the cache and for which union (below)
    images/<source image path>.jpg     RGB, shorter side = --short-side (never upscaled)
    labels/<source image path>.png     L, unified ids of the union, 255 = ignore, same size

so training never decodes a 4000 x 3000 JPEG nor remaps ids at run time. ``SegDataset`` reads a
cache and a raw root the same way.

``manifest.json`` (format ``uniseg.cache/v1``) records the union fingerprint and datasets, the
dataset, layout, label source, encoding, the settings (short side, image format, quality),
per split the number of planned files and whether they are all done, and per file the split,
output paths, size, byte counts and SHA-256 of both outputs, and unknown raw values found.
A cache made for another union, dataset or settings is refused (``FingerprintMismatch``).

Resumable: every output is written atomically and the manifest is rewritten (atomically) every
couple of seconds and on exit, so an interrupted run loses at most those seconds. A re-run skips
files whose sources (image and label: size and mtime) are unchanged and whose outputs match the
manifest's byte counts and SHA-256 (``verify=False``: byte counts only), and redoes the rest.
Labels are read by ``uniseg.unify.apply.read_unified``, as ``labels remap`` and ``SegDataset``
read them. Parallel over files (``uniseg.parallel``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from uniseg import __version__
from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.io import WriteFault, atomic_write_bytes, atomic_write_text, check_output_path, output_folder
from uniseg.labelfiles import format_raw, top_values
from uniseg.labelspaces.schema import Encoding, LabelSpace
from uniseg.parallel import FileResult, run_files
from uniseg.unify.lut import LookupTable
from uniseg.unify.union import UnionSpace

MANIFEST = "manifest.json"
FORMAT = "uniseg.cache/v1"
IMAGE_FORMATS = {"jpeg": ".jpg", "png": ".png"}


def is_cache(root: str | os.PathLike) -> bool:
    return (Path(root) / MANIFEST).is_file()


def read_manifest(root: str | os.PathLike) -> dict:
    path = Path(root) / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnisegError(f"{path}: no such file (not a cache written by 'uniseg data prepare')") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnisegError(f"{path}: unreadable manifest ({exc}); delete the cache folder and prepare it again") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UnisegError(f"{path}: not a uniseg cache manifest (format {FORMAT!r} expected)")
    for key in ("fingerprint", "dataset", "files", "splits"):
        if key not in doc:
            raise UnisegError(f"{path}: manifest lacks {key!r}; delete the cache folder and prepare it again")
    return doc


def check_union(doc: dict, union: UnionSpace, space: LabelSpace, path: Path) -> None:
    """Refuse a cache made for another union or another dataset."""
    if doc["fingerprint"] != union.fingerprint:
        raise FingerprintMismatch(
            f"{path}: cache made for union {doc['fingerprint']} ({'+'.join(doc.get('union_datasets', []))}), "
            f"not {union.fingerprint} ({'+'.join(union.datasets)}); prepare a cache for this union in another folder"
        )
    if doc["dataset"] != space.name:
        raise FingerprintMismatch(f"{path}: cache holds {doc['dataset']!r}, not {space.name!r}")


def cache_items(root: str | os.PathLike, union: UnionSpace, space: LabelSpace,
                split: str | Sequence[str] | None) -> list[tuple[str, str]]:
    """``(image, label)`` absolute paths of a cache's files for ``split`` (None: every split)."""
    root = Path(root)
    doc = read_manifest(root)
    check_union(doc, union, space, root / MANIFEST)
    splits = doc["splits"]
    names = list(splits) if split is None else ([split] if isinstance(split, str) else list(split))
    for n in names:
        if n not in splits:
            raise UnisegError(f"{root}: the cache has no split {n!r} (it has: {', '.join(splits) or 'none'}); prepare it with --split {n}")
        if not splits[n].get("complete"):
            raise UnisegError(
                f"{root}: split {n!r} of the cache is incomplete (an interrupted or failed prepare); run the same 'uniseg data prepare' again to finish it"
            )
    wanted = set(names)
    out = []
    for key in sorted(doc["files"]):
        rec = doc["files"][key]
        if rec["split"] in wanted:
            out.append((str(root / rec["image"]), str(root / rec["label"])))
    return out


# -- preparing --------------------------------------------------------------------------------


@dataclass
class PrepareReport:
    out: str
    dataset: str
    fingerprint: str
    layout: str
    labels: str | None
    splits: dict[str, int]
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[FileResult] = field(default_factory=list)
    unknown: dict = field(default_factory=dict)  # raw value as read ('7', '(1,2,3)', a polygon label) -> pixels
    left_out: dict[str, int] = field(default_factory=dict)  # label files of the layout's other sources
    seconds: float = 0.0
    on_bad_file: str = "error"  # skip: files that fail are left out of a complete cache (``bad_files``), not ``failed``
    bad_files: list[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {
            "out": self.out,
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "layout": self.layout,
            "labels": self.labels,
            "splits": self.splits,
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "failed": [{"file": f.key, "error": f.error} for f in self.failed],
            "bad_files": [{"file": f.key, "error": f.error} for f in self.bad_files],
            "unknown": self.unknown,
            "left_out": self.left_out,
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.done / self.seconds, 2) if self.seconds > 0 and self.done else None,
        }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_ok(path: Path, size: int, sha: str, verify: bool) -> bool:
    try:
        if path.stat().st_size != size:
            return False
        if verify:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest() == sha
        return True
    except OSError:
        return False


def _record_ok(out: Path, rec: dict, verify: bool) -> bool:
    try:
        return _file_ok(out / rec["image"], int(rec["image_bytes"]), rec["image_sha256"], verify) and _file_ok(
            out / rec["label"], int(rec["label_bytes"]), rec["label_sha256"], verify
        )
    except (KeyError, TypeError, ValueError):
        return False


def target_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """``(w, h)`` with the shorter side at ``short_side`` if it is longer (never upscales)."""
    if not short_side or min(width, height) <= short_side:
        return width, height
    s = short_side / min(width, height)
    return max(1, int(round(width * s))), max(1, int(round(height * s)))


class Job(NamedTuple):
    """One image + label to cache, with both sources' ``[size, mtime_ns]`` when planned."""

    key: str  # the image, relative to the root
    image_src: str
    label_src: str
    split: str
    source: dict  # {"image": [size, mtime_ns], "label": [size, mtime_ns]}


class _Context(NamedTuple):
    out: str
    lut: LookupTable
    encoding: Encoding | None  # for polygon labels
    fmt: str
    settings: dict


def _prepare_job(job: Job, ctx: _Context) -> FileResult:
    return prepare_one(job.key, job.image_src, job.label_src, ctx.out, job.split, lut=ctx.lut, encoding=ctx.encoding,
                       fmt=ctx.fmt, source=job.source, **ctx.settings)


def prepare_one(key: str, image_src: str, label_src: str, out: str, split: str, *, lut: LookupTable,
                encoding: Encoding | None, fmt: str, short_side: int | None, image_format: str, quality: int,
                source: dict | None = None) -> FileResult:
    """Write one image + unified label into the cache; never raises for bad data."""
    from PIL import Image

    from uniseg.unify.apply import read_unified

    try:
        got = read_unified(label_src, lut, fmt, encoding)
        label = got.image
        try:
            img = Image.open(image_src)
        except OSError as exc:
            raise UnisegError(f"{image_src}: unreadable image ({exc})") from None
        w, h = target_size(img.width, img.height, short_side)
        if label.size != img.size:
            raise UnisegError(f"{label_src}: label is {label.width}x{label.height} but its image {image_src} is "
                              f"{img.width}x{img.height}; fix or remove the pair")
        if (w, h) != img.size and img.format == "JPEG":
            img.draft("RGB", (w, h))  # DCT-domain downscale while decoding (>= the target size)
        try:
            img.load()
        except OSError as exc:
            raise UnisegError(f"{image_src}: unreadable image ({exc}); re-extract the dataset archive") from None
        from uniseg.labelfiles import photo_rgb

        img, _ = photo_rgb(img, image_src)  # 16-bit / float: scaled, not clipped
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        if label.size != (w, h):
            label = label.resize((w, h), Image.Resampling.NEAREST)
        ibuf, lbuf = io.BytesIO(), io.BytesIO()
        if image_format == "jpeg":
            img.save(ibuf, format="JPEG", quality=int(quality))
        else:
            img.save(ibuf, format="PNG", compress_level=1)
        label.save(lbuf, format="PNG")
        rel = Path(key)
        image_rel = (Path("images") / rel).with_suffix(IMAGE_FORMATS[image_format]).as_posix()
        label_rel = (Path("labels") / rel).with_suffix(".png").as_posix()
        idata, ldata = ibuf.getvalue(), lbuf.getvalue()
        atomic_write_bytes(Path(out) / image_rel, idata)
        atomic_write_bytes(Path(out) / label_rel, ldata)
        colour = lut.kind == "rgb" and fmt != "polygons"
        unknown = {format_raw(k, colour): int(v) for k, v in top_values(got.unknown).items()}
        record = {
            "split": split,
            "image": image_rel,
            "label": label_rel,
            "width": w,
            "height": h,
            "image_bytes": len(idata),
            "image_sha256": _sha256(idata),
            "label_bytes": len(ldata),
            "label_sha256": _sha256(ldata),
            "unknown": dict(sorted(unknown.items())),
            "source": source or {},
        }
        return FileResult(key, "done", record=record, unknown=unknown, unknown_pixels=sum(got.unknown.values()),
                          unknown_values=len(got.unknown), pixels=got.pixels)
    except WriteFault:  # a full disk, a read-only one: no fault of this file, the run stops (and resumes)
        raise
    except UnisegError as exc:
        return FileResult(key, "error", error=str(exc))
    except (OSError, ValueError) as exc:
        return FileResult(key, "error", error=f"{type(exc).__name__}: {exc}")


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _settings(short_side: int | None, image_format: str, quality: int) -> dict:
    """What the manifest records about the cached files (a resumed run must use the same)."""
    if image_format not in IMAGE_FORMATS:
        raise UnisegError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    if not 1 <= int(quality) <= 100:
        raise UnisegError(f"--quality must be 1..100, got {quality}")
    if short_side is not None and short_side < 0:
        raise UnisegError(f"--short-side must be >= 0 (0 = native size), got {short_side}")
    return {"short_side": short_side or None, "image_format": image_format, "quality": int(quality)}


def _jobs(space: LabelSpace, root: Path, found) -> tuple[list[str], list[Job]]:
    """The labelled splits found under ``root`` and one job per labelled image, with its sources' stats."""
    names = [n for n, sf in found.splits.items() if sf.labelled]
    if not names:
        raise UnisegError(f"{root}: no labelled split found (found: {', '.join(found.splits)}); a cache holds labelled images")
    refs = [r for n in names for r in found.splits[n].samples]
    if not refs:
        raise UnisegError(f"{root}: no image has a label in split {', '.join(names)}; run 'uniseg data check {space.name} {root}'")
    jobs = []
    for ref in refs:
        image, label = root / ref.image, root / ref.label
        jobs.append(Job(ref.image, str(image), str(label), ref.split, {"image": _stat(image), "label": _stat(label)}))
    return names, jobs


class _Manifest:
    """The manifest of a run being written: which files are done, what to record, when it is saved."""

    def __init__(self, out: Path, doc: dict, found, names: list[str], report: PrepareReport, verify: bool,
                 on_result: Callable[[FileResult], None] | None) -> None:
        self.out, self.doc, self.files, self.report, self.verify, self.on_result = out, doc, doc["files"], report, verify, on_result
        self.split_keys = {n: [r.image for r in found.splits[n].samples] for n in names}
        for n, keys in self.split_keys.items():
            doc["splits"][n] = {"files": len(keys), "complete": False}

    def done(self, job: Job) -> FileResult | None:
        """A skipped result when the job's outputs are recorded, intact and made from unchanged sources."""
        rec = self.files.get(job.key)
        if rec is not None and rec.get("split") == job.split and rec.get("source") == job.source and _record_ok(self.out, rec, self.verify):
            return FileResult(job.key, "skipped", record=rec)
        self.files.pop(job.key, None)
        return None

    def record(self, res: FileResult) -> None:
        report = self.report
        if res.status == "done":
            self.files[res.key] = res.record
            report.done += 1
            for k, v in res.unknown.items():
                report.unknown[k] = report.unknown.get(k, 0) + v
        elif res.status == "skipped":
            report.skipped += 1
        elif report.on_bad_file == "skip":
            report.bad_files.append(res)
        else:
            report.failed.append(res)
        if self.on_result is not None:
            self.on_result(res)

    def flush(self) -> None:
        failed = {f.key for f in self.report.failed}
        left_out = {f.key: f.error for f in self.report.bad_files}  # --on-bad-file skip
        for n, keys in self.split_keys.items():
            self.doc["splits"][n]["complete"] = all((k in self.files and k not in failed) or k in left_out for k in keys)
        if left_out:
            self.doc["bad_files"] = dict(sorted(left_out.items()))
        else:
            self.doc.pop("bad_files", None)
        _write_manifest(self.out, self.doc)


def prepare_cache(
    union: UnionSpace,
    space: LabelSpace,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str | Sequence[str] | None = None,
    layout: str | None = None,
    labels: str | None = None,
    short_side: int | None = 1080,
    image_format: str = "jpeg",
    quality: int = 95,
    workers: int = 1,
    verify: bool = True,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    on_bad_file: str = "error",
) -> PrepareReport:
    """Write (or finish) the cache of ``space``'s labelled images under ``root`` into ``out``.

    ``on_bad_file``: ``error``: a file that fails is listed in ``failed`` and its split stays
    incomplete (training refuses it; the command exits 2 after the pass); ``skip``: it is listed in
    ``bad_files`` and in the manifest, and left out of a complete cache."""
    from uniseg.data.faults import check_policy
    from uniseg.data.layout import discover
    from uniseg.unify.lut import build_lut

    t0 = time.perf_counter()
    check_policy(on_bad_file)
    root, out = Path(root), Path(out)
    settings = _settings(short_side, image_format, quality)
    check_output_path(out, [root])
    union.check_member(space)
    found = discover(space, root, split=split, layout=layout, labels=labels)
    if found.source is None:
        raise UnisegError(f"{root}: {space.name} layout {found.layout.name!r} has no label source to cache")
    names, jobs = _jobs(space, root, found)
    report = PrepareReport(
        out=str(out), dataset=space.name, fingerprint=union.fingerprint, layout=found.layout.name,
        labels=found.source.name, splits={n: len(found.splits[n].samples) for n in names}, total=len(jobs),
        left_out=dict(found.other_labels), on_bad_file=on_bad_file,
    )
    enc = space.encoding(found.encoding)
    context = _Context(str(out), build_lut(union, space, enc), enc if found.format == "polygons" else None, found.format, settings)
    with output_folder(out, [root]):
        book = _Manifest(out, _open_or_new(out, union, space, found, settings), found, names, report, verify, on_result)
        run_files(_prepare_job, jobs, context=context, workers=workers, done=book.done, on_start=on_start,
                  on_result=book.record, flush=book.flush)
    report.failed.sort(key=lambda f: f.key)
    report.bad_files.sort(key=lambda f: f.key)
    report.seconds = time.perf_counter() - t0
    return report


def _open_or_new(out: Path, union: UnionSpace, space: LabelSpace, found, settings: dict) -> dict:
    path = out / MANIFEST
    if path.exists():
        doc = read_manifest(out)
        check_union(doc, union, space, path)
        recorded = {k: doc.get(k) for k in settings}
        if recorded != settings:
            diff = next(k for k in settings if recorded[k] != settings[k])
            raise UnisegError(
                f"{path}: cache made with {diff.replace('_', '-')} {recorded[diff]!r}, not {settings[diff]!r}; "
                "use the same settings to resume, or another --out"
            )
        for key, now in (("layout", found.layout.name), ("labels", found.source.name)):
            if doc.get(key) != now:
                raise UnisegError(f"{path}: cache made from {key} {doc.get(key)!r}, not {now!r}; use another --out")
        return doc
    if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise UnisegError(f"--out {out}: folder is not empty and holds no {MANIFEST}; choose an empty or new folder")
    return {
        "format": FORMAT,
        "generator": f"uniseg {__version__}",
        "fingerprint": union.fingerprint,
        "union_datasets": list(union.datasets),
        "dataset": space.name,
        "layout": found.layout.name,
        "labels": found.source.name,
        "encoding": found.source.encoding,
        "source_root": str(found.root.resolve()),
        **settings,
        "ignore_index": 255,
        "splits": {},
        "files": {},
    }


def _write_manifest(out: Path, doc: dict) -> None:
    doc = dict(doc, files=dict(sorted(doc["files"].items())))
    atomic_write_text(out / MANIFEST, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
