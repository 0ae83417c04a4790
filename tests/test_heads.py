"""The two classifiers: the cosine classifier of Appendix G and the linear 1x1 conv."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from uniseg.models import HEADS, CosineClassifier, LinearClassifier, build_head


def _features(seed: int = 0, b: int = 2, c: int = 8, h: int = 3, w: int = 4, dtype=torch.float64):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_cosine_logits_are_scale_times_cosine_of_feature_and_class_weight():
    head = CosineClassifier(8, 5).double()
    x = _features()
    logits = head(x)
    # independent per-pixel cosine: F.cosine_similarity between the feature and each weight
    feats = x.permute(0, 2, 3, 1)[..., None, :]  # B h w 1 C
    weights = head.weight.detach().flatten(1)  # K C
    cos = F.cosine_similarity(feats, weights, dim=-1).permute(0, 3, 1, 2)
    assert torch.allclose(head.cosine(x), cos, atol=1e-12)
    assert torch.allclose(logits, 20.0 * cos, atol=1e-10)
    assert head.cosine(x).abs().max() <= 1.0 + 1e-12


def test_cosine_is_invariant_to_feature_and_weight_norms_and_has_no_bias():
    head = CosineClassifier(8, 5, scale=10.0).double()
    x = _features(1)
    base = head(x)
    assert torch.allclose(head(x * 7.5), base, atol=1e-10)
    with torch.no_grad():
        head.weight.mul_(torch.rand(5, 1, 1, 1, dtype=torch.float64) * 9 + 0.1)
    assert torch.allclose(head(x), base, atol=1e-10)
    assert [n for n, _ in head.named_parameters()] == ["weight"]
    assert set(head.state_dict()) == {"weight"} and head.weight.shape == (5, 8, 1, 1)


def _hand_cosine(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """cos(feature, class weight) per pixel, in float64: unit vectors (F.normalize), then a dot product."""
    f = F.normalize(x.double(), dim=1)
    w = F.normalize(weight.detach().double().flatten(1), dim=1)
    return torch.einsum("bchw,kc->bkhw", f, w)


def test_forward_with_cosine_returns_both_maps_from_one_pass():
    head = CosineClassifier(8, 3, scale=20.0).double()
    x = _features(2)
    logits, cos = head.forward_with_cosine(x)
    want = _hand_cosine(x, head.weight)
    assert torch.allclose(cos, want, rtol=0, atol=1e-12)
    assert torch.allclose(logits, 20.0 * want, rtol=0, atol=1e-11)
    assert torch.allclose(head(x), 20.0 * want, rtol=0, atol=1e-11)


def test_cosine_handles_zero_features_and_half_precision():
    head = CosineClassifier(8, 4)
    x = _features(3, dtype=torch.float32)
    x[:, :, 0, 0] = 0.0  # ReLU features can be all zero at a pixel
    x.requires_grad_()
    out = head(x)
    assert torch.isfinite(out).all() and torch.equal(out[:, :, 0, 0], torch.zeros_like(out[:, :, 0, 0]))
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(head.weight.grad).all()
    # half precision against float64 on the very same (rounded) inputs and weights: 20 x cos within the
    # dtype's rounding of the output (20 x 2**-11 = 0.01 for float16, 20 x 2**-8 = 0.08 for bfloat16).
    # float16 features of 2e4: their squares overflow float16 (max 65504), not the float32 norms taken here
    for dtype, magnitude, tol in ((torch.float16, 2.0e4, 0.03), (torch.bfloat16, 1.0e18, 0.15)):
        xh = (x.detach() * magnitude).to(dtype)
        half = CosineClassifier(8, 4)
        with torch.no_grad():
            half.weight.copy_(_features(5, b=4, c=8, h=1, w=1, dtype=torch.float32))
        half = half.to(dtype)
        yh = half(xh)
        assert yh.dtype == dtype
        assert (yh.double() - 20.0 * _hand_cosine(xh, half.weight)).abs().max() <= tol, dtype
        assert torch.equal(yh[:, :, 0, 0], torch.zeros_like(yh[:, :, 0, 0]))  # the all-zero pixel: cosine 0 by definition


def test_linear_classifier_is_a_1x1_conv_with_bias():
    head = LinearClassifier(8, 5).double()
    x = _features(4)
    want = torch.einsum("bchw,kc->bkhw", x, head.weight.detach().flatten(1)) + head.bias.detach()[None, :, None, None]
    assert torch.allclose(head(x), want, atol=1e-12)
    assert set(head.state_dict()) == {"weight", "bias"} and head.weight.shape == (5, 8, 1, 1)
    assert head.num_classes == 5


def test_build_head():
    assert HEADS == ("linear", "cosine")
    assert isinstance(build_head("cosine", 4, 3, scale=5.0), CosineClassifier)
    assert build_head("cosine", 4, 3, scale=5.0).scale == 5.0
    assert isinstance(build_head("linear", 4, 3), LinearClassifier)
    with pytest.raises(ValueError, match="unknown head 'mlp'"):
        build_head("mlp", 4, 3)
    with pytest.raises(ValueError, match="scale"):
        CosineClassifier(4, 3, scale=0.0)
