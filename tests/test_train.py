"""``uniseg train`` end to end on a small synthetic world: run folder, checkpoints, exact resume after
SIGINT (with DataLoader workers), --config reproduction, non-finite loss, cr-bce tables, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from conftest import run_cli
from inprocess import cli
from engine_fixtures import TRAIN, poison_loss_at, small_world, tiny_args, tiny_config, write_relation_table  # noqa: F401  (fixture)


def _model(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def finished_run(small_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    res = run_cli(*tiny_args(small_world, out, iterations=6))
    assert res.returncode == 0, res.stderr
    return out, res


def test_run_folder_holds_config_union_metrics_and_checkpoints(finished_run):
    out, res = finished_run
    for name in ("config.yaml", "union.yaml", "metrics.jsonl", "last.pt", "best.pt"):
        assert (out / name).is_file(), name
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["iteration"] == 6
    assert ckpt["model_spec"]["name"] == "hrnet_tiny" and ckpt["model_spec"]["head"] == "cosine"
    assert ckpt["union_fingerprint"] == ckpt["union"]["fingerprint"]
    assert set(ckpt["union"]["datasets"]) == set(TRAIN)
    assert ckpt["model"]["last_layer.3.weight"].shape[0] == len(ckpt["union"]["classes"]) == 70
    assert {"optimizer", "rng", "sampler", "config", "scaler", "best"} <= set(ckpt)
    records = _records(out)
    train = [r for r in records if r["type"] == "train"]
    assert [r["iteration"] for r in train] == [1, 2, 3, 4, 5, 6]
    for r in train:
        assert {"loss", "lr", "images_per_s", "data_wait"} <= set(r) and np.isfinite(r["loss"])
        assert 0 <= r["data_wait"] <= 1
    assert train[0]["lr"] == pytest.approx(0.01 * 4 / 16)  # the paper's 0.01 per 16 images, poly from there
    assert train[-1]["lr"] < train[0]["lr"]
    val = [r for r in records if r["type"] == "val"]
    assert val and set(val[-1]["val"]) == set(TRAIN) and 0 <= val[-1]["mean_miou"] <= 1
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert best["best"]["miou"] == pytest.approx(max(r["mean_miou"] for r in val))


def test_config_yaml_reproduces_the_run_and_flags_override_it(finished_run, tmp_path):
    out, _ = finished_run
    res = run_cli("train", "--config", str(out / "config.yaml"), "--out", str(tmp_path / "again"), "--quiet")
    assert res.returncode == 0, res.stderr
    assert _same_weights(_model(out / "last.pt"), _model(tmp_path / "again" / "last.pt"))
    res = run_cli("train", "--config", str(out / "config.yaml"), "--iterations", "2", "--out", str(tmp_path / "short"), "--quiet")
    assert res.returncode == 0, res.stderr
    assert "iterations: 2" in (tmp_path / "short" / "config.yaml").read_text()
    assert torch.load(tmp_path / "short" / "last.pt", weights_only=True)["iteration"] == 2


def test_an_existing_run_folder_is_refused_with_the_resume_hint(finished_run, small_world, capsys):
    out, _ = finished_run
    res = cli(capsys, *tiny_args(small_world, out))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "--resume" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--datasets", "cityscapes", "--out", "x"], "NAME=ROOT"),
        (["train", "--datasets", "cityscapes=/nowhere", "--out", "x", "--loss", "focal"], "--loss"),
        (["train", "--datasets", "cityscapes=/nowhere", "--out", "x", "--crop", "big"], "--crop"),
        (["train", "--datasets", "cityscapes=/nowhere", "--out", "x", "--optimizer", "adam"], "--optimizer 'adam': choose one of sgd, adamw"),
        (["train", "--resume", "/nowhere"], "no last.pt"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    res = cli(capsys, *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and res.stderr.count("\n") == 1


def test_sigint_finishes_the_iteration_and_resume_is_bit_exact(small_world, tmp_path):
    whole = tmp_path / "whole"
    res = run_cli(*tiny_args(small_world, whole, iterations=12, workers=2))
    assert res.returncode == 0, res.stderr

    cut = tmp_path / "cut"
    env = dict(os.environ, COLUMNS="200")
    env.pop("UNISEG_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uniseg.cli.main", *tiny_args(small_world, cut, iterations=12, workers=2), "--quiet"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    lines = []
    for line in proc.stderr:  # event-driven: interrupt once iteration 3 is logged
        lines.append(line)
        if line.startswith("iter 3 "):
            proc.send_signal(signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "resume with: uniseg train --resume" in rest
    stopped = torch.load(cut / "last.pt", weights_only=True)["iteration"]
    assert 3 <= stopped < 12

    res = run_cli("train", "--resume", str(cut), "--quiet")
    assert res.returncode == 0, res.stderr
    assert torch.load(cut / "last.pt", weights_only=True)["iteration"] == 12
    assert _same_weights(_model(whole / "last.pt"), _model(cut / "last.pt"))
    # one consistent history: every iteration logged once
    its = [r["iteration"] for r in _records(cut) if r["type"] == "train"]
    assert its == list(range(1, 13))


def test_resume_may_change_workers_but_not_the_recipe(finished_run, capsys):
    out, _ = finished_run
    res = cli(capsys, "train", "--resume", str(out), "--lr", "0.1")
    assert res.returncode == 2 and "--lr cannot change" in res.stderr
    res = cli(capsys, "train", "--resume", str(out), "--workers", "1", "--quiet")  # already complete: a no-op
    assert res.returncode == 0, res.stderr
    iterations = str(yaml.safe_load((out / "config.yaml").read_text())["iterations"])
    res = cli(capsys, "train", "--resume", str(out), "--iterations", iterations, "--quiet")  # the same value, typed again
    assert res.returncode == 0, res.stderr


def test_resume_of_a_folder_without_a_run_says_so(tmp_path, capsys):
    res = cli(capsys, "train", "--resume", str(tmp_path / "nothing"), "--iterations", "5")
    assert res.returncode == 2 and "no last.pt there" in res.stderr and "cannot change" not in res.stderr


def test_resuming_in_python_with_another_recipe_is_refused(finished_run, small_world):
    from uniseg.engine.trainer import train
    from uniseg.errors import UnisegError

    out, _ = finished_run
    with pytest.raises(UnisegError, match="started with another lr"):
        train(tiny_config(small_world, lr=0.5), out, resume=True)
    result = train(tiny_config(small_world, workers=1), out, resume=True)  # how it runs may change: complete, nothing to do
    assert result.iteration == 6


def _readback_lag(monkeypatch, lag: int) -> None:
    """Read losses back ``lag`` steps late, as on a GPU (the CPU's own lag is 0)."""
    import functools

    from uniseg.engine import trainer as trainer_mod
    from uniseg.engine.readback import StepReadback

    monkeypatch.setattr(trainer_mod, "StepReadback", functools.partial(StepReadback, lag=lag))


def test_reading_losses_back_a_step_late_changes_nothing_in_the_run(small_world, tmp_path, monkeypatch):
    from uniseg.engine.trainer import train

    cfg = tiny_config(small_world, iterations=5, log_every=2, val_split="none")
    train(cfg, tmp_path / "now")
    _readback_lag(monkeypatch, 1)
    train(cfg, tmp_path / "late")
    assert _same_weights(_model(tmp_path / "now" / "last.pt"), _model(tmp_path / "late" / "last.pt"))
    now, late = _records(tmp_path / "now"), _records(tmp_path / "late")
    assert [r["iteration"] for r in late] == [r["iteration"] for r in now] == [2, 4, 5]
    assert [r["loss"] for r in late] == [r["loss"] for r in now]  # every window complete when logged
    assert [r["lr"] for r in late] == [r["lr"] for r in now]


@pytest.mark.parametrize("lag, nan_at", [(0, 4), (1, 4), (1, 3)])  # lag 1, step 3: caught one step later, not at a checkpoint
def test_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint(lag, nan_at, small_world, tmp_path, monkeypatch):
    from uniseg.engine.trainer import NonFiniteLoss, train

    _readback_lag(monkeypatch, lag)
    poison_loss_at(monkeypatch, nan_at)
    cfg = tiny_config(small_world, checkpoint_every=2)
    with pytest.raises(NonFiniteLoss) as err:
        train(cfg, tmp_path / "nan")
    msg = str(err.value)
    assert f"at iteration {nan_at} " in msg and "last.pt (iteration 2)" in msg and "--lr" in msg
    assert any(name in msg for name in TRAIN)
    assert torch.load(tmp_path / "nan" / "last.pt", weights_only=True)["iteration"] == 2


def test_adamw_trains_and_an_interrupted_run_resumes_bit_exact(small_world, tmp_path):
    """--optimizer adamw: the optimiser's state (AdamW's moments) travels in last.pt, so a run stopped
    by a signal and resumed ends with the weights of an uninterrupted one."""
    from uniseg.engine.trainer import TrainEvents, TrainingInterrupted, train

    cfg = tiny_config(small_world, optimizer="adamw", lr=0.002, weight_decay=0.01, val_split="none")
    train(cfg, tmp_path / "whole")
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    assert {"exp_avg", "exp_avg_sq"} <= set(next(iter(whole["optimizer"]["state"].values())))
    assert whole["optimizer"]["param_groups"][0]["weight_decay"] == 0.01

    class StopAtThree(TrainEvents):
        def step(self, iteration, loss, lr):
            if iteration == 3:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "cut", events=StopAtThree())
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["iteration"] < 6
    train(cfg, tmp_path / "cut", resume=True)
    assert _same_weights(whole["model"], _model(tmp_path / "cut" / "last.pt"))
    sgd = tiny_config(small_world, val_split="none")
    train(sgd, tmp_path / "sgd")
    assert not _same_weights(whole["model"], _model(tmp_path / "sgd" / "last.pt"))
    assert "momentum_buffer" in next(iter(torch.load(tmp_path / "sgd" / "last.pt", weights_only=True)["optimizer"]["state"].values()))


