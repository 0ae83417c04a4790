"""What ``uniseg train`` checks about memory before its first step: a global batch larger than the
training set is refused at once, a batch whose activations cannot fit the device is refused naming a
batch size that fits (a one-image probe, never the whole batch), one that barely fits is warned
about, and a crop far larger than the scaled images is warned about."""

from __future__ import annotations

import pytest
import torch

from conftest import run_cli
from engine_fixtures import small_world, tiny_args, tiny_config  # noqa: F401  (fixture)


def _cityscapes(world):
    from uniseg.engine.config import DatasetSpec

    return [DatasetSpec("cityscapes", str(world / "cityscapes"))]


def test_a_batch_larger_than_the_training_set_is_one_line_before_anything_runs(small_world, tmp_path):
    out = tmp_path / "run"
    res = run_cli("train", "--datasets", f"cityscapes={small_world / 'cityscapes'}", "--model", "hrnet_tiny", "--iterations", "1",
                  "--batch-size", "64", "--crop", "48x48", "--short-side", "64", "--workers", "0", "--out", str(out))
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert "--batch-size 64 is larger than the training set" in lines[0] and "use --batch-size" in lines[0]
    assert not (out / "config.yaml").exists() and not (out / "last.pt").exists()


def test_the_probe_scales_with_the_crop_and_leaves_the_network_as_it_was():
    from uniseg.engine.memory import activation_per_image
    from uniseg.engine.runtime import Runtime
    from uniseg.models import build_model

    torch.manual_seed(0)
    net = build_model("hrnet_tiny", 19).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rt = Runtime(torch.device("cpu"))
    small, large = activation_per_image(net, (64, 64), rt), activation_per_image(net, (128, 128), rt)
    assert small > 0 and large == pytest.approx(4 * small, rel=0.01)  # activations grow with the pixels
    # a crop above the probe size is measured at the probe size and scaled: the same figure per pixel
    assert activation_per_image(net, (512, 512), rt) == pytest.approx(64 * small, rel=0.01)
    assert net.training and all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # no BatchNorm statistics moved


def _guard(world, available: int, batch: int):
    from uniseg.engine.memory import check_activation_memory
    from uniseg.engine.runtime import Runtime
    from uniseg.models import build_model

    config = tiny_config(world, datasets=_cityscapes(world), batch_size=batch, crop=(256, 256))
    net = build_model("hrnet_tiny", 19)
    return check_activation_memory(net, config, Runtime(torch.device("cpu")), batch, available=available)


def test_a_batch_that_cannot_fit_is_refused_naming_one_that_fits(small_world):
    from uniseg.engine.memory import WARN_SHARE, activation_per_image, fixed_bytes
    from uniseg.engine.runtime import Runtime
    from uniseg.errors import UnisegError
    from uniseg.models import build_model

    net = build_model("hrnet_tiny", 19)
    per_image = activation_per_image(net, (256, 256), Runtime(torch.device("cpu")))
    fixed = fixed_bytes(net, "sgd", 0.9)
    free = int((fixed + 4.5 * per_image) / WARN_SHARE)  # 4 images leave the margin, 5 fit without it, 6 do not fit
    with pytest.raises(UnisegError) as err:
        _guard(small_world, free, 6)
    msg = str(err.value)
    fits = int((WARN_SHARE * free - fixed) // per_image)
    assert fits == 4 and f"use --batch-size {fits} or less" in msg and "probe" in msg and "\n" not in msg
    assert _guard(small_world, free, fits) == []  # the batch it names passes
    warned = _guard(small_world, free, 5)  # fits, without the margin: a warning
    assert len(warned) == 1 and "may not fit" in warned[0] and "--batch-size 4" in warned[0]
    with pytest.raises(UnisegError, match="even one image does not fit: use a smaller --crop"):
        _guard(small_world, fixed + per_image // 2, 1)


def test_train_refuses_before_writing_anything_when_memory_is_short(small_world, tmp_path, monkeypatch):
    from uniseg.engine import runtime as runtime_mod
    from uniseg.engine.trainer import train
    from uniseg.errors import UnisegError

    monkeypatch.setattr(runtime_mod, "available_memory", lambda device: 4 * 2**20)  # 4 MiB free
    out = tmp_path / "run"
    with pytest.raises(UnisegError, match=r"--batch-size 4: a step of 4 image\(s\) of 48x48 needs about"):
        train(tiny_config(small_world), out)
    assert not (out / "config.yaml").exists() and not (out / "last.pt").exists()


def test_a_crop_far_beyond_the_scaled_images_is_warned_about(small_world, tmp_path):
    """64 x 128 images, shorter side 64, scale up to 2: the largest is 128 x 256, so a 260 x 260 crop
    (more than twice 128) only pads; 48 x 48 does not."""
    res = run_cli(*tiny_args(small_world, tmp_path / "a", iterations=1, extra=("--crop", "260x260", "--batch-size", "2", "--quiet")))
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning: --crop")]
    assert len(warnings) == 1, res.stderr
    assert "more than twice the largest training image after scaling (128x256" in warnings[0]
    assert "use --crop 128x256 or less" in warnings[0]
    from uniseg.engine.config import TrainConfig
    from uniseg.engine.memory import crop_warning
    from uniseg.data import SegDataset
    from uniseg.labelspaces import Registry
    from uniseg.unify.artifact import open_union

    reg = Registry.from_dirs(use_env=False)
    union, _ = open_union(["cityscapes"], reg)
    ds = [SegDataset("cityscapes", small_world / "cityscapes", union, registry=reg)]
    assert crop_warning(TrainConfig(crop=(48, 48), short_side=64), ds) is None
    assert crop_warning(TrainConfig(crop=(256, 512), short_side=64), ds) is None  # exactly twice: fine
    assert crop_warning(TrainConfig(crop=(48, 600), short_side=64), ds) is not None  # one side is enough
