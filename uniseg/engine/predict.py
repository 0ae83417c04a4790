"""``uniseg predict``: label images in a chosen label space, written as PNGs beside a kept folder tree.

For each input image ``INPUT/a/b.jpg`` it writes ``OUT/a/b.png``: one channel, the image's size,
class indices of the label space in its registry ``classes`` order (or unified indices for
``union``, with the union they index written beside them as ``OUT/union.yaml``), 255 where
nothing is predicted. The inference is the one ``uniseg eval`` scores
(:func:`uniseg.engine.inference.predict_channels`), so the PNGs reproduce its numbers.

``OUT/.uniseg-outputs.json`` records the run (checkpoint, union, label space) and the files it
wrote: a file there that uniseg did not write (a dataset's ground truth), or another run's
predictions, is not replaced without ``overwrite``; two outputs with one name are refused before
anything is written. 16-bit and float images are scaled to 8 bits, not clipped (the report says so).

``colour`` adds ``<stem>_colour.png`` in the label space's colours. ``multilabel`` renders the
paper's Figure 4 view as ``<stem>_multilabel.png``: where a class outside the label space scores
above ``threshold`` (sigmoid for BCE-trained models, softmax over the union for CE; None: the
paper's 0.5 and 0.1), that class replaces the prediction and is drawn in its union colour; a
legend names the classes shown. Beside it ``<stem>_outside.png`` holds the same prediction as data:
the unified index of the outside class drawn, 255 elsewhere (what ``uniseg eval --fine-truth``
scores as the outside-space IoU).
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
from uniseg.io import atomic_save_image, atomic_write_text, claim_outputs, output_folder
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
        target = Target("union", union.names, union.palette, None, None)
    else:
        try:
            space = registry.get(name)
        except UnisegError as exc:
            raise UnisegError(f"--label-space: {exc}; or 'union' for the model's own classes") from None
        target = _space_target(union, space)
    if len(target.classes) > NONE:
        raise UnisegError(f"--label-space {name}: {len(target.classes)} classes do not fit an 8-bit PNG (0..254, {NONE} = none)")
    return target


def _space_target(union, space) -> Target:
    """A registry label space as a :class:`Target`: the unified channels of its classes, in its order."""
    union.check_member(space)
    emap = union.eval_map(space)
    if emap.channels.size == 0:
        raise UnisegError(f"--label-space {space.name}: none of its classes is in the model's union; nothing to predict")
    colours = np.array([c.colour for c in space.classes], dtype=np.uint8).reshape(-1, 3)
    return Target(space.name, [c.name for c in space.classes], colours, torch.from_numpy(emap.channels), torch.from_numpy(emap.classes))


def plan_outputs(inputs: Sequence[str | os.PathLike], out: Path) -> list[tuple[Path, Path]]:
    """``(image, output png)`` pairs: files go to ``out/<name>.png``, folders keep their tree."""
    from uniseg.filetree import mirror_tree

    pairs = mirror_tree(inputs, out, IMAGE_SUFFIXES, ".png", what="images")
    if not pairs:
        raise UnisegError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {', '.join(map(str, inputs))}")
    return pairs


PREDICT_COMMAND = "predict"
UNION_FILE = "union.yaml"  # beside predictions in unified indices: the classes they index


def planned_outputs(pairs: Sequence[tuple[Path, Path]], *, colour: bool = False, multilabel: bool = False) -> list[Path]:
    """Every file a run writes (predictions and their views), checked before anything is written:
    two outputs with one name (``a_colour.png``'s prediction and ``a.png``'s colour view) or an
    output on an input image are refused."""
    views = [("prediction", None)] + ([("colour view", "colour")] if colour else [])
    if multilabel:
        views += [("multi-label view", "multilabel"), ("outside-space prediction", "outside")]
    inputs = {os.path.abspath(src): src for src, _ in pairs}
    owner: dict[Path, str] = {}
    for src, dst in pairs:
        for what, view in views:
            path = dst if view is None else _beside(dst, view)
            if path in owner:
                raise UnisegError(f"{src}: its {what} would be written to {path}, where the {owner[path]} goes; "
                                  "predict them into separate --out folders, or rename one")
            if os.path.abspath(path) in inputs:
                raise UnisegError(f"{path}: an input image, where the {what} of {src} would be written; choose another --out")
            owner[path] = f"{what} of {src}"
    return list(owner)


def scores_of(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """Normalised class scores of ``B x K x ...`` logits: sigmoid per class (BCE models) or softmax over the union (CE)."""
    from uniseg.engine.generalisation import normalised_scores

    return torch.stack([normalised_scores(x, activation) for x in logits])


def multilabel_override(logits: torch.Tensor, channels: Optional[torch.Tensor], activation: str,
                        threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mask, classes)``: pixels where a unified class outside ``channels`` scores above
    ``threshold``, and that best outside class (unified index) there (the Figure-4 prediction of
    :func:`uniseg.engine.generalisation.outside_prediction`)."""
    from uniseg.engine.generalisation import outside_prediction

    s = scores_of(logits, activation)[0]
    k = s.shape[0]
    outside = torch.zeros(k, dtype=torch.bool, device=s.device)  # channels None: the union, every class inside
    if channels is not None:
        outside[:] = True
        outside[channels.to(s.device)] = False
    pred = outside_prediction(s.reshape(k, -1), outside, threshold).reshape(s.shape[1:])
    over = pred < k
    return over, torch.where(over, pred, torch.zeros_like(pred))


