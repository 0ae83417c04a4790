"""``uniseg relations review``: list the mined relations and their near misses; accept, reject or add
one by hand into a new relations folder (``uniseg.relations.review``).

Registered in the ``uniseg relations`` group (``uniseg/cli/relations.py``). No torch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from uniseg.cli.options import FormatOpt
from uniseg.cli.render import Format, emit
from uniseg.errors import UnisegError

app = typer.Typer(no_args_is_help=False, invoke_without_command=True, rich_markup_mode=None)

SourceOpt = typer.Option(None, "--relations", "-r", metavar="DIR", help="Relations folder (from 'relations labels', or a reviewed one); default: here.")
OutOpt = typer.Option(..., "--out", "-o", metavar="NEW", help="Write the reviewed relations here: a new folder (or the reviewed folder given to --relations, edited in place); never the mined one.")
MarginOpt = typer.Option(0.1, "--margin", min=0.0, max=1.0, help="Near misses: relations scoring at most this far below the bar max(tau, own score) on a pair the rule could switch on.")
NoteOpt = typer.Option("", "--note", metavar="TEXT", help="Why (recorded with the edit).")
DateOpt = typer.Option(None, "--date", metavar="YYYY-MM-DD", help="Date recorded with the edit (default: SOURCE_DATE_EPOCH's day if set, else today, UTC).")
KindOpt = typer.Option("", "--kind", metavar="subset|equivalent|overlap", help="The relation's type (the graph commands show it); default: the graph's own.")
DatasetOpt = typer.Option(None, "--dataset", metavar="D", help="The dataset whose PRIMARY pixels also train SECONDARY (needed when several fit).")
ReplaceOpt = typer.Option(False, "--replace", help="Replace other relations already in --out.")
LIMIT = 50
PAST = {"accept": "accepted", "reject": "rejected", "add": "added"}


def _folder(relations: Optional[Path], ctx: Optional[typer.Context] = None) -> Path:
    """``--relations`` of the command, else of the group (``review --relations DIR reject ...``), else here."""
    if relations is None and ctx is not None and isinstance(ctx.obj, dict):
        relations = ctx.obj.get("relations")
    return Path(".") if relations is None else relations


def _fmt_row(r: dict) -> list[str]:
    status = {"on": "[green]on[/]", "near miss": "[yellow]near miss[/]", "rejected": "[red]rejected[/]"}[r["status"]]
    hand = ""
    if r["reviewed"]:
        hand = f"{PAST[r['reviewed']]} {r['date']}" + (f": {escape(r['note'])}" if r["note"] else "")
    return [str(r["id"]), status, r["dataset"], f"{r['primary']} -> {r['secondary']}" + ("" if not r["in_space"] else " [dim](in space)[/]"),
            f"{r['score']:.3f}", f"{r['bar']:.3f}", str(r["pixels"]), r["kind"] or "-", hand or "-"]


@app.callback(invoke_without_command=True)
def review(
    ctx: typer.Context,
    relations: Optional[Path] = SourceOpt,
    margin: float = MarginOpt,
    limit: int = typer.Option(LIMIT, "--limit", min=1, help="Rows in the table (--format json lists them all)."),
    fmt: Format = FormatOpt,
) -> None:
    """Review mined relations by hand: those switched on and the near misses, one per line, with scores and support.

    Then fix them by hand, into a new folder whose relations.yaml records each edit:

      uniseg relations review reject bicyclist rider --dataset mapillary --relations runs/rel --out runs/rel-reviewed --note "..."

      uniseg relations review accept|add PRIMARY SECONDARY --dataset D --kind subset|equivalent|overlap ...

    Example: uniseg relations review --relations runs/relations --margin 0.1
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"relations": relations}  # 'review --relations DIR reject ...' works too
        return
    from uniseg.relations.artifact import read_relations
    from uniseg.relations.review import candidates

    folder = _folder(relations)
    rs = read_relations(folder)
    rows = candidates(rs, margin)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("on", "near miss", "rejected")}
    data = {"relations": str(folder), "tau": rs.tau.tau, "tau_how": rs.tau.how, "rule": rs.rule, "min_support": rs.min_support,
            "margin": margin, "reviewed": rs.reviewed, "counts": counts, "candidates": rows}

    def table():
        notes = [f"bar = max(tau, own score): Eq. 6 switches c' on where its score exceeds it; near miss: within {margin:g} below it, "
                 f"on a pair rule {rs.rule!r} could switch on (support: {rs.min_support} pixels)",
                 f"fix: uniseg relations review reject|accept|add PRIMARY SECONDARY --dataset D --relations {folder} --out NEW [--kind K] [--note TEXT]"]
        if len(rows) > limit:
            notes.append(f"{len(rows) - limit} more rows: --format json lists them all, --limit N shows more")
        t = Table(title=f"{counts['on']} relations on, {counts['near miss']} near misses, {counts['rejected']} rejected by hand — "
                        f"tau {rs.tau.tau:.4f} ({rs.tau.how}), {folder}", title_justify="left", caption="\n".join(notes), caption_justify="left")
        for col in ("#", "status", "dataset", "primary -> secondary", "score", "bar", "pixels", "kind", "by hand"):
            t.add_column(col, justify="right" if col in ("#", "score", "bar", "pixels") else "left", no_wrap=col in ("#", "status", "score", "bar"))
        for r in rows[:limit]:
            t.add_row(*_fmt_row(r))
        return t

    emit(data, fmt, table)


