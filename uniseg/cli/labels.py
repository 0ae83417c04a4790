"""``uniseg labels``: inspect label spaces, build unions, remap label images, export tables.

Thin layer: parse, call ``uniseg.labelspaces`` / ``uniseg.unify``, render. No torch import here,
so these commands start fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.table import Table

from uniseg.cli.options import FormatOpt, RegistryOpt, UnionOpt, parse_union, progress_bar, registry_from, union_and_space
from uniseg.cli.render import Format, console, emit, middle_cut, swatch
from uniseg.errors import Interrupted, UnisegError

app = typer.Typer(help="Label spaces, unions, remap tables and exports.", no_args_is_help=True)

@app.command("list")
def list_(registry: Optional[List[Path]] = RegistryOpt, fmt: Format = FormatOpt) -> None:
    """Registered label spaces with class counts, encodings and version."""
    reg = registry_from(registry)
    rows = []
    for space in reg.all():
        rows.append(
            {
                "name": space.name,
                "title": space.title,
                "classes": space.num_classes,
                "encodings": list(space.encodings),
                "layouts": list(space.layouts),
                "version": space.version,
                "source": reg.origins[space.name],
            }
        )

    def table() -> Table:
        # fits the terminal: encodings and layouts wrap between items, the last column (title,
        # version, source) is cut to the width left (--format json|yaml has everything whole)
        cols = ["name", "classes", "encodings", "layouts"]
        items = [[[r["name"]], [str(r["classes"])], r["encodings"], r["layouts"]] for r in rows]
        natural = [max(len(col), *(len(", ".join(it[i])) for it in items)) for i, col in enumerate(cols)]
        narrowest = [max(len(col), *(len(x) for it in items for x in it[i])) for i, col in enumerate(cols)]
        overhead = 3 * (len(cols) + 1) + 1  # padding and rules around each column
        left = console.width - sum(natural) - overhead
        wrap = left < 24  # too narrow for one line per space: encodings and layouts wrap first
        if wrap:
            left = console.width - sum(narrowest) - overhead
        t = Table(title="Label spaces", title_justify="left", box=box.SIMPLE_HEAD)
        for col, w in zip(cols, narrowest if wrap else natural):
            t.add_column(col, justify="right" if col == "classes" else "left", no_wrap=col in ("name", "classes"), min_width=w)
        t.add_column("title, version", no_wrap=True, overflow="ellipsis", max_width=max(left, 16))
        for r, it in zip(rows, items):
            origin = "" if r["source"] == "builtin" else f"from {r['source']}: "
            t.add_row(*(", ".join(x) for x in it), f"{origin}{r['title']}, {r['version']}")
        return t

    emit(rows, fmt, table)


def _raw(value) -> str:
    """A raw id as people read it: ``7``, or ``(128, 64, 128)`` for a colour."""
    return str(tuple(value)) if isinstance(value, list) else str(value)




def _space_tables(data: dict):
    """``labels show`` for people: one line per class (raw ids per encoding, colour), then the encodings."""
    from rich.console import Group

    encodings = list(data["encodings"])
    t = Table(title=f"{data['title']} ({data['name']}) — {len(data['classes'])} classes, {data['version']}", title_justify="left",
              box=box.SIMPLE_HEAD)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("name", overflow="fold")
    t.add_column("unified", overflow="fold")
    for e in encodings:
        t.add_column(e)
    t.add_column("colour", no_wrap=True)
    for c in data["classes"]:
        uni = c["unified"] if c["unified"] != c["name"] else f"[dim]{c['unified']}[/]"
        t.add_row(str(c["index"]), c["name"], uni, *(", ".join(_raw(x) for x in c["ids"][e]) for e in encodings), swatch(c["colour"]))
    voids = Table(title="Encodings", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("encoding", "kind", "void values", "description"):
        voids.add_column(col, no_wrap=col in ("encoding", "kind"))
    for e, info in data["encodings"].items():
        voids.add_row(e, info["kind"], ", ".join(_raw(v) for v in info["void"]) or "-", info["description"])
    parts = [t, voids]
    if "values" in data:
        vt = Table(title=f"Raw values of {data['encoding']}", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("raw", "raw name", "class"):
            vt.add_column(col)
        for v in data["values"]:
            vt.add_row(_raw(v["raw"]), v["name"], v["class"] or "[dim]void[/]")
        parts.append(vt)
    return Group(*parts)


@app.command()
def show(
    name: str = typer.Argument(..., help="Label space name, e.g. cityscapes."),
    encoding: Optional[str] = typer.Option(None, "--encoding", "-e", help="Also list every raw value of this encoding."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Classes in training order with their raw ids per encoding, unified names and colours."""
    space = registry_from(registry).get(name)
    enc = space.encoding(encoding) if encoding else None
    data = space.as_dict(enc)
    emit(data, fmt, lambda: _space_tables({**data, "encoding": enc.name if enc is not None else None}))


