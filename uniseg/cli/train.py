"""``uniseg train``: parse the flags (over an optional ``--config``), call ``uniseg.engine.train``, show progress.

Every flag defaults to "not given": a run's settings are the built-in defaults (the paper's),
then ``--config FILE``, then the flags given. ``--resume RUN`` continues a run with the settings
stored in its checkpoint; only ``--workers``, ``--device``, ``--log-every``, ``--tensorboard``, ``--on-bad-file`` and
``--quiet`` may change then.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from uniseg.cli.options import (
    DatasetsOpt, DeviceOpt, FormatOpt, RegistryOpt, on_bad_file_option, parse_dataset_weights, parse_datasets, parse_hw, parse_scale,
    registry_from, union_setting,
)
from uniseg.cli.render import Format, emit, err_console
from uniseg.errors import UnisegError



class CliEvents:
    """Training events drawn as a rich progress bar (a terminal) or plain log lines (``--quiet``, pipes)."""

    def __init__(self, quiet: bool) -> None:
        self.bar = None if quiet or not err_console.is_terminal else self._make_bar()
        self.task = None
        self.loss = None

    @staticmethod
    def _make_bar():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(
            TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err_console, transient=False,
        )

    def _say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            err_console.print(text, markup=False, highlight=False, soft_wrap=True)

    def start(self, info) -> None:
        lines = [
            f"run {info.out}: {info.model} ({info.params / 1e6:.2f}M params, {info.head} head), loss {info.loss}, "
            f"{info.num_classes} classes (union {info.fingerprint})",
            "data: " + ", ".join(f"{n} {k} images" for n, k in info.datasets.items())
            + ("; validation: " + ", ".join(f"{n} {k}" for n, k in info.validation.items()) if info.validation else "; no validation"),
            f"device {info.device}, amp {info.amp}, {info.world_size} process(es), batch {info.batch_size}, {info.optimizer} lr {info.lr:g}, "
            f"iterations {info.start_iteration}->{info.iterations}",
        ] + [f"note: {n}" for n in info.notes] + [f"warning: {w}" for w in getattr(info, "warnings", [])]
        for line in lines:
            self._say(line)
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("train", total=info.iterations, completed=info.start_iteration, stats="")

    def step(self, iteration: int, loss: float, lr: float) -> None:
        if self.bar is None:
            return
        self.loss = loss if self.loss is None else 0.9 * self.loss + 0.1 * loss
        self.bar.update(self.task, completed=iteration, stats=f"loss {self.loss:.4f} lr {lr:.2e}")

    def log(self, r: dict) -> None:
        text = (f"iter {r['iteration']} loss {r['loss']:.4f} lr {r['lr']:.3e} {r['images_per_s']:.1f} img/s "
                f"data-wait {100 * r['data_wait']:.0f}% ({r['seconds']:.0f} s)")
        if self.bar is not None:
            self.bar.update(self.task, stats=f"loss {r['loss']:.4f} lr {r['lr']:.2e} {r['images_per_s']:.1f} img/s")
        else:
            self._say(text)

    def validation(self, r: dict) -> None:
        per = ", ".join(f"{n} {'n/a (no readable image)' if v is None else f'{100 * v:.1f}'}" for n, v in r["val"].items())
        mean = "n/a" if r["mean_miou"] is None else f"{100 * r['mean_miou']:.1f}"
        self._say(f"val @ {r['iteration']}: mean mIoU {mean} ({per}){' - best so far' if r['best'] else ''}")

    def message(self, text: str) -> None:
        self._say(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def end(self, result) -> None:
        self.close()


def train(
    ctx: typer.Context,
    datasets: Optional[List[str]] = DatasetsOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="RUN", help="Run folder (config.yaml, union.yaml, metrics.jsonl, last.pt, best.pt)."),
    config_file: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="Start from a config.yaml (a run's, or your own); flags override it."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="RUN", help="Continue the run in RUN from its last.pt to the configured end."),
    union: Optional[str] = typer.Option(None, "--union", "-u", metavar="DIR|NAMES", help="Union folder or dataset names (default: the union of --datasets)."),
    loss: Optional[str] = typer.Option(None, "--loss", help="ce (Eq. 1), null-bce (Eq. 4, default) or cr-bce (Eq. 8, needs --relations)."),
    relations: Optional[str] = typer.Option(None, "--relations", metavar="FILE", help="cr-bce: relations.yaml (or its folder) from 'uniseg relations labels'."),
    model: Optional[str] = typer.Option(None, "--model", help="Network (see 'uniseg models list'); default hrnet_w18_small_v2."),
    head: Optional[str] = typer.Option(None, "--head", help="Classifier: cosine (default, needed for relation mining) or linear."),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", metavar="PATH", help="ImageNet HRNet weights, a local file or its folder: official .pth, or timm's model.safetensors / pytorch_model.bin."),
    init: Optional[str] = typer.Option(None, "--init", metavar="CKPT", help="Start from a trained uniseg checkpoint or 'models export' folder (the paper's second stage)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Global batch (split over torchrun processes); default 16."),
    iterations: Optional[int] = typer.Option(None, "--iterations", "-n", help="Optimiser steps; default 80000."),
    crop: Optional[str] = typer.Option(None, "--crop", metavar="HxW", help="Random crop; default 713x713."),
    short_side: Optional[int] = typer.Option(None, "--short-side", help="Resize the shorter side to N before the random scale (0 = native); default 1080."),
    scale: Optional[str] = typer.Option(None, "--scale", metavar="LO-HI", help="Random scale range; default 0.5-2."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", metavar="sgd|adamw", help="sgd (the paper's, momentum 0.9) or adamw; default sgd."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Base learning rate; default 0.01 x batch / 16 (adamw: 0.001 x batch / 16)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="Weight decay (decoupled for adamw); default 1e-4."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of weights, sampling and augmentation; default 0."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="DataLoader worker processes; default 4."),
    dataset_weights: Optional[str] = typer.Option(None, "--dataset-weights", metavar="natural|balanced|NAME=W,...", help="Share of each dataset in an epoch; default natural."),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="Validate every N iterations on the training datasets' val splits (0 = at the end only)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Write last.pt every N iterations; default 1000."),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Log a metrics.jsonl line every N iterations; default 20."),
    tensorboard: Optional[bool] = typer.Option(None, "--tensorboard/--no-tensorboard", help="Also write TensorBoard events to RUN/tb (needs: pip install 'uniseg[tensorboard]')."),
    device: Optional[str] = DeviceOpt,
    amp: Optional[str] = typer.Option(None, "--amp", help="Mixed precision: auto (CUDA: bf16, else fp16), off, bf16, fp16."),
    on_bad_file: Optional[str] = on_bad_file_option(None),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Plain log lines instead of a progress bar."),
    registry: Optional[List[Path]] = RegistryOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Train one model on several datasets over their union (CE, Null BCE or class relational BCE).

    Example: uniseg train --datasets cityscapes=/data/cs mapillary=/data/vistas --out runs/w18

    Ctrl-C finishes the current iteration, writes RUN/last.pt and exits 130; 'uniseg train
    --resume RUN' continues. Several processes: torchrun --nproc_per_node=N -m uniseg train ...
    """
    from uniseg.engine.trainer import train as run_train

    reg = registry_from(registry)
    given = _given(
        reg, parse_datasets(datasets, ctx.args), loss=loss, relations=relations, model=model, head=head, pretrained=pretrained,
        init=init, batch_size=batch_size, iterations=iterations, short_side=short_side, optimizer=optimizer, lr=lr, weight_decay=weight_decay, seed=seed, workers=workers,
        val_every=val_every, checkpoint_every=checkpoint_every, log_every=log_every, tensorboard=tensorboard, device=device, amp=amp, union=union,
        on_bad_file=on_bad_file,
        crop=crop, scale=scale, dataset_weights=dataset_weights,
    )
    config, out = _run_settings(given, out, resume, config_file)
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 speaks
    events = CliEvents(quiet or fmt != Format.table or not main_process)
    try:  # Ctrl-C ends in TrainingInterrupted: its line and exit code 130 come from the CLI's error handling
        result = run_train(config, out, resume=resume is not None, registry=reg, events=events)
    finally:
        events.close()
    if main_process:
        _report(result, fmt)