@dataclass
class PredictReport:
    out: Path
    label_space: str
    written: list[str] = field(default_factory=list)
    outside_classes: dict[str, int] = field(default_factory=dict)  # multilabel: class -> pixels drawn
    threshold: Optional[float] = None  # multilabel: the score threshold used
    bad_files: list[dict] = field(default_factory=list)  # --on-bad-file skip: {file, error} of the images left out
    converted: list[str] = field(default_factory=list)  # "<image>: <how>" of inputs that were not 8-bit (16-bit, float)


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


class ImageFiles:
    """The input images as the network takes them (read in DataLoader workers): ``image`` (3 x H x W,
    normalised), ``height``, ``width``, ``index``."""

    def __init__(self, paths: Sequence[str | os.PathLike]) -> None:
        self.paths = [str(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        from uniseg.data.labels import open_image
        from uniseg.data.transforms import normalize

        from uniseg.labelfiles import photo_rgb

        img, how = photo_rgb(open_image(self.paths[index]), self.paths[index])  # 16-bit and float inputs scaled, not clipped
        return {"image": normalize(img), "height": img.height, "width": img.width, "index": index, "converted": how or ""}


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
    threshold: Optional[float] = None,
    autocast=None,
    progress: Optional[Callable[[int, int], None]] = None,
    workers: int = 0,
    on_bad_file: str = "error",
    overwrite: bool = False,
) -> PredictReport:
    """Predict every image of ``inputs`` and write the PNGs (see the module docstring). Images are
    read by ``workers`` DataLoader processes (0: this one); ``on_bad_file``: ``error`` raises
    ``BadFileError`` at an image that cannot be read, ``skip`` writes nothing for it and lists it.

    Before the first write: ``out`` holding another run's predictions (another checkpoint, union or
    label space), or a file uniseg did not write where an output goes, is refused unless
    ``overwrite`` (``OUT/.uniseg-outputs.json`` records what uniseg wrote). Predictions in unified
    indices get the union they index beside them (``OUT/union.yaml``)."""
    from PIL import Image

    from uniseg.data.faults import BadFiles, SampleStream
    from uniseg.engine.generalisation import paper_threshold
    from uniseg.engine.inputs import sample_loader

    if multilabel and target.channels is None:
        raise UnisegError("--multilabel draws the classes outside the label space, and the union has none; "
                          "give a dataset's label space (--label-space NAME)")
    cut = paper_threshold(trained.activation) if threshold is None else float(threshold)
    pairs = plan_outputs(inputs, Path(out))
    outputs = planned_outputs(pairs, colour=colour, multilabel=multilabel)
    union_file = Path(out) / UNION_FILE if target.channels is None else None
    made_from = {"label_space": target.name, "union_fingerprint": trained.union.fingerprint,
                 "checkpoint": os.path.abspath(trained.path), "iteration": trained.iteration}
    report = PredictReport(Path(out), target.name, threshold=cut if multilabel else None)
    channels = None if target.channels is None else target.channels.to(device)
    class_of = None if target.class_of_channel is None else target.class_of_channel.to(device)
    pal = torch.from_numpy(target.colours).to(device)
    bad = BadFiles(on_bad_file)
    loader = sample_loader(ImageFiles([src for src, _ in pairs]), on_bad_file=on_bad_file, workers=workers, batch_size=None)
    with output_folder(out), SampleStream(loader, bad) as items:
        claim_outputs(out, PREDICT_COMMAND, made_from, outputs + ([union_file] if union_file else []), overwrite=overwrite)
        if union_file is not None:
            from uniseg.unify.artifact import dump_union_yaml

            atomic_write_text(union_file, dump_union_yaml(trained.union))
        for item in items:
            k = int(item["index"])
            dst = pairs[k][1]
            if item.get("converted"):
                report.converted.append(f"{pairs[k][0]}: {item['converted']}")
            x = item["image"].unsqueeze(0).to(device)
            winner, logits = predict_channels(trained.model, x, (int(item["height"]), int(item["width"])), channels, settings, autocast)
            pred = winner if class_of is None else class_of[winner]
            atomic_save_image(dst, Image.fromarray(pred.to(torch.uint8).cpu().numpy(), mode="L"), format="PNG")
            report.written.append(str(dst))
            if colour:
                atomic_save_image(_beside(dst, "colour"), Image.fromarray(pal[pred].cpu().numpy(), mode="RGB"), format="PNG")
            if multilabel:
                over, cls = multilabel_override(logits, channels, trained.activation, cut)
                view = multilabel_view(trained, target, pred, over, cls, report.outside_classes)
                atomic_save_image(_beside(dst, "multilabel"), view, format="PNG")
                outside = torch.where(over, cls, torch.full_like(cls, NONE)).to(torch.uint8).cpu().numpy()
                atomic_save_image(_beside(dst, "outside"), Image.fromarray(outside, mode="L"), format="PNG")
            if progress is not None:
                progress(items.consumed, len(pairs))
    report.bad_files = bad.to_list()
    return report


def _beside(dst: Path, view: str) -> Path:
    return dst.with_name(f"{dst.stem}_{view}.png")


def multilabel_view(trained: TrainedModel, target: Target, pred: torch.Tensor, over: torch.Tensor, cls: torch.Tensor,
                    tally: dict[str, int]):
    """Figure 4's picture: ``pred`` in the label space's colours, the outside classes (``cls`` where
    ``over``) in their union colours, and a legend strip below; ``tally`` counts their pixels."""
    from PIL import Image

    union_pal = torch.from_numpy(trained.union.palette).to(pred.device)
    base = torch.from_numpy(target.colours).to(pred.device)[pred]
    rgb = torch.where(over[..., None], union_pal[cls], base).cpu().numpy()
    counts = torch.bincount(cls[over], minlength=trained.union.num_classes).cpu()
    present = torch.nonzero(counts).flatten().tolist()
    names = trained.union.names
    for c in present:
        tally[names[c]] = tally.get(names[c], 0) + int(counts[c])
    entries = [(target.classes[c], tuple(int(v) for v in target.colours[c])) for c in torch.unique(pred).tolist()]
    entries += [(f"{names[c]} (outside {target.name})", tuple(int(v) for v in trained.union.palette[c])) for c in present]
    h, w = pred.shape
    strip = legend_strip(w, entries)
    canvas = Image.new("RGB", (w, h + strip.height), (255, 255, 255))
    canvas.paste(Image.fromarray(rgb, mode="RGB"), (0, 0))
    canvas.paste(strip, (0, h))
    return canvas
