"""``uniseg labels audit``: one pass over the label files of several datasets before training.

Thin layer over ``uniseg.data.audit`` (counting) and ``uniseg.data.audit_plot`` (the PNG chart):
parse, call, render. numpy, the registry and matplotlib load inside the command, so ``uniseg
labels list`` does not pay for them.

Exit codes: 0 = audited (findings are reported, not failures); 2 = a one-line ``error: ...`` for
bad input (no such root, no layout there, an unknown dataset, a bad --chart path) or, with
``--strict``, for datasets with problems (unpaired files, unknown raw values, unreadable labels);
130 = Ctrl-C.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.table import Table

from uniseg.cli.options import DATASET_EXTRA_ARGS, FormatOpt, RegistryOpt, parse_datasets, progress_bar, progress_by_name, registry_from
from uniseg.cli.render import Format, console, emit, middle_cut
from uniseg.errors import Interrupted, UnisegError

SHOW = 10  # files / values listed per block in the table (--format json lists all)
CHART_NAME = "audit.png"  # written into a folder given as --chart

DatasetsOpt = typer.Option(  # raw roots only: a 'data prepare' cache holds unified ids, not the dataset's labels
    None, "--datasets", "-d", metavar="NAME=ROOT...",
    help="Datasets as NAME=ROOT, each root as unpacked from the official archives; several after one flag, or the flag repeated.",
)


def register(app: typer.Typer) -> None:
    """Add ``audit`` to a command group (``uniseg labels``)."""
    app.command("audit", context_settings=DATASET_EXTRA_ARGS)(audit)


def audit(
    ctx: typer.Context,
    datasets: Optional[List[str]] = DatasetsOpt,
    sample: int = typer.Option(0, "--sample", min=0, help="Label files read per dataset, evenly spaced (0 = every one)."),
    split: Optional[List[str]] = typer.Option(None, "--split", "-s", help="Only this split (repeatable; default: every split found)."),
    chart: Optional[Path] = typer.Option(None, "--chart", metavar="PNG", help=f"Also write the class-share chart here (a folder: DIR/{CHART_NAME})."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-w", min=1, help="Parallel processes."),
    strict: bool = typer.Option(False, "--strict", help="Exit 2 when a dataset has problems (unpaired files, unknown raw values, unreadable labels)."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Audit the label files of datasets and their union: class shares, gaps, mismatches, unknown values.

    Example: uniseg labels audit --datasets cityscapes=/data/cs mapillary=/data/vistas --chart audit.png
    """
    from uniseg.data.audit import audit_datasets

    pairs = parse_datasets(datasets, ctx.args)
    if not pairs:
        raise UnisegError("no datasets given; add --datasets NAME=ROOT..., e.g. --datasets cityscapes=/data/cityscapes")
    chart_path = _chart_path(chart) if chart is not None else None
    reg = registry_from(registry)
    spaces = [reg.get(n) for n, _ in pairs]
    show_bar = fmt == Format.table and console.is_terminal
    try:
        with progress_bar("audit", show_bar) as progress:
            rep = audit_datasets(list(zip(spaces, [r for _, r in pairs])), sample=sample, split=split or None,
                                 workers=workers, progress=progress_by_name(progress))
    except KeyboardInterrupt:
        raise Interrupted("interrupted — nothing was written; rerun the command (--sample N for a quicker look)") from None
    data = rep.to_dict()
    if chart_path is not None:
        from uniseg.data.audit_plot import share_chart

        try:
            share_chart(rep, chart_path)
        except OSError as exc:
            raise UnisegError(f"--chart {chart_path}: cannot write there ({(exc.strerror or type(exc).__name__).lower()}); "
                              "choose a path you can write to") from None
    data["chart"] = None if chart_path is None else str(chart_path)
    emit(data, fmt, lambda: _view(rep, chart_path))
    if strict and rep.problems():
        raise UnisegError("the audit found problems (--strict): " + "; ".join(rep.problems()))


def _chart_path(chart: Path) -> Path:
    """``--chart`` as the PNG file to write (checked before the pass, so a typo costs no wait)."""
    if chart.is_dir():
        return chart / CHART_NAME
    if chart.suffix.lower() != ".png":
        raise UnisegError(f"--chart {chart}: the chart is a PNG; give a file name ending in .png or a folder")
    parent = chart.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise UnisegError(f"--chart {chart}: {parent} is a file, not a folder")
    return chart


