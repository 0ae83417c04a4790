"""Parameters and multiply-accumulates of a model at a given input size, without computing anything.

MACs are counted as the official HRNet code counts them (``lib/utils/modelsummary.py``): for
every convolution ``weight.numel() * out_h * out_w``, for every linear layer
``out_features * in_features``, for the cosine classifier ``K * C * h * w``; bias, BatchNorm,
ReLU, upsampling and additions are not counted. The forward pass runs on the ``meta`` device
(shapes only), so counting HRNet-W48 at 1024x2048 takes well under a second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # torch is imported by the counting functions only: Complexity records stay cheap
    from torch import nn

__all__ = ["Complexity", "count_macs", "count_model", "count_params", "measure"]


@dataclass(frozen=True)
class Complexity:
    """Parameter count and per-image multiply-accumulates at ``size`` (H, W)."""

    params: int
    trainable_params: int
    macs: int
    size: tuple[int, int]

    @property
    def gmacs(self) -> float:
        """MACs / 1e9."""
        return self.macs / 1e9

    @property
    def official_gflops(self) -> float:
        """MACs / 2**30: the unit of the "GFLOPs" column in the official HRNet README."""
        return self.macs / 2**30

    def as_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        return d


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, size: Sequence[int], in_channels: int = 3) -> int:
    """Per-image multiply-accumulates of ``model`` on a ``1 x in_channels x H x W`` input.

    Parameters and buffers are swapped for ``meta`` tensors for the pass, so the model itself
    (on any device) is neither copied nor changed.
    """
    import torch
    from torch import nn
    from torch.func import functional_call

    from uniseg.models.heads import CosineClassifier

    h, w = (int(v) for v in size)
    total = 0

    def conv_hook(module: nn.Module, inputs, output) -> None:
        nonlocal total
        total += int(module.weight.numel()) * int(output.shape[-2]) * int(output.shape[-1])

    def linear_hook(module: nn.Module, inputs, output) -> None:
        nonlocal total
        total += int(output.numel() // output.shape[0]) * int(module.in_features)

    def cosine_hook(module: nn.Module, inputs, output) -> None:
        nonlocal total
        total += int(module.weight.numel()) * int(output.shape[-2]) * int(output.shape[-1])

    handles = []
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, CosineClassifier):
            handles.append(m.register_forward_hook(cosine_hook))
    meta = {n: torch.empty_like(t, device="meta") for n, t in list(model.named_parameters()) + list(model.named_buffers())}
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            functional_call(model, meta, (torch.empty(1, in_channels, h, w, device="meta"),))
    finally:
        model.train(was_training)
        for hd in handles:
            hd.remove()
    return total


def measure(model: nn.Module, size: Sequence[int] = (512, 1024)) -> Complexity:
    """:class:`Complexity` of ``model`` at ``size`` = (H, W)."""
    h, w = (int(v) for v in size)
    return Complexity(count_params(model), count_params(model, trainable_only=True), count_macs(model, (h, w)), (h, w))


def count_model(name: str, num_classes: int, head: str = "linear", size: Sequence[int] = (512, 1024)) -> Complexity:
    """:class:`Complexity` of registered model ``name``, built on the ``meta`` device (shapes only, no weights)."""
    import torch

    from uniseg.models.registry import build_model

    with torch.device("meta"):
        model = build_model(name, num_classes, head=head)
    return measure(model, size)
