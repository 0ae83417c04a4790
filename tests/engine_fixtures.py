"""A small synthetic world and tiny-run settings shared by the engine tests (train / eval / predict)."""

from __future__ import annotations

from pathlib import Path

import pytest

TRAIN = ("cityscapes", "idd", "mapillary")
UNSEEN = ("kitti", "camvid")


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """Cityscapes, IDD, Mapillary (train 7 / val 2 each), KITTI and CamVid, 64 x 128, in their real layouts."""
    from uniseg.data.synth import synthesize

    out = tmp_path_factory.mktemp("engine_world")
    synthesize(out, images=9, size=(64, 128), seed=3, datasets=[*TRAIN, *UNSEEN])
    return out


def tiny_args(world: Path, out: Path, *, iterations: int = 6, workers: int = 0, extra: tuple[str, ...] = ()) -> list[str]:
    """``uniseg train`` arguments for a run of a few seconds on the small world."""
    return [
        "train", "--datasets", *(f"{n}={world / n}" for n in TRAIN), "--model", "hrnet_tiny", "--iterations", str(iterations),
        "--batch-size", "4", "--crop", "48x48", "--short-side", "64", "--workers", str(workers), "--log-every", "1",
        "--checkpoint-every", "100", "--out", str(out), *extra,
    ]


def tiny_config(world: Path, **changes):
    """The same run as a ``TrainConfig`` (for in-process tests)."""
    from uniseg.engine.config import DatasetSpec, TrainConfig

    base = TrainConfig(
        datasets=[DatasetSpec(n, str(world / n)) for n in TRAIN], model="hrnet_tiny", iterations=6, batch_size=4,
        crop=(48, 48), short_side=64, workers=0, log_every=1, checkpoint_every=100,
    )
    return base.replace(**changes)


def write_relation_table(folder: Path, union, table, datasets=None, fingerprint=None) -> Path:
    """A minimal ``relations.yaml`` + ``table.npy`` pair (what ``uniseg relations labels`` writes,
    less the human-readable relations) for ``union``; ``datasets`` orders the table's rows."""
    import numpy as np

    from uniseg.relations.artifact import table_fingerprint

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "table.npy", table)
    (folder / "relations.yaml").write_text(
        "format: uniseg.relations/v1\n"
        f"fingerprint: {fingerprint or union.fingerprint}\n"
        f"datasets: [{', '.join(datasets or union.datasets)}]\n"
        f"table_fingerprint: {table_fingerprint(table)}\n"
    )
    return folder


def cosine_and_linear(world: Path, base: Path, cosine_iterations: int, linear_iterations: int, **changes) -> Path:
    """A cosine-head run and a linear-head run of :func:`tiny_config` in ``base/cosine``, ``base/linear``."""
    from uniseg.engine.trainer import train

    train(tiny_config(world, iterations=cosine_iterations, **changes), base / "cosine")
    train(tiny_config(world, iterations=linear_iterations, head="linear", **changes), base / "linear")
    return base


def poison_loss_at(monkeypatch, step: int) -> None:
    """Training's criterion returns NaN at its ``step``-th call (1-based), as a diverging run would:
    ``uniseg.engine.criterion.build_criterion`` wrapped for the rest of the test."""
    import torch

    from uniseg.engine import criterion as crit_mod

    real = crit_mod.build_criterion

    def poisoned(loss, union, relations=None):
        module, fp = real(loss, union, relations)
        calls = {"n": 0}

        class Poisoned(torch.nn.Module):
            def forward(self, logits, target, index):
                calls["n"] += 1
                value = module(logits, target, index)
                return value * float("nan") if calls["n"] == step else value

        return Poisoned(), fp

    monkeypatch.setattr(crit_mod, "build_criterion", poisoned)


def file_size_limit(limit: int):
    """A ``preexec_fn`` capping every file the child process writes at ``limit`` bytes
    (RLIMIT_FSIZE): the kernel then refuses a larger write with EFBIG, no root needed."""

    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply
