"""Load HRNet weights (ImageNet or segmentation) into a uniseg model, by key.

Never downloads: give the path of a file you fetched yourself: an official ``.pth``
(``hrnetv2_w48_imagenet_pretrained.pth``, ``hrnet_w18_small_model_v2.pth`` from
github.com/HRNet/HRNet-Image-Classification), timm's ``model.safetensors`` / ``pytorch_model.bin``
(``hrnet_w18_small_v2.ms_in1k``; :mod:`uniseg.models.timm_weights`) or the folder holding one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Union

import torch
from torch import Tensor, nn

from uniseg.errors import UnisegError
from uniseg.models.timm_weights import check_variant

__all__ = ["CLASSIFIER_PREFIX", "IMAGENET_HEAD_PREFIXES", "LoadReport", "extract_state_dict", "load_pretrained", "read_weights", "weights_file"]

log = logging.getLogger(__name__)

# Keys of the ImageNet classification head of HRNet (cls_hrnet.py): not part of the segmenter.
IMAGENET_HEAD_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")
# The segmentation classifier, whose shape follows the number of classes.
CLASSIFIER_PREFIX = "last_layer.3."
# Wrappers of the official training code (FullModel: ``model.``, ``loss.``), of DataParallel/DDP and of torch.compile.
_STRIP_PREFIXES = ("module.", "model.", "_orig_mod.")  # torch.compile saves its module under _orig_mod.
_IGNORED_WRAPPER_PREFIXES = ("loss.",)


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did, key by key."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys the model lacks
    ignored: list[str] = field(default_factory=list)  # ImageNet head / loss keys, expected to be unused
    skipped: list[str] = field(default_factory=list)  # classifier keys whose shape follows num_classes
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every backbone key was loaded (the classifier may be new)."""
        return not self.unexpected and all(k.startswith(("last_layer.",)) for k in self.missing)

    def summary(self) -> str:
        parts = [f"{self.path}: loaded {len(self.loaded)} tensors"]
        if self.missing:
            parts.append(f"missing {len(self.missing)} ({_preview(self.missing)})")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)} ({_preview(self.unexpected)})")
        if self.ignored:
            parts.append(f"ignored {len(self.ignored)} ImageNet-head/loss keys")
        if self.skipped:
            parts.append(f"kept the new classifier ({', '.join(self.skipped)})")
        return "; ".join(parts) + "".join(f"\n  note: {n}" for n in self.notes)

    def __str__(self) -> str:
        return self.summary()


