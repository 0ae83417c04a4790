"""The training loop behind ``uniseg train``: multi-dataset batches, one of the three losses, SGD + poly.

A run lives in one folder (``RUN/config.yaml``, ``RUN/union.yaml``, ``RUN/metrics.jsonl``,
``RUN/last.pt``, ``RUN/best.pt``). It is exactly resumable: the schedule is a function of the
iteration, the data stream a function of the seed and the number of keys consumed, and the
checkpoint holds model, optimiser, scaler and generator states, so on CPU an interrupted and
resumed run ends with the same weights, bit for bit, as an uninterrupted one.

Ctrl-C (SIGINT) or SIGTERM finishes the current iteration, writes ``last.pt`` and raises
:class:`TrainingInterrupted` (exit code 130); a second Ctrl-C aborts at once. A non-finite loss
stops the run before the update that would spoil the weights (:class:`NonFiniteLoss`); the last
checkpoint on disk stays good. Under ``torchrun`` every process trains on its shard of the
sampler, the stop flag and the loss are all-reduced so that all stop together, and only rank 0
writes. Progress reaches the caller through :class:`TrainEvents` (the CLI draws a bar from it).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from uniseg.engine.checkpoint import model_spec, read_checkpoint, rng_state, save_checkpoint, set_rng_state, unwrap
from uniseg.engine.config import TrainConfig, dump_config
from uniseg.engine.runlog import RunLog
from uniseg.engine.runtime import Runtime, setup_runtime
from uniseg.engine.schedule import poly_lr, set_lr
from uniseg.errors import FingerprintMismatch, Interrupted, UnisegError
from uniseg.io import atomic_write_text
from uniseg.labelspaces.registry import Registry, default_registry
from uniseg.unify.union import UnionSpace

LAST, BEST, CONFIG, UNION = "last.pt", "best.pt", "config.yaml", "union.yaml"


class TrainingInterrupted(Interrupted):
    """Stopped on request after writing ``last.pt``; the message says how to resume (exit code 130)."""


class NonFiniteLoss(UnisegError):
    """The loss became NaN or infinite; nothing of that iteration was applied."""


@dataclass
class RunInfo:
    """What a run is about to do (for the caller's header line)."""

    out: Path
    datasets: dict[str, int]  # name -> training images
    validation: dict[str, int]  # name -> validation images
    num_classes: int
    fingerprint: str
    model: str
    head: str
    loss: str
    params: int
    device: str
    amp: str
    world_size: int
    batch_size: int
    lr: float
    start_iteration: int
    iterations: int
    notes: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    out: Path
    iteration: int
    last: Path
    best: Optional[Path]
    best_miou: Optional[float]
    seconds: float


class TrainEvents:
    """Callbacks of a run; the default ignores everything. Called on rank 0 only."""

    def start(self, info: RunInfo) -> None: ...
    def step(self, iteration: int, loss: float, lr: float) -> None: ...
    def log(self, record: dict) -> None: ...
    def validation(self, record: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def end(self, result: TrainResult) -> None: ...


class StopRequest:
    """SIGINT/SIGTERM set a flag (the loop stops after the current iteration); a second SIGINT aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old.clear()


# --------------------------------------------------------------------------------------------
# setting a run up
# --------------------------------------------------------------------------------------------


def resolve_run_union(config: TrainConfig, registry: Registry) -> UnionSpace:
    """The union of the run: ``config.union`` (a folder, or a list of names) or the union of the datasets."""
    from uniseg.unify.artifact import open_union

    union, _ = open_union(config.union or [d.name for d in config.datasets], registry)
    for d in config.datasets:
        if d.name not in union.datasets:
            raise UnisegError(f"dataset {d.name!r} is not in the union ({', '.join(union.datasets)}); add it to --union or drop it")
    return union


def prepare_run_folder(out: Path, config: TrainConfig, union: UnionSpace) -> None:
    """Create ``RUN`` with ``config.yaml`` and ``union.yaml``; refuse a folder that holds another run."""
    from uniseg.unify.artifact import dump_union_yaml

    if out.exists() and not out.is_dir():
        raise UnisegError(f"--out {out}: exists and is not a folder")
    for name in (LAST, CONFIG):
        if (out / name).exists():
            raise UnisegError(f"--out {out}: holds a run already ({name}); continue it with 'uniseg train --resume {out}' or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / UNION, dump_union_yaml(union))
    atomic_write_text(out / CONFIG, dump_config(config))


def build_network(config: TrainConfig, union: UnionSpace) -> tuple[nn.Module, list[str]]:
    """The seeded network, with ImageNet (``pretrained``) or stage-1 (``init``) weights; notes for the user."""
    from uniseg.models import build_model

    kwargs = {"cosine_scale": config.cosine_scale}
    if config.align_corners is not None:
        kwargs["align_corners"] = bool(config.align_corners)
    torch.manual_seed(config.seed)
    model = build_model(config.model, union.num_classes, head=config.head, **kwargs)
    notes: list[str] = []
    if config.pretrained:
        from uniseg.models import load_pretrained

        report = load_pretrained(model, config.pretrained)
        if not report.ok:
            raise UnisegError(
                f"--pretrained {config.pretrained}: does not cover {config.model} "
                f"({len(report.missing)} backbone tensors missing, {len(report.unexpected)} unexpected); is it for another variant?"
            )
        notes.append(report.summary().splitlines()[0])
    if config.init:
        notes.append(load_init(model, config.init, union))
    return model, notes


def load_init(model: nn.Module, path: str, union: UnionSpace) -> str:
    """Copy a trained uniseg checkpoint's weights into ``model`` (the second stage starts from the first)."""
    doc = read_checkpoint(path)
    if doc["union_fingerprint"] != union.fingerprint:
        raise FingerprintMismatch(f"--init {doc['path']}: trained for union {doc['union_fingerprint']}, not {union.fingerprint}")
    if doc["model_spec"]["name"] != model.name:
        raise UnisegError(f"--init {doc['path']}: a {doc['model_spec']['name']} checkpoint, but --model is {model.name}")
    own = model.state_dict()
    state = {k: v for k, v in doc["model"].items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    missing = [k for k in own if k not in state]
    if any(not k.startswith("last_layer.3.") for k in missing):
        raise UnisegError(f"--init {doc['path']}: does not fit the model (missing {missing[0]})")
    model.load_state_dict(state, strict=False)
    kept = " (new classifier: another head)" if missing else ""
    return f"initialised from {doc['path']} (iteration {doc.get('iteration', '?')}){kept}"


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


class Trainer:
    """One run; :func:`train` drives it. Holds the model, optimiser, data and bookkeeping."""

    def __init__(self, config: TrainConfig, out: Path, runtime: Runtime, registry: Registry,
                 events: TrainEvents, resume: bool) -> None:
        self.config, self.out, self.rt, self.registry = config, out, runtime, registry
        self.events = events if runtime.is_main else TrainEvents()
        self.notes: list[str] = []
        self.iteration = 0
        self.best: Optional[dict] = None
        self.last_saved: Optional[int] = None
        self.log = RunLog(out, enabled=runtime.is_main)
        ckpt = read_checkpoint(out / LAST) if resume else None

        self.union = resolve_run_union(config, registry)
        if ckpt is not None and ckpt["union_fingerprint"] != self.union.fingerprint:
            raise FingerprintMismatch(
                f"{out}/{LAST}: trained for union {ckpt['union_fingerprint']}, but the registry now gives {self.union.fingerprint}; "
                "the label spaces changed since the run started"
            )
        if runtime.is_main and not resume:
            prepare_run_folder(out, config, self.union)
        runtime.barrier()

        from uniseg.engine.criterion import build_criterion

        self.criterion, self.relations_fp = build_criterion(config.loss, self.union, config.relations)
        if ckpt is not None and ckpt.get("relations_fingerprint") != self.relations_fp:
            raise FingerprintMismatch(f"--relations: the table changed since {out}/{LAST} was written ({ckpt.get('relations_fingerprint')} -> {self.relations_fp})")
        self.criterion.to(runtime.device)

        net, notes = build_network(config, self.union) if ckpt is None else (self._fresh_network(), [])
        self.notes += notes
        net.to(runtime.device)
        if runtime.channels_last:
            net.to(memory_format=torch.channels_last)
        self.net = net
        self.model: nn.Module = net
        if runtime.distributed:
            if runtime.device.type == "cuda":
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(net)
                self.net = self.model
            from torch.nn.parallel import DistributedDataParallel

            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.base_lr, momentum=config.momentum, weight_decay=config.weight_decay)
        self.scaler = torch.amp.GradScaler(runtime.device.type) if runtime.needs_scaler() else None
        if ckpt is not None:
            self._restore(ckpt)

        from uniseg.engine.inputs import build_train_input

        self.input = build_train_input(
            config, self.union, registry, rank=runtime.rank, world_size=runtime.world_size,
            start_key=self.iteration * (config.batch_size // runtime.world_size), pin_memory=runtime.device.type == "cuda",
        )
        self.val_sets = self._validation_sets()

    def _fresh_network(self) -> nn.Module:
        from uniseg.models import build_model

        kwargs = {"cosine_scale": self.config.cosine_scale}
        if self.config.align_corners is not None:
            kwargs["align_corners"] = bool(self.config.align_corners)
        return build_model(self.config.model, self.union.num_classes, head=self.config.head, **kwargs)

    def _restore(self, ckpt: dict) -> None:
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        self.iteration = int(ckpt["iteration"])
        self.best = ckpt.get("best")
        self.last_saved = self.iteration
        was = int(ckpt.get("sampler", {}).get("world_size", self.rt.world_size))
        if was != self.rt.world_size:
            self.notes.append(f"resumed on {self.rt.world_size} process(es), written on {was}: the data order from here on differs from an uninterrupted run")
        self.log.truncate_after(self.iteration)

    def _validation_sets(self) -> list:
        from uniseg.engine.inputs import eval_set, splits_of

        sets = []
        for d in self.config.datasets:
            space = self.registry.get(d.name)
            if splits_of(space, d.root).get(self.config.val_split):
                sets.append(eval_set(d.name, d.root, self.union, self.registry, split=self.config.val_split))
            else:
                self.notes.append(f"{d.name}: no labelled {self.config.val_split!r} split at {d.root}: not validated")
        return sets

    # -- checkpoints ---------------------------------------------------------------------------

    def _payload(self) -> dict:
        from uniseg import __version__
        from uniseg.unify.artifact import union_to_dict

        b = self.input.per_rank_batch
        return {
            "model": self.net.state_dict(),
            "model_spec": model_spec(self.net),
            "union": union_to_dict(self.union),
            "union_fingerprint": self.union.fingerprint,
            "relations_fingerprint": self.relations_fp,
            "config": self.config.to_dict(),
            "iteration": self.iteration,
            "optimizer": self.optimizer.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "rng": rng_state(),
            "sampler": {"seed": self.config.seed, "keys_consumed": self.iteration * b, "per_rank_batch": b, "world_size": self.rt.world_size},
            "best": self.best,
            "uniseg_version": __version__,
        }

    def save(self, name: str = LAST) -> Path:
        path = self.out / name
        if self.rt.is_main:
            save_checkpoint(path, self._payload())
        if name == LAST:
            self.last_saved = self.iteration
        return path

    # -- validation ----------------------------------------------------------------------------

    def validate(self) -> dict:
        from uniseg.engine.evaluate import evaluate_set

        self.net.eval()
        try:
            results = [
                evaluate_set(self.net, es, device=self.rt.device, workers=min(self.config.workers, 2), autocast=self.rt.autocast(),
                             rank=self.rt.rank, world_size=self.rt.world_size,
                             all_reduce=self.rt.all_reduce_ if self.rt.distributed else None)
                for es in self.val_sets
            ]
        finally:
            self.net.train()
        mean = sum(r.miou for r in results) / len(results)
        improved = self.best is None or mean > float(self.best["miou"])
        if improved:
            self.best = {"miou": mean, "iteration": self.iteration}
        record = {"iteration": self.iteration, "type": "val", "val": {r.dataset: r.miou for r in results},
                  "mean_miou": mean, "best": improved}
        self.log.append(record)
        self.events.validation(record)
        if improved:
            self.save(BEST)
        return record

    # -- the loop ------------------------------------------------------------------------------

    def _stop_and_loss(self, loss: torch.Tensor, stop: bool) -> tuple[float, bool]:
        """The loss as a float (the mean over processes) and whether any process asked to stop."""
        if not self.rt.distributed:
            return float(loss.detach()), stop
        t = torch.stack([loss.detach().float(), torch.tensor(float(stop), device=loss.device)])
        self.rt.all_reduce_(t)
        return float(t[0]) / self.rt.world_size, bool(t[1] > 0)

    def _non_finite(self, value: float, batch: dict) -> NonFiniteLoss:
        idx = torch.as_tensor(batch["dataset_index"]).tolist()
        names = sorted({self.union.datasets[i] for i in idx})
        good = (f"{self.out}/{LAST} (iteration {self.last_saved}) is the last good checkpoint"
                if self.last_saved is not None else "no checkpoint was written yet")
        return NonFiniteLoss(
            f"non-finite loss ({value}) at iteration {self.iteration + 1} on a batch from {', '.join(names)} "
            f"(first image {batch['path'][0]}); {good}; try a lower --lr, '--amp off', or check the labels with 'uniseg data check'"
        )

    def run(self, stop: StopRequest) -> TrainResult:
        cfg, rt = self.config, self.rt
        total = cfg.iterations
        gb = cfg.batch_size
        start = time.perf_counter()
        self.events.start(self._info())
        if self.iteration >= total:
            self.events.message(f"the run is complete ({self.iteration}/{total} iterations); nothing to do")
            best = self.out / BEST
            return TrainResult(self.out, self.iteration, self.out / LAST, best if best.exists() else None,
                               None if self.best is None else float(self.best["miou"]), 0.0)
        self.model.train()
        window_t, window_wait, window_loss, window_n = time.perf_counter(), 0.0, 0.0, 0
        validated_at = -1
        stream = iter(self.input.loader)
        while self.iteration < total:
            t0 = time.perf_counter()
            batch = next(stream)
            window_wait += time.perf_counter() - t0
            images, labels, didx = rt.to_device(batch)
            lr = poly_lr(cfg.base_lr, self.iteration, total, cfg.poly_power)
            set_lr(self.optimizer, lr)
            with rt.autocast():
                logits = self.model(images)
            loss = self.criterion(logits, labels, didx)
            value, stopping = self._stop_and_loss(loss, stop.requested)
            if not math.isfinite(value):
                raise self._non_finite(value, batch)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            self.iteration += 1
            window_loss += value
            window_n += 1
            self.events.step(self.iteration, value, lr)
            it = self.iteration
            if not rt.distributed:
                stopping = stopping or stop.requested  # a signal during this step: stop now, not a step later
            if it % cfg.log_every == 0 or it == total:
                elapsed = max(time.perf_counter() - window_t, 1e-9)
                record = {"iteration": it, "type": "train", "epoch": round(it * self.input.per_rank_batch / self.input.epoch_keys, 4),
                          "loss": window_loss / window_n, "lr": lr, "images_per_s": window_n * gb / elapsed,
                          "data_wait": window_wait / elapsed, "seconds": round(time.perf_counter() - start, 3)}
                self.log.append(record)
                self.events.log(record)
                window_t, window_wait, window_loss, window_n = time.perf_counter(), 0.0, 0.0, 0
            paused = time.perf_counter()  # validation and checkpoints do not count against images/s
            if self.val_sets and cfg.val_every and it % cfg.val_every == 0 and it < total:
                self.validate()
                validated_at = it
            if it % cfg.checkpoint_every == 0 and it < total:
                self.save(LAST)
            window_t += time.perf_counter() - paused
            if stopping and it < total:
                del stream
                self.save(LAST)
                raise TrainingInterrupted(
                    f"interrupted at iteration {it}/{total}: wrote {self.out / LAST}; resume with: uniseg train --resume {self.out}"
                )
        if self.val_sets and validated_at != self.iteration:
            self.validate()
        last = self.save(LAST)
        best = self.out / BEST if (self.out / BEST).exists() else None
        result = TrainResult(self.out, self.iteration, last, best, None if self.best is None else float(self.best["miou"]),
                             time.perf_counter() - start)
        self.events.end(result)
        return result

    def _info(self) -> RunInfo:
        return RunInfo(
            out=self.out,
            datasets={d.name: len(d) for d in self.input.dataset.datasets},
            validation={es.name: len(es.dataset) for es in self.val_sets},
            num_classes=self.union.num_classes,
            fingerprint=self.union.fingerprint,
            model=self.config.model,
            head=self.config.head,
            loss=self.config.loss,
            params=sum(p.numel() for p in unwrap(self.model).parameters()),
            device=str(self.rt.device),
            amp=self.rt.amp_name,
            world_size=self.rt.world_size,
            batch_size=self.config.batch_size,
            lr=self.config.base_lr,
            start_iteration=self.iteration,
            iterations=self.config.iterations,
            notes=list(self.notes),
        )


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    registry: Optional[Registry] = None,
    events: Optional[TrainEvents] = None,
) -> TrainResult:
    """Train (or, with ``resume``, continue) the run in folder ``out``; see the module docstring."""
    config.validate()
    out = Path(out)
    if resume and not (out / LAST).is_file():
        raise UnisegError(f"--resume {out}: no {LAST} there (is it a run folder of 'uniseg train'?)")
    runtime = setup_runtime(config.device, config.amp, config.channels_last)
    try:
        with StopRequest() as stop:
            trainer = Trainer(config, out, runtime, registry or default_registry(), events or TrainEvents(), resume)
            return trainer.run(stop)
    finally:
        runtime.close()


def resume_config(out: str | Path) -> TrainConfig:
    """The configuration a run was started with (from ``RUN/last.pt``)."""
    if not (Path(out) / LAST).is_file():
        raise UnisegError(f"--resume {out}: no {LAST} there (is it a run folder of 'uniseg train'?)")
    doc = read_checkpoint(Path(out) / LAST)
    return TrainConfig.from_dict(doc["config"], f"{out}/{LAST}")
