"""Segmentation scores from an accumulated confusion matrix (pure functions, no model).

The confusion matrix ``C[g, p]`` counts pixels of ground-truth class g predicted as p, over the
classes of one label space; it is accumulated with one ``bincount`` per image (never a loop over
classes). IoU of class c = ``C[c,c] / (row_c + col_c - C[c,c])``. A class absent from both the
ground truth and the predictions has no IoU (``None``) and is left out of the mean, as the
Cityscapes evaluator does; ``absent_as_zero`` counts it as 0 instead (the UniSeg authors'
protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

IGNORE = 255


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = IGNORE) -> torch.Tensor:
    """``num_classes x num_classes`` int64 counts; pixels whose target is ``ignore_index`` (or any
    value outside ``0..num_classes-1``) are skipped. ``pred`` and ``target`` share a shape.

    Skipped pixels go to a spare row that is dropped, so there is no boolean indexing; on the CPU
    the count is numpy's bincount (about 20x torch's there), on a GPU torch's.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    n = int(num_classes)
    if pred.device.type == "cpu":  # numpy: its reductions and bincount are many times torch's on the CPU
        t = target.reshape(-1).numpy()
        p = pred.reshape(-1).numpy()
        if p.size and (p.min() < 0 or p.max() >= n):
            raise ValueError(f"prediction holds values outside 0..{n - 1}")
        if t.dtype == np.uint8 and p.dtype == np.uint8 and n <= 256 and not 0 <= ignore_index < n:
            # label images as decoded: t * n + p in 16 bits (SIMD arithmetic, no gather); every target
            # value past the classes (ignore included) lands at n * n or beyond and is cut off
            code = t.astype(np.uint16)
            code *= n
            code += p
            counts = np.bincount(code, minlength=n * n)[: n * n]
            return torch.from_numpy(counts.reshape(n, n).astype(np.int64, copy=False))
        t = t.astype(np.int64, copy=False)
        p = p.astype(np.int64, copy=False)
        row = np.minimum(t, n)  # ignore (255) and anything past the classes -> the spare row
        if 0 <= ignore_index < n:
            row = np.where(t == ignore_index, n, row)
        if row.size and row.min() < 0:
            row = np.where(row < 0, n, row)
        counts = np.bincount(row * n + p, minlength=(n + 1) * n)[: n * n]
        return torch.from_numpy(counts.reshape(n, n).astype(np.int64, copy=False))
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= n):
        raise ValueError(f"prediction holds values outside 0..{n - 1}")
    t = target.reshape(-1).long()
    row = torch.where((t >= 0) & (t < n) & (t != ignore_index), t, torch.full_like(t, n))
    counts = torch.bincount(row * n + pred.reshape(-1).long(), minlength=(n + 1) * n)[: n * n]
    return counts.reshape(n, n)


@dataclass(frozen=True)
class Scores:
    """What a confusion matrix says, over the classes that are scored."""

    iou: list[Optional[float]]  # per class; None = absent from ground truth and prediction (or not scored)
    miou: float
    pixel_accuracy: float
    scored: int  # classes in the mean


def scores(conf: np.ndarray | torch.Tensor, *, scored: Optional[Sequence[int]] = None, absent_as_zero: bool = False) -> Scores:
    """IoU per class, mIoU and pixel accuracy of a confusion matrix.

    ``scored``: the class indices that can be scored (others get ``None`` and stay out of the
    mean: classes of an unseen dataset that the union lacks). Default: all.
    """
    c = np.asarray(conf.cpu() if isinstance(conf, torch.Tensor) else conf, dtype=np.float64)
    n = c.shape[0]
    tp = np.diag(c)
    union = c.sum(0) + c.sum(1) - tp
    mask = np.zeros(n, dtype=bool)
    mask[list(range(n)) if scored is None else list(scored)] = True
    present = union > 0
    iou = np.where(present, tp / np.where(present, union, 1.0), 0.0)
    counted = mask & (present | absent_as_zero)
    per: list[Optional[float]] = [float(iou[i]) if counted[i] else None for i in range(n)]
    miou = float(iou[counted].mean()) if counted.any() else 0.0
    total = c.sum()
    acc = float(tp.sum() / total) if total > 0 else 0.0
    return Scores(per, miou, acc, int(counted.sum()))
