"""The training loop behind ``uniseg train``: multi-dataset batches, one of the three losses, SGD (or AdamW) + poly.

A run lives in one folder (``RUN/config.yaml``, ``RUN/union.yaml``, ``RUN/metrics.jsonl``,
``RUN/last.pt``, ``RUN/best.pt``; with ``tensorboard``, event files in ``RUN/tb``). It is exactly
resumable: the schedule is a function of the iteration, the data stream a function of the seed
and the number of keys consumed, and the checkpoint holds model, optimiser, scaler and generator
states, so on CPU an interrupted and resumed run ends with the same weights, bit for bit, as an
uninterrupted one.

Ctrl-C (SIGINT) or SIGTERM finishes the current iteration, writes ``last.pt`` and raises
:class:`TrainingInterrupted` (exit code 130); a second Ctrl-C aborts at once, saving nothing. A
non-finite loss stops the run (:class:`NonFiniteLoss`) before anything is written, so the last
checkpoint on disk stays good (on the CPU before the update it would spoil; on a GPU, whose loss
is read back a step late so as not to stall it, one step after). A bad sample file writes
``last.pt`` and stops the run with one line naming it (``on_bad_file="error"``), or is replaced and
listed in ``metrics.jsonl`` (``"skip"``; :mod:`uniseg.data.faults`); a batch larger than the training
set, or whose activations cannot fit the device (:mod:`uniseg.engine.memory`), is refused before the
first step. Files appear only once the run is set up: a start that fails on its input leaves
nothing that blocks the next try. Under
``torchrun`` every process trains on its shard of the sampler, the loss and the stop votes are
all-reduced so that all stop together, and only rank 0 writes (holding the folder's lock).
Progress reaches the caller through :class:`TrainEvents` (the CLI draws a bar from it).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from uniseg.data.faults import BadFile, BadFileError, BadFiles, SampleStream
from uniseg.engine.checkpoint import model_spec, read_checkpoint, rng_state, save_checkpoint, set_rng_state, unwrap
from uniseg.engine.config import TrainConfig, dump_config, recipe_changes
from uniseg.engine.readback import StepOutcome, StepReadback
from uniseg.engine.runlog import RunLog
from uniseg.engine.runtime import Runtime, gather_records, setup_runtime
from uniseg.engine.schedule import build_optimizer, poly_lr, set_lr
from uniseg.errors import FingerprintMismatch, Interrupted, UnisegError
from uniseg.io import WriteFault, atomic_write_text, output_folder
from uniseg.labelspaces.registry import Registry, default_registry
from uniseg.stopping import StopRequest
from uniseg.unify.union import UnionSpace

LAST, BEST, CONFIG, UNION = "last.pt", "best.pt", "config.yaml", "union.yaml"


class TrainingInterrupted(Interrupted):
    """Stopped on request after writing ``last.pt``; the message says how to resume (exit code 130)."""


class NonFiniteLoss(UnisegError):
    """The loss became NaN or infinite; no checkpoint holds the spoiled weights."""


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
    optimizer: str = "sgd"
    warnings: list[str] = field(default_factory=list)  # settings that waste the run's time or memory


@dataclass
class TrainResult:
    out: Path
    iteration: int
    last: Path
    best: Optional[Path]
    best_miou: Optional[float]
    seconds: float
    bad_files: list[dict] = field(default_factory=list)  # --on-bad-file skip: {file, error} of the samples replaced


class TrainEvents:
    """Callbacks of a run; the default ignores everything. Called on rank 0 only."""

    def start(self, info: RunInfo) -> None: ...
    def step(self, iteration: int, loss: float, lr: float) -> None: ...
    def log(self, record: dict) -> None: ...
    def validation(self, record: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def end(self, result: TrainResult) -> None: ...


# --------------------------------------------------------------------------------------------
# setting a run up
# --------------------------------------------------------------------------------------------


def resolve_run_union(config: TrainConfig, registry: Registry) -> UnionSpace:
    """The union of the run: ``config.union`` (a folder, or a list of names) or the union of the datasets."""
    from uniseg.unify.artifact import open_union

    from uniseg.engine.inputs import require_members

    union, _ = open_union(config.union or [d.name for d in config.datasets], registry)
    require_members(config, union)
    return union


def check_run_folder(out: Path) -> None:
    """Refuse an ``--out`` that is a file or holds a run to continue (read-only: every process checks).

    A folder whose earlier start stopped before its first checkpoint (``config.yaml``, no
    ``last.pt``) holds nothing to resume and is started afresh.
    """
    if out.exists() and not out.is_dir():
        raise UnisegError(f"--out {out}: exists and is not a folder")
    if (out / LAST).exists():
        raise UnisegError(f"--out {out}: holds a run already ({LAST}); continue it with 'uniseg train --resume {out}' or choose another --out")


def write_run_folder(out: Path, config: TrainConfig, union: UnionSpace) -> None:
    """``config.yaml`` and ``union.yaml`` of a new run; an earlier start's ``metrics.jsonl``, ``best.pt`` and
    TensorBoard events go."""
    from uniseg.engine.tensorboard import clear_events
    from uniseg.unify.artifact import dump_union_yaml

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / UNION, dump_union_yaml(union))
    atomic_write_text(out / CONFIG, dump_config(config))
    RunLog(out).reset()
    (out / BEST).unlink(missing_ok=True)
    clear_events(out)


def check_same_recipe(ckpt: dict, config: TrainConfig, out: Path) -> None:
    """A resumed run keeps the settings it started with (but for how it is executed: workers, device,
    logging), else the resumed run would silently be another one."""
    changed = recipe_changes(ckpt.get("config") or {}, config.to_dict())
    if changed:
        raise UnisegError(f"--resume {out}: the run started with another {changed[0]}; a resumed run keeps its settings "
                          f"(start a new run with --init {out / LAST})")


def new_network(config: TrainConfig, union: UnionSpace) -> nn.Module:
    """The configured network over ``union``, freshly initialised from torch's current RNG."""
    from uniseg.models import build_model

    kwargs = {"cosine_scale": config.cosine_scale}
    if config.align_corners is not None:
        kwargs["align_corners"] = bool(config.align_corners)
    return build_model(config.model, union.num_classes, head=config.head, **kwargs)


