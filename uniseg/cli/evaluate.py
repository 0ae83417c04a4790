"""``uniseg eval``: score a checkpoint on registry datasets (seen or unseen), each in its own label space."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from uniseg.cli.options import DatasetsOpt, DeviceOpt, FormatOpt, RegistryOpt, parse_datasets, progress_bar, registry_from
from uniseg.cli.render import Format, console, emit
from uniseg.errors import UnisegError
from uniseg.io import check_output_path

CheckpointOpt = typer.Option(..., "--checkpoint", "-c", metavar="CKPT", help="A uniseg checkpoint (RUN/best.pt, RUN/last.pt) or a run folder.")
InferHeightOpt = typer.Option(None, "--infer-height", metavar="H", help="Resize only the network input to height H (scores stay at the labels' native size); default native.")
WindowOpt = typer.Option(1024, "--window", metavar="N", help="Inputs larger than N pixels on a side are covered by overlapping N x N windows (0 = never).")


def evaluate(
    ctx: typer.Context,
    checkpoint: Path = CheckpointOpt,
    datasets: Optional[List[str]] = DatasetsOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="DIR", help="Write DIR/<dataset>.json, DIR/<dataset>.csv and DIR/summary.csv."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split to score (default: val where there is one, else every labelled split)."),
    infer_height: Optional[int] = InferHeightOpt,
    window: int = WindowOpt,
    absent_as_zero: bool = typer.Option(False, "--absent-as-zero", help="Count classes absent from ground truth and prediction as IoU 0 (the UniSeg authors' protocol)."),
    workers: int = typer.Option(2, "--workers", "-w", min=0, help="DataLoader worker processes."),
    device: Optional[str] = DeviceOpt,
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Score a checkpoint on datasets in their own label spaces: mIoU, per-class IoU, pixel accuracy.

    Example: uniseg eval --checkpoint runs/w18/best.pt --datasets kitti=/data/kitti camvid=/data/camvid --out runs/w18/eval
    """
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.evaluate import evaluate_set, write_scores
    from uniseg.engine.inference import InferenceSettings
    from uniseg.engine.inputs import eval_set
    from uniseg.engine.runtime import setup_runtime

    pairs = parse_datasets(datasets, ctx.args)
    if not pairs:
        raise UnisegError("no dataset to score: give --datasets NAME=ROOT (one or more)")
    names = [n for n, _ in pairs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise UnisegError(f"--datasets names {dup!r} twice; its scores would overwrite each other: give each dataset once")
    if out is not None:
        check_output_path(out)  # before the scoring, not after it
    try:
        settings = InferenceSettings(infer_height=infer_height, window=window)
    except ValueError as exc:
        raise UnisegError(f"--infer-height/--window: {exc}") from None
    reg = registry_from(registry)
    rt = setup_runtime(device or "auto", "auto")
    try:
        trained = load_trained(checkpoint, rt.device)
        sets = [eval_set(name, root, trained.union, reg, split, allow_cache=False) for name, root in pairs]
        show = fmt == Format.table and console.is_terminal and rt.is_main
        results = []
        with progress_bar("eval", show) as bar:
            for es in sets:
                task = bar.add_task(es.name, total=len(es.dataset))
                results.append(evaluate_set(
                    trained.model, es, device=rt.device, settings=settings, absent_as_zero=absent_as_zero, workers=workers,
                    autocast=rt.autocast(), rank=rt.rank, world_size=rt.world_size,
                    all_reduce=rt.all_reduce_ if rt.distributed else None,
                    progress=lambda _n, done, total, t=task: bar.update(t, completed=done * rt.world_size, total=len(es.dataset)),
                ))
    finally:
        rt.close()
    if not rt.is_main:
        return
    context = {
        "checkpoint": trained.path, "iteration": trained.iteration, "union_fingerprint": trained.union.fingerprint,
        "infer_height": infer_height, "window": window,
    }
    seen = trained.union.datasets
    docs = [r.to_dict(seen=r.dataset in seen, **context) for r in results]
    if out is not None:
        write_scores(out, results, seen=seen, **context)

    def table() -> Table:
        t = Table(title=f"{trained.path} (iteration {trained.iteration}, union {trained.union.fingerprint})", title_justify="left")
        for col, just in (("dataset", "left"), ("split", "left"), ("seen", "left"), ("images", "right"), ("mIoU", "right"),
                          ("pixel acc", "right"), ("classes", "right")):
            t.add_column(col, justify=just)
        for d in docs:
            t.add_row(d["dataset"], d["split"], "yes" if d["seen"] else "unseen", str(d["images"]), f"{100 * d['miou']:.1f}",
                      f"{100 * d['pixel_accuracy']:.1f}", f"{d['scored_classes']}/{len(d['classes'])}")
        if out is not None:
            t.caption = f"per dataset: {out}{os.sep}<dataset>.json / .csv; {out}{os.sep}summary.csv"
        return t

    emit([{k: v for k, v in d.items() if k != "confusion"} for d in docs], fmt, table)