def _edit(ctx: typer.Context, action: str, primary: str, secondary: str, dataset: Optional[str], relations: Optional[Path], out: Path,
          kind: str, note: str, date: Optional[str], margin: float, replace_: bool, fmt: Format) -> None:
    from uniseg.relations.artifact import read_relations
    from uniseg.relations.edits import check_kind, review_date
    from uniseg.relations.review import apply_edit

    folder = _folder(relations, ctx)
    kind = check_kind(kind)
    when = review_date(date)
    note = " ".join(note.split())  # one line in relations.yaml, whatever the shell passed
    rs = read_relations(folder)
    new, edit = apply_edit(rs, action, primary, secondary, dataset=dataset, kind=kind, note=note, date=when, margin=margin)
    _write(new, Path(rs.source), out, replace_, fmt, PAST[action], edit)  # the folder, also when given its relations.yaml


def _write(new, folder: Path, out: Path, replace_: bool, fmt: Format, verb: str, edit=None) -> None:
    from uniseg.relations.artifact import relations_doc, write_relations
    from uniseg.relations.review import same_folder

    in_place = same_folder(folder, out)
    if in_place:
        from uniseg.relations.artifact import read_relations

        if not read_relations(folder).reviewed:
            raise UnisegError(f"--out {out}: the mined relations given to --relations; a review never edits them in place: give --out NEW")
    written = write_relations(out, new, replace=in_place or replace_)
    doc = relations_doc(new)
    data = {"out": str(out), "written": [str(p) for p in written], "edit": edit.as_dict() if edit is not None else None,
            "counts": doc["counts"], "edits": doc["review"]["edits"], "document_fingerprint": doc["document_fingerprint"],
            "table_fingerprint": doc["table_fingerprint"]}

    def table():
        c = doc["counts"]
        what = (f"{verb} {edit.dataset}: {edit.primary} -> {edit.secondary}" if edit is not None else verb)
        t = Table(title=f"{what}; wrote {out} ({c['relations']} relations on: {c['relations'] - c['added']} mined, {c['added']} added; "
                        f"{c['rejected']} rejected)", title_justify="left",
                  caption=f"next: uniseg relations diff {new.origin.get('relations', folder)} {out}; "
                          f"uniseg train --loss cr-bce --relations {out} ...", caption_justify="left")
        for col in ("#", "action", "dataset", "primary -> secondary", "kind", "date", "note"):
            t.add_column(col, justify="right" if col == "#" else "left")
        for i, e in enumerate(doc["review"]["edits"], 1):
            t.add_row(str(i), e["action"], e["dataset"], f"{e['primary']} -> {e['secondary']}", e.get("kind", "") or "-", e["date"], escape(e["note"]) or "-")
        return t

    emit(data, fmt, table)


