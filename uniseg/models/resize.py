"""Bilinear resizing of class maps as two matrix products, for speed on the CPU.

Bilinear interpolation is separable: each output row mixes two input rows, each output column two
input columns, with the weights ``F.interpolate(mode="bilinear")`` uses. So resizing ``N x C x h x
w`` to ``H x W`` is ``A_H @ x @ A_W^T`` with two small interpolation matrices. On the CPU
PyTorch's bilinear kernel, and above all its backward, is several times slower than these two
matrix products for the many-channel logits a segmentation head upsamples to the crop (100
classes at 160 x 160: 0.10 s against 0.04 s forward and backward, 2 cores). The matrices are
dense, so the products cost ``h + w`` multiply-adds per output value: past an input side of
:data:`MAX_SIDE` PyTorch's kernel is the faster one and is used (``benchmarks/bench_resize.py``).
The results agree with ``F.interpolate`` to float rounding (the weights here are computed in float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MAX_SIDE", "interpolation_matrix", "resize_bilinear"]

#: Largest input side resized by matrix products (measured break-even: about 180 forward and
#: backward, under 256 forward alone, 2 CPU cores).
MAX_SIDE = 128


def interpolation_matrix(n_in: int, n_out: int, align_corners: bool, dtype: torch.dtype = torch.float32,
                         device: torch.device | str | None = None) -> Tensor:
    """``n_out x n_in``: row i holds the two weights output i takes from its input neighbours,
    following PyTorch's source-index rule (``align_corners`` as in ``F.interpolate``)."""
    dst = torch.arange(n_out, dtype=torch.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w1 = src - i0
    a = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    a.index_put_((rows, i0), 1.0 - w1, accumulate=True)
    a.index_put_((rows, i1), w1, accumulate=True)
    return a.to(dtype=dtype, device=device)


def resize_bilinear(x: Tensor, size: tuple[int, int], align_corners: bool) -> Tensor:
    """``F.interpolate(x, size, mode="bilinear", align_corners=...)`` for ``N x C x h x w`` float
    maps: two matrix products on the CPU for inputs up to :data:`MAX_SIDE` a side (same values,
    several times faster with many channels), PyTorch's kernel otherwise (CUDA, half precision,
    large inputs)."""
    h_out, w_out = int(size[0]), int(size[1])
    if (x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.dim() != 4
            or tuple(x.shape[-2:]) == (h_out, w_out) or max(x.shape[-2:]) > MAX_SIDE):
        return F.interpolate(x, size=(h_out, w_out), mode="bilinear", align_corners=align_corners)
    n, c, h, w = x.shape
    a_w = interpolation_matrix(w, w_out, align_corners, x.dtype)
    a_h = interpolation_matrix(h, h_out, align_corners, x.dtype)
    cols = (x.reshape(n * c * h, w) @ a_w.T).reshape(n, c, h, w_out)  # one GEMM over every row
    return torch.matmul(a_h, cols)
