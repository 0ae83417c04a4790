"""``uniseg data``: check dataset roots, prepare training caches, write the synthetic road world.

Thin layer over ``uniseg.data``: parse, call, render. torch is never imported here.

Exit codes: 0 = sound / done; 2 = a one-line ``error: ...`` on stderr, either because the input
is wrong (no such root, no layout there, unknown dataset) or, for ``check``, because the layout
was found but has problems (images without labels, labels without images, unknown raw values,
size mismatches, unreadable files, files that cannot be labels) — reported in full first, then
summarised on one line. Ctrl-C exits 130 (``prepare`` resumes when run again).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from uniseg.cli.options import (
    FormatOpt, OnBadFileOpt, RegistryOpt, UnionOpt, parse_hw, progress_bar, progress_by_name, registry_from, union_and_space,
)
from uniseg.cli.render import Format, console, emit
from uniseg.errors import Interrupted, UnisegError

app = typer.Typer(help="Dataset roots: check them, prepare training caches, synthesise a road world.", no_args_is_help=True)

SHOW = 10  # file names listed per problem in the table (json lists all)


def _listing(paths: list[str]) -> str:
    shown = "\n".join(paths[:SHOW])
    return shown + (f"\n… and {len(paths) - SHOW} more" if len(paths) > SHOW else "")


@app.command()
def check(
    name: str = typer.Argument(..., help="Label space of the dataset, e.g. cityscapes."),
    root: Path = typer.Argument(..., help="The dataset root, as unpacked from its official archives."),
    split: Optional[List[str]] = typer.Option(None, "--split", "-s", help="Only this split (repeatable; default: every split found)."),
    layout: Optional[str] = typer.Option(None, "--layout", help="Force a layout of the YAML (default: the one found)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Force a label source, e.g. labelTrainIds or polygons."),
    sample: int = typer.Option(32, "--sample", min=0, help="Image/label pairs decoded fully for value and file checks (0 = all)."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Verify a dataset root: layout, image/label counts and pairing, unknown label values, broken files.

    Exits 0 when sound, 2 with a one-line summary when the root is wrong or problems were found.
    """
    from uniseg.data.check import check_dataset

    space = registry_from(registry).get(name)
    show_bar = fmt == Format.table and console.is_terminal
    with progress_bar("check", show_bar) as progress:
        task = progress.add_task(space.name, total=None)
        rep = check_dataset(
            space, root, split=(split or None), layout=layout, labels=labels, sample=sample,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    emit(rep.to_dict(), fmt, lambda: _check_view(rep))
    if not rep.ok:
        raise UnisegError(f"{rep.dataset} at {rep.root}: " + "; ".join(rep.problems()))


def _check_view(rep):
    """The human report of ``data check``: head, splits, then one block per kind of problem."""
    from rich.console import Group

    head = (
        f"{rep.title} ([bold]{rep.dataset}[/]) at {rep.root}: layout {rep.layout}, labels {rep.labels or '-'} "
        f"({rep.format}, encoding {rep.encoding or '-'})"
    )
    unk = f", [red]{len(rep.unknown)} unknown[/]" if rep.unknown else ", none unknown"
    values = (
        f"values: sampled {rep.sampled} of {rep.sampled_of} label files, {len(rep.values)} distinct raw values{unk}"
        if rep.labels else "no label source"
    )
    parts = [head, _splits_table(rep), values, *_unpaired_table(rep), *_unknown_table(rep)]
    if rep.left_out:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(rep.left_out.items()))
        parts.append(f"[dim]not checked: label files of the layout's other sources ({kinds}); --labels NAME checks them[/]")
    parts += _broken_table(rep)
    if rep.ok:
        parts.append(f"[green]ok[/]: {rep.images} images, every labelled image has a label, no unknown values in the sample")
    return Group(*parts)


def _splits_table(rep) -> Table:
    t = Table()
    for col in ("split", "folder", "images", "expected", "labels", "paired", "no label", "no image"):
        t.add_column(col, justify="left" if col in ("split", "folder") else "right")
    for s in rep.splits:
        exp = "-" if s.expected is None else str(s.expected)
        if not s.labelled:
            t.add_row(s.split, s.dir or ".", str(s.images), exp, "[dim]unlabelled[/]", "-", "-", "-")
            continue
        miss = f"[red]{len(s.missing_labels)}[/]" if s.missing_labels else "0"
        orph = f"[red]{len(s.orphan_labels)}[/]" if s.orphan_labels else "0"
        t.add_row(s.split, s.dir or ".", str(s.images), exp, str(s.labels), str(s.paired), miss, orph)
    return t


