"""Each training step's loss (and, under torchrun, the processes' stop votes) brought to the host
without stalling a GPU.

A bare loop never reads the loss back; the engine must, to stop on a non-finite loss and to agree
across processes on when to stop. Reading a CUDA scalar at once (``float(loss)``) waits for the
whole forward pass, so the values are instead copied asynchronously into pinned memory and read
``lag`` steps later, when the copy has long finished: lag 1 on CUDA, 0 on the CPU (where nothing
runs ahead, and a non-finite loss is then caught before its update). The trainer drains every
pending value before it logs, validates or writes a checkpoint, so nothing is written before every
loss up to it was seen finite, and all processes drain at the same iterations, so they agree.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

import torch

from uniseg.engine.runtime import Runtime


@dataclass(frozen=True)
class StepOutcome:
    """What one step reported: its loss (the mean over processes) and whether any process asked to stop."""

    iteration: int
    lr: float
    loss: float
    stop: bool
    batch: Any  # the step's batch record (dataset indices, paths): named in a non-finite-loss error


class StepReadback:
    """A queue of steps whose loss is on its way to the host; see the module docstring."""

    def __init__(self, runtime: Runtime, lag: Optional[int] = None) -> None:
        self.rt = runtime
        self.lag = (1 if runtime.device.type == "cuda" else 0) if lag is None else int(lag)
        self._pending: deque = deque()

    def push(self, iteration: int, lr: float, loss: torch.Tensor, stop: bool, batch: Any) -> list[StepOutcome]:
        """Queue step ``iteration``'s loss (and this process's stop vote); returns the steps now ``lag`` behind."""
        value = loss.detach().float().reshape(1)
        if self.rt.distributed:  # one small all-reduce carries the loss and the stop votes
            vote = torch.full((1,), float(stop), device=value.device)  # a fill, not a host-to-device copy
            value = self.rt.all_reduce_(torch.cat([value, vote]))
        ready = None
        if value.device.type == "cuda":
            host = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
            host.copy_(value, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
            value = host
        self._pending.append((iteration, lr, value, ready, batch))
        return self._take(len(self._pending) - self.lag)

    def drain(self) -> list[StepOutcome]:
        """Every pending step (waits for the device up to the last one)."""
        return self._take(len(self._pending))

    def _take(self, n: int) -> list[StepOutcome]:
        out = []
        for _ in range(max(0, n)):
            iteration, lr, value, ready, batch = self._pending.popleft()
            if ready is not None:
                ready.synchronize()
            stop = bool(value.numel() > 1 and float(value[1]) > 0)
            out.append(StepOutcome(iteration, lr, float(value[0]) / self.rt.world_size, stop, batch))
        return out