# -- the human report ------------------------------------------------------------------------------


def _pct(share: float) -> str:
    """A share as people read it: 3 significant digits, ``<0.001%`` for a sliver, ``0`` for none."""
    if share <= 0:
        return "0"
    p = share * 100
    if p < 0.001:
        return "<0.001%"
    return f"{p:.3g}%"


def _view(rep, chart):
    """Head, datasets, splits, the union's classes per dataset, union facts, then problems."""
    from rich.console import Group

    sampled = f", at most {rep.sample} per dataset" if rep.sample else ""
    head = (
        f"Audit of {len(rep.datasets)} datasets: {rep.files} label files read{sampled}; union of "
        f"{rep.union.num_classes} classes ({rep.union.fingerprint}), {rep.seconds:.1f} s"
    )
    parts = [head, _datasets_table(rep), _splits_table(rep), _classes_table(rep), *_union_facts(rep),
             *_mismatch_table(rep), *_unknown_table(rep), *_unpaired_table(rep), *_broken_table(rep)]
    if chart is not None:
        parts.append(f"chart: {chart}")
    problems = rep.problems()
    if problems:
        parts.append(f"[red]{len(problems)} problems[/]: " + "; ".join(problems))
    else:
        parts.append("[green]ok[/]: every labelled image has a label, every label an image, no unknown raw values")
    return Group(*parts)


def _datasets_table(rep) -> Table:
    t = Table(title="Datasets", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("dataset", "layout, labels", "label files", "no label", "no image", "unknown", "unreadable",
                "void", "rare classes", "left null"):
        t.add_column(col, justify="left" if col in ("dataset", "layout, labels") else "right")
    k = rep.union.num_classes
    for d in rep.datasets:
        files = str(d.files) if d.files == d.files_of else f"{d.files} of {d.files_of}"
        red = lambda n: f"[red]{n}[/]" if n else "0"  # noqa: E731
        rare = sum(c.rare for c in d.classes)
        t.add_row(
            d.dataset, f"{d.layout}, {d.labels or '-'}", files, red(len(d.missing_labels)), red(len(d.orphan_labels)),
            red(len(d.unknown)), red(len(d.unreadable) + len(d.not_labels)), _pct(d.void_pixels / d.pixels if d.pixels else 0),
            f"{rare} of {len(d.classes)}", f"{len(d.null_classes)} of {k} ({_pct(d.null_share)})",
        )
    t.caption = ("rare: under {:.1%} of the dataset's pixels (absent included); left null: union classes "
                 "its label space lacks (Null BCE)").format(rep.rare_share)
    t.caption_justify = "left"
    return t


def _splits_table(rep) -> Table:
    t = Table(title="Splits against the registry", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("dataset", "split", "folder", "images", "registry", "labels", "paired"):
        t.add_column(col, justify="left" if col in ("dataset", "split", "folder") else "right")
    for d in rep.datasets:
        for s in d.splits:
            exp = "-" if s.expected is None else str(s.expected)
            images = f"[yellow]{s.images}[/]" if s.matches is False else str(s.images)
            labels = (str(s.labels), str(s.paired)) if s.labelled else ("[dim]unlabelled[/]", "-")
            t.add_row(d.dataset, s.split, s.dir or ".", images, exp, *labels)
    if any(d.split_mismatches() for d in rep.datasets):
        t.caption = "yellow: not the registry's number of images (a partial download, a subset or another version)"
        t.caption_justify = "left"
    return t


def _classes_table(rep) -> Table:
    names = [d.dataset for d in rep.datasets]
    t = Table(title="Union classes: pixel share (images holding them)", title_justify="left", box=box.SIMPLE_HEAD)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("class", overflow="fold")
    t.add_column("all", justify="right", no_wrap=True)
    for n in names:
        t.add_column(n, justify="right", no_wrap=True)
    for c in rep.classes:
        cells = []
        for n in names:
            s = c.per_dataset[n]
            if s is None:
                cells.append("[dim]–[/]")
                continue
            text = f"{_pct(s['share'])} ({s['images']})"
            cells.append(f"[yellow]{text}[/]" if s["rare"] else text)
        total = f"{_pct(c.share)} ({c.images})"
        t.add_row(str(c.index), c.name, f"[yellow]{total}[/]" if c.rare else total, *cells)
    t.caption = f"yellow: under {rep.rare_share:.1%} of the pixels; –: not in that dataset's label space (left null)"
    t.caption_justify = "left"
    return t


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:40])
    return shown + (f", … ({len(items)} in all)" if len(items) > 40 else "")


