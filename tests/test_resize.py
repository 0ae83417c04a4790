"""resize_bilinear: F.interpolate's bilinear resize as two matrix products (CPU speed path)."""

import pytest
import torch
import torch.nn.functional as F

from uniseg.models.resize import interpolation_matrix, resize_bilinear


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape,size", [
    ((2, 5, 10, 10), (40, 40)),  # the head's x4 upsampling
    ((1, 3, 7, 13), (30, 17)),  # odd sizes, up in one axis and down in the other
    ((1, 2, 9, 6), (4, 3)),  # down in both
    ((1, 1, 1, 5), (3, 5)),  # a single input row; width unchanged
])
def test_matches_f_interpolate_values_and_gradients(shape, size, align_corners):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    want = F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    got = resize_bilinear(x, size, align_corners)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    g = torch.randn_like(want)
    (gw,) = torch.autograd.grad(want, x, g)
    (gg,) = torch.autograd.grad(got, x, g)
    torch.testing.assert_close(gg, gw, rtol=0, atol=1e-12)


def test_float32_agrees_to_rounding():
    x = torch.randn(2, 30, 12, 20)
    torch.testing.assert_close(resize_bilinear(x, (48, 80), False),
                               F.interpolate(x, size=(48, 80), mode="bilinear", align_corners=False), rtol=1e-5, atol=1e-5)


def test_interpolation_rows_sum_to_one_and_hand_checked_weights():
    a = interpolation_matrix(2, 4, align_corners=False, dtype=torch.float64)
    # half-pixel centres: outputs at source positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped by index)
    want = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(a, want)
    b = interpolation_matrix(3, 5, align_corners=True, dtype=torch.float64)  # corners kept: 0, .5, 1, 1.5, 2
    torch.testing.assert_close(b[1], torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(b.sum(1), torch.ones(5, dtype=torch.float64))


def test_same_size_gives_a_copy():
    x = torch.randn(1, 2, 6, 6)
    y = resize_bilinear(x, (6, 6), False)
    assert y is not x and torch.equal(y, x)


def test_a_side_over_max_side_is_left_to_pytorch():
    from uniseg.models.resize import MAX_SIDE

    x = torch.randn(1, 2, 4, MAX_SIDE + 1)
    assert torch.equal(resize_bilinear(x, (8, 300), False), F.interpolate(x, size=(8, 300), mode="bilinear", align_corners=False))
