"""Remap label images (files or folder trees) into unified ids with a lookup table.

Parallel over files, resumable (an existing output is complete because every write is atomic),
and honest about bad data: unknown raw values are counted per file (mapped to 255, or an error
with ``strict``); unreadable or non-label images are reported and the run goes on.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.io import atomic_save_image, atomic_write_text
from uniseg.unify.lut import LookupTable

LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
MARKER = ".uniseg-remap.yaml"


@dataclass
class FileResult:
    src: str
    dst: str
    status: str  # 'done' | 'skipped' | 'error'
    unknown: dict[int, int] = field(default_factory=dict)  # raw value -> pixels
    error: str = ""
    pixels: int = 0


@dataclass
class RemapReport:
    dataset: str
    encoding: str
    fingerprint: str
    out: str
    files: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def unknown_pixels(self) -> int:
        return sum(sum(f.unknown.values()) for f in self.files)

    @property
    def ok(self) -> bool:
        return self.count("error") == 0


def plan(sources: Sequence[str | os.PathLike], out: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(source, destination) pairs: a file goes to ``out/<name>``, a folder keeps its tree."""
    out = Path(out)
    pairs: list[tuple[Path, Path]] = []
    for src in map(Path, sources):
        if src.is_file():
            pairs.append((src, out / src.with_suffix(".png").name))
        elif src.is_dir():
            files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES)
            files = [p for p in files if not _inside(p, out)]
            pairs += [(p, (out / p.relative_to(src)).with_suffix(".png")) for p in files]
        else:
            raise UnisegError(f"{src}: no such file or folder (give label images or folders of them)")
    seen: dict[Path, Path] = {}
    for s, d in pairs:
        if s.resolve() == d.resolve():
            raise UnisegError(f"{s}: --out would overwrite the source; choose another --out folder")
        if d in seen and seen[d] != s:
            raise UnisegError(f"{s} and {seen[d]} would both be written to {d}; remap them into separate --out folders")
        seen[d] = s
    return pairs


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def decode_label(img, lut: LookupTable) -> np.ndarray:
    """Raw label values of an opened Pillow image as the encoding needs them: ids (L / P
    indices / 16-bit) or RGB colours. A photo where ids are expected is refused."""
    mode = img.mode
    if lut.kind == "rgb":
        if mode in ("RGB", "RGBA"):
            return np.asarray(img)[..., :3]
        if mode == "P":
            return np.asarray(img.convert("RGB"))
        raise ValueError(f"{mode} image, expected RGB colours for encoding {lut.encoding!r}")
    if mode in ("L", "P"):  # P: the palette index is the id (Mapillary); never convert to RGB
        return np.asarray(img)
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        return arr.astype(np.uint16) if arr.min(initial=0) >= 0 and arr.max(initial=0) < 65536 else arr
    raise ValueError(f"{mode} image, expected single-channel ids for encoding {lut.encoding!r} (is this a photo, not a label?)")


_WORKER_LUT: LookupTable | None = None


def _init_worker(lut: LookupTable) -> None:
    global _WORKER_LUT
    _WORKER_LUT = lut


def remap_file(src: Path, dst: Path, lut: LookupTable, strict: bool = False) -> FileResult:
    """Remap one file; never raises for bad data (the result says what went wrong)."""
    from PIL import Image, UnidentifiedImageError

    try:
        try:
            with Image.open(src) as img:
                img.load()
                pixels = img.width * img.height
                if lut.accepts_image(img.mode):  # 8-bit ids: Pillow's C lookup, no numpy round trip
                    out, unknown = lut.apply_image(img)
                else:
                    raw = decode_label(img, lut)
                    unknown = lut.unknown_counts(raw)
                    out = None if strict and unknown else Image.fromarray(lut.apply(raw), mode="L")
        except UnidentifiedImageError:
            raise ValueError("not an image file Pillow can read") from None
        except OSError as exc:
            raise ValueError(f"unreadable image: {exc}") from None
        if strict and unknown:
            values = ", ".join(f"{_fmt_value(v, lut)} ({n} px)" for v, n in sorted(unknown.items()))
            return FileResult(str(src), str(dst), "error", unknown, f"unknown raw values: {values}", pixels)
        atomic_save_image(dst, out, format="PNG")
        return FileResult(str(src), str(dst), "done", unknown, "", pixels)
    except (ValueError, OSError) as exc:
        return FileResult(str(src), str(dst), "error", {}, str(exc))


def _remap_in_worker(args: tuple[Path, Path, bool]) -> FileResult:
    src, dst, strict = args
    assert _WORKER_LUT is not None
    return remap_file(src, dst, _WORKER_LUT, strict)


def _fmt_value(value: int, lut: LookupTable) -> str:
    if lut.kind == "rgb":
        return f"({value >> 16},{(value >> 8) & 255},{value & 255})"
    return str(value)


def format_value(value: int, lut: LookupTable) -> str:
    """A raw value as a person reads it: an id, or an ``(r,g,b)`` colour."""
    return _fmt_value(value, lut)


def check_marker(out: Path, lut: LookupTable) -> None:
    """Refuse an output folder that holds labels remapped for another union or encoding."""
    from uniseg.labelspaces.loader import read_yaml

    marker = out / MARKER
    if not marker.exists():
        return
    doc = read_yaml(marker) or {}
    got = (str(doc.get("fingerprint")), str(doc.get("dataset")), str(doc.get("encoding")))
    want = (lut.fingerprint, lut.dataset, lut.encoding)
    if got != want:
        raise FingerprintMismatch(
            f"{out}: holds labels for union {got[0]} ({got[1]}.{got[2]}), not {want[0]} ({want[1]}.{want[2]}); "
            "choose another --out or delete it"
        )


def remap_paths(
    lut: LookupTable,
    sources: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    workers: int = 1,
    strict: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> RemapReport:
    """Remap every label file under ``sources`` into ``out``; skips outputs that already exist."""
    out = Path(out)
    pairs = plan(sources, out)
    check_marker(out, lut)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / MARKER,
        f"fingerprint: {lut.fingerprint}\ndataset: {lut.dataset}\nencoding: {lut.encoding}\n",
    )
    report = RemapReport(lut.dataset, lut.encoding, lut.fingerprint, str(out))
    todo = []
    for src, dst in pairs:
        if dst.exists():
            res = FileResult(str(src), str(dst), "skipped")
            report.files.append(res)
            if on_result:
                on_result(res)
        else:
            todo.append((src, dst, strict))
    if on_start:
        on_start(len(pairs), len(pairs) - len(todo))
    for res in _run(lut, todo, workers):
        report.files.append(res)
        if on_result:
            on_result(res)
    report.files.sort(key=lambda f: f.src)
    return report


def _run(lut: LookupTable, todo: list[tuple[Path, Path, bool]], workers: int) -> Iterable[FileResult]:
    if workers <= 1 or len(todo) <= 1:
        for src, dst, strict in todo:
            yield remap_file(src, dst, lut, strict)
        return
    fresh = dataclasses.replace(lut)  # no cached dense tables: workers build their own
    chunk = max(1, min(32, len(todo) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(fresh,)) as pool:
        yield from pool.map(_remap_in_worker, todo, chunksize=chunk)
