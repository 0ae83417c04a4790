"""The model registry, timm style: every variant is a plain function registered under its name.

>>> list_models("hrnet_w18*")
['hrnet_w18_small_v1', 'hrnet_w18_small_v2', 'hrnet_w18']
>>> model = build_model("hrnet_w18_small_v2", 70, head="cosine")   # = hrnet_w18_small_v2(70, head="cosine")

Importing this module does not import torch: names, look-ups and errors for unknown names stay
fast (``uniseg models list`` needs no torch for the built-in variants). A family registers its
variants with :func:`register_model` and a ``describe(name)`` function giving the plain-data
facts that :func:`model_info` returns, so the registry itself knows no family.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Union

from uniseg.errors import UnisegError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ModelSpec",
    "build_model",
    "get_spec",
    "hrnet_tiny",
    "hrnet_w18",
    "hrnet_w18_small_v1",
    "hrnet_w18_small_v2",
    "hrnet_w48",
    "list_models",
    "model_info",
    "register_model",
]

Builder = Callable[..., "nn.Module"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its name, family, builder (the registered function) and ``describe(name)``."""

    name: str
    family: str
    builder: Builder
    describe: Callable[[str], dict]

    def info(self) -> dict:
        """``describe(name)``: title, description and whatever else the family reports (plain data)."""
        return dict(self.describe(self.name))

    @property
    def title(self) -> str:
        return str(self.info().get("title", self.name))

    @property
    def description(self) -> str:
        return str(self.info().get("description", ""))

    @property
    def official(self) -> dict:
        """Figures of the official release, when there is one (e.g. params and GFLOPs of its README)."""
        return dict(self.info().get("official", {}))


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(*, family: str, describe: Callable[[str], dict]) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn`` under ``fn.__name__``; ``fn(num_classes, head="linear", **kw)`` builds it."""

    def deco(fn: Builder) -> Builder:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name=name, family=family, builder=fn, describe=describe)
        return fn

    return deco


def list_models(pattern: Optional[Union[str, Iterable[str]]] = None) -> list[str]:
    """Registered names in registration order; ``pattern`` (shell glob(s), e.g. ``"hrnet_w18*"``) filters."""
    names = list(_REGISTRY)
    if pattern is None:
        return names
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; an unknown name raises with the closest names."""
    spec = _REGISTRY.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(_REGISTRY)}"
        raise UnisegError(f"unknown model {name!r} ({hint}; 'uniseg models list' shows all)")
    return spec


def build_model(name: str, num_classes: int, head: str = "linear", **kwargs: Any) -> "nn.Module":
    """Build ``name`` with a ``num_classes``-way ``head`` ("linear" or "cosine"); weights are freshly initialised.

    ``state_dict()`` keys follow the official naming, so :func:`load_pretrained` loads official
    checkpoints into it. Extra keyword arguments go to the architecture (e.g. ``align_corners``,
    ``cosine_scale``).
    """
    from uniseg.models.heads import HEADS

    spec = get_spec(name)
    if head not in HEADS:
        raise UnisegError(f"unknown head {head!r} (choose {' or '.join(HEADS)})")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise UnisegError(f"num_classes must be a positive integer, got {num_classes!r} (the size of the union)")
    return spec.builder(num_classes, head=head, **kwargs)


def model_info(name: str) -> dict:
    """Plain-data description of a registered model (no weights built): name, family and what its family describes."""
    spec = get_spec(name)
    return {"name": spec.name, "family": spec.family, **spec.info()}


# --------------------------------------------------------------------------------------------
# HRNetV2 (uniseg/models/hrnet.py holds the architecture and its variants as data)
# --------------------------------------------------------------------------------------------


def _hrnet(name: str, num_classes: int, head: str, **kwargs: Any) -> "nn.Module":
    from uniseg.models.hrnet import hrnet

    return hrnet(name, num_classes, head, **kwargs)


def describe_hrnet(name: str) -> dict:
    """Title, description, classifier input width, stage layout and official figures of an HRNet variant."""
    from uniseg.models.hrnet import VARIANTS, HRNetConfig

    cfg = HRNetConfig.from_dict(VARIANTS[name])
    info: dict[str, Any] = {
        "title": cfg.title or name,
        "description": cfg.description,
        "feature_channels": cfg.head_channels,
        "stages": [
            {"modules": s.modules, "block": s.block, "blocks": list(s.blocks), "channels": list(s.channels)}
            for s in (cfg.stage1, cfg.stage2, cfg.stage3, cfg.stage4)
        ],
    }
    if cfg.official:
        info["official"] = dict(cfg.official)
    return info


_hrnet_variant = register_model(family="hrnet", describe=describe_hrnet)


@_hrnet_variant
def hrnet_w18_small_v1(num_classes: int, head: str = "linear", **kwargs: Any) -> "nn.Module":
    """HRNetV2-W18-Small-v1 (official config; 1.5M params)."""
    return _hrnet("hrnet_w18_small_v1", num_classes, head, **kwargs)


@_hrnet_variant
def hrnet_w18_small_v2(num_classes: int, head: str = "linear", **kwargs: Any) -> "nn.Module":
    """HRNetV2-W18-Small-v2, the paper's "W18" (official config; 3.9M params)."""
    return _hrnet("hrnet_w18_small_v2", num_classes, head, **kwargs)


@_hrnet_variant
def hrnet_w18(num_classes: int, head: str = "linear", **kwargs: Any) -> "nn.Module":
    """HRNetV2-W18 (official config; 9.6M params)."""
    return _hrnet("hrnet_w18", num_classes, head, **kwargs)


@_hrnet_variant
def hrnet_w48(num_classes: int, head: str = "linear", **kwargs: Any) -> "nn.Module":
    """HRNetV2-W48 (official config; 65.9M params)."""
    return _hrnet("hrnet_w48", num_classes, head, **kwargs)


@_hrnet_variant
def hrnet_tiny(num_classes: int, head: str = "linear", **kwargs: Any) -> "nn.Module":
    """uniseg's tiny HRNet for CPU demos (0.26M params)."""
    return _hrnet("hrnet_tiny", num_classes, head, **kwargs)
