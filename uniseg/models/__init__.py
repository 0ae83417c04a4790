"""Segmentation models, classifiers and the UniSeg losses.

>>> from uniseg.models import build_model
>>> model = build_model("hrnet_w18_small_v2", num_classes=70, head="cosine")

Architectures live one per file (``hrnet.py``) with their variants as torch-free data
(``hrnet_configs.py``, which registers each named variant, timm style); ``registry.py`` looks them
up: :func:`list_models`, :func:`build_model`, :func:`model_info`. The registry is importable without torch; the
torch-backed names (``HRNet``, the heads, ``load_pretrained``) load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uniseg._lazy import lazy_exports
from uniseg.models import registry as _registry
from uniseg.models.registry import (  # noqa: F401  (the package's names)
    HEADS,
    ModelSpec,
    build_model,
    get_spec,
    list_models,
    model_info,
    register,
    register_model,
)

if TYPE_CHECKING:
    from uniseg.models.heads import CosineClassifier, LinearClassifier, build_head
    from uniseg.models.hrnet import HRNet
    from uniseg.models.pretrained import LoadReport, load_pretrained

# name -> submodule that defines it, imported on first access (these import torch)
_EXPORTS = {
    "CosineClassifier": "heads",
    "LinearClassifier": "heads",
    "build_head": "heads",
    "HRNet": "hrnet",
    "LoadReport": "pretrained",
    "load_pretrained": "pretrained",
}

__all__ = sorted([*_EXPORTS, *_registry.__all__])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
