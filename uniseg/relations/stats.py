"""The class-similarity statistics of Eq. 7: ``DIR/similarity.npz`` (+ a tidy ``similarity.csv``).

Arrays: ``score`` (D x K x K, s_{d,c}(c') = mean over d's pixels of ground truth c of
sigmoid(t * cosine) for class c'), ``cosine`` (D x K x K, the mean raw cosine), ``pixels``
(D x K), ``datasets`` / ``classes`` (strings, union order) and ``fingerprint`` (the union's).
Rows (d, c) without pixels carry no measurement: they may hold NaN on disk and read as 0.
Mined on interior pixels (``uniseg relations mine --interior``), the file also holds ``interior``
(the erosion radius in pixels) and ``all_pixels`` (D x K, every labelled pixel; ``pixels`` then
counts the interior ones the means are over). Without them it is the paper's plain mean.
Whoever writes the file (``uniseg relations mine`` or a script), the reader checks it all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.io import atomic_open, atomic_write_text, file_in
from uniseg.names import first_duplicate
from uniseg.unify.union import UnionSpace

SIMILARITY_FILE = "similarity.npz"
SIMILARITY_CSV = "similarity.csv"
CSV_COLUMNS = ["dataset", "class", "other_class", "score", "cosine", "pixels"]
ARRAYS = ("score", "cosine", "pixels", "datasets", "classes", "fingerprint")
INTERIOR_ARRAYS = ("all_pixels", "interior")  # present together, only when mined on interior pixels
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_SLACK = 1e-6  # rounding room at the ends of [0, 1] / [-1, 1]; values inside it are clipped


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class Similarity:
    """Eq. 7 statistics over a union; construction validates and normalises (see module doc)."""

    score: np.ndarray  # D x K x K float64 in [0, 1]
    cosine: np.ndarray  # D x K x K float64 in [-1, 1]
    pixels: np.ndarray  # D x K int64 >= 0
    datasets: tuple[str, ...]
    classes: tuple[str, ...]
    fingerprint: str  # the union's
    path: str = "similarity"  # where it came from, for messages
    all_pixels: np.ndarray | None = None  # D x K int64 every labelled pixel (interior mining); None: = pixels
    interior: int = 0  # erosion radius of interior mining (0: the plain mean over every pixel)

    def __post_init__(self) -> None:
        for name, value in _validated(self).items():
            object.__setattr__(self, name, value)

    @property
    def measured(self) -> np.ndarray:
        """``D x K`` bool: rows (d, c) with pixels of c in d."""
        return self.pixels > 0

    @property
    def labelled_pixels(self) -> np.ndarray:
        """``D x K``: every labelled pixel of each class (``pixels`` unless mined on interior pixels)."""
        return self.pixels if self.all_pixels is None else self.all_pixels

    @property
    def content_fingerprint(self) -> str:
        """16 hex digits of SHA-256 over names, union fingerprint and array bytes (not the zip)."""
        h = hashlib.sha256()
        for part in ("\x1f".join(self.datasets), "\x1f".join(self.classes), self.fingerprint):
            h.update(part.encode("utf-8") + b"\x1e")
        arrays = [self.score, self.cosine, self.pixels] + ([self.all_pixels, np.asarray(self.interior)] if self.interior else [])
        for arr in arrays:
            h.update(repr(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def valid_for(self, union: UnionSpace) -> np.ndarray:
        """``D x K`` bool label-space mask in this file's dataset order, after checking that the
        file belongs to ``union`` (same fingerprint, classes and datasets; pixels only in-space)."""
        if self.fingerprint != union.fingerprint:
            raise FingerprintMismatch(
                f"{self.path}: statistics made for union {self.fingerprint}, not {union.fingerprint} "
                f"({'+'.join(union.datasets)}); pass the union used for mining with --union DIR"
            )
        if tuple(self.classes) != tuple(union.names):
            first = next((a, b) for a, b in zip(self.classes, union.names) if a != b) if len(self.classes) == union.num_classes else None
            what = f"class {first[0]!r} where the union has {first[1]!r}" if first else f"{len(self.classes)} classes, the union {union.num_classes}"
            raise UnisegError(f"{self.path}: classes differ from union {union.fingerprint}: {what}")
        missing = [d for d in union.datasets if d not in self.datasets]
        extra = [d for d in self.datasets if d not in union.datasets]
        if missing or extra:
            why = f"no rows for {missing[0]!r}" if missing else f"dataset {extra[0]!r} is not in the union"
            raise UnisegError(f"{self.path}: {why} (union datasets: {', '.join(union.datasets)})")
        valid = union.null_mask(self.datasets)
        stray = np.argwhere(self.measured & ~valid)
        if len(stray):
            d, c = (int(v) for v in stray[0])
            raise UnisegError(
                f"{self.path}: pixels: {self.pixels[d, c]} pixels of {self.classes[c]!r} in {self.datasets[d]!r}, "
                "a class outside its label space; the statistics were not mined over this union"
            )
        return valid


def _fail(path: str, key: str, message: str) -> UnisegError:
    return UnisegError(f"{path}: {key}: {message}")


def _strings(path: str, key: str, value: object) -> tuple[str, ...]:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.dtype.kind not in "US" or arr.size == 0:
        raise _fail(path, key, f"expected a non-empty 1-d string array, got {arr.dtype} of shape {arr.shape}")
    names = tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in arr.tolist())
    dup = first_duplicate(names)
    if dup is not None:
        raise _fail(path, key, f"{dup!r} appears twice")
    return names


def _floats(path: str, key: str, value: object, shape: tuple[int, ...], lo: float, hi: float, measured: np.ndarray) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise _fail(path, key, f"expected floats, got {arr.dtype}")
    if arr.shape != shape:
        raise _fail(path, key, f"shape {arr.shape}, expected {shape} (datasets x classes x classes)")
    arr = np.array(arr, dtype=np.float64)  # a copy: the caller's array is never changed
    arr[~measured] = 0.0  # rows without pixels carry no measurement (NaN allowed there)
    bad = ~np.isfinite(arr) | (arr < lo - _SLACK) | (arr > hi + _SLACK)
    if bad.any():
        d, c, c2 = (int(v) for v in np.argwhere(bad)[0])
        raise _fail(path, key, f"value {float(arr[d, c, c2])!r} at [{d}, {c}, {c2}] outside [{lo:g}, {hi:g}] (rows with pixels must be finite)")
    np.clip(arr, lo, hi, out=arr)
    return arr


def _validated(sim: Similarity) -> dict:
    """Normalised field values, or a one-line ``UnisegError`` naming the file, array and value."""
    path = sim.path
    datasets = _strings(path, "datasets", sim.datasets)
    classes = _strings(path, "classes", sim.classes)
    d, k = len(datasets), len(classes)
    fp = np.asarray(sim.fingerprint)
    if fp.size != 1 or fp.dtype.kind not in "US":
        raise _fail(path, "fingerprint", f"expected one string (the union's 16-hex fingerprint), got {fp.dtype} of shape {fp.shape}")
    fingerprint = fp.reshape(()).item()
    fingerprint = fingerprint.decode("utf-8") if isinstance(fingerprint, bytes) else str(fingerprint)
    if not _HEX16.match(fingerprint):
        raise _fail(path, "fingerprint", f"{fingerprint!r} is not 16 lower-case hex digits")
    pixels = np.asarray(sim.pixels)
    if pixels.dtype.kind not in "iu":
        raise _fail(path, "pixels", f"expected integers, got {pixels.dtype}")
    if pixels.shape != (d, k):
        raise _fail(path, "pixels", f"shape {pixels.shape}, expected {(d, k)} (datasets x classes)")
    if (pixels < 0).any():
        raise _fail(path, "pixels", f"negative count {int(pixels.min())}")
    pixels = np.array(pixels, dtype=np.int64)
    measured = pixels > 0
    score = _floats(path, "score", sim.score, (d, k, k), 0.0, 1.0, measured)
    cosine = _floats(path, "cosine", sim.cosine, (d, k, k), -1.0, 1.0, measured)
    out = {"datasets": datasets, "classes": classes, "fingerprint": fingerprint, "pixels": pixels, "score": score, "cosine": cosine}
    return {**out, **_interior_fields(path, sim.all_pixels, sim.interior, pixels)}


def _interior_fields(path: str, all_pixels, interior, pixels: np.ndarray) -> dict:
    """``all_pixels`` / ``interior`` normalised: both absent (the plain mean), or an erosion radius
    >= 1 with every class's labelled pixels, never fewer than its interior ones."""
    radius = np.asarray(interior)
    if radius.size != 1 or radius.dtype.kind not in "iu":
        raise _fail(path, "interior", f"expected one whole number (the erosion radius), got {radius.dtype} of shape {radius.shape}")
    radius = int(radius.reshape(()))
    if radius < 0:
        raise _fail(path, "interior", f"negative radius {radius}")
    if radius == 0:
        if all_pixels is not None:
            raise _fail(path, "all_pixels", "given without an interior radius (interior must be >= 1 beside it)")
        return {"interior": 0, "all_pixels": None}
    if all_pixels is None:
        raise _fail(path, "all_pixels", f"missing: mined on interior pixels (radius {radius}), the file needs every class's labelled pixels too")
    arr = np.asarray(all_pixels)
    if arr.dtype.kind not in "iu" or arr.shape != pixels.shape:
        raise _fail(path, "all_pixels", f"expected integers of shape {pixels.shape}, got {arr.dtype} of shape {arr.shape}")
    arr = np.array(arr, dtype=np.int64)
    if (arr < pixels).any():
        d, c = (int(v) for v in np.argwhere(arr < pixels)[0])
        raise _fail(path, "all_pixels", f"{arr[d, c]} at [{d}, {c}], fewer than its {pixels[d, c]} interior pixels")
    return {"interior": radius, "all_pixels": arr}


