"""``uniseg predict``: write label PNGs for images, in a registry label space or the union."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from uniseg.cli.evaluate import CheckpointOpt, InferHeightOpt, WindowOpt
from uniseg.cli.options import DeviceOpt, FormatOpt, OnBadFileOpt, RegistryOpt, progress_bar, registry_from
from uniseg.cli.render import Format, console, emit
from uniseg.errors import UnisegError


def predict(
    inputs: List[Path] = typer.Argument(..., metavar="INPUT...", help="Image files or folders (searched recursively; the tree is kept under --out)."),
    checkpoint: Path = CheckpointOpt,
    label_space: str = typer.Option(..., "--label-space", "-l", metavar="NAME|union", help="Write class indices of this registry label space (its classes order), or unified indices for 'union'."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Output folder: DIR/<path relative to its INPUT>.png."),
    colour: bool = typer.Option(False, "--colour", "--color", help="Also write <stem>_colour.png in the label space's colours."),
    multilabel: bool = typer.Option(False, "--multilabel", help="Also write <stem>_multilabel.png: classes outside the label space scoring above --threshold replace the prediction (the paper's Figure 4), and <stem>_outside.png: those classes' unified indices, 255 elsewhere."),
    threshold: str = typer.Option("auto", "--threshold", metavar="auto|FLOAT", help="--multilabel score threshold: auto = the paper's (0.5 on sigmoid for BCE models, 0.1 on softmax for CE), or a number in (0, 1)."),
    infer_height: Optional[int] = InferHeightOpt,
    window: int = WindowOpt,
    workers: int = typer.Option(0, "--workers", "-w", min=0, help="DataLoader worker processes reading the images (0: this process)."),
    device: Optional[str] = DeviceOpt,
    on_bad_file: str = OnBadFileOpt,
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out replace files uniseg did not write (ground-truth labels, say) and another run's predictions (another checkpoint, union or label space)."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Predict label images: one-channel PNGs of class indices (255 = none) at each image's size.

    Example: uniseg predict --checkpoint runs/w18/best.pt --label-space cityscapes --colour --out preds/ photos/
    """
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.inference import InferenceSettings
    from uniseg.engine.predict import predict_files, target_space
    from uniseg.engine.runtime import setup_runtime

    from uniseg.cli.options import parse_threshold

    cut = parse_threshold(threshold)
    try:
        settings = InferenceSettings(infer_height=infer_height, window=window)
    except ValueError as exc:
        raise UnisegError(f"--infer-height/--window: {exc}") from None
    rt = setup_runtime(device or "auto", "auto")
    trained = load_trained(checkpoint, rt.device)
    target = target_space(trained, label_space, registry_from(registry))
    show = fmt == Format.table and console.is_terminal
    with progress_bar("predict", show) as bar:
        task = bar.add_task(target.name, total=None)
        report = predict_files(
            trained, target, inputs, out, device=rt.device, settings=settings, colour=colour, multilabel=multilabel,
            threshold=cut, autocast=rt.autocast(), progress=lambda done, total: bar.update(task, completed=done, total=total),
            workers=workers, on_bad_file=on_bad_file, overwrite=overwrite,
        )
    data = {"out": str(report.out), "label_space": report.label_space, "images": len(report.written), "files": report.written,
            "bad_files": report.bad_files, "converted": report.converted}
    if multilabel:
        data["outside_classes"] = report.outside_classes
        data["threshold"] = report.threshold

    def table():
        extra = ""
        if multilabel and report.outside_classes:
            top = sorted(report.outside_classes.items(), key=lambda kv: -kv[1])[:5]
            extra = "; outside classes drawn: " + ", ".join(f"{n} ({p} px)" for n, p in top)
        skipped = "".join(f"\nskipped a bad file (--on-bad-file skip), nothing written for it: {b['error']}" for b in report.bad_files)
        converted = "".join(f"\nnot an 8-bit image, converted: {c}" for c in report.converted[:5])
        if len(report.converted) > 5:
            converted += f"\n… and {len(report.converted) - 5} more (--format json lists all)"
        return f"{len(report.written)} predictions in {report.label_space} -> {report.out}{extra}{skipped}{converted}"

    emit(data, fmt, table)
