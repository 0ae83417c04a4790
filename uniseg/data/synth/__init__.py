"""The synthetic road world (issue #4): street scenes written as every registry dataset.

``synthesize(out)`` draws procedural street scenes from a fine ground truth (``fine.yaml``) and
writes one dataset per registry entry under ``out/<registry name>/`` in that dataset's real
layout, file names and label encoding, labelled with its taxonomy through ``mapping.yaml``
(a bicyclist is 'rider' in Cityscapes and 'Bicyclist' in Mapillary). Each dataset has its own
visual domain and object statistics (``domains.yaml``). The planted relations (which fine
classes each dataset folds into which of its classes) go to ``out/planted_relations.yaml``.
The fine ground truth itself, which only a synthetic world has, goes to ``out/fine/<dataset>/<label
path>`` (one 8-bit PNG of fine ids per label file; ``uniseg.data.synth.truth``), where no reader of
a real layout looks. ``planted_relations.yaml`` records the world's fingerprint: a digest of every
image and fine label drawn, the settings and each dataset's mapping.

Deterministic: image ``i`` of dataset ``d`` comes from ``numpy.random.default_rng([seed,
crc32(d), i])``, so output is identical byte for byte for a seed, whatever other datasets are
requested and however the work is spread over processes.

Writing some datasets (``datasets=[...]``) into an existing world replaces those datasets and
*merges* their entries into its ``planted_relations.yaml`` (relations are recomputed over every
dataset of the world); a world made with another seed, size or image count is refused rather
than mixed. Work is spread over processes by ``uniseg.parallel.imap`` (Ctrl-C stops at once).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from uniseg.data.synth.planted import planted_relations, read_planted, write_planted
from uniseg.data.synth.truth import FINE_DIR, fine_path
from uniseg.data.synth.spec import (
    DatasetMapping,
    Sample,
    dataset_id,
    domain,
    fine_classes,
    fine_index,
    load_mapping,
    mapping_names,
    plan_samples,
)
from uniseg.errors import UnisegError
from uniseg.io import atomic_save_image, atomic_write_text, output_folder
from uniseg.labelspaces.registry import Registry, default_registry
from uniseg.parallel import imap

__all__ = [
    "SynthReport",
    "SceneSample",
    "synthesize",
    "sample_scene",
    "encode_label",
    "plan_samples",
    "load_mapping",
    "fine_classes",
    "fine_index",
    "PLANTED_FILE",
    "MARKER",
    "FINE_DIR",
]

PLANTED_FILE = "planted_relations.yaml"
MARKER = ".uniseg-synth"  # written in each synthetic dataset root; a later run may replace such a folder
_LOOK_SALT = 0x4C4F4F4B  # 'LOOK': the per-dataset palette stream (independent of the seed)
_ENV_WORKERS = "UNISEG_SYNTH_WORKERS"


@dataclass
class SynthReport:
    out: Path
    datasets: dict[str, int]  # registry name -> images written
    planted_relations: Path
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)  # registry name -> why it was not written


@dataclass
class SceneSample:
    """One synthetic image and its fine ground truth (fine ids of ``fine.yaml``)."""

    fine: np.ndarray  # (H, W) uint8
    image: np.ndarray  # (H, W, 3) uint8
    kind: str  # urban / residential / rural
    night: bool


def _palette(name: str, dom: dict):
    from uniseg.data.synth.scene import domain_palette

    return domain_palette(np.random.default_rng([_LOOK_SALT, dataset_id(name)]), float(dom["look"]["palette_jitter"]))


def sample_scene(dataset: str, index: int, *, seed: int = 0, size: tuple[int, int] = (256, 512),
                 _dom: dict | None = None, _pal=None) -> SceneSample:
    """Image ``index`` of synthetic dataset ``dataset`` for ``seed``: what ``synthesize`` writes, before encoding."""
    from uniseg.data.synth.render import render
    from uniseg.data.synth.scene import make_scene

    dom = _dom if _dom is not None else domain(dataset)
    pal = _pal if _pal is not None else _palette(dataset, dom)
    rng = np.random.default_rng([int(seed), dataset_id(dataset), int(index)])
    scene = make_scene(rng, int(size[0]), int(size[1]), dom, pal)
    image = render(scene, dom["look"], rng)
    return SceneSample(scene.fine, image, scene.kind, scene.night)


def encode_label(fine: np.ndarray, mapping: DatasetMapping, lut: np.ndarray | None = None) -> Image.Image:
    """The dataset's label image for a fine label: raw values from the registry encoding."""
    lut = mapping.lut() if lut is None else lut
    img = Image.fromarray(np.ascontiguousarray(lut[fine]))  # 'RGB' for (H, W, 3), 'L' for (H, W)
    if mapping.mode == "P":
        img.putpalette(list(mapping.palette))  # an 'L' image with a palette becomes 'P', values unchanged
    return img


