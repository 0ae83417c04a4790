"""HRNetV2 against the official models: every state-dict key and shape, parameter counts, the
official MAC figures, the official logits and initialisation, checkpoint loading, forward
shapes and the pluggable head."""

from __future__ import annotations

import math
import re

import pytest
import torch

from uniseg.errors import UnisegError
from uniseg.models import CosineClassifier, LinearClassifier, build_model, list_models, load_pretrained
from uniseg.models.complexity import count_macs, measure

from conftest import read_data
from hrnet_reference import fill_state_dict, reference_input

OFFICIAL = ("hrnet_w18_small_v1", "hrnet_w18_small_v2", "hrnet_w48")
# Official README (HRNet-Semantic-Segmentation), Cityscapes 19 classes tested at 1024x2048:
# "GFLOPs" = multiply-adds of conv/linear layers / 2**30 (lib/utils/modelsummary.py).
OFFICIAL_GFLOPS_1024x2048 = {"hrnet_w18_small_v1": 31.1, "hrnet_w18_small_v2": 71.6, "hrnet_w48": 696.2}


@pytest.fixture(scope="module")
def official(hrnet_official) -> dict:
    return hrnet_official


@pytest.fixture(scope="module")
def meta_models() -> dict:
    """Every variant with a 19-class linear head, built once on the meta device (shapes only)."""
    with torch.device("meta"):
        return {name: build_model(name, 19) for name in list_models()}


def _shapes(model) -> dict:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", OFFICIAL)
def test_state_dict_keys_and_shapes_equal_the_official_ones(name, official, meta_models):
    ref = official[name]["keys"]
    ours = _shapes(meta_models[name])
    assert list(ours) == list(ref), f"keys differ: missing {sorted(set(ref) - set(ours))[:5]}, extra {sorted(set(ours) - set(ref))[:5]}"
    mismatched = [(k, ours[k], ref[k]) for k in ref if ours[k] != ref[k]]
    assert not mismatched, mismatched[:5]


@pytest.mark.parametrize("name", OFFICIAL)
def test_parameter_counts_equal_the_official_ones(name, official, meta_models):
    assert sum(p.numel() for p in meta_models[name].parameters()) == official[name]["params"]


def test_full_w18_is_w48_with_narrower_branches(meta_models):
    """No official dict for W18: it shares W48's layout (modules 1/1/4/3, 4 blocks), widths 18-144 for 48-384."""
    w18, w48 = _shapes(meta_models["hrnet_w18"]), _shapes(meta_models["hrnet_w48"])
    assert list(w18) == list(w48)
    width = {48: 18, 96: 36, 192: 72, 384: 144, 720: 270}
    for key, shape in w48.items():
        assert w18[key] == [width.get(s, s) if i < 2 else s for i, s in enumerate(shape)], key


@pytest.mark.parametrize("name", OFFICIAL)
def test_macs_at_1024x2048_equal_the_official_readme(name, meta_models):
    macs = count_macs(meta_models[name], (1024, 2048))
    assert round(macs / 2**30, 1) == OFFICIAL_GFLOPS_1024x2048[name]


def test_macs_of_a_real_forward_match_the_meta_count():
    """Count conv MACs from the actual output shapes of a real forward (an independent path)."""
    model = build_model("hrnet_tiny", 5).eval()
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        total += mod.weight.numel() * out.shape[-2] * out.shape[-1]

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.randn(1, 3, 70, 90))
    for h in hs:
        h.remove()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert count_macs(model, (70, 90)) == total
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)  # model untouched
    c = measure(model, (70, 90))
    assert c.params == sum(p.numel() for p in model.parameters()) and c.size == (70, 90)


def test_tiny_is_small():
    params = sum(p.numel() for p in build_model("hrnet_tiny", 19).parameters())
    assert 100_000 < params < 500_000


# ---------------------------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(64, 96), (70, 90)])
def test_forward_returns_input_size_logits_and_quarter_scale_aux(size):
    model = build_model("hrnet_tiny", 7, head="cosine").eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        logits = model(x)
        aux = model(x, return_aux=True)
    assert logits.shape == (2, 7, *size)
    assert torch.equal(aux["logits"], logits)
    q = ((size[0] + 3) // 4, (size[1] + 3) // 4)
    assert aux["logits_lowres"].shape == (2, 7, *q)
    assert aux["features"].shape == (2, model.feature_channels, *q)
    assert aux["cosine"].shape == (2, 7, *q)
    # the cosine head by hand (float64): unit features and unit class weights, their dot product; logits 20 x that
    feats = torch.nn.functional.normalize(aux["features"].double(), dim=1)
    weights = torch.nn.functional.normalize(model.classifier.weight.detach().double().flatten(1), dim=1)
    cos = torch.einsum("bchw,kc->bkhw", feats, weights)
    assert torch.allclose(aux["cosine"].double(), cos, rtol=0, atol=1e-5)
    assert torch.allclose(aux["logits_lowres"].double(), 20.0 * cos, rtol=0, atol=2e-4)


@pytest.mark.parametrize("name", ["hrnet_w18_small_v1", "hrnet_w18_small_v2"])
def test_official_variants_train_on_a_small_input(name):
    model = build_model(name, 4)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 4, 64, 64)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert "cosine" not in model(x, return_aux=True)


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    model = build_model("hrnet_tiny", 5).eval()
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        ref = model(x)
        cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    assert torch.allclose(ref, cl, atol=1e-5)


