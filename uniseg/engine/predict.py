"""``uniseg predict``: label images in a chosen label space, written as PNGs beside a kept folder tree.

For each input image ``INPUT/a/b.jpg`` it writes ``OUT/a/b.png``: one channel, the image's size,
class indices of the label space in its registry ``classes`` order (or unified indices for
``union``), 255 where nothing is predicted. The inference is the one ``uniseg eval`` scores
(:func:`uniseg.engine.inference.predict_channels`), so the PNGs reproduce its numbers.

``colour`` adds ``<stem>_colour.png`` in the label space's colours. ``multilabel`` renders the
paper's Figure 4 view as ``<stem>_multilabel.png``: where a class outside the label space scores
above ``threshold`` (sigmoid for BCE-trained models, softmax over the union for CE), that class
replaces the prediction and is drawn in its union colour; a legend names the classes shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from uniseg.engine.checkpoint import TrainedModel
from uniseg.engine.inference import InferenceSettings, predict_channels
from uniseg.errors import UnisegError
from uniseg.io import atomic_save_image
from uniseg.labelspaces.registry import Registry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
NONE = 255


@dataclass
class Target:
    """The label space predictions are written in: names, colours and which unified channels to read."""

    name: str
    classes: list[str]
    colours: np.ndarray  # N x 3 uint8
    channels: Optional[torch.Tensor]  # unified channels read (None: all, for the union)
    class_of_channel: Optional[torch.Tensor]  # position in ``channels`` -> class index


def target_space(trained: TrainedModel, name: str, registry: Registry) -> Target:
    """``union`` or a registry label space (seen or unseen) as a :class:`Target`."""
    union = trained.union
    if name == "union":
        return Target("union", union.names, union.palette, None, None)
    space = registry.get(name)
    union.check_member(space)
    emap = union.eval_map(space)
    if emap.channels.size == 0:
        raise UnisegError(f"--label-space {name}: none of its classes is in the model's union; nothing to predict")
    colours = np.array([c.colour for c in space.classes], dtype=np.uint8).reshape(-1, 3)
    return Target(space.name, [c.name for c in space.classes], colours, torch.from_numpy(emap.channels), torch.from_numpy(emap.classes))


def plan_outputs(inputs: Sequence[str | os.PathLike], out: Path) -> list[tuple[Path, Path]]:
    """``(image, output png)`` pairs: files go to ``out/<name>.png``, folders keep their tree."""
    from uniseg.filetree import mirror_tree

    pairs = mirror_tree(inputs, out, IMAGE_SUFFIXES, ".png", what="images")
    if not pairs:
        raise UnisegError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {', '.join(map(str, inputs))}")
    return pairs


def scores_of(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """Normalised class scores: sigmoid per class (BCE models) or softmax over the union (CE)."""
    return torch.softmax(logits, dim=1) if activation == "softmax" else torch.sigmoid(logits)


def multilabel_override(logits: torch.Tensor, channels: Optional[torch.Tensor], activation: str,
                        threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mask, classes)``: pixels where a unified class outside ``channels`` scores above
    ``threshold``, and that best outside class (unified index) there."""
    s = scores_of(logits, activation)[0]
    outside = torch.ones(s.shape[0], dtype=torch.bool, device=s.device)
    if channels is not None:
        outside[channels.to(s.device)] = False
    if not bool(outside.any()):
        empty = torch.zeros(s.shape[1:], dtype=torch.bool, device=s.device)
        return empty, torch.zeros(s.shape[1:], dtype=torch.int64, device=s.device)
    s_out = s.masked_fill(~outside[:, None, None], -1.0)
    best, cls = s_out.max(0)
    return best > threshold, cls


@dataclass
class PredictReport:
    out: Path
    label_space: str
    written: list[str] = field(default_factory=list)
    outside_classes: dict[str, int] = field(default_factory=dict)  # multilabel: class -> pixels drawn


def legend_strip(width: int, entries: Sequence[tuple[str, tuple[int, int, int]]]):
    """An RGB strip ``width`` wide listing ``(name, colour)`` swatches, wrapped over rows."""
    from PIL import Image, ImageDraw

    row_h, pad = 14, 4
    draw_probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows: list[list[tuple[str, tuple[int, int, int], int]]] = [[]]
    x = pad
    for name, colour in entries:
        w = 12 + 4 + int(draw_probe.textlength(name)) + 12
        if x + w > width and rows[-1]:
            rows.append([])
            x = pad
        rows[-1].append((name, colour, x))
        x += w
    img = Image.new("RGB", (width, max(1, len(rows)) * row_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for r, row in enumerate(rows):
        y = pad // 2 + r * row_h
        for name, colour, x0 in row:
            draw.rectangle([x0, y + 1, x0 + 11, y + 11], fill=tuple(colour), outline=(0, 0, 0))
            draw.text((x0 + 16, y), name, fill=(0, 0, 0))
    return img


def predict_files(
    trained: TrainedModel,
    target: Target,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    device: torch.device,
    settings: InferenceSettings = InferenceSettings(),
    colour: bool = False,
    multilabel: bool = False,
    threshold: float = 0.5,
    autocast=None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> PredictReport:
    """Predict every image of ``inputs`` and write the PNGs (see the module docstring)."""
    from PIL import Image

    from uniseg.data.labels import open_image
    from uniseg.data.transforms import normalize

    out = Path(out)
    pairs = plan_outputs(inputs, out)
    model = trained.model
    report = PredictReport(out, target.name)
    channels = None if target.channels is None else target.channels.to(device)
    class_of = None if target.class_of_channel is None else target.class_of_channel.to(device)
    union_pal = torch.from_numpy(trained.union.palette).to(device)
    pal = torch.from_numpy(target.colours).to(device)
    names = trained.union.names
    for k, (src, dst) in enumerate(pairs):
        img = open_image(src)
        img = img if img.mode == "RGB" else img.convert("RGB")
        x = normalize(img).unsqueeze(0).to(device)
        winner, logits = predict_channels(model, x, (img.height, img.width), channels, settings, autocast)
        pred = winner if class_of is None else class_of[winner]
        atomic_save_image(dst, Image.fromarray(pred.to(torch.uint8).cpu().numpy(), mode="L"), format="PNG")
        report.written.append(str(dst))
        if colour:
            rgb = pal[pred].cpu().numpy()
            atomic_save_image(dst.with_name(dst.stem + "_colour.png"), Image.fromarray(rgb, mode="RGB"), format="PNG")
        if multilabel:
            over, cls = multilabel_override(logits, channels, trained.activation, threshold)
            base = pal[pred]
            rgb = torch.where(over[..., None], union_pal[cls], base).cpu().numpy()
            present = torch.unique(cls[over]).tolist()
            for c in present:
                report.outside_classes[names[c]] = report.outside_classes.get(names[c], 0) + int((cls[over] == c).sum())
            shown = torch.unique(pred).tolist()
            entries = [(target.classes[c], tuple(int(v) for v in target.colours[c])) for c in shown]
            entries += [(f"{names[c]} (outside {target.name})", tuple(int(v) for v in trained.union.palette[c])) for c in present]
            strip = legend_strip(img.width, entries)
            canvas = Image.new("RGB", (img.width, img.height + strip.height), (255, 255, 255))
            canvas.paste(Image.fromarray(rgb, mode="RGB"), (0, 0))
            canvas.paste(strip, (0, img.height))
            atomic_save_image(dst.with_name(dst.stem + "_multilabel.png"), canvas, format="PNG")
        if progress is not None:
            progress(k + 1, len(pairs))
    return report
