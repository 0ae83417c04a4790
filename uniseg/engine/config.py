"""The training configuration: one record, the paper's defaults, written as ``RUN/config.yaml``.

``TrainConfig`` holds every setting of a run as plain data (no paths resolved, no objects), so
``config.yaml`` is readable, diffable and reproduces the run: ``uniseg train --config FILE``
reads it back, and flags given on the command line override its values.

Defaults are the paper's recipe (section 3.4 and the released code): SGD with momentum 0.9 and
weight decay 1e-4, lr 0.01 per 16 images (linear scaling with the global batch), poly decay
with power 0.9 per iteration, shorter side 1080, random scale 0.5-2, 713 x 713 crops, flips.
``optimizer: adamw`` (decoupled weight decay, betas 0.9 / 0.999; ``momentum`` unused, default lr
0.001 per 16 images) is there for short runs on little data, where it learns faster: the demo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from uniseg.data.faults import POLICIES
from uniseg.errors import ConfigError, UnisegError
from uniseg.models.registry import HEADS
from uniseg.names import require_unique

LOSSES = ("ce", "null-bce", "cr-bce")
AMP_MODES = ("auto", "off", "bf16", "fp16")
OPTIMIZERS = ("sgd", "adamw")
CONFIG_FORMAT = "uniseg.train/v1"
BASE_LR = 0.01  # per BASE_BATCH images (the paper: lr 0.01 for batch 16)
BASE_BATCH = 16
BASE_LR_ADAMW = 0.001  # per BASE_BATCH images, for optimizer adamw
RESUME_MAY_CHANGE = ("workers", "device", "log_every", "tensorboard", "on_bad_file")  # how a run is executed or logged, not what it computes


@dataclass(frozen=True)
class DatasetSpec:
    """One training dataset: its registry name and where it lives (raw root or prepare cache)."""

    name: str
    root: str


@dataclass
class TrainConfig:
    """Every setting of a training run (see the module docstring for where the defaults come from)."""

    datasets: list[DatasetSpec] = field(default_factory=list)
    union: Union[str, list[str], None] = None  # a union folder (str) or dataset names (list); None: the union of ``datasets``
    loss: str = "null-bce"
    relations: Optional[str] = None  # cr-bce: relations.yaml (or its folder) from 'uniseg relations labels'
    model: str = "hrnet_w18_small_v2"
    head: str = "cosine"
    cosine_scale: float = 20.0
    align_corners: Optional[bool] = None  # None: the model's default (False for HRNet: uniseg.models.hrnet.ALIGN_CORNERS, as the published configs set it)
    pretrained: Optional[str] = None  # ImageNet weights (a local file)
    init: Optional[str] = None  # a trained uniseg checkpoint to start from (the paper's second stage)
    batch_size: int = 16  # global: split over the processes of a torchrun job
    iterations: int = 80000
    crop: tuple[int, int] = (713, 713)
    short_side: int = 1080  # 0 = native size before the random scale
    scale: tuple[float, float] = (0.5, 2.0)
    flip: float = 0.5
    optimizer: str = "sgd"  # sgd (the paper's) | adamw
    lr: Optional[float] = None  # None: 0.01 x batch_size / 16 (adamw: 0.001 x batch_size / 16)
    momentum: float = 0.9  # sgd only
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    seed: int = 0
    workers: int = 4
    dataset_weights: Any = "natural"  # "natural" | "balanced" | {name: weight}
    val_every: int = 0  # 0: validate only at the end (when the datasets have a validation split)
    val_split: str = "val"
    checkpoint_every: int = 1000
    log_every: int = 20
    tensorboard: bool = False  # also write TensorBoard event files in RUN/tb (needs the tensorboard extra)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 where supported, else fp16, on CUDA only) | off | bf16 | fp16
    channels_last: Optional[bool] = None  # None: on CUDA only
    on_bad_file: str = "error"  # a sample file that cannot be read: error (stop, last.pt written) | skip (replaced, listed)

    @property
    def base_lr(self) -> float:
        """The learning rate at iteration 0: ``lr`` or the paper's linear scaling rule."""
        if self.lr is not None:
            return float(self.lr)
        return (BASE_LR_ADAMW if self.optimizer == "adamw" else BASE_LR) * self.batch_size / BASE_BATCH

    def validate(self) -> "TrainConfig":
        """Check ranges and choices; raise a one-line ``UnisegError`` naming the setting."""
        if not self.datasets:
            raise UnisegError("no training dataset: give --datasets NAME=ROOT (one or more)")
        require_unique(d.name for d in self.datasets)
        _choice("loss", self.loss, LOSSES)
        _choice("head", self.head, HEADS)
        _choice("amp", self.amp, AMP_MODES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("on_bad_file", self.on_bad_file, POLICIES)
        if self.loss == "cr-bce" and not self.relations:
            raise UnisegError("--loss cr-bce needs --relations FILE (relations.yaml from 'uniseg relations labels')")
        if self.loss != "cr-bce" and self.relations:
            raise UnisegError(f"--relations is only used by --loss cr-bce, not {self.loss!r}")
        if self.pretrained and self.init:
            raise UnisegError("give --pretrained (ImageNet weights) or --init (a uniseg checkpoint), not both")
        for key in ("batch_size", "iterations", "checkpoint_every", "log_every"):
            _positive(key, getattr(self, key))
        for key in ("workers", "val_every", "seed", "short_side"):
            if int(getattr(self, key)) < 0:
                raise UnisegError(f"--{_flag(key)} must be >= 0, got {getattr(self, key)}")
        check_seed(self.seed)
        ch, cw = self.crop
        if ch < 1 or cw < 1:
            raise UnisegError(f"--crop {ch}x{cw}: height and width must be positive")
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise UnisegError(f"--scale {lo}-{hi}: need 0 < low <= high")
        if not 0 <= self.flip <= 1:
            raise UnisegError(f"--flip {self.flip}: a probability in [0, 1]")
        if self.base_lr <= 0:
            raise UnisegError(f"--lr {self.lr}: must be positive")
        if not 0 <= self.momentum < 1:
            raise UnisegError(f"momentum {self.momentum}: must be in [0, 1)")
        if self.weight_decay < 0:
            raise UnisegError(f"--weight-decay {self.weight_decay}: must be >= 0")
        if self.poly_power < 0:
            raise UnisegError(f"poly_power {self.poly_power}: must be >= 0")
        if self.cosine_scale <= 0:
            raise UnisegError(f"cosine_scale {self.cosine_scale}: must be positive")
        return self

    # -- plain data ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The ``config.yaml`` document (plain YAML types, stable key order)."""
        out: dict[str, Any] = {"format": CONFIG_FORMAT}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "datasets":
                value = [{"name": d.name, "root": d.root} for d in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, doc: Mapping, source: str = "config") -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are refused with the closest known one."""
        import difflib

        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in doc.items():
            if key == "format":
                if value != CONFIG_FORMAT:
                    raise ConfigError(source, f"format {value!r} is not {CONFIG_FORMAT!r}", key="format")
                continue
            if key not in known:
                close = difflib.get_close_matches(str(key), list(known), n=1)
                raise ConfigError(source, "unknown key" + (f" (did you mean {close[0]!r}?)" if close else ""), key=str(key))
            kwargs[key] = _coerce(key, value, source)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


_FIELD_TYPES = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
_SCALARS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
_EXPECTED = {
    "int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
    "datasets": "a list of {name: NAME, root: ROOT}", "union": "a union folder or a list of dataset names",
    "crop": "[height, width] in pixels", "scale": "[low, high]",
    "dataset_weights": "natural, balanced or {NAME: weight}",
}


def _coerce(key: str, value: Any, source: str) -> Any:
    """``value`` read from a config file as the type of field ``key``; a ``ConfigError`` naming the
    key otherwise (so ``batch_size: abc`` or ``flip: yes`` fail on reading, not deep in the run)."""
    try:
        if key == "datasets":
            if not isinstance(value, (list, tuple)):
                raise TypeError(value)
            return [DatasetSpec(str(d["name"]), str(d["root"])) for d in value]
        if key == "union":
            if value is None or isinstance(value, str):
                return value
            if not isinstance(value, (list, tuple)) or not all(isinstance(n, str) for n in value):
                raise TypeError(value)
            return list(value)
        if key in ("crop", "scale"):
            a, b = value
            return (_scalar(a, "int"), _scalar(b, "int")) if key == "crop" else (_scalar(a, "float"), _scalar(b, "float"))
        if key == "dataset_weights":
            if value in ("natural", "balanced"):
                return value
            if not isinstance(value, Mapping):
                raise TypeError(value)
            return {str(k): _scalar(w, "float") for k, w in value.items()}
        kind = _FIELD_TYPES[key]
        optional = kind.startswith("Optional[")
        if optional:
            kind = kind[len("Optional["):-1]
        if value is None and optional:
            return None
        return _scalar(value, kind)
    except (TypeError, ValueError, KeyError):
        kind = _FIELD_TYPES.get(key, "")
        expected = _EXPECTED.get(key) or _EXPECTED.get(kind.removeprefix("Optional[").rstrip("]"), kind)
        raise ConfigError(source, f"malformed value {value!r} (expected {expected})", key=key) from None


def _scalar(value: Any, kind: str) -> Any:
    """``value`` if it is a ``kind`` (int / float / str / bool; a bool is not a number); a float
    may be written as a string (YAML 1.1 reads ``1e-3`` as one)."""
    if kind == "float" and isinstance(value, str):
        return float(value)
    if isinstance(value, bool) != (kind == "bool") or not isinstance(value, _SCALARS[kind]):
        raise TypeError(value)
    return float(value) if kind == "float" else value


MAX_SEED = 2**32 - 1  # numpy's legacy generators and torch's (as int64 sample keys) take every seed up to this


def check_seed(seed, flag: str = "--seed") -> int:
    """``seed`` as an int in 0..MAX_SEED, else a one-line error naming ``flag`` (a larger seed would
    fail deep inside torch, after the run folder or the demo's world is made)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UnisegError(f"{flag} must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def describe_setting(config: "TrainConfig", key: str) -> str:
    """How a run's setting reads in a message: its value, or what an unset one (None) means."""
    value = getattr(config, key, None)
    if key == "lr" and value is None:
        base = BASE_LR_ADAMW if config.optimizer == "adamw" else BASE_LR
        return f"lr {config.base_lr:g} = the default {base:g} x batch {config.batch_size} / {BASE_BATCH}"
    if value is None:
        return f"no {_flag(key)} (the default)"
    if key == "datasets":
        return "datasets " + ", ".join(d.name for d in value)
    if isinstance(value, tuple) and len(value) == 2 and key == "crop":
        return f"crop {value[0]}x{value[1]}"
    return f"{_flag(key)} {value!r}" if isinstance(value, str) else f"{_flag(key)} {value}"


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UnisegError(f"--{_flag(key)} {value!r}: choose one of {', '.join(choices)}")


def _positive(key: str, value: int) -> None:
    if int(value) < 1:
        raise UnisegError(f"--{_flag(key)} must be >= 1, got {value}")


def _flag(key: str) -> str:
    return key.replace("_", "-")


def recipe_changes(old: Mapping, new: Mapping, may_change: Sequence[str] = RESUME_MAY_CHANGE) -> list[str]:
    """The settings (``config.yaml`` keys) whose values differ between two runs' documents, other than
    ``may_change``; datasets compare by name, as their roots may be reached by another path. A key a
    document lacks (written before the setting existed) counts as its default, which was the behaviour then."""
    defaults = TrainConfig().to_dict()

    def recipe(doc: Mapping) -> dict:
        out = {k: v for k, v in {**defaults, **doc}.items() if k not in may_change}
        out["datasets"] = [d.get("name") for d in doc.get("datasets") or []]
        return out

    a, b = recipe(old), recipe(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def read_config(path: str | Path) -> TrainConfig:
    """Read a ``config.yaml`` written by a run (or by hand)."""
    from uniseg.yamlio import read_yaml

    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    if not path.is_file():
        raise UnisegError(f"--config {path}: no such file (a run folder holds config.yaml)")
    doc = read_yaml(path)
    if not isinstance(doc, Mapping):
        raise ConfigError(path, "expected a mapping of settings")
    return TrainConfig.from_dict(doc, str(path))


def dump_config(config: TrainConfig) -> str:
    import yaml

    from uniseg import __version__

    body = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)
    return f"# uniseg {__version__} training run; reproduce with: uniseg train --config config.yaml\n" + body