def read_similarity(path: str | Path) -> Similarity:
    """Read ``similarity.npz`` (or the folder holding it), validated; one-line errors name the array."""
    p = file_in(path, SIMILARITY_FILE)
    if not p.is_file():
        raise UnisegError(f"--similarity {path}: no such file (write one with 'uniseg relations mine')")
    try:
        with np.load(p, allow_pickle=False) as npz:
            missing = [a for a in ARRAYS if a not in npz.files]
            if missing:
                raise UnisegError(f"{p}: missing array {missing[0]!r} (a similarity file holds {', '.join(ARRAYS)})")
            arrays = {}
            for a in ARRAYS + tuple(a for a in INTERIOR_ARRAYS if a in npz.files):
                try:
                    arrays[a] = npz[a]
                except ValueError as exc:  # object arrays need pickle, which is never allowed
                    raise UnisegError(f"{p}: {a}: unreadable without pickle ({exc}); store strings as a unicode array (np.str_)") from None
    except UnisegError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UnisegError(f"{p}: not a readable .npz file ({exc})") from None
    return Similarity(path=str(p), **arrays)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (a zip of ``.npy``) with fixed timestamps, so equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            body = io.BytesIO()
            np.lib.format.write_array(body, np.asanyarray(arr), allow_pickle=False)
            zf.writestr(info, body.getvalue())
    return buf.getvalue()