def _union_summary(uni, caption: Optional[str]):
    """One row per set of datasets sharing classes: fits a screen where the full table takes 70+ lines."""
    t = Table(title=f"Union of {', '.join(uni.datasets)}: {uni.num_classes} classes, fingerprint {uni.fingerprint}",
              title_justify="left", box=box.SIMPLE_HEAD, caption=caption, caption_justify="left")
    t.add_column("in", max_width=max(24, len(max(uni.datasets, key=len)) + 8))
    t.add_column("n", justify="right", no_wrap=True)
    t.add_column("classes", ratio=1)
    for members, names in uni.by_members():
        t.add_row(uni.members_label(members), str(len(names)), ", ".join(names))
    return t


def _union_table(uni, caption: Optional[str]):
    """Every class with its colour and each dataset's names for it (--all)."""
    t = Table(title=f"Union of {', '.join(uni.datasets)}: {uni.num_classes} classes, fingerprint {uni.fingerprint}",
              title_justify="left", box=box.SIMPLE_HEAD, caption=caption, caption_justify="left")
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("name", overflow="fold")
    t.add_column("colour", no_wrap=True)
    for d in uni.datasets:
        t.add_column(d, overflow="fold")
    for c in uni.classes:
        t.add_row(str(c.index), c.name, swatch(c.colour, numbers=False), *[", ".join(c.members.get(d, ())) for d in uni.datasets])
    return t