_PRIMARY = typer.Argument(..., metavar="PRIMARY", help="The class whose pixels also train SECONDARY, e.g. bicyclist.")
_SECONDARY = typer.Argument(..., metavar="SECONDARY", help="The class they train too, e.g. rider.")


@app.command()
def accept(
    ctx: typer.Context, primary: str = _PRIMARY, secondary: str = _SECONDARY, dataset: Optional[str] = DatasetOpt, relations: Optional[Path] = SourceOpt,
    out: Path = OutOpt, kind: str = KindOpt, note: str = NoteOpt, date: Optional[str] = DateOpt, margin: float = MarginOpt,
    replace_: bool = ReplaceOpt, fmt: Format = FormatOpt,
) -> None:
    """Accept a relation: keep a switched-on one (recording kind, note, date), or switch on a near miss.

    Example: uniseg relations review accept motorcyclist rider --dataset mapillary --relations runs/rel --out runs/rel-reviewed --note "Figure 3"
    """
    _edit(ctx, "accept", primary, secondary, dataset, relations, out, kind, note, date, margin, replace_, fmt)


@app.command()
def reject(
    ctx: typer.Context, primary: str = _PRIMARY, secondary: str = _SECONDARY, dataset: Optional[str] = DatasetOpt, relations: Optional[Path] = SourceOpt,
    out: Path = OutOpt, note: str = NoteOpt, date: Optional[str] = DateOpt, replace_: bool = ReplaceOpt, fmt: Format = FormatOpt,
) -> None:
    """Reject a switched-on relation: its pixels no longer train SECONDARY (the table goes back to 0 or null there).

    Example: uniseg relations review reject pole building --dataset idd --relations runs/rel --out runs/rel-reviewed --note "surroundings"
    """
    _edit(ctx, "reject", primary, secondary, dataset, relations, out, "", note, date, 0.1, replace_, fmt)


@app.command()
def add(
    ctx: typer.Context, primary: str = _PRIMARY, secondary: str = _SECONDARY, dataset: str = typer.Option(..., "--dataset", metavar="D", help="The dataset whose PRIMARY pixels also train SECONDARY."),
    relations: Optional[Path] = SourceOpt, out: Path = OutOpt, kind: str = KindOpt, note: str = NoteOpt, date: Optional[str] = DateOpt,
    replace_: bool = ReplaceOpt, fmt: Format = FormatOpt,
) -> None:
    """Add a relation the mining left off: PRIMARY pixels of dataset D also train SECONDARY.

    Example: uniseg relations review add "bike lane" road --dataset mapillary --kind subset --relations runs/rel --out runs/rel-reviewed
    """
    _edit(ctx, "add", primary, secondary, dataset, relations, out, kind, note, date, 0.1, replace_, fmt)


@app.command("apply")
def apply_(
    ctx: typer.Context, reviewed: Path = typer.Option(..., "--review", metavar="DIR", help="A reviewed relations folder whose edits to replay."),
    relations: Optional[Path] = SourceOpt, out: Path = OutOpt, replace_: bool = ReplaceOpt, fmt: Format = FormatOpt,
) -> None:
    """Replay a review's edits, in order, on other relations of the same union (mined again, say); another union is refused.

    Example: uniseg relations review apply --review runs/rel-reviewed --relations runs/rel-longer --out runs/rel-longer-reviewed
    """
    from uniseg.relations.artifact import read_relations
    from uniseg.relations.review import carry_review

    review_rs, target = read_relations(reviewed), read_relations(_folder(relations, ctx))
    new = carry_review(review_rs, target)
    _write(new, Path(target.source), out, replace_, fmt, f"replayed {len(review_rs.edits)} edits of {reviewed}")
