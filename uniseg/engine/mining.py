"""Relation mining (the paper's Eq. 7): how strongly each unified class fires on each dataset's classes.

One pass over the training datasets in eval mode, without augmentation, with a cosine-classifier
model. For every dataset d and ground-truth class c of d, over all pixels labelled c:

    score[d, c, c']  = mean of sigmoid(t * cos(feature, w_c'))   (the paper's s_{d,c}(c'), in [0, 1])
    cosine[d, c, c'] = mean of cos(feature, w_c')                 (what the authors' code stored)
    pixels[d, c]     = number of those pixels

The cosine map (1/4 of the network input) is resampled to the label resolution as the logits are,
and accumulated with one ``index_add_`` per image (a scatter-add over pixels, never a loop over
classes), in float64. Under torchrun each process takes a share of the images and the sums are
all-reduced; rank 0 writes. Long passes resume: partial sums are saved every ``save_every``
images and a rerun with the same arguments continues from there.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from uniseg.engine.checkpoint import TrainedModel
from uniseg.errors import UnisegError
from uniseg.io import atomic_open
from uniseg.labelspaces.registry import Registry

STATE = ".mining-state{}.pt"


@dataclass
class MiningSums:
    """Running sums of one pass: ``D x K x K`` sigmoid and cosine sums, ``D x K`` pixel counts."""

    sig: torch.Tensor
    cos: torch.Tensor
    pixels: torch.Tensor

    @classmethod
    def zeros(cls, d: int, k: int, device: torch.device) -> "MiningSums":
        return cls(torch.zeros(d, k, k, dtype=torch.float64, device=device), torch.zeros(d, k, k, dtype=torch.float64, device=device),
                   torch.zeros(d, k, dtype=torch.int64, device=device))

    def add(self, d: int, cosine: torch.Tensor, target: torch.Tensor, scale: float) -> None:
        """Accumulate one image: ``cosine`` K x H x W at the label size, ``target`` H x W unified ids (255 = ignore).

        Ignored pixels go to a spare column K that is dropped; per-image sums are float32 (one
        ``index_add_`` along the pixel axis, no transposed copies), totals float64.
        """
        k = cosine.shape[0]
        flat = target.reshape(-1)
        idx = torch.where(flat == 255, torch.full_like(flat, k), flat)
        src = cosine.reshape(k, -1).float()
        cos_sum = torch.zeros(k, k + 1, device=src.device).index_add_(1, idx, src)
        sig_sum = torch.zeros(k, k + 1, device=src.device).index_add_(1, idx, torch.sigmoid(src * scale))
        self.cos[d] += cos_sum[:, :k].t().double()
        self.sig[d] += sig_sum[:, :k].t().double()
        self.pixels[d] += torch.bincount(idx, minlength=k + 1)[:k]

    def all_reduce(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        for t in (self.sig, self.cos, self.pixels):
            reduce(t)

    def means(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(score, cosine, pixels)`` as numpy: means over pixels (0 where a class has none)."""
        n = self.pixels.double().clamp(min=1)[..., None]
        return (self.sig / n).cpu().numpy(), (self.cos / n).cpu().numpy(), self.pixels.cpu().numpy()


@torch.no_grad()
def cosine_at(model, image: torch.Tensor, size: Sequence[int], autocast=None) -> torch.Tensor:
    """``K x H x W`` raw cosine map of a cosine-classifier model, resampled to ``size`` like the logits."""
    import contextlib

    with autocast if autocast is not None else contextlib.nullcontext():
        out = model(image, return_aux=True)
    cos = out["cosine"].float()
    if tuple(cos.shape[-2:]) != tuple(size):
        cos = F.interpolate(cos, size=tuple(size), mode="bilinear", align_corners=bool(model.align_corners))
    return cos[0]


def run_key(trained: TrainedModel, datasets: Sequence[tuple[str, str]], split: Sequence[str], short_side: int) -> str:
    """What a partial state belongs to: checkpoint, datasets, split and resolution."""
    blob = json.dumps([trained.path, trained.iteration, trained.union.fingerprint, list(map(list, datasets)), list(split), short_side])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class MiningResult:
    score: np.ndarray
    cosine: np.ndarray
    pixels: np.ndarray
    datasets: list[str]
    classes: list[str]
    fingerprint: str
    images: dict[str, int]


def mine(
    trained: TrainedModel,
    datasets: Sequence[tuple[str, str]],
    registry: Registry,
    *,
    device: torch.device,
    split: Sequence[str] = ("train",),
    short_side: int = 1080,
    workers: int = 2,
    autocast=None,
    rank: int = 0,
    world_size: int = 1,
    all_reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    state_dir: Optional[Path] = None,
    save_every: int = 200,
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> MiningResult:
    """Accumulate Eq. 7 over ``datasets`` (members of the model's union); see the module docstring."""
    from uniseg.data import EvalTransform, SegDataset

    model, union = trained.model, trained.union
    head = model.classifier
    if trained.spec.get("head") != "cosine" or not hasattr(head, "cosine"):
        raise UnisegError(f"{trained.path}: relation mining needs a cosine-classifier model (train it with --head cosine)")
    names = [n for n, _ in datasets]
    for n in names:
        if n not in union.datasets:
            raise UnisegError(f"{n}: not a training dataset of {trained.path} ({', '.join(union.datasets)}); mine the datasets it was trained on")
    scale = float(head.scale)
    k, dcount = union.num_classes, len(union.datasets)
    sums = MiningSums.zeros(dcount, k, device)
    done: dict[str, int] = {}
    key = run_key(trained, datasets, split, short_side)
    state_path = None if state_dir is None else Path(state_dir) / STATE.format(f".rank{rank}" if world_size > 1 else "")
    if state_path is not None and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("key") == key:
            sums = MiningSums(state["sig"].to(device), state["cos"].to(device), state["pixels"].to(device))
            done = dict(state["done"])
    tf = EvalTransform(short_side=short_side or None, resize_label=True)
    images: dict[str, int] = {}
    for name, root in datasets:
        ds = SegDataset(name, root, union, split=list(split), transform=tf, registry=registry)
        d = union.dataset_index(name)
        mine_idx = list(range(rank, len(ds), world_size))
        images[name] = len(ds)
        start = done.get(name, 0)
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, mine_idx[start:]), batch_size=None, num_workers=workers)
        for i, item in enumerate(loader, start=start + 1):
            image = item["image"].unsqueeze(0).to(device)
            target = item["label"].to(device)
            sums.add(d, cosine_at(model, image, target.shape[-2:], autocast), target, scale)
            done[name] = i
            if progress is not None:
                progress(name, i, len(mine_idx))
            if state_path is not None and i % save_every == 0:
                _save_state(state_path, key, sums, done)
    if all_reduce is not None:
        sums.all_reduce(all_reduce)
    score, cosine, pixels = sums.means()
    return MiningResult(score, cosine, pixels, list(union.datasets), union.names, union.fingerprint, images)


def _save_state(path: Path, key: str, sums: MiningSums, done: dict[str, int]) -> None:
    with atomic_open(path, "wb") as fh:
        torch.save({"key": key, "sig": sums.sig.cpu(), "cos": sums.cos.cpu(), "pixels": sums.pixels.cpu(), "done": done}, fh)


def clear_state(state_dir: Path) -> None:
    for p in Path(state_dir).glob(STATE.format("*")):
        p.unlink()
