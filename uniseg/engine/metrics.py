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
    value outside ``0..num_classes-1``) are skipped. ``pred`` and ``target`` share a shape."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    t = target.reshape(-1).long()
    p = pred.reshape(-1).long()
    keep = (t >= 0) & (t < num_classes) & (t != ignore_index)
    if not bool(keep.all()):
        t, p = t[keep], p[keep]
    if p.numel() and (int(p.min()) < 0 or int(p.max()) >= num_classes):
        raise ValueError(f"prediction holds values outside 0..{num_classes - 1}")
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


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