def test_cr_bce_trains_with_a_relation_table_and_refuses_another_unions(small_world, tmp_path, registry):
    from uniseg.engine.trainer import train
    from uniseg.errors import FingerprintMismatch
    from uniseg.relations.eq6 import identity_table
    from uniseg.unify import build_union

    union = build_union(registry.get_many(list(TRAIN)))
    table = identity_table(torch.from_numpy(union.null_mask()))
    table[union.dataset_index("mapillary"), union.index_of("bicyclist"), union.index_of("rider")] = 1
    write_relation_table(tmp_path / "rel", union, table)
    result = train(tiny_config(small_world, loss="cr-bce", relations=str(tmp_path / "rel"), iterations=2), tmp_path / "cr")
    ckpt = torch.load(result.last, weights_only=True)
    assert ckpt["relations_fingerprint"] is not None and ckpt["config"]["loss"] == "cr-bce"

    other = build_union(registry.get_many(["cityscapes", "bdd"]))
    write_relation_table(tmp_path / "rel2", other, identity_table(torch.from_numpy(other.null_mask())))
    with pytest.raises(FingerprintMismatch):
        train(tiny_config(small_world, loss="cr-bce", relations=str(tmp_path / "rel2"), iterations=1), tmp_path / "cr2")


def test_init_loads_a_trained_checkpoint_and_carries_another_unions_classifier_by_name(finished_run, small_world):
    from uniseg.engine.trainer import build_network, resolve_run_union
    from uniseg.labelspaces import default_registry

    out, _ = finished_run
    cfg = tiny_config(small_world, init=str(out / "last.pt"))
    union = resolve_run_union(cfg, default_registry())
    model, notes = build_network(cfg, union)
    assert _same_weights(model.state_dict(), _model(out / "last.pt"))
    assert any("initialised from" in n for n in notes)
    linear = build_network(cfg.replace(head="linear"), union)[0].state_dict()
    assert torch.equal(linear["conv1.weight"], _model(out / "last.pt")["conv1.weight"])  # backbone kept, head new
    other = tiny_config(small_world, init=str(out / "last.pt"), union=["cityscapes", "idd", "mapillary", "bdd"])
    notes = build_network(other, resolve_run_union(other, default_registry()))[1]  # a dataset added: tests/test_add_dataset.py
    assert any("classifier carried over by class name" in n for n in notes)


