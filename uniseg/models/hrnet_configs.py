"""The HRNetV2 variants as data, and their registration: a variant is one entry of
``hrnet_variants.json``.

Each entry of :data:`VARIANTS` is a named model for ``uniseg.models.build_model`` and ``uniseg
models list`` (registered at the bottom, as timm's ``register_model`` does for its model
functions). Plain data and torch-free, so listing and describing models never imports torch;
``uniseg.models.hrnet`` builds the network from these configs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
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


#: The variants, one entry each in ``hrnet_variants.json`` (``stages``: four rows of modules, block,
#: blocks per branch, channels per branch; ``stem_channels`` 64 unless given). The official ones are
#: the official experiment configs (experiments/cityscapes/seg_hrnet_*.yaml), checked key by key
#: against the official state dicts in tests/test_hrnet.py; ``official`` holds the figures the
#: official README reports for a 19-class head at 1024x2048 (GFLOPs there are multiply-adds of
#: conv/linear layers divided by 2**30).
VARIANTS_FILE = Path(__file__).with_name("hrnet_variants.json")


def _load_variants() -> dict[str, dict]:
    """``VARIANTS_FILE`` in the form :meth:`HRNetConfig.from_dict` reads (``stage1`` ... ``stage4``)."""
    out: dict[str, dict] = {}
    for name, entry in json.loads(VARIANTS_FILE.read_text(encoding="utf-8")).items():
        out[name] = {k: v for k, v in entry.items() if k != "stages"}
        for i, (modules, block, blocks, channels) in enumerate(entry["stages"], start=1):
            out[name][f"stage{i}"] = _s(modules, block, blocks, channels)
    return out


VARIANTS: dict[str, dict] = _load_variants()


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
