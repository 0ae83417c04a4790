"""Segmentation models, classifiers and the UniSeg losses.

>>> from uniseg.models import build_model
>>> model = build_model("hrnet_w18_small_v2", num_classes=70, head="cosine")

Architectures live one per file (``hrnet.py``) with their variants as data; ``registry.py``
registers each named variant as a plain function (timm style): :func:`list_models`,
:func:`build_model`, :func:`model_info`. The registry is importable without torch; the
torch-backed names (``HRNet``, the heads, ``load_pretrained``) load on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from uniseg.models import registry as _registry
from uniseg.models.registry import (
    ModelSpec,
    build_model,
    get_spec,
    hrnet_tiny,
    hrnet_w18,
    hrnet_w18_small_v1,
    hrnet_w18_small_v2,
    hrnet_w48,
    list_models,
    model_info,
    register_model,
)

if TYPE_CHECKING:
    from uniseg.models.heads import HEADS, CosineClassifier, LinearClassifier, build_head
    from uniseg.models.hrnet import HRNet
    from uniseg.models.pretrained import LoadReport, load_pretrained

# name -> module that defines it; imported on first access (these modules import torch)
_LAZY = {
    "HEADS": "uniseg.models.heads",
    "CosineClassifier": "uniseg.models.heads",
    "LinearClassifier": "uniseg.models.heads",
    "build_head": "uniseg.models.heads",
    "HRNet": "uniseg.models.hrnet",
    "LoadReport": "uniseg.models.pretrained",
    "load_pretrained": "uniseg.models.pretrained",
}

__all__ = sorted([*_LAZY, *_registry.__all__])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'uniseg.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
