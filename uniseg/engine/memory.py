"""Before the first training step: will a batch fit the device, and is the crop sensible?

**Activation memory** (:func:`check_activation_memory`). A probe runs the network forward on one
and on two zero images at a small size (the crop scaled down to at most :data:`PROBE_SIDE`
pixels on a side, sides a multiple of 32), on the run's device, in its precision and memory format,
with a ``torch.autograd.graph.saved_tensors_hooks`` hook that adds up the bytes of every tensor
autograd keeps for the backward pass (the network's weights left out). The difference between the
two is one image's activation memory at the probe size, and :data:`BACKWARD` times it one image's
share of a step's peak (the backward pass's own buffers: 1.14 measured for HRNet-W18 on the CPU);
the networks are fully convolutional, so it grows with the number of pixels (linear to the byte
for HRNet, tests/test_memory_guard.py), and is scaled to the crop. On CUDA the probe also runs the
backward pass and takes the larger of that and the difference of ``torch.cuda.max_memory_allocated``.
Nothing of the batch is ever allocated to find out, and the probe leaves the network as it was
(eval mode for it: no BatchNorm statistics move; gradients dropped).

A step of a batch of ``b`` images then needs about ``b x per image + gradients + optimiser state``
(weights already allocated). Against the memory the device has free (``runtime.available_memory``:
the GPU's free memory, or the RAM the kernel reports available, capped by a container's limit):

* more than is free: refused, naming the largest ``--batch-size`` that fits (or a smaller crop);
* more than :data:`WARN_SHARE` of it: a warning (the backward pass and the allocator need some room).

**Crop** (:func:`crop_warning`): a crop more than twice the largest training image after the
resize and the largest random scale, on either side, only pads (every sample then costs the whole
crop in memory and time, mostly of ignored pixels): a warning naming a crop that covers the images.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from uniseg.engine.config import TrainConfig
from uniseg.engine.runtime import Runtime
from uniseg.errors import UnisegError

PROBE_SIDE = 256  # longest side of the probe image (pixels)
STRIDE = 32  # probe sides are multiples of the network's coarsest stride
WARN_SHARE = 0.8  # warn when a step needs more than this share of the free memory
BACKWARD = 1.2  # saved tensors -> a step's peak: the backward pass's own buffers (HRNet-W18 on the CPU: 1.14, measured)
SIZE_SAMPLE = 64  # images per dataset whose size is read for the crop check (spread over the list)


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def probe_size(crop: Sequence[int]) -> tuple[int, int]:
    """The probe image ``(h, w)``: the crop scaled to at most :data:`PROBE_SIDE` on a side, each side
    rounded to a multiple of :data:`STRIDE` (at least one)."""
    h, w = int(crop[0]), int(crop[1])
    s = min(1.0, PROBE_SIDE / max(h, w))
    return (max(STRIDE, round(h * s / STRIDE) * STRIDE), max(STRIDE, round(w * s / STRIDE) * STRIDE))


def _saved_bytes(net: nn.Module, x: torch.Tensor, runtime: Runtime, backward: bool) -> tuple[int, int]:
    """``(bytes autograd saves for backward, peak CUDA bytes above the start)`` of one forward (and
    backward) pass of ``x``; the weights' own storage is not counted."""
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}
    sizes: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # a tensor without storage (a wrapper subclass)
            key, nbytes = id(t), t.numel() * t.element_size()
        if key not in weights:
            sizes[key] = max(sizes.get(key, 0), nbytes)
        return t

    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        start = torch.cuda.memory_allocated(x.device)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), runtime.autocast():
        out = net(x)
    saved = sum(sizes.values()) + out.numel() * out.element_size()
    if backward:
        out.float().sum().backward()
    del out
    peak = 0
    if cuda:
        torch.cuda.synchronize(x.device)
        peak = torch.cuda.max_memory_allocated(x.device) - start
    return saved, peak


def activation_per_image(net: nn.Module, crop: Sequence[int], runtime: Runtime) -> int:
    """Bytes one training image of size ``crop`` needs for its forward and backward pass (the probe
    of the module docstring)."""
    ph, pw = probe_size(crop)
    cuda = runtime.device.type == "cuda"
    was_training = net.training
    net.eval()  # BatchNorm statistics stay as they are
    try:
        measured = []
        for b in (1, 2):
            x = torch.zeros(b, 3, ph, pw, device=runtime.device, requires_grad=False)
            if runtime.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            measured.append(_saved_bytes(net, x, runtime, backward=cuda))
            del x
    finally:
        for p in net.parameters():
            p.grad = None
        net.train(was_training)
    saved = max(0, measured[1][0] - measured[0][0]) * BACKWARD
    peak = max(0, measured[1][1] - measured[0][1])
    per_probe = max(saved, peak)
    return int(math.ceil(per_probe * (int(crop[0]) * int(crop[1])) / (ph * pw)))


