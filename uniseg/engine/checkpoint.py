"""Checkpoints: a ``torch.save`` dict that carries everything needed to resume, evaluate or predict.

Keys (contract: ``torch.load(path)["model"]`` is the model's ``state_dict``)::

    format              "uniseg.checkpoint/v1"
    model               state_dict (official HRNet key names; no DDP "module." prefix)
    model_spec          {name, head, num_classes, align_corners, cosine_scale}: rebuilds the network
    union               the union.yaml document: eval/predict need no other file
    union_fingerprint   the union it was trained for (artifacts for another one are refused)
    relations_fingerprint  the multi-label table's fingerprint (cr-bce), else None
    config              the run's TrainConfig as plain data
    iteration           optimiser steps taken
    optimizer, scaler   their state_dicts (scaler None without fp16)
    rng                 torch / numpy / python (/ cuda) generator states
    sampler             {"seed", "keys_consumed", "per_rank_batch", "world_size"}: where the data stream resumes
    best                {"miou", "iteration"} of the best validation so far (or None)
    seconds             training time so far (every process that worked on the run)

A folder of ``uniseg models export`` (``model.safetensors`` + ``config.json``, :mod:`uniseg.engine.export`)
reads as a checkpoint with the same keys, less the training state: eval, predict, mining and
``train --init`` take either.

Written atomically (temp file + rename): a checkpoint on disk is always complete. Everything in
it is plain data or CPU tensors, so it loads with ``torch.load(path)`` (``weights_only``) on any
machine, a GPU run's included.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn

from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.io import atomic_open
from uniseg.unify.union import UnionSpace

FORMAT = "uniseg.checkpoint/v1"


def model_spec(model: nn.Module) -> dict:
    """What rebuilds ``model`` (an HRNet): variant name, head, classes and the numerics flags."""
    return {
        "name": str(model.name),
        "head": str(model.head_type),
        "num_classes": int(model.num_classes),
        "align_corners": bool(model.align_corners),
        "cosine_scale": float(model.cosine_scale),
    }


def build_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """A fresh network from a ``model_spec`` record."""
    from uniseg.models import build_model

    return build_model(
        str(spec["name"]), int(spec["num_classes"]), head=str(spec["head"]),
        align_corners=bool(spec["align_corners"]), cosine_scale=float(spec["cosine_scale"]),
    )


def rng_state() -> dict:
    """Every generator a training process touches, as tensors and plain data."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": list(random.getstate()[1]),
        "python_version": int(random.getstate()[0]),
        "python_gauss": random.getstate()[2],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def on_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in it (dicts, lists, tuples walked) on the CPU, so that a GPU run's
    checkpoint loads with a plain ``torch.load`` on any machine (a no-op for CPU tensors)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_cpu(v) for v in obj) if type(obj) in (list, tuple) else obj
    return obj


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """``torch.save`` ``payload`` (plus the format tag), tensors on the CPU, atomically at ``path``."""
    path = Path(path)
    doc = {"format": FORMAT, **on_cpu(payload)}
    with atomic_open(path, "wb", size=_tensor_bytes(doc) + 64_000) as fh:  # a full disk: the message says how much it needs
        torch.save(doc, fh)
    return path