def similarity_csv(sim: Similarity) -> str:
    """Tidy CSV: one row per (dataset, class with pixels in it, other class); floats round-trip."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for d, c in np.argwhere(sim.measured):
        s, cos, n = sim.score[d, c].tolist(), sim.cosine[d, c].tolist(), int(sim.pixels[d, c])
        for c2, other in enumerate(sim.classes):
            writer.writerow([sim.datasets[d], sim.classes[c], other, repr(s[c2]), repr(cos[c2]), n])
    return buf.getvalue()


def write_similarity(out_dir: str | Path, sim: Similarity) -> list[Path]:
    """Write ``out_dir/similarity.npz`` (deterministic bytes) and ``similarity.csv``, atomically."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UnisegError(f"--out {out}: exists and is not a folder")
    arrays = {
        "score": sim.score,
        "cosine": sim.cosine,
        "pixels": sim.pixels,
        "datasets": np.array(sim.datasets, dtype=np.str_),
        "classes": np.array(sim.classes, dtype=np.str_),
        "fingerprint": np.array(sim.fingerprint, dtype=np.str_),
    }
    if sim.interior:  # mined on interior pixels; the plain mean's file stays as it always was
        arrays.update(all_pixels=sim.all_pixels, interior=np.array(sim.interior, dtype=np.int64))
    npz, table = out / SIMILARITY_FILE, out / SIMILARITY_CSV
    atomic_write_text(table, similarity_csv(sim))
    with atomic_open(npz, "wb") as fh:  # last: the .npz is what readers look for
        fh.write(_npz_bytes(arrays))
    return [npz, table]


def similarity_for(union: UnionSpace, score: np.ndarray, cosine: np.ndarray, pixels: np.ndarray, datasets: Sequence[str] | None = None,
                   *, all_pixels: np.ndarray | None = None, interior: int = 0) -> Similarity:
    """A :class:`Similarity` over ``union`` (rows in ``datasets`` order, default the union's)."""
    return Similarity(
        score=score, cosine=cosine, pixels=pixels, datasets=tuple(datasets or union.datasets),
        classes=tuple(union.names), fingerprint=union.fingerprint, path="similarity", all_pixels=all_pixels, interior=int(interior),
    )


# -- own scores: how well the mining model knows each class ----------------------------------------

#: Own score from which the mining model is taken to know a class (the mean sigmoid of Eq. 7 on
#: the class's own pixels: on average the model says "yes" there).
KNOWN = 0.5


def own_scores(score: np.ndarray) -> np.ndarray:
    """``D x K``: s_{d,c}(c), each class's score on its own pixels (the diagonal of Eq. 7)."""
    return np.einsum("dcc->dc", np.asarray(score, dtype=np.float64))


def class_own_scores(score: np.ndarray, pixels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``K``: each class's own score, averaged over the datasets that label it, weighted by their
    pixels of it (0 for a class without pixels). Under :data:`KNOWN` the model hardly knows the
    class: its relations come from its surroundings, and no other class can be found inside it."""
    labelled = np.where(np.asarray(valid, dtype=bool), np.asarray(pixels), 0).astype(np.float64)
    weight = labelled.sum(axis=0)
    return np.divide((own_scores(score) * labelled).sum(axis=0), weight, out=np.zeros_like(weight), where=weight > 0)


def mean_own_scores(score: np.ndarray, pixels: np.ndarray) -> dict:
    """The mean own score over the (dataset, class) rows with pixels, per row (``classes``) and
    weighted by pixels (``pixels``): how well a mining model knows the classes as a whole."""
    own = own_scores(score)
    px = np.asarray(pixels, dtype=np.float64)
    seen = px > 0
    if not seen.any():
        return {"classes": 0.0, "pixels": 0.0}
    return {"classes": float(own[seen].mean()), "pixels": float((own * px)[seen].sum() / px[seen].sum())}