def _save_image(path: Path, rgb: np.ndarray, quality: int) -> None:
    img = Image.fromarray(rgb)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        atomic_save_image(path, img, quality=int(quality))
    else:
        atomic_save_image(path, img, compress_level=1)


def _write_chunk(name: str, root: str, mapping: DatasetMapping, samples: list[Sample], seed: int,
                 size: tuple[int, int], dom: dict, report: Callable[[int], None] | None = None) -> tuple[str, int, np.ndarray, list[tuple[int, str]]]:
    """Render and write ``samples`` of one dataset (images, labels and the fine truth beside the
    world's datasets); returns (name, images written, fine pixel counts, a digest per sample)."""
    pal = _palette(name, dom)
    lut = mapping.lut()
    counts = np.zeros(len(fine_classes()), np.int64)
    quality = int(dom["look"]["jpeg_quality"])
    base = Path(root)
    world = base.parent
    digests = []
    for i, s in enumerate(samples):
        sc = sample_scene(name, s.index, seed=seed, size=size, _dom=dom, _pal=pal)
        counts += np.bincount(sc.fine.ravel(), minlength=counts.size)[: counts.size]
        _save_image(base / s.image, sc.image, quality)
        atomic_save_image(base / s.label, encode_label(sc.fine, mapping, lut), format="PNG", compress_level=6)
        atomic_save_image(fine_path(world, name, s.label), Image.fromarray(sc.fine), format="PNG", compress_level=6)
        h = hashlib.sha256(f"{s.image}\x1f{s.label}\x1f".encode())
        h.update(np.ascontiguousarray(sc.fine).tobytes())
        h.update(np.ascontiguousarray(sc.image).tobytes())
        digests.append((s.index, h.hexdigest()))
        if report is not None:
            report(i + 1)
    return name, len(samples), counts, digests


def _chunk_job(task: tuple, on_image: Callable[[str, int], None] | None) -> tuple[str, int, np.ndarray, list[tuple[int, str]]]:
    """One chunk of one dataset; ``on_image(dataset, k)`` after its k-th image (in-process runs only)."""
    report = None if on_image is None else (lambda k: on_image(task[0], k))
    return _write_chunk(*task, report=report)


def _workers(total_pixels: int, tasks: int) -> int:
    env = os.environ.get(_ENV_WORKERS)
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise UnisegError(f"{_ENV_WORKERS}={env!r}: expected a whole number of processes") from None
    if total_pixels < 3_000_000 or tasks < 2:  # a few small images: processes cost more than they save
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, tasks, 8))