def _unpaired_table(rep) -> list[Table]:
    missing = [p for s in rep.splits for p in s.missing_labels]
    orphans = [p for s in rep.splits for p in s.orphan_labels]
    if not (missing or orphans):
        return []
    f = Table(title="Unpaired files", title_justify="left")
    f.add_column(f"images without labels ({len(missing)})", overflow="fold")
    f.add_column(f"labels without images ({len(orphans)})", overflow="fold")
    f.add_row(_listing(missing) or "-", _listing(orphans) or "-")
    return [f]


def _unknown_table(rep) -> list[Table]:
    if not rep.unknown:
        return []
    u = Table(title="Unknown raw values (mapped to ignore)", title_justify="left")
    for col in ("value", "pixels" if rep.format != "polygons" else "polygons", "files"):
        u.add_column(col, justify="left" if col == "value" else "right")
    for v in sorted(rep.unknown, key=lambda v: -v.pixels)[:SHOW]:
        value = ",".join(map(str, v.value)) if isinstance(v.value, tuple) else str(v.value)
        u.add_row(value, str(v.pixels), str(v.files))
    if len(rep.unknown) > SHOW:
        u.add_row(f"… and {len(rep.unknown) - SHOW} more", "", "")
    return [u]


def _broken_table(rep) -> list[Table]:
    broken = rep.unreadable + rep.not_labels + rep.unreadable_images
    if not (rep.size_mismatches or broken):
        return []
    b = Table(title="Broken files", title_justify="left")
    # whole names, folded over lines: files of one folder differ in the middle (city, frame), and
    # a name cut to fit told them apart no more
    b.add_column("file", overflow="fold", ratio=1)
    b.add_column("problem", ratio=1)
    for m in rep.size_mismatches[:SHOW]:
        size = f"label {m['label_size'][0]}x{m['label_size'][1]}, image {m['image_size'][0]}x{m['image_size'][1]}"
        b.add_row(m["label"], size)
    for m in broken[:SHOW]:  # the message names the file again: keep what follows
        b.add_row(m["file"], m["error"].removeprefix(str(Path(rep.root) / m["file"]) + ": "))
    if len(broken) > SHOW:
        b.add_row(f"… and {len(broken) - SHOW} more (--format json lists all)", "")
    return [b]


