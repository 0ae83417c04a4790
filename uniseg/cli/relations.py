"""``uniseg relations``: mining (Eq. 7), the multi-label table of Eq. 6 and the class-relation graph.

Thin layer: parse, call ``uniseg.engine.mining`` (the pass over a model) and ``uniseg.relations``
(statistics, Eq. 6, the artifact, review, graph, diff, plots), render. No torch import at module
level; torch, numpy, networkx and matplotlib are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from uniseg.cli.options import (
    DATASET_EXTRA_ARGS, DatasetsOpt, DeviceOpt, FormatOpt, OnBadFileOpt, RegistryOpt, parse_datasets, parse_tau, parse_union,
    progress_bar, progress_by_name, registry_from, split_names,
)
from uniseg.cli.render import Format, console, emit
from uniseg.errors import Interrupted, UnisegError

app = typer.Typer(help="Class relations: multi-label tables (Eq. 6) and the relation graph.", no_args_is_help=True)

RelationsOpt = typer.Option(Path("."), "--relations", "-r", metavar="DIR", help="Folder written by 'uniseg relations labels' (default: here).")
RelationsReq = typer.Option(..., "--relations", "-r", metavar="DIR", help="Folder written by 'uniseg relations labels'.")
FloorOpt = typer.Option(None, "--floor", min=0.0, max=1.0, help="Leave out edges scoring below this unless switched on (default 0.1).")
TABLE_ROWS = 30  # human tables show this many rows; --format json has everything


def _more(shown: int, total: int) -> Optional[str]:
    return f"{total - shown} more rows: --format json lists them all" if total > shown else None


@app.command(context_settings=DATASET_EXTRA_ARGS)
def mine(
    ctx: typer.Context,
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", metavar="CKPT", help="A cosine-head uniseg checkpoint (RUN/best.pt, RUN/last.pt), its run folder, or its 'uniseg models export' folder."),
    datasets: Optional[List[str]] = DatasetsOpt,
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Write similarity.npz, similarity.csv, union.yaml and mining.json here (partial sums too, while mining); a folder holding a relations table made from its similarity.npz is refused."),
    split: str = typer.Option("train", "--split", "-s", metavar="NAME[,NAME]", help="Split(s) to mine: the training data, as the paper does."),
    short_side: int = typer.Option(1080, "--short-side", min=0, help="Resize the shorter side to N, labels NEAREST to match (0 = native); the training default."),
    workers: int = typer.Option(2, "--workers", "-w", min=0, help="DataLoader worker processes."),
    device: Optional[str] = DeviceOpt,
    amp: str = typer.Option("auto", "--amp", help="Mixed precision of the forward pass: auto (CUDA: bf16), off, bf16, fp16."),
    interior: str = typer.Option("auto", "--interior", metavar="auto|N|off", help="Average over interior pixels only: each class mask eroded by N pixels (auto: a quarter of the model's output stride, 1 pixel for HRNet), so class borders, where the upsampled logits blend the neighbour, do not count; off: the paper's plain mean over every pixel."),
    on_bad_file: str = OnBadFileOpt,
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Mine class relations (Eq. 7): mean sigmoid(t x cosine) of every class on each dataset's classes.

    One pass over the training datasets, eval mode, no augmentation.

    Ctrl-C keeps the partial sums in DIR; the same command resumes.

    Several processes: torchrun --nproc_per_node=N -m uniseg relations mine ...

    Example: uniseg relations mine --checkpoint runs/w18/last.pt --datasets cityscapes=/data/cs mapillary=/data/vistas --out runs/mine
    """
    import time

    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.mining import interior_radius, mine_to_folder, open_sets, summary
    from uniseg.engine.trainer import unlabelled_notes
    from uniseg.engine.runtime import setup_runtime

    pairs = parse_datasets(datasets, ctx.args)
    if not pairs:
        raise UnisegError("no dataset to mine: give --datasets NAME=ROOT for the checkpoint's training datasets")
    splits = split_names(split)
    if not splits:
        raise UnisegError(f"--split {split!r}: give a split name, e.g. --split train")
    reg = registry_from(registry)
    rt = setup_runtime(device or "auto", amp)
    started = time.perf_counter()
    try:
        trained = load_trained(checkpoint, rt.device)
        radius = interior_radius(trained.model, interior)
        sets = open_sets(trained, pairs, reg, splits, short_side)  # every process refuses alike, before any waits
        union = trained.union
        show = fmt == Format.table and rt.is_main
        with progress_bar("mine", show and console.is_terminal) as bar:
            progress = progress_by_name(bar, rt.world_size)
            try:
                res, written = mine_to_folder(
                    trained, pairs, reg, out, device=rt.device, split=splits, short_side=short_side, workers=workers,
                    interior=radius, autocast=rt.autocast(), rank=rt.rank, world_size=rt.world_size,
                    all_reduce=rt.all_reduce_ if rt.distributed else None, barrier=rt.barrier, progress=progress, sets=sets,
                    on_bad_file=on_bad_file,
                )
            except Interrupted:
                if not rt.is_main:
                    raise Interrupted("") from None  # rank 0 alone speaks
                raise
    finally:
        rt.close()
    if not rt.is_main:
        return
    rows = summary(res, union)
    data = {
        "out": str(out), "written": [str(p) for p in written], "checkpoint": trained.path, "iteration": trained.iteration,
        "union_fingerprint": union.fingerprint, "split": splits, "short_side": short_side, "processes": rt.world_size,
        "amp": rt.amp_name, "interior": radius, "resumed_images": res.resumed, "seconds": round(time.perf_counter() - started, 2),
        "datasets": rows, "not_mined": [d for d in union.datasets if d not in res.mined], "bad_files": res.bad_files,
        "images_without_labels": {name: list(getattr(ds, "unlabelled", [])) for name, ds in sets if getattr(ds, "unlabelled", None)},
    }

    def table():
        t = Table(
            title=f"Eq. 7 over {sum(r['images'] for r in rows)} images with {trained.path} (iteration {trained.iteration}, union {union.fingerprint})",
            title_justify="left", caption_justify="left",
        )
        for col in ("dataset", "images", "pixels", "classes seen", "mean own score", "strongest class outside its space"):
            t.add_column(col, justify="left" if col in ("dataset", "strongest class outside its space") else "right")
        for r in rows:
            top = r["top_outside"]
            t.add_row(r["dataset"], str(r["images"]), str(r["pixels"]), f"{r['classes_seen']}/{r['classes']}",
                      "-" if r["mean_own_score"] is None else f"{r['mean_own_score']:.3f}",
                      "-" if top is None else f"{top['class']} -> {top['other_class']} {top['score']:.3f}")
        notes = [f"wrote {out}/similarity.npz, similarity.csv, union.yaml and mining.json; next: uniseg relations labels --similarity {out}/similarity.npz --out DIR"]
        if data["not_mined"]:
            notes.append(f"not mined (rows without pixels): {', '.join(data['not_mined'])}")
        for b in res.bad_files:
            notes.append(f"skipped a bad file (--on-bad-file skip), not mined: {b['error']}")
        notes += unlabelled_notes([ds for _, ds in sets], "mined")
        if res.resumed:
            notes.append(f"resumed: {res.resumed} images came from the partial sums of an interrupted run")
        t.caption = "\n".join(notes)
        return t

    emit(data, fmt, table)