def _check_root(root: Path) -> bool:
    """May the dataset folder be written? True if it holds an earlier synth run (to be replaced)."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise UnisegError(f"{root} exists and is not a folder (choose another --out)")
    if not any(root.iterdir()):
        return False
    if not (root / MARKER).is_file():
        raise UnisegError(f"{root} exists and was not written by 'uniseg data synth' (remove it or choose another --out)")
    return True


def synthesize(
    out: Path,
    *,
    images: int = 24,
    size: tuple[int, int] = (256, 512),
    seed: int = 0,
    datasets: Sequence[str] | None = None,
    registry: Registry | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    overwrite: bool = False,
) -> SynthReport:
    """Write the synthetic road world: ``out/<dataset>/`` in each dataset's layout, and ``out/planted_relations.yaml``.

    ``images`` per dataset (split over its labelled splits, most in train), ``size`` = (height, width),
    ``datasets`` = registry names (default: every registry entry with a layout and a fine mapping).
    ``progress(dataset, done, total)`` is called as images are written. A world in ``out`` made with
    another seed, image count or size is refused (the runs trained on it would refer to another
    world) unless ``overwrite``: then every dataset of the old world goes, not only those written.
    """
    t0 = time.perf_counter()
    out = Path(out)
    h, w = _check_arguments(images, size, seed)
    reg = registry or default_registry()
    names, skipped = _datasets_to_write(reg, datasets)

    # validate everything before writing anything
    spaces = {n: reg.get(n) for n in names}
    mappings = {n: load_mapping(spaces[n]) for n in names}
    plans = {n: plan_samples(spaces[n], images, seed, mappings[n]) for n in names}
    doms = {n: domain(n) for n in names}
    with output_folder(out):
        roots = [out / n for n in names] + [out / FINE_DIR / n for n in names]
        replace = {root: _check_root(root) for root in roots}  # refuse before touching anything
        if _other_world(out, seed=int(seed), size=(h, w), images=int(images), overwrite=overwrite):
            _remove_world(out)
        kept = _kept_from_world(out, names, reg, seed=int(seed), size=(h, w), images=int(images))
        for root in roots:
            if replace[root] and root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True, exist_ok=True)
            atomic_write_text(root / MARKER, f"written by uniseg data synth: seed {seed}, {images} images, size {h}x{w}\n")
        done, counts, digests = _render(out, mappings, plans, doms, int(seed), (h, w), progress)
        for n, entry in kept.items():  # merged, not lost: relations are recomputed over the whole world
            spaces[n] = reg.get(n)
            mappings[n] = load_mapping(spaces[n])
            done[n] = int(entry.get("images", 0))
            counts[n] = {str(k): int(v) for k, v in (entry.get("fine_pixels") or {}).items()}
            digests[n] = str(entry["digest"])
        order = [n for n in reg.names if n in spaces]
        doc = planted_relations(
            {n: spaces[n] for n in order}, {n: mappings[n] for n in order}, done, counts,
            seed=seed, size=(h, w), images_per_dataset=images, digests=digests, registry=reg,
        )
        planted = out / PLANTED_FILE
        write_planted(planted, doc)
    written = {n: done[n] for n in names}
    return SynthReport(out=out, datasets=written, planted_relations=planted, seconds=time.perf_counter() - t0, skipped=skipped)


def _check_arguments(images: int, size: tuple[int, int], seed: int) -> tuple[int, int]:
    """``(height, width)``; a one-line error for any argument out of range."""
    if isinstance(images, bool) or not isinstance(images, (int, np.integer)) or images < 1:
        raise UnisegError(f"--images must be a whole number >= 1, got {images!r}")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise UnisegError(f"--size must be HEIGHTxWIDTH, got {size!r}") from None
    if not (16 <= h <= 4096 and 16 <= w <= 4096):
        raise UnisegError(f"--size {h}x{w}: height and width must be 16..4096 pixels")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UnisegError(f"--seed must be a whole number >= 0, got {seed!r}")
    return h, w


def _datasets_to_write(reg: Registry, datasets: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """The registry names to write and, when none were asked for, those left out and why."""
    skipped: dict[str, str] = {}
    if datasets is not None:
        names = [s.name for s in reg.get_many(list(datasets))]
    else:
        mapped = set(mapping_names())
        names = []
        for n in reg.names:
            if not reg.get(n).layouts:
                skipped[n] = "no layout in the registry"
            elif n not in mapped:
                skipped[n] = "no fine-class mapping in uniseg/data/synth/mapping.yaml"
            else:
                names.append(n)
    if not names:
        raise UnisegError("no dataset to synthesise (the registry has no entry with a layout and a fine mapping)")
    if FINE_DIR in names:
        raise UnisegError(f"dataset {FINE_DIR!r}: the name of the world's fine-truth folder; register the dataset under another name")
    return names, skipped


def _render(out: Path, mappings: dict[str, DatasetMapping], plans: dict[str, list[Sample]], doms: dict[str, dict],
            seed: int, size: tuple[int, int], progress: Callable[[str, int, int], None] | None
            ) -> tuple[dict[str, int], dict[str, dict[str, int]], dict[str, str]]:
    """Write every planned image in chunks of 6 (over processes when it pays); returns the images
    written, the fine-class pixel counts and a digest of everything drawn, per dataset."""
    chunk = 6
    tasks = [(n, str(out / n), mappings[n], ps[i : i + chunk], seed, size, doms[n])
             for n, ps in plans.items() for i in range(0, len(ps), chunk)]
    done = {n: 0 for n in plans}
    pixels = {n: np.zeros(len(fine_classes()), np.int64) for n in plans}
    per_sample: dict[str, list[tuple[int, str]]] = {n: [] for n in plans}  # (sample index, digest); chunks may come in any order
    workers = _workers(sum(len(ps) for ps in plans.values()) * size[0] * size[1], len(tasks))

    def on_image(n: str, k: int) -> None:  # in-process runs report every image
        if progress is not None:
            progress(n, done[n] + k, len(plans[n]))

    chunks = imap(_chunk_job, tasks, context=on_image if workers == 1 else None, workers=workers, chunksize=1)
    with contextlib.closing(chunks):
        for n, count, px, digests in chunks:
            done[n] += count
            pixels[n] += px
            per_sample[n].extend(digests)
            if progress is not None and workers > 1:
                progress(n, done[n], len(plans[n]))
    fines = [f.name for f in fine_classes()]
    digest = {n: hashlib.sha256("\n".join(d for _, d in sorted(rows)).encode()).hexdigest()[:16] for n, rows in per_sample.items()}
    return done, {n: {fines[i]: int(v) for i, v in enumerate(pixels[n])} for n in plans}, digest


def _other_world(out: Path, *, seed: int, size: tuple[int, int], images: int, overwrite: bool) -> bool:
    """Whether ``out`` holds a world made with other settings (refused unless ``overwrite``)."""
    path = out / PLANTED_FILE
    if not path.is_file():
        return False
    doc = read_planted(path)
    then = (doc.get("seed"), doc.get("images"), list(doc.get("size") or []))
    if then == (seed, images, list(size)):
        return False
    if not overwrite:
        raise UnisegError(
            f"--out {out}: holds a world made with seed {then[0]}, {then[1]} images, size {'x'.join(map(str, then[2]))} "
            f"(this run: seed {seed}, {images} images, size {size[0]}x{size[1]}), and runs trained on it refer to it; "
            "write with the same --seed/--images/--size, choose another --out, or give --overwrite to replace it"
        )
    return True


def _remove_world(out: Path) -> None:
    """Every dataset folder (and fine truth) a synth run wrote in ``out``, and the planted relations."""
    for parent in (out, out / FINE_DIR):
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if child.is_dir() and (child / MARKER).is_file():
                    shutil.rmtree(child)
    (out / PLANTED_FILE).unlink(missing_ok=True)


def _kept_from_world(out: Path, names: Sequence[str], reg: Registry, *, seed: int, size: tuple[int, int],
                     images: int) -> dict[str, dict]:
    """The planted-relations entries of the datasets already in ``out`` that this run leaves as they are.

    They are merged into the new file; a world made with other settings is refused (mixing
    seeds or sizes would make the file lie about them).
    """
    path = out / PLANTED_FILE
    if not path.exists():
        return {}
    doc = read_planted(path)
    kept = {n: e for n, e in doc["datasets"].items() if n not in names and (out / n / MARKER).is_file()}
    if not kept:
        return {}
    old = [n for n, e in kept.items() if "digest" not in e or not (out / FINE_DIR / n / MARKER).is_file()]
    if old:
        raise UnisegError(
            f"{out}: {', '.join(old)} written by an older uniseg, without the world's fine truth; "
            "write every dataset again (uniseg data synth without --dataset), or choose another --out"
        )
    then = (doc.get("seed"), doc.get("images"), list(doc.get("size") or []))
    if then != (seed, images, list(size)):
        raise UnisegError(
            f"{out} holds a world made with seed {then[0]}, {then[1]} images, size {'x'.join(map(str, then[2]))} "
            f"({', '.join(kept)}); write {', '.join(names)} with the same --seed/--images/--size, "
            "or every dataset, or choose another --out"
        )
    unknown = [n for n in kept if n not in reg.names]
    if unknown:
        raise UnisegError(f"{path}: lists {', '.join(unknown)}, which the registry does not know; add it with --registry DIR")
    return kept
