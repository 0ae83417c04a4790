"""``--pretrained`` with timm's HRNet weights: timm's own model, random weights, saved as timm ships them
(``model.safetensors`` / ``pytorch_model.bin`` in a folder), loaded into uniseg's HRNet, whose stem and
four branches must then give timm's ``features_only`` outputs. Nothing is downloaded."""

from __future__ import annotations

import json
import re

import pytest
import torch

from conftest import run_cli
from engine_fixtures import small_world, tiny_args, tiny_config  # noqa: F401  (fixture)
from timm_support import import_timm
from uniseg.errors import UnisegError
from uniseg.models import build_model, load_pretrained
from uniseg.models.pretrained import IMAGENET_HEAD_PREFIXES

# uniseg variant -> timm's name (the small ones: each test builds both networks on the CPU)
SMALL = [("hrnet_w18_small_v2", "hrnet_w18_small_v2"), ("hrnet_w18_small_v1", "hrnet_w18_small")]


@pytest.fixture(scope="module")
def timm():
    return import_timm()


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Every BatchNorm's affine and running statistics random too (timm initialises them 1 / 0), so a
    tensor loaded into the wrong BatchNorm of the same shape changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def _timm_folder(timm, name: str, folder, *, fmt: str = "safetensors") -> dict:
    """An ImageNet classifier of timm (head included) with random weights, saved as timm's hub folders hold it."""
    from safetensors.torch import save_file

    torch.manual_seed(1)
    src = timm.create_model(name, pretrained=False)
    _randomise(src)
    state = src.state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(state, folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps({"architecture": name, "num_classes": 1000, "num_features": 2048}))
    return state


@pytest.mark.parametrize("variant,timm_name", SMALL)
def test_timm_weights_give_timms_own_stem_and_branch_features(timm, tmp_path, variant, timm_name):
    state = _timm_folder(timm, timm_name, tmp_path / timm_name)
    model = build_model(variant, 7)
    report = load_pretrained(model, tmp_path / timm_name)  # the folder, as a user gives it
    head = [k for k in state if k.startswith(IMAGENET_HEAD_PREFIXES)]
    assert head and sorted(report.ignored) == sorted(head)
    assert len(report.loaded) == len(state) - len(head)
    assert not report.unexpected and report.ok
    assert all(k.startswith("last_layer.") for k in report.missing)
    assert report.path.endswith("model.safetensors")

    # timm's feature extractor, reading the same file by itself
    feats = timm.create_model(timm_name, pretrained=True, features_only=True, feature_location="",
                              pretrained_cfg_overlay={"file": str(tmp_path / timm_name / "model.safetensors")})
    # The one difference that is no tensor: classification HRNet upsamples in its fuse layers with
    # 'nearest', the segmentation HRNet bilinearly (align_corners False). Set timm's to the segmenter's.
    ups = [m for m in feats.modules() if isinstance(m, torch.nn.Upsample)]
    assert ups and all(m.mode == "nearest" for m in ups)
    for m in ups:
        m.mode, m.align_corners = "bilinear", False
    feats.eval()
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs = feats(x)
        stem = model.relu(model.bn1(model.conv1(x)))
        ours = [stem, *model.forward_backbone(x)]
    assert [t.shape for t in theirs] == [o.shape for o in ours]
    assert [o.shape[1] for o in ours] == feats.feature_info.channels()
    for i, (t, o) in enumerate(zip(theirs, ours)):
        scale = float(t.abs().max())
        assert scale > 0
        torch.testing.assert_close(o, t, rtol=1e-5, atol=1e-5 * scale, msg=f"feature {i}")


def test_a_folder_with_pytorch_model_bin_and_train_notes_the_load_report(timm, tmp_path, small_world):
    from uniseg.engine.trainer import build_network, resolve_run_union
    from uniseg.labelspaces import default_registry

    state = _timm_folder(timm, "hrnet_w18_small_v2", tmp_path / "w18s", fmt="bin")
    cfg = tiny_config(small_world, model="hrnet_w18_small_v2", pretrained=str(tmp_path / "w18s"))
    model, notes = build_network(cfg, resolve_run_union(cfg, default_registry()))
    head = sum(k.startswith(IMAGENET_HEAD_PREFIXES) for k in state)
    line = f"{tmp_path / 'w18s' / 'pytorch_model.bin'}: loaded {len(state) - head} tensors"
    assert any(n.startswith(line) and f"ignored {head} ImageNet-head/loss keys" in n for n in notes), notes
    assert torch.equal(model.state_dict()["stage4.1.fuse_layers.3.2.0.0.weight"], state["stage4.1.fuse_layers.3.2.0.0.weight"])


