"""Joint image + label transforms for training and evaluation.

Training (``TrainTransform``, the paper's recipe): resize so the shorter side is 1080, random
scale in [0.5, 2.0], random 713 x 713 crop (padded when the scaled image is smaller),
horizontal flip, ImageNet normalisation. The resize, the scale and the crop are one resampling:
the crop window is chosen in the scaled frame and Pillow resamples only that window of the
source (``Image.resize(..., box=...)``), so a 4000 x 3000 photo is never scaled as a whole.

Labels are only ever resampled with NEAREST (every output pixel copies an input pixel), padded
with ignore (255), and flipped with the image: a transform cannot invent a class id. Padding of
the image uses the ImageNet mean, i.e. 0 after normalisation.

Evaluation (``EvalTransform``): the shorter side to a given size (or native resolution), label
at native resolution by default (score the upsampled prediction against the original label) or
resized with NEAREST on request.

Randomness comes from a ``numpy.random.Generator`` passed in by the dataset (derived from the
sampler's per-sample seed), so a run is reproducible for a seed whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from uniseg.labelspaces.schema import IGNORE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_image(x, mode: str):
    from PIL import Image

    if isinstance(x, Image.Image):
        return x if x.mode == mode else x.convert(mode)
    arr = np.asarray(x)
    if mode == "L":
        if arr.ndim != 2:
            raise ValueError(f"label must be H x W, got shape {arr.shape}")
        return Image.fromarray(np.ascontiguousarray(arr.astype(np.uint8, copy=False)), mode="L")
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8, got shape {arr.shape} {arr.dtype}")
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def normalize(image, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """``RGB`` image (Pillow or ``H x W x 3`` uint8) -> ``3 x H x W`` float32 tensor, normalised."""
    import torch

    arr = np.asarray(_as_image(image, "RGB"), dtype=np.uint8)
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float()
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255.0
    return t.sub_(m).div_(s)


def label_tensor(label, size: tuple[int, int] | None = None):
    """``L`` label (Pillow or ``H x W``) -> ``H x W`` int64 tensor; None -> all ignore of ``size`` (H, W)."""
    import torch

    if label is None:
        assert size is not None
        return torch.full(size, IGNORE, dtype=torch.int64)
    arr = np.asarray(_as_image(label, "L"), dtype=np.uint8)
    return torch.from_numpy(arr.astype(np.int64))


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    h, w = v
    return int(h), int(w)


@dataclass(frozen=True)
class CropParams:
    """What one training transform did (for tests and debugging)."""

    scale: float  # total factor source -> output (shorter-side resize x random scale)
    scaled: tuple[int, int]  # (H, W) of the virtual scaled image
    window: tuple[int, int, int, int]  # (top, left, height, width) in the scaled frame
    box: tuple[float, float, float, float]  # the same window in source pixels (l, t, r, b)
    flip: bool


@dataclass(frozen=True)
class TrainTransform:
    """Resize (shorter side), random scale, random crop padded with ignore, flip, normalise."""

    crop: int | tuple[int, int] = 713
    short_side: Optional[int] = 1080  # None or 0: keep the source size before the random scale
    scale: tuple[float, float] = (0.5, 2.0)
    flip: float = 0.5
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        ch, cw = _pair(self.crop)
        if ch < 1 or cw < 1:
            raise ValueError(f"crop must be positive, got {self.crop}")
        lo, hi = self.scale
        if not (0 < lo <= hi):
            raise ValueError(f"scale must be 0 < low <= high, got {self.scale}")
        if not 0.0 <= self.flip <= 1.0:
            raise ValueError(f"flip must be a probability, got {self.flip}")

    def params(self, height: int, width: int, rng: np.random.Generator) -> CropParams:
        ch, cw = _pair(self.crop)
        base = self.short_side / min(height, width) if self.short_side else 1.0
        s = base * float(rng.uniform(self.scale[0], self.scale[1]))
        sh, sw = max(1, int(round(height * s))), max(1, int(round(width * s)))
        th, tw = min(ch, sh), min(cw, sw)
        top = int(rng.integers(0, sh - th + 1))
        left = int(rng.integers(0, sw - tw + 1))
        fy, fx = height / sh, width / sw
        box = (left * fx, top * fy, min(width, (left + tw) * fx), min(height, (top + th) * fy))
        flip = bool(rng.random() < self.flip)
        return CropParams(s, (sh, sw), (top, left, th, tw), box, flip)

    def apply(self, image, label, p: CropParams):
        """Apply fixed parameters; returns Pillow ``(RGB image, L label or None)`` of the crop size."""
        from PIL import Image

        image = _as_image(image, "RGB")
        if label is not None:
            label = _as_image(label, "L")
            if label.size != image.size:
                raise ValueError(f"label size {label.size} differs from image size {image.size}")
        _, _, th, tw = p.window
        img = image.resize((tw, th), Image.Resampling.BILINEAR, box=p.box)
        lab = None if label is None else label.resize((tw, th), Image.Resampling.NEAREST, box=p.box)
        if p.flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            lab = None if lab is None else lab.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        ch, cw = _pair(self.crop)
        if (th, tw) != (ch, cw):
            fill = tuple(int(round(m * 255)) for m in self.mean)
            canvas = Image.new("RGB", (cw, ch), fill)
            canvas.paste(img, (0, 0))
            img = canvas
            if lab is not None:
                lcanvas = Image.new("L", (cw, ch), IGNORE)
                lcanvas.paste(lab, (0, 0))
                lab = lcanvas
        return img, lab

    def __call__(self, image, label, rng: np.random.Generator | None = None):
        """``(image, label)`` -> ``(3 x h x w float32 tensor, h x w int64 tensor)``, h x w = crop."""
        rng = rng if rng is not None else np.random.default_rng()
        image = _as_image(image, "RGB")
        p = self.params(image.height, image.width, rng)
        img, lab = self.apply(image, label, p)
        ch, cw = _pair(self.crop)
        return normalize(img, self.mean, self.std), label_tensor(lab, (ch, cw))


@dataclass(frozen=True)
class EvalTransform:
    """Shorter side to ``short_side`` (None: native), normalise; label native or NEAREST-resized."""

    short_side: Optional[int] = None
    resize_label: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def size_for(self, height: int, width: int) -> tuple[int, int]:
        if not self.short_side:
            return height, width
        s = self.short_side / min(height, width)
        return max(1, int(round(height * s))), max(1, int(round(width * s)))

    def __call__(self, image, label, rng: np.random.Generator | None = None):
        from PIL import Image

        image = _as_image(image, "RGB")
        h, w = self.size_for(image.height, image.width)
        if (h, w) != (image.height, image.width):
            image = image.resize((w, h), Image.Resampling.BILINEAR)
        if label is not None:
            label = _as_image(label, "L")
            if self.resize_label and label.size != (w, h):
                label = label.resize((w, h), Image.Resampling.NEAREST)
        size = (h, w) if label is None else (label.height, label.width)
        return normalize(image, self.mean, self.std), label_tensor(label, size)


def denormalize(tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """Inverse of ``normalize``: ``3 x H x W`` tensor -> ``H x W x 3`` uint8 (for viewing)."""
    import torch

    m = torch.tensor(mean).view(3, 1, 1) * 255.0
    s = torch.tensor(std).view(3, 1, 1) * 255.0
    out = (tensor.detach().cpu().float() * s + m).round().clamp(0, 255).to(torch.uint8)
    return out.permute(1, 2, 0).numpy()
