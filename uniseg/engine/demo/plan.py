"""The demo as data: the plans (world, model, budget) and the table of runs it trains and compares."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from uniseg.engine.config import DatasetSpec, TrainConfig
from uniseg.errors import UnisegError


@dataclass(frozen=True)
class DemoPlan:
    """Everything the demo does, as data."""

    name: str
    train: tuple[str, ...]
    unseen: tuple[str, ...]
    images: int  # per dataset in the synthetic world
    size: tuple[int, int]  # synthetic image size (H, W)
    model: str
    crop: tuple[int, int]
    batch_size: int
    stage1_iterations: int
    stage2_iterations: int
    lr: float
    optimizer: str = "adamw"  # learns these short runs faster than the paper's SGD (docs/demo.md)
    weight_decay: float = 0.01
    pretrain: tuple[str, ...] = ("mapillary",)  # the pretraining run's datasets (CE, linear head)
    pretrain_iterations: int = 300
    scale: tuple[float, float] = (0.75, 1.5)
    world_seed: int = 0
    interior: str = "auto"  # relation mining over interior pixels (uniseg.engine.mining.interior_radius)
    rule: str = "conflict"  # which pairs Eq. 6 may switch on (uniseg.relations.eq6.RULES)
    workers: int = 2  # the most DataLoader workers (:meth:`workers_for`; the CLI's --workers overrides)
    checkpoint_every: int = 100

    def workers_for(self, cores: Optional[int] = None) -> int:
        """DataLoader workers on a machine of ``cores`` CPU cores (default: this one's): the plan's
        number, but never more than the cores left beside the two compute threads. On 2 cores that
        is 0: workers competing with the training threads made the full plan 14% slower there
        (docs/demo.md), and the workers never change the result (each sample carries its own seed)."""
        cores = (os.cpu_count() or 1) if cores is None else cores
        return max(0, min(self.workers, cores - 2))

    @property
    def evaluated(self) -> tuple[str, ...]:
        """The sets every run is scored on: the training datasets' val splits, then the unseen ones."""
        return (*self.train, *self.unseen)


# about 9.5 minutes on 2 CPU cores (docs/demo.md has the measured figures)
_FULL = DemoPlan(
    name="full", train=("cityscapes", "bdd", "idd", "mapillary"), unseen=("kitti", "wilddash", "camvid"),
    images=40, size=(192, 384), model="hrnet_tiny", crop=(160, 160), batch_size=8,
    stage1_iterations=500, stage2_iterations=200, lr=0.006,
)

PLANS: dict[str, DemoPlan] = {
    "full": _FULL,
    # well under a minute of training on 2 CPU cores: CI and a first look
    "quick": DemoPlan(
        name="quick", train=("cityscapes", "bdd", "idd", "mapillary"), unseen=("kitti", "wilddash", "camvid"),
        images=12, size=(96, 192), model="hrnet_tiny", crop=(96, 96), batch_size=4,
        stage1_iterations=40, stage2_iterations=20, lr=0.006, pretrain_iterations=20,
    ),
    # the full plan with four times each stage after the pretraining run: about 36 minutes on 2 CPU
    # cores (docs/demo.md, "Four times the first stage"): where a larger budget takes the methods and the miner
    "long": replace(_FULL, name="long", stage1_iterations=4 * _FULL.stage1_iterations,
                    stage2_iterations=4 * _FULL.stage2_iterations),
    # one GPU (sized for at most 10 minutes on an H100/H200-class card by estimate; unmeasured until
    # a GPU run is recorded in docs/demo.md): a world 7x larger at twice the resolution, the paper's
    # W18 network, thousands of iterations per stage
    "gpu": DemoPlan(
        name="gpu", train=("cityscapes", "bdd", "idd", "mapillary"), unseen=("kitti", "wilddash", "camvid"),
        images=300, size=(256, 512), model="hrnet_w18_small_v2", crop=(256, 256), batch_size=16,
        stage1_iterations=2000, stage2_iterations=1000, lr=0.002, pretrain_iterations=1000,
        workers=12, checkpoint_every=500,
    ),
}


@dataclass(frozen=True)
class Run:
    """One training run of the demo: what it trains with and what it starts from."""

    name: str  # its folder under runs/ and its key in summary.json
    title: str
    short: str  # a column head
    loss: str
    head: str
    pretrained_from: Optional[str] = None  # a run whose backbone it loads (the first stage)
    init: Optional[str] = None  # a run whose weights it goes on from (the second stage)
    relations: Optional[str] = None  # "mined" (Eq. 6 on the mining pass) or "planted" (the world's truth)
    datasets: str = "train"  # "train" or "pretrain" (the plan's lists)
    compared: bool = True  # one of the methods of the result table


RUNS: tuple[Run, ...] = (
    # the stand-in for the ImageNet weights every model of the paper starts from: one label space,
    # so no conflict is learnt there
    Run("pretrain", "the pretraining run", "pretrain", "ce", "linear", datasets="pretrain", compared=False),
    Run("ce", "Multi-dataset (CE)", "CE", "ce", "linear", pretrained_from="pretrain"),
    Run("null-bce", "UniSeg (Null BCE)", "Null BCE", "null-bce", "cosine", pretrained_from="pretrain"),
    # the control: the second stage without relations, so C-R BCE's gain is not its extra iterations
    Run("null-bce-stage2", "Null BCE (longer)", "control", "null-bce", "cosine", init="null-bce"),
    Run("cr-bce", "UniSeg (C-R BCE)", "C-R BCE", "cr-bce", "cosine", init="null-bce", relations="mined"),
    # the reference: a perfect miner (the planted relations as its table)
    Run("cr-bce-planted", "C-R BCE (planted)", "planted", "cr-bce", "cosine", init="null-bce", relations="planted"),
)
RUN = {r.name: r for r in RUNS}
METHODS = tuple(r.name for r in RUNS if r.compared)
TITLES = {r.name: r.title for r in RUNS if r.compared}
SHORT = {r.name: r.short for r in RUNS if r.compared}
STAGE2 = tuple(r.name for r in RUNS if r.init)
PRETRAIN = "pretrain"
#: Where the mined and the planted tables live inside --out.
RELATIONS_DIRS = {"mined": ".", "planted": "planted"}
PLANTED_DIR = RELATIONS_DIRS["planted"]


def iterations(plan: DemoPlan, run: Run) -> int:
    if run.datasets == "pretrain":
        return plan.pretrain_iterations
    return plan.stage2_iterations if run.init else plan.stage1_iterations


def train_config(plan: DemoPlan, world: Path, run: Run | str, seed: int, workers: int, device: str, out: Path) -> TrainConfig:
    """The :class:`TrainConfig` of one of the demo's runs (inside ``out``, on ``world``)."""
    run = RUN[run] if isinstance(run, str) else run
    names = plan.pretrain if run.datasets == "pretrain" else plan.train
    steps = iterations(plan, run)
    cfg = TrainConfig(
        datasets=[DatasetSpec(n, str(world / n)) for n in names], loss=run.loss, model=plan.model, head=run.head,
        batch_size=plan.batch_size, iterations=steps, crop=plan.crop, short_side=0, scale=plan.scale,
        optimizer=plan.optimizer, lr=plan.lr, weight_decay=plan.weight_decay, seed=seed, workers=workers, val_every=0,
        checkpoint_every=plan.checkpoint_every, log_every=max(1, steps // 10), device=device, dataset_weights="balanced",
    )
    if run.pretrained_from:  # the first stage loads the pretraining run's backbone (its classifier is left out)
        cfg = cfg.replace(pretrained=str(out / "runs" / run.pretrained_from / "last.pt"))
    if run.init:
        cfg = cfg.replace(init=str(out / "runs" / run.init / "last.pt"))
    if run.relations:
        cfg = cfg.replace(relations=str(out / RELATIONS_DIRS[run.relations] / "relations.yaml"))
    return cfg


def plan_named(name: str, **overrides) -> DemoPlan:
    if name not in PLANS:
        raise UnisegError(f"--plan {name!r}: choose {', '.join(PLANS)}")
    return replace(PLANS[name], **overrides)
