"""Remap label images (files or folder trees) into unified ids with a lookup table.

Which files: only the label files of the table's encoding. A real dataset copy keeps other
files beside them (Cityscapes ``_labelTrainIds``, ``_instanceIds``, ``_color``, polygons); the
registry layouts tell them apart (``uniseg.labelfiles.select``), and what is left out is counted
in the report. A folder whose files match no known pattern is taken whole (PNG/TIFF/BMP).

Each file is read by ``uniseg.unify.apply.read_unified``, exactly as ``data check``, ``data
prepare`` and ``SegDataset`` read it: files that cannot be labels of the encoding (a JPEG, a
photo, mostly unknown values) are errors; a few unknown values are counted and written as 255
(an error with ``strict``). Errors are reported per file and the run goes on.

Parallel over files (``uniseg.parallel``), atomic writes, resumable: the marker
``OUT/.uniseg-remap.json`` names the union and encoding (another one is refused) and records,
per output, the size and mtime of its source; a rerun skips outputs whose source is unchanged
and redoes the rest. It also lists every output a run set out to write (``outputs``): a file
there that no remap wrote is not replaced without ``overwrite``. A full or read-only disk
(``uniseg.io.WriteFault``) stops the run at once; the marker keeps what is done.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.filetree import visible_files
from uniseg.io import atomic_save_image, atomic_write_text, check_output_path, output_folder, refuse_foreign
from uniseg.labelfiles import format_raw, select_label_files, top_values
from uniseg.labelspaces.schema import Encoding, LabelSpace
from uniseg.parallel import FileResult, run_files
from uniseg.unify.apply import read_unified
from uniseg.unify.lut import LookupTable

MARKER = ".uniseg-remap.json"
FORMAT = "uniseg.remap/v1"

__all__ = ["MARKER", "FileResult", "Job", "RemapReport", "check_marker", "plan", "remap_file", "remap_paths"]


@dataclass
class RemapReport:
    dataset: str
    encoding: str
    fingerprint: str
    out: str
    files: list[FileResult] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # files that are no labels of this encoding, by kind

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def unknown_pixels(self) -> int:
        return sum(f.unknown_pixels for f in self.files)

    @property
    def ok(self) -> bool:
        return self.count("error") == 0


@dataclass(frozen=True)
class Job:
    """One file to remap, with its source's size and mtime when planned (the resume record)."""

    src: str
    dst: str
    rel: str  # dst relative to the output folder (the marker's key)
    format: str  # 'png' | 'polygons'
    size: int
    mtime_ns: int


def plan(sources: Sequence[str | os.PathLike], out: str | os.PathLike, space: LabelSpace | None = None,
         encoding: str | None = None) -> tuple[list[Job], dict[str, int]]:
    """Jobs for the label files of ``space``'s ``encoding`` under ``sources`` (a file goes to
    ``out/<name>.png``, a folder keeps its tree) and the files left out, by kind."""
    out = Path(out)
    jobs: list[Job] = []
    left_out: dict[str, int] = {}
    seen: dict[Path, str] = {}
    empty = LabelSpace(name="", title="", classes=(), encodings={})
    for src in map(Path, sources):
        if src.is_file():
            files, base = [src], None
        elif src.is_dir():
            files, base = sorted(src / f for f in visible_files(src)), src
        else:
            raise UnisegError(f"{src}: no such file or folder (give label images or folders of them)")
        sel = select_label_files(space or empty, encoding or "", files)
        chosen = files if base is None and sel.rule == "all" else sel.files  # a file named outright is taken
        if base is None and sel.rule == "all":
            sel.left_out = {}
        for k, n in sel.left_out.items():
            left_out[k] = left_out.get(k, 0) + n
        for f in chosen:
            dst = out / (f.name if base is None else f.relative_to(base))
            dst = dst.with_suffix(".png")
            if f.resolve() == dst.resolve():
                raise UnisegError(f"{f}: --out would overwrite the source; choose another --out folder")
            if dst in seen and seen[dst] != str(f):
                raise UnisegError(f"{f} and {seen[dst]} would both be written to {dst}; remap them into separate --out folders")
            seen[dst] = str(f)
            st = f.stat()
            jobs.append(Job(str(f), str(dst), dst.relative_to(out).as_posix(), sel.format, st.st_size, st.st_mtime_ns))
    return jobs, left_out


def remap_file(src: str | os.PathLike, dst: str | os.PathLike, lut: LookupTable, strict: bool = False, *,
               format: str = "png", encoding: Encoding | None = None) -> FileResult:
    """Remap one file; never raises for bad data (the result says what went wrong)."""
    try:
        got = read_unified(src, lut, format, encoding)
    except UnisegError as exc:  # the result names the file: keep the message without it
        return FileResult(str(src), "error", str(dst), error=str(exc).removeprefix(f"{src}: "))
    res = FileResult(str(src), "done", str(dst), unknown=top_values(got.unknown), unknown_pixels=sum(got.unknown.values()),
                     unknown_values=len(got.unknown), pixels=got.pixels)
    if strict and got.unknown:
        colour = lut.kind == "rgb"
        more = f", … ({res.unknown_values} in all)" if res.unknown_values > len(res.unknown) else ""
        res.status, res.error = "error", "unknown raw values: " + ", ".join(
            f"{format_raw(v, colour)} ({n} px)" for v, n in res.unknown.items()) + more
        return res
    try:
        atomic_save_image(dst, got.image, format="PNG")
    except OSError as exc:
        res.status, res.error = "error", f"{dst}: cannot write ({exc.strerror or exc})"
    return res