def _tensor_bytes(obj: Any) -> int:
    """The bytes of the tensors in ``obj`` (dicts, lists, tuples walked): most of a checkpoint's size."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, Mapping):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def read_checkpoint(path: str | Path) -> dict:
    """Load a uniseg checkpoint on the CPU; a missing or foreign file gives a one-line error.

    ``path``: a ``.pt`` file, a run folder (its ``best.pt``, else ``last.pt``) or a folder of ``uniseg
    models export`` (or its ``model.safetensors`` / ``config.json``), read by :func:`uniseg.engine.export.read_export`.
    """
    from uniseg.engine.export import is_export, read_export

    p = Path(path).expanduser()
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            if is_export(p):
                return read_export(p)
            raise UnisegError(f"{p}: no best.pt or last.pt in this folder, nor model.safetensors and config.json "
                              "(give a run folder of 'uniseg train' or a folder of 'uniseg models export')")
    if not p.is_file():
        raise UnisegError(f"checkpoint {str(p)!r} not found")
    if is_export(p):
        return read_export(p)
    if p.suffix == ".safetensors":
        raise UnisegError(f"{p}: no config.json beside it, so not a folder of 'uniseg models export'; "
                          "ImageNet weights go to 'uniseg train --pretrained', not here")
    if not _torch_save_file(p):
        raise UnisegError(f"{p}: not a checkpoint (torch.save writes a zip archive); give RUN/last.pt or RUN/best.pt of 'uniseg train', "
                          "or a folder of 'uniseg models export'")
    try:
        doc = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, a pickle with code, not a torch file at all
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UnisegError(f"{p}: not a readable uniseg checkpoint ({first})") from None
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        raise UnisegError(
            f"{p}: not a uniseg checkpoint (no format {FORMAT!r}); official HRNet weights go to "
            "'uniseg train --pretrained', not here"
        )
    for key in ("model", "model_spec", "union", "union_fingerprint"):
        if key not in doc:
            raise UnisegError(f"{p}: checkpoint lacks {key!r} (written by another tool?)")
    doc = dict(doc)
    doc["path"] = str(p)
    return doc


def _torch_save_file(p: Path) -> bool:
    """Whether ``p`` can be a ``torch.save`` file: a zip archive, or a legacy pickle (protocol byte 0x80)."""
    import zipfile

    if zipfile.is_zipfile(p):
        return True
    with open(p, "rb") as fh:
        return fh.read(1) == b"\x80"


def checkpoint_union(doc: Mapping[str, Any]) -> UnionSpace:
    """The union a checkpoint was trained for, rebuilt from its record and checked against its fingerprint."""
    from uniseg.unify.union import fingerprint_of, union_from_records

    rec = doc["union"]
    union = union_from_records(rec["datasets"], rec["classes"])
    if fingerprint_of(union.classes) != doc["union_fingerprint"]:
        raise FingerprintMismatch(f"{doc.get('path', 'checkpoint')}: its union record does not match its fingerprint (edited?)")
    return union


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if len(shape) else "a scalar"


def state_mismatch(model: nn.Module, state: Mapping[str, Any]) -> Optional[str]:
    """What keeps ``state`` from loading into ``model`` strictly, naming the first key of each kind
    (another shape, missing, not in the model) and how many more; None when it fits."""
    own = model.state_dict()
    shaped = [k for k in own if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]

    def more(keys: list) -> str:
        return f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""

    problems = []
    if shaped:
        k = shaped[0]
        problems.append(f"{k} is {_shape(state[k].shape)} in the file, {_shape(own[k].shape)} in the model{more(shaped)}")
    if missing:
        problems.append(f"{missing[0]} is missing{more(missing)}")
    if unexpected:
        problems.append(f"{unexpected[0]} is not in the model{more(unexpected)}")
    return "; ".join(problems) or None


@dataclass
class TrainedModel:
    """A network loaded from a checkpoint, with the union it predicts and how it was trained."""

    model: nn.Module
    union: UnionSpace
    spec: dict
    config: dict
    iteration: int
    path: str

    @property
    def loss(self) -> str:
        return str(self.config.get("loss", "ce"))

    @property
    def activation(self) -> str:
        """How scores are normalised: ``sigmoid`` for BCE-trained models, ``softmax`` for CE."""
        return "softmax" if self.loss == "ce" else "sigmoid"


def load_trained(path: str | Path, device: Optional[torch.device] = None) -> TrainedModel:
    """Rebuild the network of a checkpoint, load its weights (strictly) and put it in eval mode."""
    doc = read_checkpoint(path)
    union = checkpoint_union(doc)
    spec = dict(doc["model_spec"])
    if int(spec["num_classes"]) != union.num_classes:
        raise UnisegError(f"{doc['path']}: model has {spec['num_classes']} classes but its union {union.num_classes}")
    model = build_from_spec(spec)
    problem = state_mismatch(model, doc["model"])
    if problem is not None:
        raise UnisegError(f"{doc['path']}: weights do not fit {spec['name']} ({spec['head']} head, {spec['num_classes']} classes): "
                          f"{problem}; was the file edited, or written for another model?")
    try:
        model.load_state_dict(doc["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UnisegError(f"{doc['path']}: weights do not fit {spec['name']} ({first})") from None
    model.eval()
    if device is not None:
        model.to(device)
    return TrainedModel(model, union, spec, dict(doc.get("config") or {}), int(doc.get("iteration", 0)), doc["path"])
