"""Per-pixel classifiers over the K unified classes: a linear 1x1 conv and the cosine classifier.

Both take ``B x C x h x w`` features and return ``B x K x h x w`` logits, and both keep their
class weights in a parameter called ``weight`` of shape ``K x C x 1 x 1`` -- the shape of the
official HRNet head's last 1x1 conv -- so checkpoints line up whichever head is used.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uniseg.models.registry import HEADS

__all__ = ["HEADS", "CosineClassifier", "LinearClassifier", "build_head"]


class LinearClassifier(nn.Conv2d):
    """A 1x1 convolution with bias: ``logit = w_c . x + b_c`` (the official HRNet classifier)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(in_channels, num_classes, kernel_size=1, bias=True)

    @property
    def num_classes(self) -> int:
        return self.out_channels


class CosineClassifier(nn.Module):
    """Appendix G: ``logit_c = scale * cos(x, w_c)``, l2-normalised features and weights, no bias.

    ``scale`` (t = 20 in the paper) is fixed, not learnt. :meth:`cosine` gives the raw cosine
    map in [-1, 1] that relation mining (Eq. 7) averages; :meth:`forward_with_cosine` returns
    the logits and that map from one pass. Norms are taken in float32 whatever the input dtype,
    features too long to square in it first scaled down.
    """

    def __init__(self, in_channels: int, num_classes: int, scale: float = 20.0, eps: float = 1e-6) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ValueError(f"CosineClassifier needs positive sizes, got in_channels={in_channels}, num_classes={num_classes}")
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale}")
        self.in_channels = in_channels
        self.out_channels = num_classes
        self.scale = float(scale)
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.empty(num_classes, in_channels, 1, 1))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    @property
    def num_classes(self) -> int:
        return self.out_channels

    def normalized_weight(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """``K x C x 1 x 1`` class weights of unit l2 norm."""
        w = self.weight.to(dtype)
        return F.normalize(w.flatten(1), dim=1, eps=self.eps).view_as(w)

    def cosine(self, x: Tensor) -> Tensor:
        """Cosine similarity between each pixel's feature and each class weight, ``B x K x h x w``."""
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        xc = x.to(cdt)
        # a feature whose squared length overflows (bfloat16 spans float32's range) would get norm
        # inf and cosine 0: such pixels are divided by their largest entry first; others are untouched
        peak = xc.abs().amax(dim=1, keepdim=True)
        xc = xc / torch.where(peak > (torch.finfo(cdt).max / xc.shape[1]) ** 0.5, peak, torch.ones_like(peak))  # / 1 is exact
        xn = F.normalize(xc, dim=1, eps=self.eps).to(x.dtype)
        return F.conv2d(xn, self.normalized_weight(cdt).to(x.dtype))

    def forward_with_cosine(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(scale * cosine, cosine)`` from a single pass."""
        cos = self.cosine(x)
        return cos * self.scale, cos

    def forward(self, x: Tensor) -> Tensor:
        return self.cosine(x) * self.scale

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, scale={self.scale:g}, bias=False"


def build_head(kind: str, in_channels: int, num_classes: int, *, scale: float = 20.0) -> nn.Module:
    """``"linear"`` -> :class:`LinearClassifier`, ``"cosine"`` -> :class:`CosineClassifier`."""
    if kind == "linear":
        return LinearClassifier(in_channels, num_classes)
    if kind == "cosine":
        return CosineClassifier(in_channels, num_classes, scale=scale)
    raise ValueError(f"unknown head {kind!r}: choose one of {', '.join(HEADS)}")