def build_network(config: TrainConfig, union: UnionSpace) -> tuple[nn.Module, list[str]]:
    """The seeded network, with ImageNet (``pretrained``) or stage-1 (``init``) weights; notes for the user."""
    torch.manual_seed(config.seed)
    model = new_network(config, union)
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
    """Copy a trained uniseg checkpoint's weights into ``model`` (the second stage starts from the first).

    A checkpoint of another union (a dataset added, say) gives its backbone whole and its classifier
    by unified class name (:func:`carry_classifier`); the same union loads as it always did."""
    doc = read_checkpoint(path)
    if doc["union_fingerprint"] != union.fingerprint:
        return carry_classifier(model, doc, union)
    if doc["model_spec"]["name"] != model.name:
        raise UnisegError(f"--init {doc['path']}: a {doc['model_spec']['name']} checkpoint, but --model is {model.name}")
    own = model.state_dict()
    state = {k: v for k, v in doc["model"].items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    missing = [k for k in own if k not in state]
    if any(not k.startswith("last_layer.3.") for k in missing):
        raise UnisegError(f"--init {doc['path']}: does not fit the model (missing {missing[0]})")
    model.load_state_dict(state, strict=False)
    return f"initialised from {doc['path']} (iteration {doc.get('iteration', '?')})" + _head_note(doc, model, state, missing)


def _head_note(doc: dict, model: nn.Module, state: dict, missing: list[str]) -> str:
    """What ``--init`` did with a classifier that does not fit as it is (another head): the tensors
    carried over, those left fresh and those dropped, by key."""
    theirs, ours = str(doc["model_spec"].get("head", "?")), str(getattr(model, "head_type", "?"))
    dropped = [k for k in doc["model"] if k not in state]
    if theirs == ours and not missing and not dropped:
        return ""
    parts = [f"{k} carried over" for k in state if k.startswith("last_layer.3.")]
    parts += [f"{k} new (the checkpoint has none)" for k in missing]
    parts += [f"{k} dropped (this {ours} head has no place for it)" for k in dropped]
    return f"; its {theirs} head into this {ours} head: " + ", ".join(parts)


CLASSIFIER = "last_layer.3."  # the classifier's keys (weight K x C x 1 x 1, and the linear head's bias K)
SHOW_CLASSES = 8  # class names a note lists before "and N more"


def _names(names: list[str]) -> str:
    return ", ".join(names[:SHOW_CLASSES]) + (f" and {len(names) - SHOW_CLASSES} more" if len(names) > SHOW_CLASSES else "")


def carry_classifier(model: nn.Module, doc: dict, union: UnionSpace) -> str:
    """Load a checkpoint of another union into ``model`` (built for ``union``): every weight but the
    classifier as it is, and of the classifier the rows (cosine: the class weights; linear: weights
    and biases) of the classes both unions hold, matched by unified class name. The new union's other
    classes keep the fresh rows ``model`` was built with; the checkpoint's classes the new union lacks
    are dropped. Each class both unions hold then scores exactly as in the checkpoint. Returns the
    note for the user (what was kept, what is new, what was dropped)."""
    from uniseg.engine.checkpoint import checkpoint_union

    where = f"--init {doc['path']}"
    if doc["model_spec"]["name"] != model.name:
        raise UnisegError(f"{where}: a {doc['model_spec']['name']} checkpoint, but --model is {model.name}")
    old = checkpoint_union(doc)
    own = model.state_dict()
    state = {k: v for k, v in doc["model"].items() if k in own and not k.startswith(CLASSIFIER) and tuple(v.shape) == tuple(own[k].shape)}
    missing = [k for k in own if k not in state and not k.startswith(CLASSIFIER)]
    if missing:
        raise UnisegError(f"{where}: does not fit the model (missing {missing[0]})")
    shared = [c.name for c in union.classes if old.index_of(c.name) is not None]
    rows_new = torch.tensor([union.index_of(n) for n in shared], dtype=torch.long)
    rows_old = torch.tensor([old.index_of(n) for n in shared], dtype=torch.long)
    carried = []
    for key in (k for k in own if k.startswith(CLASSIFIER)):
        theirs = doc["model"].get(key)
        if theirs is None or tuple(theirs.shape[1:]) != tuple(own[key].shape[1:]) or theirs.shape[0] != old.num_classes:
            continue
        rows = own[key].detach().clone()
        rows[rows_new] = theirs[rows_old].to(rows.dtype)
        state[key] = rows
        carried.append(key)
    model.load_state_dict(state, strict=False)
    added = [c.name for c in union.classes if old.index_of(c.name) is None]
    dropped = [c.name for c in old.classes if union.index_of(c.name) is None]
    head = "" if len(carried) == sum(k.startswith(CLASSIFIER) for k in own) else " (another head: only its class weights carried)" if carried else " (another head: classifier new)"
    parts = [f"initialised from {doc['path']} (iteration {doc.get('iteration', '?')}), trained for union {old.fingerprint} "
             f"({'+'.join(old.datasets)}), not this run's {union.fingerprint} ({'+'.join(union.datasets)}): classifier carried over by "
             f"class name for {len(shared)} of its {old.num_classes} classes{head}"]
    if added:
        parts.append(f"{len(added)} new, initialised afresh: {_names(added)}")
    if dropped:
        parts.append(f"{len(dropped)} dropped (this union lacks them): {_names(dropped)}")
    return "; ".join(parts)


def unlabelled_notes(datasets, what: str, show: int = 3) -> list[str]:
    """A note per dataset whose images without a label were left out (``SegDataset.unlabelled``), naming them."""
    notes = []
    for ds in datasets:
        names = list(getattr(ds, "unlabelled", None) or [])
        if names:
            shown = ", ".join(names[:show]) + (f" and {len(names) - show} more" if len(names) > show else "")
            notes.append(f"{ds.name}: {len(names)} of {len(ds) + len(names)} {what} images have no label and are left out: {shown} "
                         f"('uniseg data check {ds.name} {ds.root}' lists them)")
    return notes


LOWEST_STRIDE = 32  # HRNet's coarsest branch: 1/32 of the crop


def check_batch_statistics(per_rank_batch: int, crop: tuple[int, int]) -> None:
    """BatchNorm in training needs two values per channel; HRNet's 1/32 branch of a tiny crop and a
    batch of one per process has a single one (torch would fail inside the first forward pass)."""
    cells = per_rank_batch * math.ceil(crop[0] / LOWEST_STRIDE) * math.ceil(crop[1] / LOWEST_STRIDE)
    if cells < 2:
        raise UnisegError(
            f"--crop {crop[0]}x{crop[1]} with {per_rank_batch} image per process leaves BatchNorm one value per channel "
            f"at the network's 1/{LOWEST_STRIDE} branch; use a --crop over {LOWEST_STRIDE} pixels on a side or a larger --batch-size"
        )


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


@dataclass
class LogWindow:
    """What happened since the last ``metrics.jsonl`` line: steps, their loss, the time spent waiting for data."""

    start: float
    wait: float = 0.0
    loss: float = 0.0
    steps: int = 0
    lr: float = 0.0


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
        self.seconds_before = 0.0  # training time of the run before this process resumed it
        self.started: Optional[float] = None
        self.window = LogWindow(time.perf_counter())
        self.stop_voted = False  # some process asked to stop (torchrun), as read back with the losses
        self.log = RunLog(out, enabled=runtime.is_main)
        self.tb = None  # TensorBoardLog on rank 0 with config.tensorboard
        self.warnings: list[str] = []
        self.bad = BadFiles(config.on_bad_file)  # this process's
        self.bad_logged = 0  # of self.bad.files, those already gathered for metrics.jsonl
        self.bad_run = BadFiles("skip")  # every process's, as metrics.jsonl lists them (each file once)
        ckpt = read_checkpoint(out / LAST) if resume else None
        if ckpt is None:
            check_run_folder(out)
        else:
            check_same_recipe(ckpt, config, out)
        self.union = resolve_run_union(config, registry)
        if ckpt is not None and ckpt["union_fingerprint"] != self.union.fingerprint:
            raise FingerprintMismatch(
                f"{out}/{LAST}: trained for union {ckpt['union_fingerprint']}, but the registry now gives {self.union.fingerprint}; "
                "the label spaces changed since the run started"
            )
        self.criterion, self.relations_fp = self._build_criterion(ckpt)
        self.net, self.model = self._build_model(ckpt)
        self.optimizer = build_optimizer(self.net.parameters(), config)
        self.scaler = torch.amp.GradScaler(runtime.device.type) if runtime.needs_scaler() else None
        if ckpt is not None:
            self._restore(ckpt)

        from uniseg.engine.inputs import build_train_input

        self.input = build_train_input(
            config, self.union, registry, rank=runtime.rank, world_size=runtime.world_size,
            start_key=self.iteration * (config.batch_size // runtime.world_size), pin_memory=runtime.device.type == "cuda",
        )
        check_batch_statistics(self.input.per_rank_batch, config.crop)
        from uniseg.engine.memory import check_activation_memory, crop_warning

        crop = crop_warning(config, self.input.dataset.datasets)
        self.warnings += [crop] if crop else []
        self.warnings += check_activation_memory(self.net, config, runtime, self.input.per_rank_batch, hint=crop or "")
        self.val_sets = self._validation_sets()
        self.notes += unlabelled_notes(self.input.dataset.datasets, "training")
        self.notes += unlabelled_notes([es.dataset for es in self.val_sets], "validation")
        # everything above can fail on a user's input; only now does the run leave files behind
        if runtime.is_main:
            if ckpt is None:
                write_run_folder(out, config, self.union)
            else:
                self.log.truncate_after(self.iteration)
                self.bad = BadFiles(config.on_bad_file, earlier_bad_files(out))  # met before the checkpoint
                self.bad_logged = len(self.bad)
                self.bad_run = BadFiles("skip", list(self.bad.files))
            if config.tensorboard:
                from uniseg.engine.tensorboard import TB_DIR, TensorBoardLog

                self.tb = TensorBoardLog(out, self.iteration)
                self.notes.append(f"TensorBoard events in {out / TB_DIR} (view with: tensorboard --logdir {out / TB_DIR})")
        runtime.barrier()

    def _build_criterion(self, ckpt: Optional[dict]) -> tuple[nn.Module, Optional[str]]:
        """The loss on the device and its relation-table fingerprint (a resumed run's must not have changed)."""
        from uniseg.engine.criterion import build_criterion

        criterion, fingerprint = build_criterion(self.config.loss, self.union, self.config.relations)
        if ckpt is not None and ckpt.get("relations_fingerprint") != fingerprint:
            raise FingerprintMismatch(f"--relations: the table changed since {self.out}/{LAST} was written ({ckpt.get('relations_fingerprint')} -> {fingerprint})")
        return criterion.to(self.rt.device), fingerprint

    def _build_model(self, ckpt: Optional[dict]) -> tuple[nn.Module, nn.Module]:
        """``(net, model)``: the network on the device, and what the loop calls (net, or its DDP wrapper)."""
        rt = self.rt
        if ckpt is None:
            net, notes = build_network(self.config, self.union)
            self.notes += notes
        else:
            net = new_network(self.config, self.union)  # its weights come from the checkpoint
        net.to(rt.device)
        if rt.channels_last:
            net.to(memory_format=torch.channels_last)
        if not rt.distributed:
            return net, net
        if rt.device.type == "cuda":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        from torch.nn.parallel import DistributedDataParallel

        return net, DistributedDataParallel(net, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)

    def _restore(self, ckpt: dict) -> None:
        from uniseg.engine.checkpoint import state_mismatch

        problem = state_mismatch(self.net, ckpt["model"])
        if problem is not None:
            raise UnisegError(f"--resume {self.out}/{LAST}: its weights do not fit the run's {self.config.model}: {problem}")
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        self.iteration = int(ckpt["iteration"])
        self.best = ckpt.get("best")
        self.last_saved = self.iteration
        self.seconds_before = float(ckpt.get("seconds", 0.0))
        was = int(ckpt.get("sampler", {}).get("world_size", self.rt.world_size))
        if was != self.rt.world_size:
            self.notes.append(f"resumed on {self.rt.world_size} process(es), written on {was}: the data order from here on differs from an uninterrupted run")

    def _validation_sets(self) -> list:
        """The labelled validation split of each training dataset (never another dataset)."""
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
            "seconds": round(self.seconds(), 3),
            "uniseg_version": __version__,
        }

    def save(self, name: str = LAST) -> Path:
        """Rank 0 writes ``name``. Under torchrun every process calls it at the same step and learns
        whether the write was made (one all-reduce of a CPU integer): on a refused write (a full
        disk) all stop together, rank 0 naming the file and the fix, the others pointing at it,
        instead of the others running on into a collective rank 0 has left."""
        path = self.out / name
        failed: Optional[WriteFault] = None
        if self.rt.is_main:
            try:
                save_checkpoint(path, self._payload())
            except WriteFault as exc:  # the previous checkpoint is whole: say where the run can go on from
                failed = WriteFault(f"{exc}; {self._last_good()}", exc.path, exc.errno)
        if self.rt.any_(failed is not None):
            if failed is not None:
                raise failed
            raise WriteFault(f"rank 0 could not write {path} (its own line says why); {self._last_good()}", path)
        if name == LAST:
            self.last_saved = self.iteration
        return path

    def seconds(self) -> float:
        """Training time of the run so far, over every process that worked on it."""
        return self.seconds_before + (0.0 if self.started is None else time.perf_counter() - self.started)

    def _last_good(self) -> str:
        if self.last_saved is None:
            return "no checkpoint was written yet: start the run again"
        return f"{self.out / LAST} (iteration {self.last_saved}) is the last checkpoint; resume with: uniseg train --resume {self.out}"

    # -- validation ----------------------------------------------------------------------------

    def validate(self) -> dict:
        """Score the training datasets' validation splits, log the mean mIoU, keep ``best.pt``."""
        from uniseg.engine.evaluate import evaluate_set

        for buffer in self.net.buffers():  # BatchNorm statistics differ per process without SyncBatchNorm:
            self.rt.broadcast_(buffer)  # every process scores (and rank 0 saves) rank 0's
        self.net.eval()
        try:
            results = [
                evaluate_set(self.net, es, device=self.rt.device, workers=min(self.config.workers, 2), autocast=self.rt.autocast(),
                             rank=self.rt.rank, world_size=self.rt.world_size,
                             all_reduce=self.rt.all_reduce_ if self.rt.distributed else None, on_bad_file=self.config.on_bad_file)
                for es in self.val_sets
            ]
            images = self._validation_images()
        finally:
            self.net.train()
        scored = [r for r in results if r.images > 0]  # a set whose every image was a bad file has no score
        mean = sum(r.miou for r in scored) / len(scored) if scored else None
        improved = mean is not None and (self.best is None or mean > float(self.best["miou"]))
        if improved:
            self.best = {"miou": mean, "iteration": self.iteration}
        record = {"iteration": self.iteration, "type": "val", "val": {r.dataset: r.miou if r.images > 0 else None for r in results},
                  "mean_miou": mean, "best": improved}
        skipped = {r.dataset: r.bad_files for r in results if r.bad_files}
        if skipped:  # --on-bad-file skip: validation images left out of the score
            record["bad_files"] = skipped
            self.bad.add(BadFile(b["file"], b["error"]) for files in skipped.values() for b in files)
        self.log.append(record)
        self._log_bad_files()  # named once, with the run's other bad files, and listed at its end
        if self.tb is not None:
            self.tb.validation(record, images)
        self.events.validation(record)
        if improved:
            self.save(BEST)
        return record

    def _validation_images(self) -> list:
        """A few validation images with prediction and ground truth, for TensorBoard (rank 0 only, else none)."""
        if self.tb is None:
            return []
        from uniseg.engine.tensorboard import validation_images

        return validation_images(self.net, self.val_sets, self.registry, self.rt.device, self.rt.autocast())

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: StopRequest) -> TrainResult:
        """Train from the current iteration to the configured end (see the module docstring)."""
        total = self.config.iterations
        self.events.start(self._info())
        if self.iteration >= total:
            self.events.message(f"the run is complete ({self.iteration}/{total} iterations); nothing to do")
            return self._result(0.0)
        self.started = time.perf_counter()
        self.model.train()
        self.window = LogWindow(time.perf_counter())
        readback = StepReadback(self.rt)
        stream = SampleStream(self.input.loader, self.bad)
        try:
            while self.iteration < total:
                self._step(self._next_batch(stream), readback, stop)
                if self._after_step(readback, stop):
                    stream.close()  # the workers stop before the checkpoint is written
                    if self.last_saved != self.iteration:
                        self._log_bad_files()
                        self.save(LAST)
                    raise TrainingInterrupted(
                        f"interrupted at iteration {self.iteration}/{total}: wrote {self.out / LAST}; resume with: uniseg train --resume {self.out}"
                    )
            stream.close()
            if self.val_sets:
                self.validate()
            self._log_bad_files()
            self.save(LAST)
        except KeyboardInterrupt:  # a second Ctrl-C: out at once, nothing saved
            raise TrainingInterrupted(f"aborted at iteration {self.iteration}/{total} (Ctrl-C twice) without saving; {self._last_good()}") from None
        except BadFileError as exc:  # --on-bad-file error: the weights so far are kept
            stream.close()
            raise self._stopped_at_bad_file(exc, readback) from None
        finally:
            stream.close()
            if self.tb is not None:
                self.tb.close()
        result = self._result(time.perf_counter() - self.started)
        self.events.end(result)
        return result

    def _next_batch(self, stream: SampleStream) -> dict:
        """The next batch. Under torchrun the processes first agree whether any of them met a bad
        file it may not skip, so that all stop at the same step (rank 0 writing ``last.pt``) and
        none is left waiting in an all-reduce for one that has left."""
        if not self.rt.distributed:
            return next_batch(stream, self.window)
        met: Optional[BadFileError] = None
        try:
            batch = next_batch(stream, self.window)
        except BadFileError as exc:
            met = exc
        if self.rt.any_(met is not None):
            raise met or BadFileError("another process met a bad file (its own line names it)")
        return batch

    def _stopped_at_bad_file(self, exc: BadFileError, readback: StepReadback) -> BadFileError:
        """Write ``last.pt`` (the steps before the bad sample are good) and say how to go on."""
        self._account(readback.drain())  # a non-finite loss still pending is reported instead, nothing saved
        if self.last_saved != self.iteration:
            self._log_bad_files()
            try:
                self.save(LAST)  # the others wait for rank 0's write and learn whether it was made
            except WriteFault:
                if self.rt.is_main:
                    raise
                raise BadFileError(f"{exc.reason}; rank 0 could not write {self.out / LAST} (its own line says why)", bad=exc.bad,
                                   reason=exc.reason) from None
        where = f"{'' if self.rt.is_main else 'rank 0 '}wrote {self.out / LAST} (iteration {self.iteration})"
        resume = f"resume with 'uniseg train --resume {self.out}'"
        advice = (f"fix the dataset and {resume}" if self.config.on_bad_file == "skip" else
                  f"fix or remove the file and {resume}, or resume with --on-bad-file skip to replace such samples")
        return BadFileError(f"{exc.reason}; {where}: {advice}", bad=exc.bad, reason=exc.reason)

    def _log_bad_files(self) -> None:
        """One ``metrics.jsonl`` record for the files met since the last one (--on-bad-file skip).
        Under torchrun every process calls it at the same step and the record lists the files each
        of them replaced (``gather_records``), each once (validation's are already every process's)."""
        records = [b.to_dict() for b in self.bad.files[self.bad_logged:]]
        self.bad_logged = len(self.bad)
        if self.rt.distributed:
            records = gather_records(records, self.rt.all_reduce_, self.rt.rank, self.rt.world_size)
        new = self.bad_run.add((r["file"], r["error"]) for r in records)
        if new:
            self.log.append({"iteration": self.iteration, "type": "bad_files", "files": [b.to_dict() for b in new],
                             "total": len(self.bad_run)})
            for b in new:
                self.events.message(f"skipped a bad file (--on-bad-file skip): {b.error}")

    def _step(self, batch: dict, readback: StepReadback, stop: StopRequest) -> None:
        """One optimiser step: forward, the loss handed to ``readback`` (earlier ones checked), backward, update."""
        cfg = self.config
        lr = poly_lr(cfg.base_lr, self.iteration, cfg.iterations, cfg.poly_power)
        set_lr(self.optimizer, lr)
        images, labels, didx = self.rt.to_device(batch)
        with self.rt.autocast():
            logits = self.model(images)
        loss = self.criterion(logits, labels, didx)
        self._account(readback.push(self.iteration + 1, lr, loss, stop.requested, batch))
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.iteration += 1

    def _account(self, outcomes: list[StepOutcome]) -> None:
        """Steps whose loss reached the host: stop on a non-finite one, else count it and report it."""
        for o in outcomes:
            if not math.isfinite(o.loss):
                raise self._non_finite(o)
            self.window.loss += o.loss
            self.window.steps += 1
            self.window.lr = o.lr
            self.stop_voted = self.stop_voted or o.stop
            self.events.step(o.iteration, o.loss, o.lr)

    def _after_step(self, readback: StepReadback, stop: StopRequest) -> bool:
        """Log, validate and checkpoint when due; whether the run stops here (a Ctrl-C or SIGTERM).

        Under torchrun every process decides from the same drained votes, so all stop together.
        """
        cfg, it = self.config, self.iteration
        log_due = it % cfg.log_every == 0 or it == cfg.iterations
        val_due = bool(self.val_sets) and cfg.val_every > 0 and it % cfg.val_every == 0 and it < cfg.iterations
        save_due = it % cfg.checkpoint_every == 0 and it < cfg.iterations
        asked = self.stop_voted if self.rt.distributed else stop.requested
        if log_due or val_due or save_due or asked:
            self._account(readback.drain())
        if log_due:
            self._log_bad_files()
            self._log_window()
        paused = time.perf_counter()  # validation and checkpoints do not count against images/s
        if val_due:
            self.validate()
        if save_due:
            self._log_bad_files()  # a run resumed from this checkpoint does not meet them again
            self.save(LAST)
        self.window.start += time.perf_counter() - paused
        asked = self.stop_voted if self.rt.distributed else stop.requested  # a Ctrl-C during validation stops now
        return asked and it < cfg.iterations

    def _log_window(self) -> None:
        """One ``metrics.jsonl`` line for the steps since the last one."""
        w, it = self.window, self.iteration
        elapsed = max(time.perf_counter() - w.start, 1e-9)
        record = {"iteration": it, "type": "train", "epoch": round(it * self.input.per_rank_batch / self.input.epoch_keys, 4),
                  "loss": w.loss / max(w.steps, 1), "lr": w.lr, "images_per_s": w.steps * self.config.batch_size / elapsed,
                  "data_wait": w.wait / elapsed, "seconds": round(self.seconds(), 3), "bad_files": len(self.bad_run)}
        self.log.append(record)
        if self.tb is not None:
            self.tb.train(record)
        self.events.log(record)
        self.window = LogWindow(time.perf_counter())

    def _non_finite(self, o: StepOutcome) -> NonFiniteLoss:
        idx = torch.as_tensor(o.batch["dataset_index"]).tolist()
        names = sorted({self.union.datasets[i] for i in idx})
        share = f" (process {self.rt.rank}'s share; the loss is the mean over the processes)" if self.rt.distributed else ""
        return NonFiniteLoss(
            f"non-finite loss ({o.loss}) at iteration {o.iteration} on a batch from {', '.join(names)}{share} "
            f"(first image {o.batch['path'][0]}); {self._last_good()}; try a lower --lr, '--amp off', or check the labels with 'uniseg data check'"
        )

    def _result(self, seconds: float) -> TrainResult:
        best = self.out / BEST
        return TrainResult(self.out, self.iteration, self.out / LAST, best if best.exists() else None,
                           None if self.best is None else float(self.best["miou"]), seconds, self.bad_run.to_list())

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
            optimizer=self.config.optimizer,
            warnings=list(self.warnings),
        )