@app.command()
def labels(
    similarity: Path = typer.Option(..., "--similarity", metavar="FILE", help="similarity.npz from 'uniseg relations mine' (or any writer of its arrays)."),
    tau: str = typer.Option("auto", "--tau", metavar="auto|FLOAT", help="Eq. 6 threshold: 'auto' (the paper's rule) or a number in [0, 1]."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Write relations.yaml, table.npy, union.yaml and a copy of the similarity here."),
    union_spec: Optional[str] = typer.Option(None, "--union", "-u", metavar="DIR|NAMES", help="The union mined over (default: union.yaml beside FILE, else the registry's union of its datasets)."),
    rule: str = typer.Option("conflict", "--rule", metavar="conflict|paper", help="Which pairs Eq. 6 may switch on: conflict = only where another training dataset lacks the class and has the other (a label conflict can explain it); paper = Eq. 6 as printed."),
    min_support: Optional[int] = typer.Option(None, "--min-support", min=1, metavar="N", help="Pixels a class needs in a dataset for Eq. 6 to look at it (default: 50 interior pixels for interior mining, any pixel for the plain mean)."),
    replace: bool = typer.Option(False, "--replace", help="Replace relations (relations.yaml, table.npy, similarity.npz) of other inputs already in DIR (default: refused; the same inputs again pass)."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Turn class similarities into the multi-label table of Eq. 6 (what --loss cr-bce trains with).

    Example: uniseg relations labels --similarity runs/mine/similarity.npz --tau auto --out runs/relations
    """
    from uniseg.relations.artifact import build_relations, relations_doc, union_for, write_relations
    from uniseg.relations.stats import read_similarity

    threshold = parse_tau(tau)
    sim = read_similarity(similarity)
    reg = registry_from(registry)
    union = parse_union(union_spec, reg)[0] if union_spec else union_for(sim, reg)
    rs = build_relations(sim, union, threshold, source=str(similarity), min_support=min_support, rule=rule.strip().lower())
    from uniseg.io import new_output

    with new_output(out):  # a folder made here goes again if a write fails (a full disk)
        written = write_relations(out, rs, replace=replace)
    filled = rs.filled_in()
    data = {**relations_doc(rs), "filled_in": filled, "written": [str(p) for p in written]}

    def table():
        rels = rs.relations()
        notes = [f"tau: {rs.tau.note}", f"wrote {out}/relations.yaml and table.npy"]
        thin = rs.unsupported()
        if thin:  # never switched off silently
            notes.append(f"not enough support (under {rs.min_support} interior pixels; no relation of theirs is switched on): "
                         + ", ".join(f"{r['dataset']} {r['class']}" for r in thin[:12])
                         + (f" and {len(thin) - 12} more (relations.yaml lists them)" if len(thin) > 12 else ""))
        if filled:  # the classes C-R BCE teaches from data Null BCE leaves out
            notes.insert(0, "new data for classes a dataset lacks (null under Null BCE): "
                         + ", ".join(f"{c} (from {', '.join(ds)})" for c, ds in filled.items()))
        if not rels:  # no empty table: say so, and what would switch relations on
            from rich.text import Text

            return Text("\n".join([
                f"no relation switched on by Eq. 6 (tau = {rs.tau.tau:.4f}, {rs.tau.how}); --loss cr-bce with this table trains as Null BCE",
                *notes, "a longer-trained mining model, or a fixed --tau (e.g. --tau 0.5), can switch relations on",
            ]))
        if len(rels) > TABLE_ROWS:
            notes.append(_more(TABLE_ROWS, len(rels)))
        t = Table(
            title=f"{len(rels)} relations switched on by Eq. 6, tau = {rs.tau.tau:.4f} ({rs.tau.how})",
            title_justify="left", caption="\n".join(notes), caption_justify="left",
        )
        for col in ("primary", "dataset", "secondary", "score", "own score", "pixels"):
            t.add_column(col, justify="right" if col in ("score", "own score", "pixels") else "left")
        for r in rels[:TABLE_ROWS]:
            sec = r.secondary + ("" if not r.in_space else " [dim](in space)[/]")
            t.add_row(r.primary, r.dataset, sec, f"{r.score:.3f}", f"{r.own_score:.3f}", str(r.pixels))
        return t

    emit(data, fmt, table)


def _edge_table(title: str, per: dict[str, list[dict]], other: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("dataset", other, "score", "kind", "on"):
        t.add_column(col, justify="right" if col == "score" else "left")
    for d, rows in per.items():
        for i, r in enumerate(rows):
            t.add_row(d if i == 0 else "", r["target"] if other == "to" else r["source"], f"{r['score']:.3f}", r["kind"], "yes" if r["on"] else "")
    if not per:
        t.caption = "none above the floor"
    return t


@app.command()
def show(
    name: str = typer.Argument(..., metavar="CLASS", help="A unified class name, e.g. rider."),
    relations: Path = RelationsOpt,
    top: int = typer.Option(5, "--top", min=1, help="Edges per dataset and direction."),
    floor: Optional[float] = FloorOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Strongest outgoing (CLASS -> other) and incoming (other -> CLASS) relations per dataset."""
    from uniseg.relations.graph import EDGE_FLOOR, class_relations, relation_graph
    from uniseg.relations.artifact import read_relations
    from uniseg.relations.stats import KNOWN

    g = relation_graph(read_relations(relations), EDGE_FLOOR if floor is None else floor)
    data = class_relations(g, name, top)

    def table():
        from rich.console import Group

        head = f"{data['class']} (#{data['index']}, {data['colour']}) — {data['members']}; tau = {data['tau']:.4f}, floor {data['floor']:g}"
        own = f"own score {data['own_score']:.3f} (the model's mean score for {name} on its own pixels)"
        if data["pixels"] and data["own_score"] < KNOWN:
            own += f": under {KNOWN}, the model hardly knows {name}, so its relations come from its surroundings"
        return Group(
            head,
            own,
            _edge_table(f"Outgoing ({name} -> other, on {name}'s pixels)", data["outgoing"], "to"),
            _edge_table(f"Incoming (other -> {name}, on the other's pixels)", data["incoming"], "from"),
        )

    emit(data, fmt, table)


@app.command()
def conflicts(
    relations: Path = RelationsOpt,
    top: int = typer.Option(20, "--top", min=1, help="How many pairs."),
    fmt: Format = FormatOpt,
) -> None:
    """Ranked pairs a user should know about: cross-dataset confusions that Eq. 6 left off.

    A conflict: a pixel of class c in dataset d scores at least tau / 2 for a class c' outside d's
    label space, yet not above max(tau, s(c)), so c' is not trained there. Strongest first.
    """
    from uniseg.relations.graph import CONFLICT_FRACTION, conflicts as ranked, relation_graph
    from uniseg.relations.artifact import read_relations

    g = relation_graph(read_relations(relations))
    rows = ranked(g)
    data = {"tau": g.graph["tau"], "conflict_at": g.graph["conflict_at"], "total": len(rows), "conflicts": rows[:top]}

    def table():
        t = Table(
            title=f"{len(rows)} conflicts: score >= {CONFLICT_FRACTION:g} x tau = {g.graph['conflict_at']:.3f} across label spaces, left off by Eq. 6",
            title_justify="left", caption=_more(min(top, len(rows)), len(rows)) if len(rows) > top else None,
        )
        for col in ("#", "dataset", "class -> scores as", "score", "held by", "reverse on"):
            t.add_column(col, justify="right" if col in ("#", "score") else "left")
        for i, r in enumerate(rows[:top], 1):
            held = f"{'own' if r['left_off_by'] == 'own score' else 'tau'} {r['needs']:.3f}"  # the bar Eq. 6 needed
            t.add_row(str(i), r["dataset"], f"{r['source']} -> {r['target']}", f"{r['score']:.3f}", held, ", ".join(r["reverse_on"]) or "-")
        return t

    emit(data, fmt, table)


@app.command()
def export(
    relations: Path = RelationsReq,
    to: str = typer.Option(..., "--format", "-f", metavar="graphml|gexf|json|dot|csv", help="File format: graphml, gexf (Gephi), json (node-link), dot (Graphviz) or csv (pandas)."),
    out: Path = typer.Option(..., "--out", "-o", metavar="FILE", help="File to write."),
    floor: Optional[float] = FloorOpt,
    report: Format = typer.Option(Format.table, "--report", help="What this command prints: a line for people, or json."),
) -> None:
    """Export the relation graph for Gephi, Cytoscape, Graphviz or pandas (--format is the file's)."""
    from uniseg.relations.graph import EDGE_FLOOR, EXPORT_FORMATS, export_graph, relation_graph
    from uniseg.relations.artifact import read_relations

    if to not in EXPORT_FORMATS:
        raise UnisegError(f"--format {to!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    g = relation_graph(read_relations(relations), EDGE_FLOOR if floor is None else floor)
    path = export_graph(g, to, out)
    data = {"format": to, "out": str(path), "nodes": g.number_of_nodes(), "edges": g.number_of_edges(), "fingerprint": g.graph["fingerprint"]}
    emit(data, report, lambda: f"{data['nodes']} classes, {data['edges']} edges -> {path} ({EXPORT_FORMATS[to]})")


@app.command()
def plot(
    relations: Path = RelationsReq,
    out: str = typer.Option(..., "--out", "-o", metavar="PREFIX", help="Writes PREFIX_similarity.png and PREFIX_graph.png (a folder: DIR/relations_*.png)."),
    fmt: Format = FormatOpt,
) -> None:
    """PNG heatmap of the similarity (classes grouped by dataset) and a drawing of the switched-on relations."""
    from uniseg.relations.plots import plot_relations
    from uniseg.relations.artifact import read_relations

    from uniseg.io import new_output

    rs = read_relations(relations)
    prefix = Path(out)
    with new_output(prefix if prefix.is_dir() else prefix.parent):  # a folder made for the PNGs goes again if one fails
        written = plot_relations(rs, out)
    emit({"written": [str(p) for p in written]}, fmt, lambda: "wrote " + " and ".join(str(p) for p in written))


@app.command()
def diff(
    a: Path = typer.Argument(..., metavar="A", help="First relations folder."),
    b: Path = typer.Argument(..., metavar="B", help="Second relations folder."),
    min_change: float = typer.Option(0.05, "--min-change", min=0.0, max=1.0, help="Report score changes at least this large."),
    fmt: Format = FormatOpt,
) -> None:
    """What changed from A to B: tau, relations switched on / off, score changes."""
    from uniseg.relations.diff import diff_relations
    from uniseg.relations.artifact import read_relations

    d = diff_relations(read_relations(a), read_relations(b), min_change=min_change)
    data = d.to_dict()

    def table():
        from rich.console import Group

        head = f"{a} -> {b}: tau {d.tau['a']:.4f} ({d.tau['how_a']}) -> {d.tau['b']:.4f} ({d.tau['how_b']})"
        if not d.same_union:
            head += f"; different unions (only in A: {d.only_in_a}, only in B: {d.only_in_b})"
        if d.unchanged:
            return head + "; no change"
        t = Table(title=f"Relations: {len(d.switched_on)} switched on, {len(d.switched_off)} switched off", title_justify="left")
        for col in ("change", "dataset", "primary", "secondary", "score A", "score B", "by hand"):
            t.add_column(col, justify="right" if col.startswith("score") else "left")
        fmt_s = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731

        def hand(h):
            from rich.markup import escape

            if h is None:
                return "-"
            return " ".join(x for x in (h["action"], h.get("kind", ""), h["date"], f"({escape(h['note'])})" if h["note"] else "") if x)

        for sign, rows in (("[green]+ on[/]", d.switched_on), ("[red]- off[/]", d.switched_off)):
            for r in rows:
                t.add_row(sign, r["dataset"], r["primary"], r["secondary"], fmt_s(r["score_a"]), fmt_s(r["score_b"]), hand(r["by_hand"]))
        for r in d.kind_changes:
            t.add_row("[blue]~ kind[/]", r["dataset"], r["primary"], r["secondary"], "", "", f"{r['kind_a'] or 'mined'} -> {r['kind_b'] or 'mined'}")
        if d.review:
            t.caption = f"{len(d.review)} hand edit(s) in B: " + "; ".join(
                f"{e['action']} {e['dataset']}: {e['primary']} -> {e['secondary']}" for e in d.review[:TABLE_ROWS])
            t.caption_justify = "left"
        s = Table(title=f"Score changes >= {d.min_change:g}: {len(d.score_changes)}", title_justify="left", caption=_more(min(TABLE_ROWS, len(d.score_changes)), len(d.score_changes)))
        for col in ("dataset", "class", "other class", "A", "B", "change"):
            s.add_column(col, justify="right" if col in ("A", "B", "change") else "left")
        for r in d.score_changes[:TABLE_ROWS]:
            s.add_row(r["dataset"], r["class"], r["other_class"], f"{r['score_a']:.3f}", f"{r['score_b']:.3f}", f"{r['change']:+.3f}")
        return Group(head, t, s)

    emit(data, fmt, table)


from uniseg.cli import review as _review  # noqa: E402  (`relations review` lives in its own module)

app.add_typer(_review.app, name="review")