def _union_facts(rep) -> list[str]:
    out = []
    one = rep.one_teacher
    if one:
        out.append(f"taught by one dataset only ({len(one)}): " + _names([f"{c.name} ({c.taught_by[0]})" for c in one]))
    none = rep.untaught
    if none:
        out.append(f"[yellow]no pixel in any audited label file[/] ({len(none)}): " + _names([c.name for c in none]))
    for c in rep.collisions:
        where = ", ".join(f"{d} → {u}" for d, u in c["unified"].items())
        out.append(f"[yellow]same official name, different unified classes[/]: {c['name']!r} ({where})")
    return out


def _mismatch_table(rep) -> list[Table]:
    if not rep.mismatches:
        return []
    t = Table(title="Likely mismatches: one unified name, members that differ across datasets", title_justify="left",
              box=box.SIMPLE_HEAD)
    t.add_column("class")
    t.add_column("differs")
    t.add_column("members (names, colours: datasets)", overflow="fold")
    for m in rep.mismatches:
        groups: dict[tuple, tuple[str, list[str]]] = {}  # names differing only in case go together
        for d, info in m.members.items():
            colours = " ".join("(" + ",".join(map(str, c)) + ")" for c in info["colours"])
            key = (tuple(n.lower() for n in info["names"]), colours)
            groups.setdefault(key, (f"{'/'.join(info['names'])} {colours}", []))[1].append(d)
        t.add_row(m.name, ", ".join(m.differs), "; ".join(f"{text}: {', '.join(ds)}" for text, ds in groups.values()))
    return [t]


def _unknown_table(rep) -> list[Table]:
    rows = [(d, u) for d in rep.datasets for u in d.unknown]
    if not rows:
        return []
    t = Table(title="Unknown raw values (read as ignore)", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("dataset", "value", "pixels", "files", "first files"):
        t.add_column(col, justify="right" if col in ("pixels", "files") else "left", overflow="fold")
    width = max(24, console.width // 2)
    for d, u in rows[:SHOW]:
        value = ",".join(map(str, u.value)) if isinstance(u.value, tuple) else str(u.value)
        pixels = f"{u.pixels} polygons" if d.format == "polygons" else str(u.pixels)
        t.add_row(d.dataset, value, pixels, str(len(u.files)), "\n".join(middle_cut(f, width) for f in u.files[:3]))
    if len(rows) > SHOW:
        t.add_row(f"… and {len(rows) - SHOW} more (--format json lists all)", "", "", "", "")
    return [t]


def _listing(paths: list[str]) -> str:
    shown = "\n".join(paths[:SHOW])
    return shown + (f"\n… and {len(paths) - SHOW} more" if len(paths) > SHOW else "")


def _unpaired_table(rep) -> list[Table]:
    rows = [d for d in rep.datasets if d.missing_labels or d.orphan_labels]
    if not rows:
        return []
    t = Table(title="Unpaired files", title_justify="left", box=box.SIMPLE_HEAD)
    t.add_column("dataset")
    t.add_column("images without labels", overflow="fold")
    t.add_column("labels without images", overflow="fold")
    for d in rows:
        t.add_row(d.dataset, _listing(d.missing_labels) or "-", _listing(d.orphan_labels) or "-")
    return [t]


def _broken_table(rep) -> list[Table]:
    rows = [(d, e) for d in rep.datasets for e in d.unreadable + d.not_labels]
    if not rows:
        return []
    t = Table(title="Label files not counted", title_justify="left", box=box.SIMPLE_HEAD)
    width = max(24, console.width // 2 - 4)
    t.add_column("dataset")
    t.add_column("file", no_wrap=True)
    t.add_column("problem")
    for d, e in rows[:SHOW]:  # the message names the file again: keep what follows
        t.add_row(d.dataset, middle_cut(e["file"], width), e["error"].removeprefix(str(Path(d.root) / e["file"]) + ": "))
    if len(rows) > SHOW:
        t.add_row(f"… and {len(rows) - SHOW} more (--format json lists all)", "", "")
    return [t]
