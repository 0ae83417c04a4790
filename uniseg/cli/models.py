"""``uniseg models``: the registered segmentation networks, their parameters and MACs; ``export`` of a trained one.

Thin layer: parse, call ``uniseg.models``, render. The built-in networks' figures at the default
class count and sizes are recorded facts (``uniseg/models/facts.json``, checked against the
computation by the tests), so ``list`` and ``info`` answer without importing torch; another size,
class count or model is counted on the ``meta`` device (shapes, no weights) behind a spinner.
"""

from __future__ import annotations

import contextlib
import enum
from pathlib import Path
from typing import Optional

import typer

from uniseg.cli.options import FormatOpt, classes_from, parse_hw
from uniseg.cli.render import Format, emit, err_console
from uniseg.models.registry import HEADS

app = typer.Typer(help="Segmentation networks: list them, count parameters and multiply-accumulates, export trained ones.", no_args_is_help=True)

DEFAULT_SIZE = "512x1024"
DEFAULT_CLASSES = 19


Head = enum.Enum("Head", {h: h for h in HEADS}, type=str)  # ``--head`` choices: the registry's heads


SizeOpt = typer.Option(DEFAULT_SIZE, "--size", metavar="HxW", help="Input size for the MAC count, e.g. 512x1024 (or one number for a square).")
ClassesOpt = typer.Option(None, "--classes", "-k", metavar="K", help=f"Number of classes of the head (default {DEFAULT_CLASSES}, or the union's size with --union).")
UnionOpt = typer.Option(None, "--union", "-u", metavar="DIR|NAMES", help="Take K from a union: a folder from 'labels union --out', or dataset names (a,b,c).")
HeadOpt = typer.Option(Head.linear, "--head", help="Classifier: linear (1x1 conv + bias) or cosine (Appendix G).")

def _busy(message: str):
    """A spinner on stderr while torch loads and counts (nothing when stderr is not a terminal)."""
    return err_console.status(message) if err_console.is_terminal else contextlib.nullcontext()


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}K"


@app.command("list")
def list_(
    size: str = SizeOpt,
    classes: Optional[int] = ClassesOpt,
    union: Optional[str] = UnionOpt,
    head: Head = HeadOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Registered networks with parameters and multiply-accumulates at --size."""
    from uniseg.models import list_models

    hw = parse_hw(size, "--size")
    k = classes_from(classes, union, DEFAULT_CLASSES)
    from uniseg.models.facts import model_figures

    rows = [model_figures(name, k, head.value, hw, _busy)[0] for name in list_models()]
    for r in rows:
        r.pop("stages", None)

    def table():
        from rich.table import Table

        t = Table(title=f"Networks: {k}-class {head.value} head, MACs per image at {hw[0]}x{hw[1]}", title_justify="left")
        for col, just in (("name", "left"), ("architecture", "left"), ("params", "right"), ("GMACs", "right"), ("official*", "right")):
            t.add_column(col, justify=just)
        for r in rows:
            off = r.get("official", {})
            official = f"{off['params_m']}M / {off['gmacs_1024x2048']}" if off else "-"
            t.add_row(r["name"], r["title"], _millions(r["params"]), f"{r['gmacs']:.2f}", official)
        t.caption = (
            "* official README, 19 classes: params / 'GFLOPs' at 1024x2048 (= conv multiply-adds / 2**30; "
            "compare with 'uniseg models info NAME --size 1024x2048')"
        )
        return t

    emit(rows, fmt, table)


@app.command()
def info(
    name: str = typer.Argument(..., help="Network name, e.g. hrnet_w18_small_v2 (see 'uniseg models list')."),
    size: str = SizeOpt,
    classes: Optional[int] = ClassesOpt,
    union: Optional[str] = UnionOpt,
    head: Head = HeadOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Parameters and multiply-accumulates of one network at --size, with its stage layout."""
    from uniseg.models import get_spec

    get_spec(name)  # unknown names fail here, with suggestions, before anything is built
    hw = parse_hw(size, "--size")
    k = classes_from(classes, union, DEFAULT_CLASSES)
    from uniseg.models.facts import model_figures

    data, c = model_figures(name, k, head.value, hw, _busy)
    data["official_gflops"] = round(c.official_gflops, 2)

    def table():
        from rich.table import Table

        t = Table(title=f"{name}: {data['description']}", title_justify="left", show_header=False)
        t.add_column("key")
        t.add_column("value")
        t.add_row("params", f"{data['params']:,} ({_millions(data['params'])})")
        t.add_row("MACs", f"{data['macs']:,} ({data['gmacs']:.2f} G) per image at {hw[0]}x{hw[1]}")
        t.add_row("MACs / 2**30", f"{data['official_gflops']:.2f} (the unit of the official README's 'GFLOPs')")
        t.add_row("head", f"{data['head']}, {k} classes, on {data.get('feature_channels', '?')} feature channels")
        for i, s in enumerate(data.get("stages", []), start=1):
            t.add_row(f"stage {i}", f"{s['modules']} module(s) of {s['block'].lower()} blocks {s['blocks']}, widths {s['channels']}")
        off = data.get("official")
        if off:
            t.add_row("official", f"{off['params_m']}M params, {off['gmacs_1024x2048']} GFLOPs at 1024x2048 (19 classes, linear head)")
        return t

    emit(data, fmt, table)


@app.command()
def export(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", metavar="CKPT", help="A uniseg checkpoint (RUN/best.pt, RUN/last.pt) or its run folder."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Folder for model.safetensors and config.json (created; an earlier export there is replaced)."),
    fmt: Format = FormatOpt,
) -> None:
    """Export a trained model as model.safetensors plus config.json (variant, head, classes, union, recipe).

    Example: uniseg models export --checkpoint runs/w18/best.pt --out exports/w18

    uniseg eval, predict, relations mine and train --init take the folder as a checkpoint; the
    union fingerprint in config.json is checked when it is loaded.
    """
    from uniseg.engine.export import export_checkpoint

    with _busy(f"exporting {checkpoint}"):
        res = export_checkpoint(checkpoint, out)
    doc = res.document
    data = {
        "out": str(res.folder),
        "weights": str(res.weights),
        "config": str(res.config),
        "bytes": res.weights.stat().st_size,
        "tensors": res.tensors,
        "variant": doc["variant"],
        "head": doc["head"],
        "num_classes": doc["num_classes"],
        "align_corners": doc["align_corners"],
        "union_fingerprint": doc["union_fingerprint"],
        "datasets": doc["datasets"],
        "loss": doc["loss"],
        "iteration": doc["iteration"],
        "source": doc["source"],
    }

    def table():
        from rich.table import Table

        t = Table(title=f"Exported {doc['source']} to {res.folder}", title_justify="left", show_header=False)
        t.add_column("key")
        t.add_column("value")
        t.add_row("weights", f"{res.weights} ({res.tensors} tensors, {data['bytes'] / 2**20:.1f} MiB)")
        t.add_row("config", str(res.config))
        t.add_row("network", f"{doc['variant']}, {doc['head']} head, {doc['num_classes']} classes, align_corners {doc['align_corners']}")
        t.add_row("union", f"{doc['union_fingerprint']} over {', '.join(doc['datasets'])}")
        t.add_row("trained", f"loss {doc['loss']}, {doc['iteration']} iterations")
        return t

    emit(data, fmt, table)
