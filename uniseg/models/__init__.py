"""Segmentation models, classifiers and the UniSeg losses.

>>> from uniseg.models import build_model
>>> model = build_model("hrnet_w18_small_v2", num_classes=70, head="cosine")

Architectures live one per file (``hrnet.py``) with their variants as data; this module keeps
the registry of named variants (timm style): :func:`list_models`, :func:`build_model`,
:func:`model_info`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from uniseg.errors import UnisegError
from uniseg.models import hrnet as _hrnet
from uniseg.models.heads import HEADS, CosineClassifier, LinearClassifier, build_head
from uniseg.models.hrnet import HRNet
from uniseg.models.pretrained import LoadReport, load_pretrained

__all__ = [
    "HEADS",
    "CosineClassifier",
    "HRNet",
    "LinearClassifier",
    "LoadReport",
    "ModelSpec",
    "build_head",
    "build_model",
    "get_spec",
    "list_models",
    "load_pretrained",
    "model_info",
]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its family, a one-line description, a builder and official figures."""

    name: str
    family: str
    title: str
    description: str
    builder: Callable[..., nn.Module]
    official: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec) -> None:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec


for _name, _cfg in _hrnet.VARIANTS.items():
    _register(
        ModelSpec(
            name=_name,
            family="hrnet",
            title=str(_cfg.get("title", _name)),
            description=str(_cfg.get("description", "")),
            builder=(lambda n: lambda num_classes, head="linear", **kw: _hrnet.hrnet(n, num_classes, head, **kw))(_name),
            official=dict(_cfg.get("official", {})),
        )
    )


def list_models() -> list[str]:
    """Names of the registered models, in registration order."""
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; an unknown name raises with the closest names."""
    spec = _REGISTRY.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(_REGISTRY)}"
        raise UnisegError(f"unknown model {name!r} ({hint}; 'uniseg models list' shows all)")
    return spec


def build_model(name: str, num_classes: int, head: str = "linear", **kwargs: Any) -> nn.Module:
    """Build ``name`` with a ``num_classes``-way ``head`` ("linear" or "cosine"); weights are freshly initialised.

    ``state_dict()`` keys follow the official naming, so :func:`load_pretrained` loads official
    checkpoints into it. Extra keyword arguments go to the architecture (e.g. ``align_corners``,
    ``cosine_scale``).
    """
    spec = get_spec(name)
    if head not in HEADS:
        raise UnisegError(f"unknown head {head!r} (choose {' or '.join(HEADS)})")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise UnisegError(f"num_classes must be a positive integer, got {num_classes!r} (the size of the union)")
    return spec.builder(num_classes, head=head, **kwargs)


def model_info(name: str) -> dict:
    """Plain-data description of a registered model (no weights built)."""
    spec = get_spec(name)
    info: dict[str, Any] = {"name": spec.name, "family": spec.family, "title": spec.title, "description": spec.description}
    if spec.family == "hrnet":
        cfg = _hrnet.HRNetConfig.from_dict(_hrnet.VARIANTS[name])
        info["feature_channels"] = cfg.head_channels
        info["stages"] = [
            {"modules": s.modules, "block": s.block, "blocks": list(s.blocks), "channels": list(s.channels)}
            for s in (cfg.stage1, cfg.stage2, cfg.stage3, cfg.stage4)
        ]
    if spec.official:
        info["official"] = dict(spec.official)
    return info
