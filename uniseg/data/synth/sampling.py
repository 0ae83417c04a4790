"""The random draws every part of a scene is made of: ranges, weighted picks, depths, counts, value noise.

Each helper consumes the generator in one fixed way (documented per function), for the world
is identical byte for byte per seed: changing how a helper draws changes every image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def uniform(rng: np.random.Generator, lohi) -> float:
    """A value drawn uniformly from the range ``lohi = (lo, hi)`` (one ``rng.random()``); a number is
    a range of one value (the draw is still made)."""
    lo, hi = (lohi, lohi) if isinstance(lohi, (int, float)) else lohi
    return float(lo + (hi - lo) * rng.random())


def sample_depth(rng: np.random.Generator, near: float = 4.0, far: float = 70.0) -> float:
    """A depth in ``[near, far)`` metres, log-uniform (as many objects per metre of image height at
    every depth); one ``rng.random()``."""
    return float(near * (far / near) ** rng.random())


def poisson_count(rng: np.random.Generator, mean: float) -> int:
    """A Poisson count with mean ``mean``; no draw at all when the mean is 0 (or less)."""
    return int(rng.poisson(mean)) if mean > 0 else 0


def weighted_cdf(weights) -> np.ndarray:
    """Cumulative distribution of ``weights``, normalised as ``Generator.choice(p=...)`` normalises it."""
    p = np.asarray(weights, np.float64)
    cdf = (p / p.sum()).cumsum()
    cdf /= cdf[-1]
    return cdf


def weighted_pick(rng: np.random.Generator, cdf: np.ndarray) -> int:
    """``rng.choice(len(cdf), p=p)`` for the ``cdf`` of ``p``: the same single uniform draw and the same
    index, without choice()'s per-call checks of ``p`` (an eighth of the time, in a loop per plane)."""
    return int(cdf.searchsorted(rng.random(), side="right"))


def weighted_choice(rng: np.random.Generator, weights: dict) -> object:
    """A key of ``weights`` ({key: weight}) drawn with probability proportional to its weight."""
    keys = list(weights)
    return keys[weighted_pick(rng, weighted_cdf([float(weights[k]) for k in keys]))]


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell_y: int, cell_x: int) -> np.ndarray:
    """Value noise: a coarse normal grid bilinearly upsampled to ``height x width`` (float32, std about 0.6, read-only)."""
    cell_y, cell_x = max(int(cell_y), 1), max(int(cell_x), 1)
    gh, gw = height // cell_y + 2, width // cell_x + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = Image.fromarray(grid).resize((gw * cell_x, gh * cell_y), Image.BILINEAR)
    oy, ox = cell_y // 2, cell_x // 2
    # a read-only view of Pillow's buffer: one copy less (callers never write into it)
    return np.frombuffer(big.tobytes(), np.float32).reshape(gh * cell_y, gw * cell_x)[oy : oy + height, ox : ox + width]
