"""timm's HRNet weights (``hrnet_w18_small_v2.ms_in1k`` and kin): their variant names, and which variant a file holds.

timm's HRNet is the official classification HRNet tensor for tensor: its state-dict keys are the
official ones, as uniseg's HRNet has them (``conv1``, ``layer1``, ``transition1``, ``stage2``, ...),
plus the ImageNet head (``incre_modules``, ``downsamp_modules``, ``final_layer``, ``classifier``) that a
segmenter drops. What differs lies around the tensors: timm's names of the variants
(``hrnet_w18_small`` is uniseg's ``hrnet_w18_small_v1``), the wrappers its files come in (a training
checkpoint's ``state_dict``, DDP's ``module.``, torch.compile's ``_orig_mod.``: unwrapped by
:func:`uniseg.models.pretrained.extract_state_dict`) and the fuse layers' upsampling (nearest in
classification, bilinear in segmentation; no tensor involved). :func:`hrnet_layout` reads a state
dict's architecture from its keys and shapes, so a file for another variant is named, not just refused.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Optional

from torch import Tensor

from uniseg.errors import UnisegError
from uniseg.models.hrnet_configs import VARIANTS, HRNetConfig, StageConfig

__all__ = ["TIMM_NAMES", "Layout", "check_variant", "describe_layout", "hrnet_layout", "layout_of_config", "variant_of"]

#: uniseg variant -> timm's name of the same network (every HRNet variant the two share).
TIMM_NAMES: dict[str, str] = {
    "hrnet_w18_small_v1": "hrnet_w18_small",
    "hrnet_w18_small_v2": "hrnet_w18_small_v2",
    "hrnet_w18": "hrnet_w18",
    "hrnet_w48": "hrnet_w48",
}


class Layout(NamedTuple):
    """An HRNet's architecture as its weights show it: stem width and the four stages."""

    stem: int
    stages: tuple[StageConfig, StageConfig, StageConfig, StageConfig]


def layout_of_config(cfg: HRNetConfig) -> Layout:
    """The :class:`Layout` a configuration builds."""
    return Layout(cfg.stem_channels, (cfg.stage1, cfg.stage2, cfg.stage3, cfg.stage4))


def _count(state: Mapping[str, Tensor], pattern: str) -> int:
    n = 0
    while pattern.format(n) in state:
        n += 1
    return n


def _blocks(state: Mapping[str, Tensor], prefix: str) -> tuple[int, str, int]:
    """``(blocks, block type, planes)`` of the residual layer at ``prefix`` (``layer1``, ``stage2.0.branches.1``)."""
    n = _count(state, prefix + ".{}.conv1.weight")
    if n == 0:
        raise KeyError(prefix)
    block = "BOTTLENECK" if f"{prefix}.0.conv3.weight" in state else "BASIC"
    return n, block, int(state[f"{prefix}.0.conv1.weight"].shape[0])


def hrnet_layout(state: Mapping[str, Tensor]) -> Optional[Layout]:
    """The architecture an HRNet state dict (official key names) holds; None when its keys do not tell."""
    try:
        stem = int(state["conv1.weight"].shape[0])
        n, block, planes = _blocks(state, "layer1")
        stages = [StageConfig(1, block, (n,), (planes,))]
        for k in (2, 3, 4):
            modules = _count(state, f"stage{k}" + ".{}.branches.0.0.conv1.weight")
            branches = _count(state, f"stage{k}.0.branches" + ".{}.0.conv1.weight")
            if modules == 0 or branches == 0:
                return None
            found = [_blocks(state, f"stage{k}.0.branches.{b}") for b in range(branches)]
            stages.append(StageConfig(modules, found[0][1], tuple(f[0] for f in found), tuple(f[2] for f in found)))
    except (KeyError, IndexError, ValueError):
        return None
    return Layout(stem, tuple(stages))  # type: ignore[arg-type]


def variant_of(layout: Layout) -> Optional[str]:
    """The uniseg variant whose architecture ``layout`` is, if any."""
    for name, data in VARIANTS.items():
        if layout_of_config(HRNetConfig.from_dict(data)) == layout:
            return name
    return None


def _timm_only_name(layout: Layout) -> Optional[str]:
    """timm's ``hrnet_wC`` for the standard layout at width C (timm has W30, W32, W40, W44, W64 beyond uniseg's)."""
    c = layout.stages[1].channels[0]
    standard = Layout(64, (
        StageConfig(1, "BOTTLENECK", (4,), (64,)),
        StageConfig(1, "BASIC", (4, 4), (c, 2 * c)),
        StageConfig(4, "BASIC", (4, 4, 4), (c, 2 * c, 4 * c)),
        StageConfig(3, "BASIC", (4, 4, 4, 4), (c, 2 * c, 4 * c, 8 * c)),
    ))
    return f"hrnet_w{c}" if layout == standard else None


def describe_layout(layout: Layout) -> str:
    """``hrnet_w18_small_v1 (timm: hrnet_w18_small)``, ``timm's hrnet_w32 (not a uniseg variant)``, or the widths."""
    name = variant_of(layout)
    if name is not None:
        timm = TIMM_NAMES.get(name)
        return f"{name} (timm: {timm})" if timm and timm != name else name
    timm = _timm_only_name(layout)
    if timm is not None:
        return f"timm's {timm} (not a uniseg variant)"
    widths = "-".join(str(c) for c in layout.stages[3].channels)
    return f"an HRNet with branch widths {widths} (not a uniseg variant)"


def _first_difference(state: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> str:
    for key, value in own.items():
        if key.startswith("last_layer.") or key.endswith("num_batches_tracked"):
            continue
        if key not in state:
            return f"{key} is not in the file"
        if tuple(state[key].shape) != tuple(value.shape):
            return f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(value.shape)}"
    extra = next((k for k in state if k not in own), None)
    return f"the file has {extra}, the model not" if extra else "the layouts differ"


def check_variant(state: Mapping[str, Tensor], model, path: str) -> None:
    """Refuse, naming both variants, weights of another HRNet than ``model`` (a no-op where either's layout is unknown)."""
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, HRNetConfig):
        return
    found = hrnet_layout(state)
    wanted = layout_of_config(cfg)
    if found is None or found == wanted:
        return
    name = variant_of(found)
    model_name = variant_of(wanted) or str(getattr(model, "name", "this model"))
    timm = TIMM_NAMES.get(model_name)
    fix = f"build {name} (--model {name}) or " if name else ""
    raise UnisegError(
        f"{path}: weights of {describe_layout(found)}, but the model is {describe_layout(wanted)}; "
        f"{fix}give weights of {model_name}{f' (timm: {timm})' if timm and timm != model_name else ''} "
        f"(first difference: {_first_difference(state, model.state_dict())})"
    )
