"""The HRNetV2 variants as data, and their registration: the one place a variant is added.

Each entry of :data:`VARIANTS` is a named model for ``uniseg.models.build_model`` and ``uniseg
models list`` (registered at the bottom, as timm's ``register_model`` does for its model
functions). Plain data and torch-free, so listing and describing models never imports torch;
``uniseg.models.hrnet`` builds the network from these configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from uniseg.models.registry import register

#: Output channels per input channel of each block kind (BasicBlock 1, Bottleneck 4).
EXPANSION = {"BASIC": 1, "BOTTLENECK": 4}




@dataclass(frozen=True)
class StageConfig:
    """One stage: ``modules`` high-resolution modules of ``blocks[i]`` blocks on branch i."""

    modules: int
    block: str  # "BASIC" or "BOTTLENECK"
    blocks: tuple[int, ...]
    channels: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.block not in EXPANSION:
            raise ValueError(f"unknown block {self.block!r}: choose BASIC or BOTTLENECK")
        if len(self.blocks) != len(self.channels):
            raise ValueError(f"stage has {len(self.blocks)} block counts but {len(self.channels)} channel widths")

    @property
    def branches(self) -> int:
        return len(self.channels)


@dataclass(frozen=True)
class HRNetConfig:
    """A named HRNetV2 variant: stem width, four stages and a one-line description."""

    stage1: StageConfig
    stage2: StageConfig
    stage3: StageConfig
    stage4: StageConfig
    stem_channels: int = 64
    title: str = ""
    description: str = ""
    official: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping) -> "HRNetConfig":
        """Build from plain data: ``{"stage1": {"modules":1, "block":"BOTTLENECK", "blocks":[4], "channels":[64]}, ...}``."""

        def stage(s: Mapping) -> StageConfig:
            return StageConfig(int(s["modules"]), str(s["block"]), tuple(int(b) for b in s["blocks"]), tuple(int(c) for c in s["channels"]))

        return cls(
            stage1=stage(data["stage1"]),
            stage2=stage(data["stage2"]),
            stage3=stage(data["stage3"]),
            stage4=stage(data["stage4"]),
            stem_channels=int(data.get("stem_channels", 64)),
            title=str(data.get("title", "")),
            description=str(data.get("description", "")),
            official=dict(data.get("official", {})),
        )

    @property
    def head_channels(self) -> int:
        """Channels of the concatenated 1/4-resolution representation (the classifier's input)."""
        return sum(self.stage4.channels) * EXPANSION[self.stage4.block]


def _s(modules: int, block: str, blocks: Sequence[int], channels: Sequence[int]) -> dict:
    return {"modules": modules, "block": block, "blocks": list(blocks), "channels": list(channels)}


# The official experiment configs (experiments/cityscapes/seg_hrnet_*.yaml), checked key by key
# against the official state dicts in tests/test_hrnet.py. ``official`` holds the figures the
# official README reports for a 19-class head, tested at 1024x2048 (GFLOPs there are
# multiply-adds of conv/linear layers divided by 2**30).
VARIANTS: dict[str, dict] = {
    "hrnet_w18_small_v1": {
        "title": "HRNetV2-W18-Small-v1",
        "description": "HRNetV2-W18-Small-v1: 1 module per stage, 2 basic blocks per branch, widths 16-128",
        "stage1": _s(1, "BOTTLENECK", [1], [32]),
        "stage2": _s(1, "BASIC", [2, 2], [16, 32]),
        "stage3": _s(1, "BASIC", [2, 2, 2], [16, 32, 64]),
        "stage4": _s(1, "BASIC", [2, 2, 2, 2], [16, 32, 64, 128]),
        "official": {"params_m": 1.5, "gmacs_1024x2048": 31.1},
    },
    "hrnet_w18_small_v2": {
        "title": "HRNetV2-W18-Small-v2 (paper's W18)",
        "description": "HRNetV2-W18-Small-v2, the paper's 'W18': modules 1/1/3/2, 2 blocks per branch, widths 18-144",
        "stage1": _s(1, "BOTTLENECK", [2], [64]),
        "stage2": _s(1, "BASIC", [2, 2], [18, 36]),
        "stage3": _s(3, "BASIC", [2, 2, 2], [18, 36, 72]),
        "stage4": _s(2, "BASIC", [2, 2, 2, 2], [18, 36, 72, 144]),
        "official": {"params_m": 3.9, "gmacs_1024x2048": 71.6},
    },
    "hrnet_w18": {
        "title": "HRNetV2-W18",
        "description": "HRNetV2-W18: modules 1/1/4/3, 4 blocks per branch, widths 18-144",
        "stage1": _s(1, "BOTTLENECK", [4], [64]),
        "stage2": _s(1, "BASIC", [4, 4], [18, 36]),
        "stage3": _s(4, "BASIC", [4, 4, 4], [18, 36, 72]),
        "stage4": _s(3, "BASIC", [4, 4, 4, 4], [18, 36, 72, 144]),
    },
    "hrnet_w48": {
        "title": "HRNetV2-W48",
        "description": "HRNetV2-W48: modules 1/1/4/3, 4 blocks per branch, widths 48-384",
        "stage1": _s(1, "BOTTLENECK", [4], [64]),
        "stage2": _s(1, "BASIC", [4, 4], [48, 96]),
        "stage3": _s(4, "BASIC", [4, 4, 4], [48, 96, 192]),
        "stage4": _s(3, "BASIC", [4, 4, 4, 4], [48, 96, 192, 384]),
        "official": {"params_m": 65.8, "gmacs_1024x2048": 696.2},
    },
    "hrnet_tiny": {
        "title": "uniseg tiny HRNet (CPU demos)",
        "description": "uniseg's CPU demo net (~0.26M params): 32-wide stem, 1 module per stage, 1 basic block per branch, widths 8-64",
        "stem_channels": 32,
        "stage1": _s(1, "BOTTLENECK", [1], [16]),
        "stage2": _s(1, "BASIC", [1, 1], [8, 16]),
        "stage3": _s(1, "BASIC", [1, 1, 1], [8, 16, 32]),
        "stage4": _s(1, "BASIC", [1, 1, 1, 1], [8, 16, 32, 64]),
    },
}


def describe_hrnet(name: str) -> dict:
    """Title, description, classifier input width, stage layout and official figures of an HRNet variant."""
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


def _builder(name: str):
    def build(num_classes: int, head: str = "linear", **kwargs: Any):
        from uniseg.models.hrnet import hrnet

        return hrnet(name, num_classes, head, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{VARIANTS[name].get('title', name)}: ``build(num_classes, head='linear', **kwargs)``."
    return build


for _name in VARIANTS:
    register(_name, family="hrnet", builder=_builder(_name), describe=describe_hrnet)