def test_weights_of_another_variant_name_both(timm, tmp_path):
    state = _timm_folder(timm, "hrnet_w18_small", tmp_path / "v1")
    model = build_model("hrnet_w18_small_v2", 7)
    before = model.state_dict()["conv1.weight"].clone()
    with pytest.raises(UnisegError) as err:
        load_pretrained(model, tmp_path / "v1")
    msg = str(err.value)
    assert "\n" not in msg
    assert "weights of hrnet_w18_small_v1 (timm: hrnet_w18_small), but the model is hrnet_w18_small_v2" in msg
    assert "--model hrnet_w18_small_v1" in msg and "layer1.0.conv1.weight: checkpoint (32, 64, 1, 1) vs model (64, 64, 1, 1)" in msg
    assert torch.equal(model.state_dict()["conv1.weight"], before)  # nothing copied
    assert state  # (the file was real)


@pytest.mark.parametrize("timm_name,expected", [
    ("hrnet_w32", "weights of timm's hrnet_w32 (not a uniseg variant), but the model is hrnet_w18"),
    ("hrnet_w48", "weights of hrnet_w48, but the model is hrnet_w18; build hrnet_w48 (--model hrnet_w48)"),
    ("hrnet_w18_small_v2", "weights of hrnet_w18_small_v2, but the model is hrnet_w18; build hrnet_w18_small_v2"),
])
def test_every_timm_hrnet_is_named_from_its_shapes(timm, timm_name, expected):
    """timm's larger HRNets, built on the meta device (shapes, no memory), checked against uniseg's W18."""
    from uniseg.models.timm_weights import check_variant, describe_layout, hrnet_layout, variant_of

    with torch.device("meta"):
        state = timm.create_model(timm_name, pretrained=False).state_dict()
        model = build_model("hrnet_w18", 3)
    with pytest.raises(UnisegError, match=re.escape(expected)):
        check_variant(state, model, "w.safetensors")
    layout = hrnet_layout(state)
    assert layout is not None and (variant_of(layout) is None) == (timm_name == "hrnet_w32")
    assert timm_name.replace("hrnet_w32", "timm's hrnet_w32") in describe_layout(layout)


def test_every_uniseg_variant_timm_has_reads_back_as_itself(timm):
    from uniseg.models.timm_weights import TIMM_NAMES, hrnet_layout, variant_of

    assert set(TIMM_NAMES.values()) <= set(timm.list_models("hrnet*"))
    for variant, timm_name in TIMM_NAMES.items():
        with torch.device("meta"):
            state = timm.create_model(timm_name, pretrained=False).state_dict()
        assert variant_of(hrnet_layout(state)) == variant


def test_train_takes_timm_weights_from_the_cli_and_refuses_another_variants_in_one_line(timm, tmp_path, small_world):
    state = _timm_folder(timm, "hrnet_w18_small_v2", tmp_path / "w18s")
    out = tmp_path / "run"
    res = run_cli(*tiny_args(small_world, out, iterations=1), "--pretrained", str(tmp_path / "w18s"))  # --model hrnet_tiny
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
    assert "weights of hrnet_w18_small_v2, but the model is hrnet_tiny" in res.stderr
    assert not (out / "last.pt").exists()

    args = tiny_args(small_world, out, iterations=1)
    args[args.index("hrnet_tiny")] = "hrnet_w18_small_v2"
    res = run_cli(*args, "--pretrained", str(tmp_path / "w18s"), "--quiet")
    assert res.returncode == 0, res.stderr
    head = sum(k.startswith(IMAGENET_HEAD_PREFIXES) for k in state)
    assert f"note: {tmp_path / 'w18s' / 'model.safetensors'}: loaded {len(state) - head} tensors" in res.stderr
    assert f"ignored {head} ImageNet-head/loss keys" in res.stderr
    assert torch.load(out / "last.pt", weights_only=True)["config"]["pretrained"] == str(tmp_path / "w18s")


def test_a_damaged_safetensors_file_and_an_empty_folder_are_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    model = build_model("hrnet_tiny", 3)
    save_file(model.state_dict(), str(tmp_path / "whole.safetensors"))
    data = (tmp_path / "whole.safetensors").read_bytes()
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "model.safetensors").write_bytes(data[: len(data) // 2])  # a download cut short
    with pytest.raises(UnisegError, match=r"cut/model\.safetensors: damaged safetensors file \(.+\); fetch or export it again$"):
        load_pretrained(model, tmp_path / "cut")
    (tmp_path / "junk.safetensors").write_bytes(b"<html>not found</html>")
    with pytest.raises(UnisegError, match=r"junk\.safetensors: not a safetensors file"):
        load_pretrained(model, tmp_path / "junk.safetensors")
    assert load_pretrained(model, tmp_path / "whole.safetensors").ok  # the same file whole: fine
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnisegError, match=r"no model\.safetensors, pytorch_model\.bin or \.pth file in this folder"):
        load_pretrained(model, tmp_path / "empty")