@app.command()
def prepare(
    union_spec: str = UnionOpt,
    dataset: str = typer.Option(..., "--dataset", help="The dataset to cache, e.g. mapillary."),
    root: Path = typer.Option(..., "--root", help="Its raw root, as unpacked from the official archives."),
    out: Path = typer.Option(..., "--out", "-o", help="Cache folder (one per dataset and union), e.g. cache/mapillary."),
    split: Optional[List[str]] = typer.Option(None, "--split", "-s", help="Only this split (repeatable; default: every labelled split)."),
    layout: Optional[str] = typer.Option(None, "--layout", help="Force a layout (default: the one found)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Force a label source (default: the one found)."),
    short_side: int = typer.Option(1080, "--short-side", min=0, help="Shorter side of the cached images (0 = native; never upscales)."),
    image_format: str = typer.Option("jpeg", "--image-format", help="jpeg (small, fast) or png (lossless)."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG quality."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-w", min=1, help="Parallel processes."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="On resume, check finished files by SHA-256 (else by size only)."),
    on_bad_file: str = OnBadFileOpt,
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Write resized images and unified-id labels once, so training reads small files (resumable).

    --on-bad-file error (default): files that fail are listed, their split stays incomplete and the
    command exits 2 after the pass; skip: they are listed and left out of a complete cache."""
    from uniseg.data.cache import prepare_cache

    uni, space = union_and_space(union_spec, dataset, registry)
    show_bar = fmt == Format.table and console.is_terminal
    try:
        with progress_bar("prepare", show_bar) as progress:
            task = progress.add_task(space.name, total=None)
            rep = prepare_cache(
                uni, space, root, out, split=(split or None), layout=layout, labels=labels, short_side=short_side,
                image_format=image_format, quality=quality, workers=workers, verify=verify, on_bad_file=on_bad_file,
                on_start=lambda total, skipped: progress.update(task, total=total, completed=skipped),
                on_result=lambda r: progress.advance(task) if r.status != "skipped" else None,
            )
    except KeyboardInterrupt:
        raise Interrupted() from None
    data = rep.to_dict()
    emit(data, fmt, lambda: _prepare_view(rep, data))
    if not rep.ok:
        first = rep.failed[0]
        raise UnisegError(f"{len(rep.failed)} of {rep.total} files failed; first: {first.key}: {first.error}; "
                          "rerun to retry them, or pass --on-bad-file skip to leave them out of the cache")


def _prepare_view(rep, data: dict):
    """The human report of ``data prepare``: head, files per split, what was left out or failed."""
    from rich.console import Group

    rate = f", {data['images_per_s']} images/s" if data["images_per_s"] else ""
    head = (
        f"Cache of [bold]{rep.dataset}[/] ({rep.layout}, {rep.labels}) for union {rep.fingerprint} at {rep.out}: "
        f"{rep.done} written, {rep.skipped} already done, {len(rep.failed)} failed ({rep.seconds:.1f} s{rate})"
    )
    t = Table()
    t.add_column("split")
    t.add_column("files", justify="right")
    for s, n in rep.splits.items():
        t.add_row(s, str(n))
    parts = [head, t]
    if rep.left_out:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(rep.left_out.items()))
        parts.append(f"[dim]left out: label files of the layout's other sources ({kinds})[/]")
    if rep.unknown:
        top = sorted(rep.unknown.items(), key=lambda kv: -kv[1])
        more = f", … ({len(top)} values)" if len(top) > SHOW else ""
        parts.append("unknown raw values written as 255: " + ", ".join(f"{k} ({v} px)" for k, v in top[:SHOW]) + more)
    for f in rep.failed[:SHOW]:
        parts.append(f"[red]failed[/]: {f.key}: {f.error}")
    for f in rep.bad_files[:SHOW]:
        parts.append(f"[yellow]skipped, left out of the cache[/] (--on-bad-file skip): {f.key}: {f.error}")
    if len(rep.bad_files) > SHOW:
        parts.append(f"… and {len(rep.bad_files) - SHOW} more left out (--format json lists all)")
    return Group(*parts)


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Folder: one <dataset>/ per registry entry plus planted_relations.yaml."),
    images: int = typer.Option(24, "--images", min=1, help="Images per dataset."),
    size: str = typer.Option("256x512", "--size", help="Image size HEIGHTxWIDTH (one number: a square)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed (output is identical for a seed)."),
    dataset: Optional[List[str]] = typer.Option(None, "--dataset", help="Only this dataset (repeatable; default: all)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a world made in --out with another --seed/--images/--size (every dataset of it goes)."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Write the synthetic road world: every dataset in its real layout and encoding."""
    from uniseg.data.synth import synthesize

    h, w = parse_hw(size, "--size")
    reg = registry_from(registry)
    show_bar = fmt == Format.table and console.is_terminal
    with progress_bar("synth", show_bar) as progress:
        on_progress = progress_by_name(progress)
        try:
            rep = synthesize(out, images=images, size=(h, w), seed=seed, datasets=dataset or None, registry=reg, progress=on_progress,
                             overwrite=overwrite)
        except KeyboardInterrupt:
            raise Interrupted("interrupted — rerun the same command to write the world") from None
    data = {
        "out": str(rep.out),
        "datasets": {n: {"images": k, "root": str(Path(rep.out) / n)} for n, k in rep.datasets.items()},
        "planted_relations": str(rep.planted_relations),
        "size": [h, w],
        "seed": seed,
        "seconds": round(rep.seconds, 3),
        "skipped": dict(rep.skipped),
    }
    emit(data, fmt, lambda: _synth_view(rep, h, w, seed))


def _synth_view(rep, h: int, w: int, seed: int):
    """The human report of ``data synth``: one row per dataset written or skipped."""
    from rich.console import Group

    head = f"Synthetic road world at {rep.out}: {sum(rep.datasets.values())} images, {h}x{w}, seed {seed} ({rep.seconds:.1f} s)"
    t = Table()
    t.add_column("dataset")
    t.add_column("images", justify="right")
    t.add_column("root")
    for n, k in rep.datasets.items():
        t.add_row(n, str(k), str(Path(rep.out) / n))
    for n, why in rep.skipped.items():
        t.add_row(f"[dim]{n}[/]", "-", f"[dim]skipped: {why}[/]")
    return Group(head, t, f"planted relations: {rep.planted_relations}")
