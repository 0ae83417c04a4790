"""Deterministic weights and input for the HRNet parity test; the compact official key table.

``tests/test_hrnet.py`` and ``tools/hrnet_reference_logits.py`` (which ran the official model to
make ``tests/data/hrnet_reference_logits.json``) both fill a model with :func:`fill_state_dict`,
so the two networks hold identical weights. Values come from an integer hash (splitmix64) of
each tensor's name and element index, not from torch's RNG: the same on every platform and
torch version.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def hashed_uniform(name: str, n: int) -> np.ndarray:
    """``n`` float64 values in [0, 1): splitmix64 of (crc32(name) << 32) + element index."""
    seed = np.uint64(zlib.crc32(name.encode("utf-8"))) << np.uint64(32)
    with np.errstate(over="ignore"):
        z = seed + np.arange(n, dtype=np.uint64) * _GOLDEN + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def fill_value(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The value :func:`fill_state_dict` gives state-dict entry ``key`` of ``shape`` (float64).

    Conv weights: uniform with variance 1 / fan_in; BN weights in [0.25, 0.75) and running
    variances in [0.5, 1.5) (activations stay O(1) through the residual stack); BN biases,
    running means and conv biases in [-0.2, 0.2); counters 0.
    """
    n = int(np.prod(shape, dtype=np.int64))
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape)
    u = hashed_uniform(key, n).reshape(shape)
    if len(shape) == 4:
        fan_in = n // shape[0]
        return (2.0 * u - 1.0) * np.sqrt(3.0 / fan_in)
    if key.endswith("running_var"):
        return 0.5 + u
    if key.endswith("weight"):
        return 0.25 + 0.5 * u
    return 0.2 * (2.0 * u - 1.0)  # running_mean, bias


def fill_state_dict(model: torch.nn.Module) -> torch.nn.Module:
    """Overwrite every state-dict tensor of ``model`` (BN running statistics included); eval mode."""
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            value = torch.from_numpy(fill_value(key, tuple(tensor.shape)))
            tensor.copy_(value.to(tensor.dtype))
    return model.eval()


def reference_input(height: int, width: int) -> torch.Tensor:
    """``1 x 3 x height x width`` float32 input, uniform in [-1, 1)."""
    u = hashed_uniform("input", 3 * height * width).reshape(1, 3, height, width)
    return torch.from_numpy(2.0 * u - 1.0).float()


def expand_state_dict_rows(rows: list) -> dict[str, list[int]]:
    """State-dict ``{key: shape}`` from the module rows of ``tests/data/hrnet_official_state_dicts.json``.

    ``[module, 4-D shape]`` is a conv (``.weight``; ``.bias`` too when the row ends in ``"bias"``);
    ``[module, [C]]`` a BatchNorm (weight, bias, running_mean, running_var, num_batches_tracked).
    """
    keys: dict[str, list[int]] = {}
    for row in rows:
        name, shape = row[0], list(row[1])
        if len(shape) == 1:
            for s in ("weight", "bias", "running_mean", "running_var"):
                keys[f"{name}.{s}"] = shape
            keys[f"{name}.num_batches_tracked"] = []
        else:
            keys[f"{name}.weight"] = shape
            if row[2:] == ["bias"]:
                keys[f"{name}.bias"] = [shape[0]]
    return keys
