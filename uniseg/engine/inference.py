"""Whole-image inference shared by validation, ``uniseg eval`` and ``uniseg predict``.

One function decides what a model predicts for an image, so evaluation and the PNGs of
``predict`` can never disagree: the network input may be resized (``infer_height``), large
inputs are covered by overlapping windows whose logits are averaged, and the logits are
brought to the requested output size (the label file's native resolution) before the argmax.
The argmax runs over a subset of the unified channels: those of the label space being scored
(``EvalMap.channels``), or all of them for the union.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class InferenceSettings:
    """How an image is presented to the network."""

    infer_height: Optional[int] = None  # resize the network input to this height (aspect kept); None = native
    window: int = 1024  # inputs taller or wider than this are covered by window x window tiles (0 = never)
    overlap: float = 1 / 3  # fraction of a window shared with its neighbour

    def __post_init__(self) -> None:
        if self.infer_height is not None and self.infer_height < 8:
            raise ValueError(f"infer_height must be >= 8 pixels, got {self.infer_height}")
        if self.window < 0 or (0 < self.window < 32):
            raise ValueError(f"window must be 0 (off) or >= 32 pixels, got {self.window}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")


def _starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets covering ``length``: every ``stride``, the last one flush with the end."""
    if length <= window:
        return [0]
    n = math.ceil((length - window) / stride) + 1
    return sorted({min(i * stride, length - window) for i in range(n)})


def network_logits(model: nn.Module, image: Tensor, settings: InferenceSettings, autocast=None) -> Tensor:
    """``1 x K x h x w`` float32 logits for a ``1 x 3 x H x W`` normalised image at the network
    input size (``h x w`` = ``H x W``, or the ``infer_height`` resize of it)."""
    import contextlib

    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one image 1 x 3 x H x W, got {tuple(image.shape)}")
    _, _, h, w = image.shape
    if settings.infer_height and settings.infer_height != h:
        nh = int(settings.infer_height)
        nw = max(1, int(round(w * nh / h)))
        image = F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False)
        h, w = nh, nw
    ctx = autocast if autocast is not None else contextlib.nullcontext()
    win = settings.window
    if not win or (h <= win and w <= win):
        with ctx:
            return model(image).float()
    wh, ww = min(h, win), min(w, win)
    stride_h = max(1, int(wh * (1 - settings.overlap)))
    stride_w = max(1, int(ww * (1 - settings.overlap)))
    total: Optional[Tensor] = None
    count = torch.zeros(1, 1, h, w, device=image.device)
    for top in _starts(h, wh, stride_h):
        for left in _starts(w, ww, stride_w):
            with ctx:
                out = model(image[:, :, top : top + wh, left : left + ww]).float()
            if total is None:
                total = torch.zeros(1, out.shape[1], h, w, device=image.device)
            total[:, :, top : top + wh, left : left + ww] += out
            count[:, :, top : top + wh, left : left + ww] += 1
    assert total is not None
    return total / count


def to_size(logits: Tensor, size: Sequence[int], align_corners: bool) -> Tensor:
    """Bilinearly resample ``B x K x h x w`` logits to ``size`` (a no-op when it already matches)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    from uniseg.models.resize import resize_bilinear

    return resize_bilinear(logits, tuple(int(s) for s in size), align_corners)


@torch.no_grad()
def predict_channels(
    model: nn.Module,
    image: Tensor,
    out_size: Sequence[int],
    channels: Optional[Tensor],
    settings: InferenceSettings = InferenceSettings(),
    autocast=None,
) -> tuple[Tensor, Tensor]:
    """``(winner, logits)``: for each output pixel the position in ``channels`` of the highest logit
    (``H x W`` int64), and the ``1 x K x H x W`` logits at ``out_size`` (all K channels).

    ``channels=None`` takes the argmax over every channel (the union's own prediction).
    """
    low = network_logits(model, image, settings, autocast)
    logits = to_size(low, out_size, bool(getattr(model, "align_corners", False)))
    picked = logits if channels is None else logits.index_select(1, channels.to(logits.device))
    return picked.argmax(1)[0], logits
