"""``uniseg eval``: score a checkpoint on registry datasets (seen or unseen), each in its own label space."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from uniseg.cli.options import DatasetsOpt, DeviceOpt, FormatOpt, OnBadFileOpt, RegistryOpt, parse_datasets, progress_bar, registry_from
from uniseg.cli.render import Format, console, emit
from uniseg.errors import UnisegError
from uniseg.io import check_output_path, new_output, output_folder

CheckpointOpt = typer.Option(..., "--checkpoint", "-c", metavar="CKPT", help="A uniseg checkpoint (RUN/best.pt, RUN/last.pt), a run folder, or a folder of 'uniseg models export'.")
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
    fine_truth: Optional[Path] = typer.Option(None, "--fine-truth", metavar="WORLD", help="A synthetic world ('uniseg data synth --out'): also score label-space generalisation on its fine truth (outside-space IoU, multi-label consistency)."),
    threshold: str = typer.Option("auto", "--threshold", metavar="auto|FLOAT", help="--fine-truth score threshold: auto = the paper's Figure 4 (0.5 on sigmoid for BCE models, 0.1 on softmax for CE), or a number in (0, 1)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out replace another checkpoint's (or setting's) scores, and files uniseg did not write (an eval folder holds one checkpoint's scores)."),
    workers: int = typer.Option(2, "--workers", "-w", min=0, help="DataLoader worker processes."),
    device: Optional[str] = DeviceOpt,
    on_bad_file: str = OnBadFileOpt,
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Score a checkpoint on datasets in their own label spaces: mIoU, per-class IoU, pixel accuracy.

    Example: uniseg eval --checkpoint runs/w18/best.pt --datasets kitti=/data/kitti camvid=/data/camvid --out runs/w18/eval
    """
    from uniseg.cli.options import parse_threshold
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.evaluate import claim_scores, evaluate_set, write_scores
    from uniseg.engine.inference import InferenceSettings
    from uniseg.engine.inputs import eval_set
    from uniseg.engine.runtime import setup_runtime

    pairs = parse_datasets(datasets, ctx.args)
    if not pairs:
        raise UnisegError("no dataset to score: give --datasets NAME=ROOT (one or more)")
    if out is not None:
        check_output_path(out)  # before the scoring, not after it
    try:
        settings = InferenceSettings(infer_height=infer_height, window=window)
    except ValueError as exc:
        raise UnisegError(f"--infer-height/--window: {exc}") from None
    cut = parse_threshold(threshold)
    reg = registry_from(registry)
    rt = setup_runtime(device or "auto", "auto")
    try:
        with contextlib.ExitStack() as outputs:
            trained = load_trained(checkpoint, rt.device)
            sets = [eval_set(name, root, trained.union, reg, split, allow_cache=False) for name, root in pairs]
            fine = None
            if fine_truth is not None:
                from uniseg.data.synth.truth import fine_truth_for
                from uniseg.engine.generalisation import FineScoring

                fine = FineScoring(fine_truth_for(fine_truth, trained.union), trained.activation, cut)
            context = {
                "checkpoint": trained.path, "iteration": trained.iteration, "union_fingerprint": trained.union.fingerprint,
                "infer_height": infer_height, "window": window,
            }
            if fine is not None:
                context["fine_truth"] = str(fine_truth)
            record = None
            if out is not None:  # the folder is claimed before the scoring, not after it
                names = [es.name for es in sets]
                if rt.is_main:
                    outputs.enter_context(new_output(out))  # a folder made here goes again if the eval fails
                    outputs.enter_context(output_folder(out))
                record = claim_scores(out, names, context, absent_as_zero=absent_as_zero, overwrite=overwrite, check_only=not rt.is_main)
            show = fmt == Format.table and console.is_terminal and rt.is_main
            results = []
            with progress_bar("eval", show) as bar:
                for es in sets:
                    task = bar.add_task(es.name, total=len(es.dataset))
                    results.append(evaluate_set(
                        trained.model, es, device=rt.device, settings=settings, absent_as_zero=absent_as_zero, workers=workers,
                        autocast=rt.autocast(), rank=rt.rank, world_size=rt.world_size,
                        all_reduce=rt.all_reduce_ if rt.distributed else None, fine=fine, on_bad_file=on_bad_file,
                        progress=lambda _n, done, total, t=task: bar.update(t, completed=done * rt.world_size, total=len(es.dataset)),
                    ))
            seen = trained.union.datasets
            if out is not None and rt.is_main:
                write_scores(out, results, seen=seen, record=record, **context)
    finally:
        rt.close()
    if not rt.is_main:
        return
    docs = [r.to_dict(seen=r.dataset in seen, **context) for r in results]

    def table() -> Table:
        t = Table(title=f"{trained.path} (iteration {trained.iteration}, union {trained.union.fingerprint})", title_justify="left")
        for col, just in (("dataset", "left"), ("split", "left"), ("seen", "left"), ("images", "right"), ("mIoU", "right"),
                          ("pixel acc", "right"), ("classes", "right")):
            t.add_column(col, justify=just)
        if fine is not None:
            t.add_column("outside-space IoU", justify="right")
            t.add_column("consistency", justify="right")
        pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
        for d in docs:
            extra = [pct(d["outside_space"]["mean"]), pct(d["consistency"]["mean"])] if fine is not None else []
            t.add_row(d["dataset"], d["split"], "yes" if d["seen"] else "unseen", str(d["images"]), f"{100 * d['miou']:.1f}",
                      f"{100 * d['pixel_accuracy']:.1f}", f"{d['scored_classes']}/{len(d['classes'])}", *extra)
        notes = []
        if fine is not None:
            notes += [f"outside-space IoU: the Figure-4 prediction of each union class outside the dataset's label space against "
                      f"the fine truth (score > {fine.value:g} on {fine.activation}), mean over the classes the truth holds there",
                      "consistency: on pixels of a fine class that several union classes contain, the share where all of them "
                      "score above the threshold (mean over those fine classes)"]
        for d in docs:
            unlabelled = d.get("images_without_labels") or []
            if unlabelled:
                shown = ", ".join(unlabelled[:3]) + (", …" if len(unlabelled) > 3 else "")
                notes.append(f"{d['dataset']}: {len(unlabelled)} of {d['images'] + len(unlabelled)} images have no label and are "
                             f"not scored: {shown} ('uniseg data check' lists them)")
        for d in docs:
            for b in d["bad_files"]:
                notes.append(f"{d['dataset']}: skipped a bad file (--on-bad-file skip), not scored: {b['error']}")
        if out is not None:
            notes.append(f"per dataset: {out}{os.sep}<dataset>.json / .csv; {out}{os.sep}summary.csv")
        t.caption = "\n".join(notes) or None
        t.caption_justify = "left"
        return t

    emit([{k: v for k, v in d.items() if k != "confusion"} for d in docs], fmt, table)