def _given(reg, pairs: list[tuple[str, str]], *, union, crop, scale, dataset_weights, **plain) -> dict:
    """The settings given on the command line, parsed into ``TrainConfig`` values (flags not given are left out)."""
    from uniseg.engine.config import DatasetSpec

    given = dict(plain)
    given["union"] = union_setting(union, reg) if union is not None else None
    given["crop"] = parse_hw(crop, "--crop") if crop is not None else None
    given["scale"] = parse_scale(scale) if scale is not None else None
    given["dataset_weights"] = parse_dataset_weights(dataset_weights) if dataset_weights is not None else None
    given["datasets"] = [DatasetSpec(n, r) for n, r in pairs] or None
    return {k: v for k, v in given.items() if v is not None}


def _run_settings(given: dict, out: Optional[Path], resume: Optional[Path], config_file: Optional[Path]):
    """``(config, run folder)``: a resumed run's own settings (only ``RESUME_MAY_CHANGE`` may differ),
    or the defaults, then ``--config``, then the flags."""
    from uniseg.engine.config import TrainConfig, describe_setting, read_config, recipe_changes
    from uniseg.engine.trainer import resume_config

    if resume is None:
        if out is None:
            raise UnisegError("--out RUN is required: the folder that will hold the run")
        return (read_config(config_file) if config_file else TrainConfig()).replace(**given), out
    if out is not None and Path(out) != resume:
        raise UnisegError("give --resume RUN alone (the run folder is RUN), not with --out")
    if config_file is not None:
        raise UnisegError("--resume continues a run with its own settings; --config cannot be combined with it")
    config = resume_config(resume)  # first: a folder without a run says so
    resumed = config.replace(**given)
    fixed = recipe_changes(config.to_dict(), resumed.to_dict())  # the trainer's own test, named by flag here
    if fixed:
        raise UnisegError(f"--resume keeps the run's settings; --{fixed[0].replace('_', '-')} cannot change "
                          f"(the run has {describe_setting(config, fixed[0])}; asked for {describe_setting(resumed, fixed[0])}); "
                          f"start a new run with --init {resume}/last.pt")
    return resumed, resume


def _report(result, fmt: Format) -> None:
    """The finished run: one line for people (stderr, beside the progress), or the record for scripts."""
    if fmt == Format.table:
        best = f"; best.pt mean val mIoU {100 * result.best_miou:.1f}" if result.best_miou is not None else "; no validation split, no best.pt"
        err_console.print(f"done: {result.iteration} iterations in {result.seconds:.0f} s; {result.last}{best}", markup=False, highlight=False, soft_wrap=True)
        if result.bad_files:
            from uniseg.data.faults import BadFile

            listed = "; ".join(BadFile.line(b) for b in result.bad_files[:10])
            more = f" and {len(result.bad_files) - 10} more (metrics.jsonl lists all)" if len(result.bad_files) > 10 else ""
            err_console.print(f"skipped {len(result.bad_files)} bad file(s) (a training sample is replaced by a readable one, a validation "
                              f"image left out of the score): {listed}{more}",
                              markup=False, highlight=False, soft_wrap=True)
        return
    emit({
        "out": str(result.out), "iteration": result.iteration, "last": str(result.last),
        "best": None if result.best is None else str(result.best), "best_miou": result.best_miou, "seconds": round(result.seconds, 2),
        "bad_files": result.bad_files,
    }, fmt)
