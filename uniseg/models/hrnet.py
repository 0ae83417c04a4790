"""HRNetV2 for semantic segmentation (Wang et al., TPAMI 2020), as in the official code.

The network is the official ``seg_hrnet.py`` module for module -- stem (two stride-2 3x3 convs),
stage 1 (bottlenecks), transitions, stages 2-4 of high-resolution modules with fuse layers,
and the head (the four branches bilinearly upsampled to 1/4, concatenated, 1x1 conv-BN-ReLU,
then the classifier) -- so ``state_dict()`` keys and shapes equal the official ones
(``conv1``, ``bn1``, ``layer1``, ``transition1``, ``stage2``, ..., ``last_layer``) and official
checkpoints load by key. Variants are data (``uniseg.models.hrnet_configs.VARIANTS``); the classifier is pluggable
(``"linear"`` or ``"cosine"``) and sits at ``last_layer.3`` either way.

Numerics: with the same weights the 1/4-resolution logits equal the official code's (tested
against stored official outputs). Bilinear upsampling (fuse layers and head) uses
``align_corners=False`` by default (:data:`ALIGN_CORNERS`), as the code behind every published
checkpoint of these variants does; ``align_corners=True`` reproduces HRNet-OCR's config default.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, TypedDict, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uniseg.models.heads import CosineClassifier, build_head
from uniseg.models.hrnet_configs import EXPANSION, VARIANTS, HRNetConfig, StageConfig
from uniseg.models.resize import resize_bilinear

__all__ = ["ALIGN_CORNERS", "VARIANTS", "HRNet", "HRNetConfig", "SegmentationOutput", "StageConfig", "hrnet"]

BN_MOMENTUM = 0.1
# The official upsampling of the published HRNetV2 checkpoints: the W18-Small-v1/v2 Cityscapes
# models were built on the pytorch-v1.1 branch, whose F.interpolate/F.upsample calls pass no
# align_corners (False); HRNet-OCR's plain-HRNet configs (W48 Cityscapes, LIP, PASCAL-Context)
# set MODEL.ALIGN_CORNERS: False. Only the OCR configs keep that branch's default, True.
ALIGN_CORNERS = False


# --------------------------------------------------------------------------------------------
# blocks (official names: conv1/bn1/conv2/bn2[/conv3/bn3], downsample.0/.1)
# --------------------------------------------------------------------------------------------


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN with a residual connection."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = _bn(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = _bn(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), each with BN, and a residual connection."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = _bn(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


BLOCKS: dict[str, type[nn.Module]] = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def _expansion(block: str) -> int:
    return EXPANSION[block]


def _make_layer(block: type, inplanes: int, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    expansion = block.expansion
    downsample = None
    if stride != 1 or inplanes != planes * expansion:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * expansion, kernel_size=1, stride=stride, bias=False), _bn(planes * expansion))
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------------
# the high-resolution module: parallel branches, then every branch fused into every output
# --------------------------------------------------------------------------------------------


class HighResolutionModule(nn.Module):
    """Parallel multi-resolution branches followed by all-to-all fusion (sum, then ReLU)."""

    def __init__(self, inchannels: Sequence[int], stage: StageConfig, align_corners: bool = ALIGN_CORNERS) -> None:
        super().__init__()
        if len(inchannels) != stage.branches:
            raise ValueError(f"module has {stage.branches} branches but {len(inchannels)} inputs")
        block = BLOCKS[stage.block]
        self.align_corners = align_corners
        self.num_branches = stage.branches
        self.branches = nn.ModuleList(
            _make_layer(block, inchannels[i], stage.channels[i], stage.blocks[i]) for i in range(stage.branches)
        )
        self.out_channels = [c * block.expansion for c in stage.channels]  # type: ignore[attr-defined]
        self.fuse_layers = self._make_fuse_layers(self.out_channels) if stage.branches > 1 else None
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _make_fuse_layers(ch: Sequence[int]) -> nn.ModuleList:
        n = len(ch)
        fuse = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:  # lower resolution: 1x1 conv-BN, upsampled in forward
                    row.append(nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, 1, 0, bias=False), _bn(ch[i])))
                elif j == i:
                    row.append(None)
                else:  # higher resolution: (i - j) stride-2 3x3 convs, ReLU between them
                    convs = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        out = ch[i] if last else ch[j]
                        layers = [nn.Conv2d(ch[j], out, 3, 2, 1, bias=False), _bn(out)]
                        if not last:
                            layers.append(nn.ReLU(inplace=True))
                        convs.append(nn.Sequential(*layers))
                    row.append(nn.Sequential(*convs))
            fuse.append(row)
        return fuse

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):  # the official summation order
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, self.num_branches):
                if j == i:
                    y = y + xs[j]
                elif j > i:
                    y = y + F.interpolate(row[j](xs[j]), size=xs[i].shape[-2:], mode="bilinear", align_corners=self.align_corners)
                else:
                    y = y + row[j](xs[j])
            out.append(self.relu(y))
        return out


def _make_transition(pre: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    """Official transition: a 3x3 conv where widths change, stride-2 convs for each new branch."""
    layers = nn.ModuleList()
    for i, c in enumerate(cur):
        if i < len(pre):
            if c != pre[i]:
                layers.append(nn.Sequential(nn.Conv2d(pre[i], c, 3, 1, 1, bias=False), _bn(c), nn.ReLU(inplace=True)))
            else:
                layers.append(None)
        else:
            convs = []
            for j in range(i + 1 - len(pre)):
                cin = pre[-1]
                cout = c if j == i - len(pre) else cin
                convs.append(nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), _bn(cout), nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*convs))
    return layers


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------


class SegmentationOutput(TypedDict, total=False):
    """What ``HRNet.forward(x, return_aux=True)`` returns."""

    logits: Tensor  # B x K x H x W, at the input size
    logits_lowres: Tensor  # B x K x H/4 x W/4, before upsampling
    features: Tensor  # B x C x H/4 x W/4, the classifier's input
    cosine: Tensor  # B x K x H/4 x W/4, raw cosine map (cosine head only)


class HRNet(nn.Module):
    """HRNetV2 segmentation network with a pluggable classifier at ``last_layer.3``.

    ``forward(x)`` returns ``B x K x H x W`` logits upsampled to the input size;
    ``forward(x, return_aux=True)`` a :class:`SegmentationOutput` that also holds the 1/4-scale
    logits, the classifier's input features and, with the cosine head, the raw cosine map that
    relation mining (Eq. 7) averages. ``align_corners`` (kept as ``model.align_corners``, which
    checkpoints record) applies to every bilinear resize: fuse layers, head and output.
    """

    #: The logits' grid relative to the input (features at 1/4, bilinearly upsampled).
    output_stride = 4


    def __init__(
        self,
        config: Union[HRNetConfig, Mapping],
        num_classes: int,
        head: str = "linear",
        *,
        cosine_scale: float = 20.0,
        align_corners: bool = ALIGN_CORNERS,
        name: str = "hrnet",
    ) -> None:
        super().__init__()
        cfg = config if isinstance(config, HRNetConfig) else HRNetConfig.from_dict(config)
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.config = cfg
        self.name = name
        stem = cfg.stem_channels

        self.conv1 = nn.Conv2d(3, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = _bn(stem)
        self.conv2 = nn.Conv2d(stem, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = _bn(stem)
        self.relu = nn.ReLU(inplace=True)

        s1 = cfg.stage1
        if s1.branches != 1 or s1.modules != 1:
            raise ValueError("stage1 must have one branch and one module (a plain residual layer)")
        block1 = BLOCKS[s1.block]
        self.layer1 = _make_layer(block1, stem, s1.channels[0], s1.blocks[0])
        pre = [s1.channels[0] * block1.expansion]  # type: ignore[attr-defined]

        for idx, stage in ((1, cfg.stage2), (2, cfg.stage3), (3, cfg.stage4)):
            cur = [c * _expansion(stage.block) for c in stage.channels]
            setattr(self, f"transition{idx}", _make_transition(pre, cur))
            modules = []
            inchannels = cur
            for _ in range(stage.modules):
                module = HighResolutionModule(inchannels, stage, bool(align_corners))
                inchannels = module.out_channels
                modules.append(module)
            setattr(self, f"stage{idx + 1}", nn.Sequential(*modules))
            pre = inchannels

        width = sum(pre)
        self.feature_channels = width
        self.last_layer = nn.Sequential(
            nn.Conv2d(width, width, kernel_size=1, stride=1, padding=0),
            _bn(width),
            nn.ReLU(inplace=True),
            build_head(head, width, num_classes, scale=cosine_scale),
        )
        self.head_type = head
        self.cosine_scale = cosine_scale
        self.align_corners = bool(align_corners)
        self._init_weights()

    # -- construction helpers ----------------------------------------------------------------

    def _init_weights(self) -> None:
        """Official ``init_weights``: conv weights N(0, 0.001) (the linear classifier's too), BN 1 / 0.

        Conv biases (``last_layer.0`` and the linear classifier) keep PyTorch's default
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the official code leaves them; under the same
        seed the whole initialisation equals the official one. The cosine classifier keeps its
        own init: its logits do not depend on the weight norms.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def align_corners(self) -> bool:
        """Bilinear ``align_corners`` of every resize in the network (fuse layers, head, output)."""
        return self._align_corners

    @align_corners.setter
    def align_corners(self, value: bool) -> None:
        self._align_corners = bool(value)
        for m in self.modules():
            if isinstance(m, HighResolutionModule):
                m.align_corners = self._align_corners

    @property
    def classifier(self) -> nn.Module:
        """The last 1x1 layer (``last_layer.3``): a LinearClassifier or a CosineClassifier."""
        return self.last_layer[3]

    @property
    def num_classes(self) -> int:
        return int(self.classifier.out_channels)

    def reset_classifier(self, num_classes: int, head: Optional[str] = None) -> None:
        """Replace the classifier (e.g. a new union, or cosine -> linear for the second stage)."""
        head = head or self.head_type
        ref = self.last_layer[0].weight
        self.last_layer[3] = build_head(head, self.feature_channels, num_classes, scale=self.cosine_scale).to(device=ref.device, dtype=ref.dtype)
        self.head_type = head

    def load_pretrained(self, path, **kwargs):
        """Load an official checkpoint by key; see :func:`uniseg.models.pretrained.load_pretrained`."""
        from uniseg.models.pretrained import load_pretrained

        return load_pretrained(self, path, **kwargs)

    # -- forward -----------------------------------------------------------------------------

    def forward_backbone(self, x: Tensor) -> list[Tensor]:
        """The four branch outputs at 1/4, 1/8, 1/16 and 1/32 of the input."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        xs = [t(x) if t is not None else x for t in self.transition1]
        xs = self.stage2(xs)
        for transition, stage in ((self.transition2, self.stage3), (self.transition3, self.stage4)):
            nxt = []
            for i, t in enumerate(transition):
                if t is None:
                    nxt.append(xs[i])
                else:
                    nxt.append(t(xs[i] if i < len(xs) else xs[-1]))
            xs = stage(nxt)
        return xs

    def forward_features(self, x: Tensor) -> Tensor:
        """``B x C x H/4 x W/4``: branches upsampled to 1/4, concatenated, 1x1 conv-BN-ReLU."""
        xs = self.forward_backbone(x)
        size = xs[0].shape[-2:]
        ups = [xs[0]] + [F.interpolate(t, size=size, mode="bilinear", align_corners=self.align_corners) for t in xs[1:]]
        feats = torch.cat(ups, dim=1)
        return self.last_layer[2](self.last_layer[1](self.last_layer[0](feats)))

    def forward(self, x: Tensor, return_aux: bool = False) -> Union[Tensor, SegmentationOutput]:
        features = self.forward_features(x)
        cosine = None
        if return_aux and isinstance(self.classifier, CosineClassifier):
            low, cosine = self.classifier.forward_with_cosine(features)
        else:
            low = self.classifier(features)
        logits = resize_bilinear(low, x.shape[-2:], self.align_corners)
        if not return_aux:
            return logits
        out: SegmentationOutput = {"logits": logits, "logits_lowres": low, "features": features}
        if cosine is not None:
            out["cosine"] = cosine
        return out

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, classes={self.num_classes}, head={self.head_type!r}, "
            f"feature_channels={self.feature_channels}, align_corners={self.align_corners}"
        )


def hrnet(name: str, num_classes: int, head: str = "linear", **kwargs) -> HRNet:
    """Build the named variant of :data:`VARIANTS`."""
    if name not in VARIANTS:
        raise KeyError(name)
    return HRNet(HRNetConfig.from_dict(VARIANTS[name]), num_classes, head, name=name, **kwargs)