def _preview(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def extract_state_dict(obj: object, path: str = "<checkpoint>") -> dict[str, Tensor]:
    """The tensor dict inside a checkpoint: unwrap ``{'state_dict': ...}`` / ``{'model': ...}``, strip ``module.`` / ``model.``."""
    for _ in range(3):
        if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
            obj = obj["state_dict"]
        elif isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
            obj = obj["model"]
        else:
            break
    if not isinstance(obj, Mapping):
        raise UnisegError(f"{path}: not a state dict (got {type(obj).__name__}); save one with torch.save(model.state_dict(), path)")
    out: dict[str, Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, Tensor):
            continue
        k = str(key)
        changed = True
        while changed:
            changed = False
            for prefix in _STRIP_PREFIXES:
                if k.startswith(prefix):
                    k, changed = k[len(prefix):], True
        out[k] = value
    if not out:
        raise UnisegError(f"{path}: holds no tensors (expected a state dict of an HRNet)")
    return out


_HEADERS = (b"PK\x03\x04", b"\x80")  # torch.save: a zip archive (torch >= 1.6) or a legacy pickle


def _check_checkpoint_header(p: Path) -> None:
    """Refuse, by its first bytes, a file that ``torch.save`` cannot have written (saying so plainly)."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise UnisegError(f"cannot read checkpoint {str(p)!r}: {exc.strerror or exc}") from None
    if not head:
        raise UnisegError(f"{p}: empty file (0 bytes), not a PyTorch checkpoint; fetch the weights again")
    if not head.startswith(_HEADERS):
        raise UnisegError(
            f"{p}: not a PyTorch checkpoint (torch.save writes a zip archive or a pickle; this file starts with {head!r}); "
            "give the .pth or .safetensors file of the weights"
        )


def weights_file(path: Union[str, Path]) -> Path:
    """The file behind a ``--pretrained`` value: the path itself, or the weights file of a folder."""
    from uniseg.models.weightfiles import weights_in_folder

    p = Path(path).expanduser()
    if p.is_dir():
        return weights_in_folder(p, "--pretrained")
    if not p.is_file():
        raise UnisegError(f"checkpoint {str(p)!r} not found (uniseg never downloads weights: fetch the file and give its path)")
    return p


def read_weights(p: Path) -> object:
    """What a weights file holds: a safetensors file's tensors, or the object ``torch.save`` wrote (read ``weights_only``)."""
    from uniseg.models.weightfiles import is_safetensors, read_safetensors

    if p.suffix == ".safetensors" or is_safetensors(p):
        return read_safetensors(p, "checkpoint")[0]
    _check_checkpoint_header(p)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnisegError(f"cannot read checkpoint {str(p)!r}: {first}") from None


def load_pretrained(model: nn.Module, path: Union[str, Path], *, verbose: bool = False) -> LoadReport:
    """Copy every checkpoint tensor whose key and shape match into ``model``; report the rest.

    ``path``: a ``torch.save`` file (official HRNet ``.pth``, timm's ``pytorch_model.bin``, a uniseg
    ``.pt``), a ``.safetensors`` file (timm's ``model.safetensors``, a uniseg export) or a folder holding
    one. ImageNet-head keys are ignored; the classifier ``last_layer.3.*`` is skipped when its shape
    (number of classes) or kind (cosine: no bias) differs. Weights of another HRNet variant raise
    :class:`UnisegError` naming both variants (and any other shape mismatch the key and both shapes),
    before anything is copied.
    """
    p = weights_file(path)
    ckpt = extract_state_dict(read_weights(p), str(p))
    check_variant(ckpt, model, str(p))
    report = LoadReport(path=str(p))
    own = model.state_dict()
    to_load: dict[str, Tensor] = {}
    for key, value in ckpt.items():
        if key.startswith(IMAGENET_HEAD_PREFIXES) or key.startswith(_IGNORED_WRAPPER_PREFIXES):
            report.ignored.append(key)
            continue
        if key not in own:
            if key.startswith(CLASSIFIER_PREFIX):
                report.skipped.append(key)
                report.notes.append(f"{key} {tuple(value.shape)} has no counterpart in this classifier (cosine heads have no bias)")
            else:
                report.unexpected.append(key)
            continue
        if tuple(value.shape) != tuple(own[key].shape):
            if key.startswith(CLASSIFIER_PREFIX):
                report.skipped.append(key)
                report.notes.append(
                    f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)} (another number of classes); kept the new classifier"
                )
                continue
            raise UnisegError(
                f"{p}: shape mismatch at {key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)} "
                f"(is this checkpoint for another HRNet variant?)"
            )
        to_load[key] = value
    model.load_state_dict(to_load, strict=False)
    report.loaded = list(to_load)
    counters = [k for k in own if k not in to_load and k.endswith("num_batches_tracked")]
    report.missing = [k for k in own if k not in to_load and not k.endswith("num_batches_tracked") and k not in report.skipped]
    if counters and len(counters) < len(own):
        report.notes.append(f"{len(counters)} BatchNorm num_batches_tracked counters not in the checkpoint (harmless)")
    if not to_load:
        raise UnisegError(f"{p}: no key matches this model (first checkpoint key {next(iter(ckpt))!r}); is it an HRNet checkpoint?")
    if verbose:
        log.info("%s", report.summary())
    return report