def test_heads_sit_at_last_layer_3_and_can_be_swapped():
    model = build_model("hrnet_tiny", 6, head="cosine")
    assert isinstance(model.last_layer[3], CosineClassifier) and "last_layer.3.bias" not in model.state_dict()
    assert model.state_dict()["last_layer.3.weight"].shape == (6, model.feature_channels, 1, 1)
    model.reset_classifier(9, head="linear")
    assert isinstance(model.classifier, LinearClassifier) and model.num_classes == 9
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 9, 64, 64)


@pytest.mark.parametrize(
    "args,match",
    [
        (("hrnet_w18_smal", 19), "did you mean hrnet_w18_small"),
        (("hrnet_tiny", 19, "mlp"), "unknown head 'mlp'"),
        (("hrnet_tiny", 0), "num_classes must be a positive integer"),
    ],
)
def test_build_model_errors(args, match):
    with pytest.raises(UnisegError, match=match):
        build_model(*args)


# ---------------------------------------------------------------------------------------------
# numerics: the official code's logits for the same weights and input (tests/data), and its init
# ---------------------------------------------------------------------------------------------

LOGIT_TOL = 2e-5  # logits are O(1); the official code and uniseg agree to 0.0 on one machine


@pytest.fixture(scope="module")
def reference_logits() -> dict:
    return read_data("hrnet_reference_logits.json")


def _lowres_logits(name: str, ref: dict, **kwargs) -> torch.Tensor:
    model = fill_state_dict(build_model(name, ref["num_classes"], **kwargs))
    with torch.no_grad():
        return model(reference_input(*ref["input_hw"]), return_aux=True)["logits_lowres"][0]


@pytest.mark.parametrize("name", ["hrnet_w18_small_v1", "hrnet_w18_small_v2"])
def test_default_logits_equal_the_official_published_models(name, reference_logits):
    """The published w18-small checkpoints come from the pytorch-v1.1 branch, whose upsampling
    passes no align_corners (= False): that is uniseg's default, and it matches to float noise."""
    official = torch.tensor(reference_logits["logits"][name]["false"])
    ours = _lowres_logits(name, reference_logits)
    assert ours.shape == official.shape == (4, 11, 15)
    assert (ours - official).abs().max().item() <= LOGIT_TOL
    assert build_model(name, 4).align_corners is False


@pytest.mark.parametrize("name", ["hrnet_w18_small_v1", "hrnet_w18_small_v2"])
def test_align_corners_true_equals_the_hrnet_ocr_default_and_is_measurably_different(name, reference_logits):
    """HRNet-OCR's code with its default MODEL.ALIGN_CORNERS = True; the flag is kept on the model."""
    ref = reference_logits["logits"][name]
    model = build_model(name, 4, align_corners=True)
    assert model.align_corners is True
    assert all(m.align_corners is True for m in model.modules() if hasattr(m, "fuse_layers"))
    ours = _lowres_logits(name, reference_logits, align_corners=True)
    assert (ours - torch.tensor(ref["true"])).abs().max().item() <= LOGIT_TOL
    off = (ours - torch.tensor(ref["false"])).abs().max().item()
    assert off > 500 * LOGIT_TOL, f"align_corners True vs False differ by only {off}"
    model.align_corners = False  # e.g. restored from a checkpoint's record: every resize follows
    assert all(m.align_corners is False for m in model.modules() if hasattr(m, "fuse_layers"))
    assert "align_corners=False" in model.extra_repr()


def test_the_fill_reaches_every_tensor_and_is_platform_free():
    """The shared fill (tests/hrnet_reference.py) sets BN statistics too, from a pinned hash."""
    from hrnet_reference import hashed_uniform

    # splitmix64's published first outputs for seed 0 (crc32("") == 0): the hash is the standard one
    assert hashed_uniform("", 2).tolist() == [(0xE220A8397B1DCDAF >> 11) / 2**53, (0x6E789E6AA1B965F4 >> 11) / 2**53]
    from hrnet_reference import fill_value

    fresh = build_model("hrnet_tiny", 3).state_dict()
    model = fill_state_dict(build_model("hrnet_tiny", 3))
    sd = model.state_dict()
    assert not model.training
    for key, value in sd.items():  # every tensor, buffers included, holds the fill, not its init
        assert torch.equal(value, torch.from_numpy(fill_value(key, tuple(value.shape))).to(value.dtype)), key
        assert value.dtype == torch.long or not torch.equal(value, fresh[key]), key
    assert 0.5 <= sd["bn1.running_var"].min() and sd["bn1.running_var"].max() < 1.5
    assert sd["bn1.running_mean"].abs().max() < 0.2 and sd["bn1.running_mean"].abs().min() > 0
    assert sd["last_layer.3.bias"].abs().min() > 0


