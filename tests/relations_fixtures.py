"""Hand-made Eq. 7 similarity tensors over small real unions (no model): the relation tests build on them."""

from __future__ import annotations

from typing import Mapping

import numpy as np

OWN, OTHER = 0.8, 0.02  # a confident model: its own class high, every other class low


def hand_made(union, scores: Mapping[tuple[str, str, str], float] = (), *, pixels: int = 1000, no_pixels=(), datasets=None):
    """A :class:`Similarity` over ``union``: every class of each dataset's space has ``pixels`` pixels,
    scores OWN on the diagonal and OTHER elsewhere, then ``scores[(dataset, class, other)] = s``.
    ``no_pixels``: (dataset, class) rows with no pixels (their scores read back as 0)."""
    from uniseg.relations.stats import similarity_for

    datasets = tuple(datasets or union.datasets)
    valid = union.null_mask(datasets)
    d, k = valid.shape
    score = np.full((d, k, k), OTHER)
    score[:, np.arange(k), np.arange(k)] = OWN
    for (ds, c, c2), s in dict(scores).items():
        score[datasets.index(ds), union.index_of(c), union.index_of(c2)] = s
    px = np.where(valid, pixels, 0).astype(np.int64)
    for ds, c in no_pixels:
        px[datasets.index(ds), union.index_of(c)] = 0
    cosine = 2.0 * score - 1.0  # any value in [-1, 1] will do: nothing decides on it
    return similarity_for(union, score, cosine, px, datasets)


# Mapillary's bicyclist and motorcyclist look like Cityscapes' rider (the paper's Figure 3);
# Cityscapes' rider looks only a little like bicyclist (a rider is not always a bicyclist).
RIDER_CASE = {
    ("mapillary", "bicyclist", "rider"): 0.70,
    ("mapillary", "bicyclist", "bicyclist"): 0.55,
    ("mapillary", "motorcyclist", "rider"): 0.62,
    ("mapillary", "motorcyclist", "motorcyclist"): 0.60,
    ("cityscapes", "rider", "bicyclist"): 0.45,
    ("cityscapes", "rider", "motorcyclist"): 0.30,
}
