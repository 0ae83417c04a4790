"""The optimiser and its learning-rate schedule: polynomial decay per iteration (the paper's, and HRNet's)."""

from __future__ import annotations

from typing import Iterable


def poly_lr(base_lr: float, iteration: int, total: int, power: float = 0.9) -> float:
    """``base_lr * (1 - iteration / total) ** power``: the lr used for step ``iteration`` (0-based)."""
    if total < 1:
        raise ValueError(f"total iterations must be >= 1, got {total}")
    frac = min(max(iteration, 0), total) / total
    return float(base_lr) * (1.0 - frac) ** float(power)


def set_lr(optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (the schedule is a pure function of the iteration,
    so resuming needs nothing but the iteration)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def build_optimizer(params: Iterable, config):
    """The optimiser ``config.optimizer`` names, at ``config.base_lr``: SGD with momentum (the
    paper's) or AdamW (decoupled weight decay, torch's default betas)."""
    import torch

    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.base_lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.base_lr, momentum=config.momentum, weight_decay=config.weight_decay)