def fixed_bytes(net: nn.Module, optimizer: str, momentum: float) -> int:
    """Gradients and optimiser state of ``net`` (allocated by the first step): one copy of the
    weights for the gradients, plus one (SGD with momentum) or two (AdamW) for the state."""
    weights = sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)
    states = 2 if optimizer == "adamw" else (1 if momentum else 0)
    return weights * (1 + states)


def check_activation_memory(net: nn.Module, config: TrainConfig, runtime: Runtime, per_rank_batch: int,
                            available: Optional[int] = None, hint: str = "") -> list[str]:
    """Refuse a batch whose step cannot fit the device; the warnings for one that barely fits
    (see the module docstring). ``available``: free bytes (default: ``runtime.available_memory``);
    ``hint`` is added to a refusal (the crop warning, when there is one)."""
    from uniseg.engine import runtime as runtime_mod

    free = runtime_mod.available_memory(runtime.device) if available is None else int(available)
    if free is None:
        return []
    per_image = activation_per_image(net, config.crop, runtime)
    fixed = fixed_bytes(net, config.optimizer, config.momentum)
    need = fixed + per_image * per_rank_batch
    if need <= WARN_SHARE * free:
        return []
    world = runtime.world_size
    fits = int((WARN_SHARE * free - fixed) // per_image) if per_image else per_rank_batch
    where = f"{runtime.device}" + (f" (each of {world} processes)" if world > 1 else "")
    what = (f"a step of {per_rank_batch} image(s) of {config.crop[0]}x{config.crop[1]} needs about {_gib(need)} on {where} "
            f"({_gib(per_image)} of activations per image, measured by a one-image probe; {_gib(fixed)} for gradients and optimiser state), "
            f"{_gib(free)} is free")
    if fits >= 1:
        fix = f"use --batch-size {fits * world} or less" + (", or a smaller --crop" if fits < per_rank_batch else "")
    else:
        side = max(STRIDE, int(math.sqrt(max(0.0, WARN_SHARE * free - fixed) / max(per_image, 1) * config.crop[0] * config.crop[1])) // STRIDE * STRIDE)
        fix = f"even one image does not fit: use a smaller --crop (about {side}x{side} or less)"
    if need > free:
        raise UnisegError(f"--batch-size {config.batch_size}: {what}; {fix}" + (f"; {hint}" if hint else ""))
    return [f"--batch-size {config.batch_size}: {what}: it may not fit; {fix} if the run fails for memory"]


def _image_sizes(dataset, limit: int = SIZE_SAMPLE) -> list[tuple[int, int]]:
    """``(h, w)`` of up to ``limit`` images of ``dataset`` spread over its list (headers only)."""
    from PIL import Image

    paths = list(getattr(dataset, "images", []) or [])
    if not paths:
        return []
    step = max(1, len(paths) // limit)
    sizes = []
    for p in paths[::step][:limit]:
        try:
            with Image.open(p) as im:
                sizes.append((im.height, im.width))
        except OSError:  # a bad file is the readers' business (--on-bad-file)
            continue
    return sizes


def crop_warning(config: TrainConfig, datasets: Sequence) -> Optional[str]:
    """A warning when ``config.crop`` exceeds the largest training image after the resize
    (``short_side``) and the largest random scale by more than 2x on a side; else None."""
    ch, cw = (int(v) for v in config.crop)
    hi = float(config.scale[1])
    sh = sw = 0
    for ds in datasets:
        for h, w in _image_sizes(ds):
            s = (config.short_side / min(h, w) if config.short_side else 1.0) * hi
            sh, sw = max(sh, round(h * s)), max(sw, round(w * s))
    if not sh or (ch <= 2 * sh and cw <= 2 * sw):
        return None
    return (f"--crop {ch}x{cw} is more than twice the largest training image after scaling ({sh}x{sw} at scale {hi:g}): "
            f"every sample is padded to {ch * cw / 1e6:.1f} megapixels, mostly ignored pixels, at the cost of the whole crop in "
            f"memory and time; use --crop {min(ch, sh)}x{min(cw, sw)} or less")
