"""``uniseg train --tensorboard``: event files in RUN/tb, read back with TensorBoard's own EventAccumulator
(train scalars per logged iteration, per-dataset val mIoU and their mean, val images with prediction and
ground truth), one history after a resume, and a one-line error without the extra."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import torch

from engine_fixtures import TRAIN, poison_loss_at, small_world, tiny_args, tiny_config  # noqa: F401  (fixture)
from uniseg.errors import UnisegError


def _events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _records(run, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


@pytest.fixture(scope="module")
def tb_run(small_world, tmp_path_factory):
    from uniseg.engine.trainer import train

    out = tmp_path_factory.mktemp("tb") / "run"
    train(tiny_config(small_world, iterations=4, val_every=2, tensorboard=True), out)
    return out


def test_train_scalars_are_the_metrics_lines(tb_run):
    acc = _events(tb_run)
    train = _records(tb_run, "train")
    assert [r["iteration"] for r in train] == [1, 2, 3, 4]
    for key in ("loss", "lr", "images_per_s", "data_wait"):
        events = acc.Scalars(f"train/{key}")
        assert [e.step for e in events] == [1, 2, 3, 4], key
        assert [e.value for e in events] == pytest.approx([r[key] for r in train], rel=1e-6), key


def test_validation_scalars_and_images(tb_run, small_world, registry):
    from uniseg.engine.inputs import eval_set
    from uniseg.unify.artifact import load_union

    acc = _events(tb_run)
    val = _records(tb_run, "val")
    assert [r["iteration"] for r in val] == [2, 4]
    mean = acc.Scalars("val/mean_miou")
    assert [e.step for e in mean] == [2, 4] and [e.value for e in mean] == pytest.approx([r["mean_miou"] for r in val])
    for name in TRAIN:
        per = acc.Scalars(f"val/miou/{name}")
        assert [e.value for e in per] == pytest.approx([r["val"][name] for r in val]), name

    from PIL import Image

    union = load_union(tb_run)
    sets = {name: eval_set(name, str(small_world / name), union, registry, split="val") for name in TRAIN}
    shown = {name: min(2, len(es.dataset)) for name, es in sets.items()}  # the first two of each (the small world has fewer)
    assert all(shown.values())
    assert sorted(acc.Tags()["images"]) == sorted(f"val_images/{n}/{i}" for n in TRAIN for i in range(shown[n]))
    for name, es in sets.items():
        palette = np.array([c.colour for c in registry.get(name).classes], dtype=np.uint8)
        for i in range(shown[name]):
            shots = acc.Images(f"val_images/{name}/{i}")
            assert [s.step for s in shots] == [2, 4]
            item = es.dataset[i]
            label = item["label"].numpy()
            h, w = label.shape
            panels = np.asarray(Image.open(io.BytesIO(shots[-1].encoded_image_string)).convert("RGB"))
            assert panels.shape == (h, 3 * w, 3)
            image, pred, truth = panels[:, :w], panels[:, w : 2 * w], panels[:, 2 * w :]
            raw = np.asarray(Image.open(item["path"]).convert("RGB"))
            assert np.abs(image.astype(int) - raw.astype(int)).max() <= 1  # the image itself
            want = np.where(label[..., None] == 255, 0, palette[np.minimum(label, len(palette) - 1)])
            assert np.array_equal(truth, want)  # the ground truth in the dataset's colours
            known = {tuple(c) for c in palette}
            assert {tuple(c) for c in pred.reshape(-1, 3)} <= known  # a prediction in the dataset's classes


def test_a_resumed_run_appends_without_duplicated_steps(small_world, tmp_path, monkeypatch):
    """A run that stops at iteration 5 (here: a non-finite loss) after logging 1-4 to TensorBoard, whose last
    checkpoint is at 3: resumed, it logs 4-6 again, and TensorBoard shows each step once, the new values."""
    from uniseg.engine.trainer import NonFiniteLoss, train

    cfg = tiny_config(small_world, checkpoint_every=3, val_split="none", tensorboard=True)
    with monkeypatch.context() as patch:
        poison_loss_at(patch, 5)
        with pytest.raises(NonFiniteLoss):
            train(cfg, tmp_path / "run")
    assert [e.step for e in _events(tmp_path / "run").Scalars("train/loss")] == [1, 2, 3, 4]
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["iteration"] == 3

    train(cfg, tmp_path / "run", resume=True)
    files = sorted((tmp_path / "run" / "tb").iterdir())
    assert len(files) == 2  # the same run folder, appended to
    acc = _events(tmp_path / "run")
    train_records = _records(tmp_path / "run", "train")
    assert [e.step for e in acc.Scalars("train/loss")] == [r["iteration"] for r in train_records] == [1, 2, 3, 4, 5, 6]
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx([r["loss"] for r in train_records], rel=1e-6)


def test_resume_may_switch_tensorboard_on_and_a_new_run_drops_old_events(small_world, tmp_path):
    import os
    import signal

    from uniseg.engine.trainer import TrainEvents, TrainingInterrupted, train

    class StopAtTwo(TrainEvents):
        def step(self, iteration, loss, lr):
            if iteration == 2:
                os.kill(os.getpid(), signal.SIGINT)

    cfg = tiny_config(small_world, iterations=4, val_split="none")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "run", events=StopAtTwo())
    assert not (tmp_path / "run" / "tb").exists()
    train(cfg.replace(tensorboard=True), tmp_path / "run", resume=True)  # how a run is logged may change on resume
    assert [e.step for e in _events(tmp_path / "run").Scalars("train/loss")] == [3, 4]

    stale = tmp_path / "fresh" / "tb"
    stale.mkdir(parents=True)
    (stale / "events.out.tfevents.1.old").write_bytes(b"")
    (tmp_path / "fresh" / "config.yaml").write_text("# an earlier start that never checkpointed\n")
    train(cfg.replace(iterations=2, tensorboard=True), tmp_path / "fresh")
    names = [p.name for p in stale.iterdir()]
    assert len(names) == 1 and names[0] != "events.out.tfevents.1.old"
    assert [e.step for e in _events(tmp_path / "fresh").Scalars("train/loss")] == [1, 2]


def _without_tensorboard(monkeypatch) -> None:
    """This process as if the tensorboard package were not installed (an import of it fails)."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    for name in [m for m in sys.modules if m == "torch.utils.tensorboard" or m.startswith("torch.utils.tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)


