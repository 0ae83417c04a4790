"""TensorBoard event files of a run (``uniseg train --tensorboard``): ``RUN/tb``, through ``torch.utils.tensorboard``.

Per logged iteration: ``train/loss``, ``train/lr``, ``train/images_per_s``, ``train/data_wait`` (the
``metrics.jsonl`` line's values). Per validation: ``val/miou/<dataset>``, ``val/mean_miou`` and, under
``val_images/<dataset>/<n>``, a few validation images beside their prediction and ground truth in the
dataset's colours. Only rank 0 writes. A resumed run opens the same folder with ``purge_step`` one past
its checkpoint, so what an interrupted process logged after that checkpoint is dropped by TensorBoard
and every step appears once. ``tensorboard`` is an optional extra: ``pip install 'uniseg[tensorboard]'``.
Event files grow as the run goes (TensorBoard appends records), so unlike other outputs they are not
written atomically; a torn last record of a killed process is skipped by TensorBoard's reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from uniseg.errors import UnisegError

__all__ = ["EVENTS_PREFIX", "TB_DIR", "TensorBoardLog", "ValImage", "clear_events", "require_tensorboard", "validation_images"]

TB_DIR = "tb"
EVENTS_PREFIX = "events.out.tfevents."  # how TensorBoard names its event files
IMAGES_PER_DATASET = 2
MAX_PANEL_WIDTH = 512  # each of image / prediction / ground truth is shrunk to at most this many pixels wide
TRAIN_SCALARS = ("loss", "lr", "images_per_s", "data_wait")


def require_tensorboard(flag: str = "--tensorboard") -> None:
    """Refuse ``--tensorboard`` (or ``tensorboard: true``) where the optional extra is not installed, in one line."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (imports the tensorboard package)
    except ImportError:
        raise UnisegError(
            f"{flag} needs the tensorboard package: pip install 'uniseg[tensorboard]' "
            "(or train without --tensorboard / with tensorboard: false in the config)"
        ) from None


def clear_events(run: Path) -> int:
    """Delete the event files in ``run/tb`` (a new run in a folder whose earlier start never checkpointed); how many."""
    folder = Path(run) / TB_DIR
    if not folder.is_dir():
        return 0
    removed = 0
    for p in folder.glob(EVENTS_PREFIX + "*"):
        p.unlink(missing_ok=True)
        removed += 1
    return removed


@dataclass(frozen=True)
class ValImage:
    """One validation image as TensorBoard shows it: ``H x 3W x 3`` uint8, image | prediction | ground truth."""

    dataset: str
    index: int
    path: str
    panels: np.ndarray


class TensorBoardLog:
    """The event writer of one run, opened on its first record (a run with nothing to do writes no file)."""

    def __init__(self, run: Path, start_iteration: int) -> None:
        self.folder = Path(run) / TB_DIR
        self.start_iteration = int(start_iteration)
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            # steps after the checkpoint that a stopped process had logged are purged by the reader
            purge = self.start_iteration + 1 if self.start_iteration > 0 else None
            self._writer = SummaryWriter(log_dir=str(self.folder), purge_step=purge)
        return self._writer

    def train(self, record: dict) -> None:
        """The scalars of one ``metrics.jsonl`` train record."""
        step = int(record["iteration"])
        for key in TRAIN_SCALARS:
            if key in record:
                self.writer.add_scalar(f"train/{key}", float(record[key]), step)

    def validation(self, record: dict, images: Sequence[ValImage] = ()) -> None:
        """Per-dataset mIoU, their mean, and the images of one validation."""
        step = int(record["iteration"])
        for name, miou in record["val"].items():
            if miou is not None:  # None: every image of the set was a bad file (--on-bad-file skip)
                self.writer.add_scalar(f"val/miou/{name}", float(miou), step)
        if record["mean_miou"] is not None:
            self.writer.add_scalar("val/mean_miou", float(record["mean_miou"]), step)
        for im in images:
            self.writer.add_image(f"val_images/{im.dataset}/{im.index}", im.panels, step, dataformats="HWC")
        self.writer.flush()

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _colour(ids: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``H x W x 3`` colours of class ids (255 and anything past the palette: black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: min(len(palette), 255)] = palette[:255]
    return lut[ids.astype(np.int64).clip(0, 255)]


def _shrink(panel: np.ndarray, nearest: bool) -> np.ndarray:
    from PIL import Image

    h, w = panel.shape[:2]
    if w <= MAX_PANEL_WIDTH:
        return panel
    size = (MAX_PANEL_WIDTH, max(1, round(h * MAX_PANEL_WIDTH / w)))
    return np.asarray(Image.fromarray(panel).resize(size, Image.NEAREST if nearest else Image.BILINEAR))


@torch.no_grad()
def validation_images(model: nn.Module, val_sets: Sequence, registry, device: torch.device, autocast=None,
                      per_dataset: int = IMAGES_PER_DATASET) -> list[ValImage]:
    """The first ``per_dataset`` images of each validation set with the model's prediction and the ground
    truth, in the dataset's own classes and colours (the prediction is the one validation scores)."""
    from PIL import Image

    from uniseg.data.faults import GuardedDataset, is_fault
    from uniseg.data.transforms import denormalize
    from uniseg.engine.inference import InferenceSettings, predict_channels

    out: list[ValImage] = []
    for es in val_sets:
        palette = np.array([c.colour for c in registry.get(es.name).classes], dtype=np.uint8).reshape(-1, 3)
        channels = torch.from_numpy(es.eval_map.channels).to(device)
        classes = es.eval_map.classes
        shown = GuardedDataset(es.dataset, "skip")  # validation has applied --on-bad-file to these already
        for i in range(min(per_dataset, len(es.dataset))):
            item = shown[i]
            if is_fault(item):
                continue
            label = item["label"]
            if es.label_map is not None:
                label = es.label_map[label.long()]
            label_np = label.cpu().numpy()
            winner, _ = predict_channels(model, item["image"].unsqueeze(0).to(device), label_np.shape[-2:], channels,
                                         InferenceSettings(), autocast)
            pred = classes[winner.cpu().numpy()]
            rgb = denormalize(item["image"])
            if rgb.shape[:2] != label_np.shape:
                rgb = np.asarray(Image.fromarray(rgb).resize(label_np.shape[::-1], Image.BILINEAR))
            panels = [_shrink(rgb, False), _shrink(_colour(pred, palette), True), _shrink(_colour(label_np, palette), True)]
            out.append(ValImage(es.name, i, str(item["path"]), np.concatenate(panels, axis=1)))
    return out