def earlier_bad_files(out: Path) -> list[BadFile]:
    """The bad files a resumed run met before its checkpoint (its ``metrics.jsonl`` records)."""
    from uniseg.engine.runlog import read_metrics

    if not (out / "metrics.jsonl").is_file():
        return []
    return [BadFile(f["file"], f["error"]) for r in read_metrics(out) if r.get("type") == "bad_files" for f in r.get("files", [])]


def next_batch(stream, window: LogWindow) -> dict:
    """The next training batch; the time spent waiting for it counts as data wait."""
    t0 = time.perf_counter()
    batch = next(stream)
    window.wait += time.perf_counter() - t0
    return batch


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
    if config.tensorboard:
        from uniseg.engine.tensorboard import require_tensorboard

        require_tensorboard()
    out = Path(out)
    if resume:
        check_resumable(out)
    runtime = setup_runtime(config.device, config.amp, config.channels_last)
    try:  # rank 0 holds the folder's lock: a second 'uniseg train' into it is refused while this one runs
        with (output_folder(out) if runtime.is_main else contextlib.nullcontext()), StopRequest() as stop:
            trainer = Trainer(config, out, runtime, registry or default_registry(), events or TrainEvents(), resume)
            return trainer.run(stop)
    finally:
        runtime.close()


def check_resumable(out: Path) -> None:
    """Refuse ``--resume`` of a folder without ``last.pt``, saying why where it can."""
    if (out / LAST).is_file():
        return
    if (out / CONFIG).is_file():
        raise UnisegError(f"--resume {out}: no {LAST} there: the run stopped before its first checkpoint; "
                          f"start it again with: uniseg train --config {out / CONFIG} --out {out}")
    raise UnisegError(f"--resume {out}: no {LAST} there (is it a run folder of 'uniseg train'?)")


def resume_config(out: str | Path) -> TrainConfig:
    """The configuration a run was started with (from ``RUN/last.pt``)."""
    check_resumable(Path(out))
    doc = read_checkpoint(Path(out) / LAST)
    return TrainConfig.from_dict(doc["config"], f"{out}/{LAST}")