def test_initialisation_is_the_official_one():
    """Official init_weights: conv weights N(0, 0.001), BN 1 / 0, conv biases left at PyTorch's
    default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the official code never touches them)."""
    torch.manual_seed(0)
    model = build_model("hrnet_w18_small_v2", 19)
    convs = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    weights = torch.cat([m.weight.detach().flatten() for m in convs.values()])
    assert weights.std().item() == pytest.approx(0.001, rel=0.02) and weights.mean().abs().item() < 1e-5
    biased = {n: m for n, m in convs.items() if m.bias is not None}
    assert sorted(biased) == ["last_layer.0", "last_layer.3"]
    for name, m in biased.items():
        bound = 1 / math.sqrt(m.weight[0].numel())
        b = m.bias.detach()
        assert b.abs().max().item() <= bound, name
        assert b.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.25), name  # uniform, not zeros
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias)) for m in bns)
    torch.manual_seed(0)
    again = build_model("hrnet_w18_small_v2", 19).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------------------
# load_pretrained
# ---------------------------------------------------------------------------------------------


def test_an_official_style_checkpoint_loads_every_key(tmp_path, official):
    """A checkpoint with exactly the official keys and shapes (random values), wrapped as the
    official trainer saves it, plus the ImageNet head of the classification HRNet."""
    g = torch.Generator().manual_seed(0)
    ckpt = {}
    for key, shape in official["hrnet_w18_small_v1"]["keys"].items():
        ckpt["module." + key] = torch.randint(0, 5, ()) if not shape else torch.randn(shape, generator=g)
    ckpt["module.incre_modules.0.0.conv1.weight"] = torch.randn(32, 16, 1, 1)
    ckpt["module.classifier.weight"] = torch.randn(1000, 2048)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": ckpt, "epoch": 3}, path)

    model = build_model("hrnet_w18_small_v1", 19)
    report = load_pretrained(model, path)
    assert not report.missing and not report.unexpected and not report.skipped
    assert sorted(report.ignored) == ["classifier.weight", "incre_modules.0.0.conv1.weight"]
    assert len(report.loaded) == len(official["hrnet_w18_small_v1"]["keys"])
    sd = model.state_dict()
    assert all(torch.equal(sd[k[len("module."):]], v.to(sd[k[len("module."):]].dtype)) for k, v in ckpt.items() if k[len("module."):] in sd)
    assert report.ok


def test_loading_into_another_number_of_classes_keeps_the_new_classifier(tmp_path):
    src = build_model("hrnet_tiny", 19)
    torch.save({"model": src.state_dict()}, tmp_path / "seg.pth")
    dst = build_model("hrnet_tiny", 70, head="cosine")
    fresh = dst.classifier.weight.detach().clone()
    report = dst.load_pretrained(tmp_path / "seg.pth")
    assert sorted(report.skipped) == ["last_layer.3.bias", "last_layer.3.weight"]
    assert report.notes and any("classes" in n for n in report.notes)
    assert torch.equal(dst.classifier.weight, fresh)
    assert torch.equal(dst.state_dict()["last_layer.0.weight"], src.state_dict()["last_layer.0.weight"])
    assert not report.missing and report.ok


def test_imagenet_checkpoint_without_head_reports_the_head_missing(tmp_path):
    src = build_model("hrnet_tiny", 3)
    backbone = {k: v for k, v in src.state_dict().items() if not k.startswith("last_layer.")}
    torch.save(backbone, tmp_path / "imagenet.pth")
    report = load_pretrained(build_model("hrnet_tiny", 3), tmp_path / "imagenet.pth")
    assert report.missing and all(k.startswith("last_layer.") for k in report.missing)
    assert report.ok and "missing" in report.summary()


def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    torch.save(build_model("hrnet_w18_small_v1", 19).state_dict(), tmp_path / "v1.pth")
    model = build_model("hrnet_w18_small_v2", 19)
    before = model.state_dict()["conv1.weight"].clone()
    with pytest.raises(UnisegError, match=re.escape("layer1.0.conv1.weight: checkpoint (32, 64, 1, 1) vs model (64, 64, 1, 1)")):
        load_pretrained(model, tmp_path / "v1.pth")
    assert torch.equal(model.state_dict()["conv1.weight"], before)  # nothing copied on error


def test_missing_and_unreadable_files_raise(tmp_path):
    model = build_model("hrnet_tiny", 3)
    with pytest.raises(UnisegError, match="nope.pth' not found"):
        load_pretrained(model, tmp_path / "nope.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UnisegError, match=re.escape("bad.pth: not a PyTorch checkpoint (torch.save writes a zip archive or a pickle; this file starts with b'not a ch')")):
        load_pretrained(model, tmp_path / "bad.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(UnisegError, match=r"empty\.pth: empty file \(0 bytes\), not a PyTorch checkpoint"):
        load_pretrained(model, tmp_path / "empty.pth")
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 a damaged zip")
    with pytest.raises(UnisegError, match="cannot read checkpoint .*broken.pth"):
        load_pretrained(model, tmp_path / "broken.pth")
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(UnisegError, match="no key matches"):
        load_pretrained(model, tmp_path / "other.pth")