@app.command()
def union(
    names: List[str] = typer.Argument(..., help="Label space names, e.g. cityscapes bdd idd mapillary."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write union.yaml and remap/<dataset>.<encoding>.{csv,npy} here."),
    all_: bool = typer.Option(False, "--all", "-a", help="List every class with its colour and each dataset's names (default: classes grouped by the datasets sharing them)."),
    compare: Optional[Path] = typer.Option(None, "--compare", metavar="OLD", help="Also say what this union changes against OLD (a union folder or its union.yaml, a run folder, or a checkpoint): classes added, dropped, merged, split; remap tables that change."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """The union of label spaces: classes merged on unified names, sorted alphabetically.

    Example: uniseg labels union cityscapes idd mapillary --compare runs/cs-idd/last.pt
    """
    from uniseg.cli.options import split_names
    from uniseg.unify.artifact import open_union, union_to_dict, write_union_artifact

    reg = registry_from(registry)
    uni, spaces = open_union([n for part in names for n in split_names(part)], reg)
    change = None
    if compare is not None:  # before anything is written: a bad OLD leaves no folder behind
        from uniseg.unify.compare import compare_unions, load_old_union

        old, what = load_old_union(compare)
        change = {"against": str(compare), "kind": what, **compare_unions(old, uni, reg)}
    written = write_union_artifact(uni, list(spaces.values()), out) if out is not None else []
    data = union_to_dict(uni)
    if out is not None:
        data["written"] = [str(p) for p in written]
    if change is not None:
        data["compare"] = change
    notes = [f"wrote {out}/union.yaml and {len(written) - 1} remap files"] if out is not None else []
    if not all_:
        notes.append("--all for every class with its colour and names; --format json|yaml for all data")
    caption = "\n".join(notes) or None

    def view():
        from rich.console import Group

        main = _union_table(uni, caption) if all_ else _union_summary(uni, caption)
        return main if change is None else Group(main, _compare_view(change))

    emit(data, fmt, view)


def _compare_view(c: dict):
    """``labels union --compare``: one row per kind of change, then the remap tables that change."""
    from rich.console import Group

    head = f"Against {c['kind']} {c['against']} (union {c['old']['fingerprint']}: {'+'.join(c['old']['datasets'])}, {c['old']['num_classes']} classes)"
    if c["same"]:
        return f"{head}: the same union; nothing changes"
    t = Table(title=head, title_justify="left", box=box.SIMPLE_HEAD,
              caption=f"'uniseg train --init OLD' carries the classifier over for the {c['classes']['kept']} classes both unions hold (by name); "
                      "a relations table of the old union must be mined again", caption_justify="left")
    t.add_column("change", no_wrap=True)
    t.add_column("n", justify="right", no_wrap=True)
    t.add_column("what", ratio=1)
    rows = [
        ("datasets added", c["datasets"]["added"]), ("datasets dropped", c["datasets"]["dropped"]),
        ("classes added", c["classes"]["added"]), ("classes dropped", c["classes"]["dropped"]),
        ("merged", [f"{r['class']} <- {' + '.join(r['from'])}" for r in c["merged"]]),
        ("split", [f"{r['class']} -> {' + '.join(r['into'])}" for r in c["split"]]),
        ("renamed", [f"{r['from']} -> {r['to']}" for r in c["renamed"]]),
        ("gain members", [f"{r['class']} ({', '.join(r['datasets'])})" for r in c["gained_members"]]),
        ("lose members", [f"{r['class']} ({', '.join(r['datasets'])})" for r in c["lost_members"]]),
    ]
    for name, items in rows:
        if items:
            t.add_row(name, str(len(items)), ", ".join(items))
    r = Table(title="Remap tables", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("dataset", "encoding", "status", "raw values to another index", "to another class"):
        r.add_column(col, justify="right" if col.startswith(("raw", "to")) else "left")
    for row in c["remap_tables"]:
        moved = f"{row['moved']} of {row['values']}" if "moved" in row else "-"
        r.add_row(row["dataset"], row["encoding"] or "-", row["status"] + (f" ({row['why']})" if "why" in row else ""), moved,
                  str(row["reclassed"]) if "reclassed" in row else "-")
    return Group(t, r)


@app.command()
def diff(
    a: str = typer.Argument(..., help="First label space."),
    b: str = typer.Argument(..., help="Second label space."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Classes shared by A and B, only in A, only in B, and name collisions."""
    from uniseg.unify.diff import diff_labelspaces

    reg = registry_from(registry)
    d = diff_labelspaces(reg.get(a), reg.get(b))

    def table():
        from rich.console import Group

        t = Table(title=f"{d.a} vs {d.b}: {len(d.shared)} shared, {len(d.only_a)} only in {d.a}, {len(d.only_b)} only in {d.b}", title_justify="left")
        t.add_column("unified")
        t.add_column(d.a)
        t.add_column(d.b)
        for r in d.shared:
            t.add_row(r["unified"], r["a"], r["b"])
        for r in d.only_a:
            t.add_row(r["unified"], r["name"], "[dim]-[/]")
        for r in d.only_b:
            t.add_row(r["unified"], "[dim]-[/]", r["name"])
        c = Table(title=f"Name collisions ({len(d.collisions)})", title_justify="left")
        c.add_column("kind")
        c.add_column("detail")
        for r in d.collisions:
            c.add_row(r["kind"], ", ".join(f"{k}={v}" for k, v in r.items() if k != "kind"))
        return Group(t, c)

    emit(d.to_dict(), fmt, table)


SHOW = 10  # files listed in the remap table (--format json lists every one)


@app.command()
def remap(
    sources: List[Path] = typer.Argument(..., help="Label images or folders (searched recursively)."),
    dataset: str = typer.Option(..., "--dataset", help="Label space the sources are labelled in."),
    union_spec: str = UnionOpt,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the unified-id PNGs (the source tree is kept)."),
    encoding: Optional[str] = typer.Option(None, "--encoding", "-e", help="How the sources store ids (default: the dataset's first encoding)."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-w", min=1, help="Parallel processes."),
    strict: bool = typer.Option(False, "--strict", help="Treat any unknown raw value as an error (file not written)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files in --out that no 'labels remap' wrote (else refused before anything is written)."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Remap the label files of one encoding into unified ids (resumable, atomic, parallel).

    Only files named like the encoding's labels in the registry layout are taken (a real copy's
    other files are skipped and counted); a folder with no known file pattern is taken whole.
    """
    from uniseg.labelfiles import format_raw
    from uniseg.unify.lut import build_lut
    from uniseg.unify.remap import remap_paths

    uni, space = union_and_space(union_spec, dataset, registry)
    lut = build_lut(uni, space, encoding)
    try:
        with progress_bar("remap", fmt == Format.table and console.is_terminal) as progress:
            task = progress.add_task(f"{lut.dataset}.{lut.encoding}", total=None)
            report = remap_paths(
                lut, [str(s) for s in sources], out, space=space, workers=workers, strict=strict, overwrite=overwrite,
                on_start=lambda total, skipped: progress.update(task, total=total, completed=skipped),
                on_result=lambda r: progress.advance(task) if r.status != "skipped" else None,
            )
    except KeyboardInterrupt:
        raise Interrupted() from None
    colour = lut.kind == "rgb"
    outside = list(uni.eval_map(space).missing)
    data = {
        "dataset": report.dataset,
        "encoding": report.encoding,
        "fingerprint": report.fingerprint,
        "out": report.out,
        "done": report.count("done"),
        "skipped": report.count("skipped"),
        "failed": report.count("error"),
        "unknown_pixels": report.unknown_pixels,
        "left_out": report.left_out,
        "classes_not_in_union": outside,
        "files": [
            {"src": f.src, "dst": f.dst, "status": f.status, "unknown": {format_raw(k, colour): v for k, v in f.unknown.items()},
             "unknown_values": f.unknown_values, "unknown_pixels": f.unknown_pixels, "error": f.error}
            for f in report.files
            if f.status == "error" or f.unknown
        ],
    }

    emit(data, fmt, lambda: _remap_view(data, report.left_out, outside, space.name))
    if not report.ok:
        first = next(f for f in report.files if f.status == "error")
        raise UnisegError(f"{data['failed']} of {len(report.files)} files failed; first: {first.src}: {first.error}")


def _remap_view(data: dict, left_out: dict[str, int], outside: list[str], dataset: str):
    """The human report of ``labels remap``: one summary line, then at most ``SHOW`` files with problems."""
    from rich.console import Group

    head = (
        f"Remapped {data['dataset']}.{data['encoding']} -> union {data['fingerprint']}: "
        f"{data['done']} written, {data['skipped']} already done, {data['failed']} failed, "
        f"{data['unknown_pixels']} unknown pixels -> {data['out']}"
    )
    notes = []
    if left_out:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(left_out.items()))
        notes.append(f"left out {sum(left_out.values())} files that are not {data['dataset']}.{data['encoding']} labels: {kinds}")
    if outside:
        notes.append(f"{dataset} classes the union lacks, written as 255: {', '.join(outside)}")
    if not data["files"]:
        return Group(head, *notes)
    t = Table(title=head, title_justify="left", caption="; ".join(notes) or None)
    width = max(24, console.width // 3)
    t.add_column("file", no_wrap=True)
    t.add_column("status")
    t.add_column("unknown raw values (pixels)")
    t.add_column("error")
    for f in data["files"][:SHOW]:
        unk = ", ".join(f"{k}: {v}" for k, v in f["unknown"].items())
        if f["unknown_values"] > len(f["unknown"]):
            unk += f", … ({f['unknown_values']} values)"
        t.add_row(middle_cut(f["src"], width), f["status"], unk or "-", f["error"] or "-")
    if len(data["files"]) > SHOW:
        t.add_row(f"… and {len(data['files']) - SHOW} more (--format json lists all)", "", "", "")
    return t


@app.command()
def export(
    union_spec: str = UnionOpt,
    to: str = typer.Option(..., "--to", "-t", help="csv, json, npy, mseg-tsv, mmseg, detectron2 or hf."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write (a folder for npy)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="npy: replace a folder holding another export or files uniseg did not write."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Export the union and its remap tables for other codebases."""
    from uniseg.unify.exports import EXPORTERS, export as do_export, left_out

    uni, spaces = parse_union(union_spec, registry_from(registry))
    written = do_export(uni, list(spaces.values()), to, out, overwrite=overwrite)
    skipped = left_out(uni, list(spaces.values()), to)
    data = {"format": to, "fingerprint": uni.fingerprint, "written": [str(p) for p in written], "left_out": skipped}

    def table():
        from rich.console import Group
        from rich.text import Text

        t = Table()
        t.add_column("file")
        t.add_column("bytes", justify="right")
        for p in written:
            t.add_row(str(p), str(p.stat().st_size))
        notes = [Text(f"left out {key}: {why}", style="yellow") for key, why in skipped.items()]
        return Group(Text(f"Exported union {uni.fingerprint} as {to}: {EXPORTERS[to][1]}"), t, *notes)

    emit(data, fmt, table)


from uniseg.cli import audit as _audit  # noqa: E402  (`labels audit` lives in its own module)

_audit.register(app)