def _remap_job(job: Job, context: tuple[LookupTable, bool, Encoding | None]) -> FileResult:
    lut, strict, encoding = context
    return remap_file(job.src, job.dst, lut, strict, format=job.format, encoding=encoding)


def check_marker(out: str | os.PathLike, lut: LookupTable) -> dict:
    """The resume records of ``out`` (dst -> source record); refuses a folder remapped for
    another union or encoding."""
    marker = Path(out) / MARKER
    if not marker.exists():
        return {}
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
        got = (str(doc["fingerprint"]), str(doc["dataset"]), str(doc["encoding"]))
        files = dict(doc.get("files") or {})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnisegError(f"{marker}: unreadable remap marker ({exc}); delete it to remap everything again") from None
    want = (lut.fingerprint, lut.dataset, lut.encoding)
    if got != want:
        raise FingerprintMismatch(
            f"{out}: holds labels for union {got[0]} ({got[1]}.{got[2]}), not {want[0]} ({want[1]}.{want[2]}); "
            "choose another --out or delete it"
        )
    return files


def _claimed(out: Path) -> set[str]:
    """The outputs earlier runs into ``out`` set out to write (the marker's ``outputs``)."""
    try:
        doc = json.loads((Path(out) / MARKER).read_text(encoding="utf-8"))
        return {str(r) for r in doc.get("outputs") or []}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def _default_space(lut: LookupTable) -> LabelSpace | None:
    from uniseg.labelspaces.registry import default_registry

    try:
        return default_registry().get(lut.dataset)
    except UnisegError:
        return None


def remap_paths(
    lut: LookupTable,
    sources: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    space: LabelSpace | None = None,
    workers: int = 1,
    strict: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    overwrite: bool = False,
) -> RemapReport:
    """Remap the label files under ``sources`` into ``out``; skips outputs whose source is unchanged.

    ``space``: the label space the table was built from, whose layouts pick the label files
    (default: the built-in registry's entry for ``lut.dataset``). ``overwrite``: replace files in
    ``out`` that no remap wrote (else refused before anything is written).
    """
    space = space if space is not None else _default_space(lut)
    out = check_output_path(out, [s for s in sources if Path(s).is_dir()])
    jobs, left_out = plan(sources, out, space, lut.encoding)
    if not jobs:
        found = sum(left_out.values())
        what = f"{lut.dataset}.{lut.encoding} label files"
        if found:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(left_out.items()))
            raise UnisegError(f"no {what} among the {found} files given ({kinds}); check --dataset/--encoding and the folder")
        raise UnisegError(f"no {what} under {', '.join(map(str, sources))}")
    encoding = space.encoding(lut.encoding) if space is not None and lut.encoding in space.encodings else None
    report = RemapReport(lut.dataset, lut.encoding, lut.fingerprint, str(out), left_out=left_out)
    with output_folder(out, [s for s in sources if Path(s).is_dir()]):
        book = _Marker(out, lut, jobs, on_result)
        refuse_foreign(out, [Path(j.dst) for j in jobs], book.owns, overwrite=overwrite)
        book.flush()  # claim the folder for this union and encoding before writing labels into it
        report.files = run_files(_remap_job, jobs, context=(lut, strict, encoding), workers=workers, done=book.done,
                                 on_start=on_start, on_result=book.record, flush=book.flush)
    report.files.sort(key=lambda f: f.src)
    return report


class _Marker:
    """The marker of a run being written: which outputs are done from unchanged sources, and saving it."""

    def __init__(self, out: Path, lut: LookupTable, jobs: Sequence[Job], on_result: Callable[[FileResult], None] | None) -> None:
        self.out, self.on_result = out, on_result
        self.records = check_marker(out, lut)
        self.doc = {"format": FORMAT, "fingerprint": lut.fingerprint, "dataset": lut.dataset, "encoding": lut.encoding}
        self.jobs = {(j.src, j.dst): j for j in jobs}
        self.claimed = _claimed(out) | set(self.records)  # outputs a remap set out to write here (killed runs' included)
        self.outputs = self.claimed | {j.rel for j in jobs}

    def owns(self, path: Path) -> bool:
        """Whether a remap into this folder wrote (or set out to write) ``path``."""
        return Path(path).relative_to(self.out).as_posix() in self.claimed

    @staticmethod
    def _source(job: Job) -> dict:
        return {"src": os.path.abspath(job.src), "size": job.size, "mtime_ns": job.mtime_ns}

    def done(self, job: Job) -> FileResult | None:
        rec = self.records.get(job.rel)
        want = self._source(job)
        if rec is None or {k: rec.get(k) for k in want} != want:
            return None
        try:
            if os.path.getsize(job.dst) != rec.get("bytes"):
                return None
        except OSError:
            return None
        return FileResult(job.src, "skipped", job.dst)

    def record(self, res: FileResult) -> None:
        job = self.jobs[(res.src, res.dst)]
        if res.status == "done":
            self.records[job.rel] = {**self._source(job), "bytes": os.path.getsize(job.dst)}
        elif res.status == "error" and self.records.pop(job.rel, None) is not None:
            Path(job.dst).unlink(missing_ok=True)  # its source changed and no longer remaps: drop the stale output
        if self.on_result is not None:
            self.on_result(res)

    def flush(self) -> None:
        doc = {**self.doc, "outputs": sorted(self.outputs), "files": dict(sorted(self.records.items()))}
        atomic_write_text(self.out / MARKER, json.dumps(doc, indent=0, ensure_ascii=False) + "\n")