def test_without_the_extra_the_flag_is_a_one_line_error(small_world, tmp_path, monkeypatch, capsys):
    from uniseg.cli.main import main
    from uniseg.engine.trainer import train

    _without_tensorboard(monkeypatch)
    with pytest.raises(UnisegError, match=r"needs the tensorboard package: pip install 'uniseg\[tensorboard\]'"):
        train(tiny_config(small_world, tensorboard=True), tmp_path / "api")
    assert not (tmp_path / "api").exists()
    with pytest.raises(SystemExit) as done:
        main(tiny_args(small_world, tmp_path / "cli", iterations=1) + ["--tensorboard"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: --tensorboard needs the tensorboard package: pip install 'uniseg[tensorboard]'")
    assert not (tmp_path / "cli").exists()


def test_the_config_key_turns_it_on(small_world, tmp_path):
    from uniseg.engine.config import dump_config, read_config

    (tmp_path / "config.yaml").write_text(dump_config(tiny_config(small_world, tensorboard=True)))
    assert "tensorboard: true" in (tmp_path / "config.yaml").read_text()
    assert read_config(tmp_path / "config.yaml").tensorboard is True
    (tmp_path / "bad.yaml").write_text("tensorboard: yes please\n")
    with pytest.raises(UnisegError, match="tensorboard: malformed value 'yes please' \\(expected true or false\\)"):
        read_config(tmp_path / "bad.yaml")


def test_under_torchrun_rank_0_alone_writes(small_world, tmp_path):
    import os
    import subprocess

    out = tmp_path / "ddp"
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "uniseg",
           *tiny_args(small_world, out, iterations=2), "--tensorboard", "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(list((out / "tb").iterdir())) == 1  # one writer: rank 0's
    acc = _events(out)
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
    assert [e.step for e in acc.Scalars("val/mean_miou")] == [2]
    assert acc.Tags()["images"]