# the torchrun target of the test below: 'uniseg' with every BatchNorm layer held in eval mode (see its docstring)
_FROZEN_BN_UNISEG = """
from torch.nn.modules.batchnorm import _BatchNorm

_train = _BatchNorm.train
_BatchNorm.train = lambda self, mode=True: _train(self, False)

from uniseg.cli.main import main

main()
"""


def test_torchrun_trains_with_two_cpu_processes(small_world, tmp_path):
    """Two torchrun processes (CPU, gloo), 2 images each, end with the weights of one process that
    takes the same 4 images per step: DDP averages the gradients of the two halves.

    Why these settings make the two runs agree exactly (up to float rounding):

    * the data: the sampler gives rank r the epoch positions r, r+2, ...; the per-rank batch of 2
      at step t is positions 4t, 4t+2 (rank 0) and 4t+1, 4t+3 (rank 1), the one-process batch of
      4 is 4t..4t+3; each sample's augmentation comes from its own key's seed, so both runs see
      the very same crops. Mapillary's 8 training images (an even number: no padding of an epoch)
      alone, because its synthetic labels have no void pixel and ``--scale 0.8-1.5`` of a 64-pixel
      short side never leaves a 48 x 48 crop short (no ignore padding): each rank's loss averages
      over the same number of pixels, 2 x 48 x 48, so the mean of the two ranks' mean-loss
      gradients is the gradient of the 4-image mean loss.
    * BatchNorm: HRNet normalises with batch statistics in training, and on CPU the trainer has
      no SyncBatchNorm (it converts only on CUDA), so each process would normalise its 2 images
      by their own statistics, not the 4 images': the runs would differ by design. The target
      of both runs is therefore ``uniseg`` with every BatchNorm layer kept in eval mode (a fixed
      affine map of its initial running statistics); the rest is the real CLI and trainer.

    Were the gradients not all-reduced, each process would step on its own 2 images and rank 0
    would save weights that differ from the one-process run by about 1e-2 after 3 steps (checked
    by replacing DistributedDataParallel with the bare network); rounding leaves about 1e-8.
    """
    from uniseg.engine.config import DatasetSpec
    from uniseg.engine.trainer import build_network, resolve_run_union
    from uniseg.labelspaces import default_registry

    from uniseg.data import SegDataset

    cfg = tiny_config(small_world, datasets=[DatasetSpec("mapillary", str(small_world / "mapillary"))])
    union = resolve_run_union(cfg, default_registry())
    train_set = SegDataset("mapillary", small_world / "mapillary", union, registry=default_registry())
    assert len(train_set) == 8 and all((train_set[i]["label"] != 255).all() for i in range(8))  # the premise: no void pixel

    target = tmp_path / "frozen_bn_uniseg.py"
    target.write_text(_FROZEN_BN_UNISEG)
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    env.pop("UNISEG_DEBUG", None)

    def args(out):
        return ["train", "--datasets", f"mapillary={small_world / 'mapillary'}", "--model", "hrnet_tiny", "--iterations", "3",
                "--batch-size", "4", "--crop", "48x48", "--short-side", "64", "--scale", "0.8-1.5", "--workers", "0",
                "--log-every", "1", "--checkpoint-every", "100", "--out", str(out), "--quiet"]

    one = subprocess.run([sys.executable, str(target), *args(tmp_path / "one")], capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    res = subprocess.run([*torchrun, str(target), *args(tmp_path / "ddp")], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "ddp"
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["iteration"] == 3 and ckpt["sampler"]["world_size"] == 2 and ckpt["sampler"]["per_rank_batch"] == 2
    its = [r["iteration"] for r in _records(out) if r["type"] == "train"]
    assert its == [1, 2, 3]  # rank 0 alone writes
    assert res.stderr.count("run ") == 1  # and alone speaks

    start = build_network(cfg, union)[0].state_dict()  # the seeded initial weights
    single, double = _model(tmp_path / "one" / "last.pt"), ckpt["model"]
    assert single.keys() == double.keys() == start.keys()
    floats = [k for k in single if single[k].is_floating_point()]
    moved = max((single[k] - start[k]).abs().max().item() for k in floats)
    apart = max((double[k] - single[k]).abs().max().item() for k in floats)
    assert moved > 1e-2  # the 3 steps changed the weights: there is something to agree on
    assert apart <= 1e-5 * moved, f"2 processes end {apart:.3g} from 1 process (weights moved {moved:.3g})"

    # a mistake every process sees (here: --out holds a run) stops them all, none waits for the others
    res = subprocess.run([*torchrun, "-m", "uniseg", *args(out)], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode != 0 and "holds a run already" in res.stderr


def test_a_start_that_fails_on_its_input_leaves_nothing_that_blocks_the_next_try(small_world, tmp_path, capsys):
    out = tmp_path / "run"
    bad = tiny_args(small_world, out, iterations=1)
    bad[bad.index("--datasets") + 1] = f"cityscapes={tmp_path / 'nowhere'}"
    res = cli(capsys, *bad)
    assert res.returncode == 2 and "nowhere" in res.stderr and res.stderr.count("\n") == 1
    assert not (out / "config.yaml").exists()
    res = cli(capsys, *tiny_args(small_world, out, iterations=1), "--quiet")
    assert res.returncode == 0, res.stderr


def test_a_run_stopped_before_its_first_checkpoint_starts_afresh(small_world, tmp_path, capsys):
    from uniseg.engine.trainer import train

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("format: uniseg.train/v1\n")  # what a start killed before iteration 1000 leaves
    (out / "metrics.jsonl").write_text('{"iteration": 7, "type": "train", "loss": 1.0}\n')
    (out / "best.pt").write_bytes(b"stale")
    res = cli(capsys, "train", "--resume", str(out))
    assert res.returncode == 2 and "before its first checkpoint" in res.stderr and f"--config {out / 'config.yaml'}" in res.stderr
    train(tiny_config(small_world, iterations=2, val_split="none"), out)
    assert [r["iteration"] for r in _records(out)] == [1, 2]  # the old start's records are gone
    assert not (out / "best.pt").exists()  # no validation split here: no best.pt, not the stale one


def test_a_second_run_into_a_folder_in_use_is_refused(small_world, tmp_path):
    from uniseg.engine.trainer import train
    from uniseg.errors import UnisegError
    from uniseg.io import output_folder

    with output_folder(tmp_path / "busy"):  # as a running 'uniseg train' holds it
        with pytest.raises(UnisegError, match="another uniseg run is writing there"):
            train(tiny_config(small_world, iterations=1), tmp_path / "busy")


def test_a_crop_too_small_for_batch_norm_is_a_one_line_error(small_world, tmp_path, capsys):
    args = tiny_args(small_world, tmp_path / "r", iterations=1)
    args[args.index("--batch-size") + 1] = "1"
    args[args.index("--crop") + 1] = "32x32"
    res = cli(capsys, *args)
    assert res.returncode == 2 and "BatchNorm" in res.stderr and "--crop" in res.stderr and res.stderr.count("\n") == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_process_group_stops_cleanly_during_validation(sig, small_world, tmp_path):
    """A terminal's Ctrl-C, or a scheduler's SIGTERM, reaches the DataLoader workers too (training's
    and validation's): they must leave the decision to the main process."""
    out = tmp_path / "cut"
    env = dict(os.environ, COLUMNS="200")
    env.pop("UNISEG_DEBUG", None)
    args = tiny_args(small_world, out, iterations=12, workers=2, extra=("--val-every", "1", "--quiet"))
    proc = subprocess.Popen([sys.executable, "-m", "uniseg.cli.main", *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    lines = []
    for line in proc.stderr:  # 'iter 2' is printed just before the validation at iteration 2 starts its workers
        lines.append(line)
        if line.startswith("iter 2 "):
            os.killpg(proc.pid, sig)
            break
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "resume with: uniseg train --resume" in rest
    assert 2 <= torch.load(out / "last.pt", weights_only=True)["iteration"] < 12


def test_a_second_ctrl_c_aborts_at_once_and_names_the_last_checkpoint(small_world, tmp_path):
    from uniseg.engine.trainer import TrainEvents, TrainingInterrupted, train

    class SecondCtrlC(TrainEvents):
        def step(self, iteration, loss, lr):
            if iteration == 3:
                raise KeyboardInterrupt  # what StopRequest raises on a second SIGINT

    with pytest.raises(TrainingInterrupted) as err:
        train(tiny_config(small_world, checkpoint_every=2, val_split="none"), tmp_path / "r", events=SecondCtrlC())
    assert err.value.exit_code == 130
    assert "aborted at iteration 2/6" in str(err.value) and "last.pt (iteration 2)" in str(err.value)
    assert "uniseg train --resume" in str(err.value)
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=True)["iteration"] == 2


def test_bf16_autocast_trains_on_the_cpu_and_keeps_float32_weights(small_world, tmp_path):
    """The mixed-precision path (GPUs: bf16, or fp16 with a grad scaler) as far as a CPU runs it."""
    from uniseg.engine.trainer import train

    result = train(tiny_config(small_world, iterations=2, amp="bf16", val_split="none"), tmp_path / "bf16")
    ckpt = torch.load(result.last, weights_only=True)
    assert ckpt["config"]["amp"] == "bf16" and ckpt["scaler"] is None  # no scaler for bf16
    weights = [v for v in ckpt["model"].values() if v.is_floating_point()]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights)
    assert all(np.isfinite(r["loss"]) for r in _records(tmp_path / "bf16"))
    train(tiny_config(small_world, iterations=1, amp="off", val_split="none"), tmp_path / "fp32")
    first = [_records(tmp_path / name)[0]["loss"] for name in ("bf16", "fp32")]
    assert first[0] != first[1] and first[0] == pytest.approx(first[1], rel=0.05)  # same step, bf16 rounding
