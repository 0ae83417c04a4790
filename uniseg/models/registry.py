"""The model registry, timm style: every named variant is a builder registered under its name.

>>> list_models("hrnet_w18*")
['hrnet_w18_small_v1', 'hrnet_w18_small_v2', 'hrnet_w18']
>>> model = build_model("hrnet_w18_small_v2", 70, head="cosine")

Importing this module does not import torch: names, look-ups and errors for unknown names stay
fast (``uniseg models list`` needs no torch for the built-in variants). A family registers its
variants with :func:`register` (or the :func:`register_model` decorator) and a ``describe(name)``
function giving the plain-data facts that :func:`model_info` returns, so the registry itself knows
no family; the built-in families (:data:`FAMILIES`) register on first look-up. Adding an HRNet
variant is one entry in ``uniseg/models/hrnet_variants.json``.
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
    "HEADS",
    "ModelSpec",
    "build_model",
    "get_spec",
    "list_models",
    "model_info",
    "register",
    "register_model",
]

#: The classifiers every model offers at ``last_layer.3``: a 1x1 conv with bias, or the cosine
#: classifier of the paper's Appendix G (``uniseg.models.heads``).
HEADS = ("linear", "cosine")

#: The modules whose import registers the built-in families (one per architecture; a variant is
#: added in its family's data, e.g. ``hrnet_variants.json``).
FAMILIES = ("uniseg.models.hrnet_configs",)

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
_LOADED = False


def register(name: str, *, family: str, builder: Builder, describe: Callable[[str], dict]) -> None:
    """Register ``builder(num_classes, head="linear", **kw)`` under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    _REGISTRY[name] = ModelSpec(name=name, family=family, builder=builder, describe=describe)


def register_model(*, family: str, describe: Callable[[str], dict]) -> Callable[[Builder], Builder]:
    """Decorator (timm's ``register_model``): register ``fn`` under ``fn.__name__``."""

    def deco(fn: Builder) -> Builder:
        register(fn.__name__, family=family, builder=fn, describe=describe)
        return fn

    return deco


def _models() -> dict[str, ModelSpec]:
    """The registry, with the built-in families registered on first use (their data modules are torch-free)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import importlib

        for module in FAMILIES:
            importlib.import_module(module)
    return _REGISTRY


def list_models(pattern: Optional[Union[str, Iterable[str]]] = None) -> list[str]:
    """Registered names in registration order; ``pattern`` (shell glob(s), e.g. ``"hrnet_w18*"``) filters."""
    names = list(_models())
    if pattern is None:
        return names
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; an unknown name raises with the closest names."""
    models = _models()
    spec = models.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(models), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(models)}"
        raise UnisegError(f"unknown model {name!r} ({hint}; 'uniseg models list' shows all)")
    return spec


def build_model(name: str, num_classes: int, head: str = "linear", **kwargs: Any) -> "nn.Module":
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
    """Plain-data description of a registered model (no weights built): name, family and what its family describes."""
    spec = get_spec(name)
    return {"name": spec.name, "family": spec.family, **spec.info()}
