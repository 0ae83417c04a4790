"""Colours: each fine class's base colour as one dataset shifts it (:class:`Palette`), and the
instance colour tables shared by several drawing modules (facades, window glass).

A dataset's palette is drawn once from its look stream, so the same class has the same colour cast
in every image of a dataset and a different one in another dataset (a domain gap).
"""

from __future__ import annotations

import numpy as np

from uniseg.data.synth.spec import fine_classes

#: Base colour (RGB in 0-1) of every fine class, ``fine.yaml`` order.
BASE_COLOURS = np.array([c.colour for c in fine_classes()], np.float32) / 255.0

#: Building colours (plaster, brick, concrete, ...): facades beside the road and far buildings of the skyline.
FACADES = np.array([[225, 215, 195], [170, 95, 75], [150, 150, 155], [235, 230, 220], [140, 125, 110],
                    [200, 185, 140], [185, 160, 150], [110, 100, 95]], np.float32) / 255.0
#: Window and windscreen glass.
GLASS = np.array([40, 48, 58], np.float32) / 255.0


class Palette:
    """The dataset's colours: the fine base colours shifted per class (fixed per dataset), plus helpers."""

    def __init__(self, colours: np.ndarray) -> None:
        self.colours = colours.astype(np.float32)
        self.shift = self.colours / np.maximum(BASE_COLOURS, 1e-3)

    def __getitem__(self, cls: int) -> np.ndarray:
        return self.colours[cls]

    def tone(self, cls: int, rgb: np.ndarray) -> np.ndarray:
        """An instance colour ``rgb`` shifted like the dataset shifts class ``cls``."""
        return np.clip(rgb * np.clip(self.shift[cls], 0.6, 1.6), 0, 1).astype(np.float32)

    def vary(self, cls: int, rng: np.random.Generator, amount: float = 0.08) -> np.ndarray:
        """Class ``cls``'s colour with a random per-channel variation of relative size ``amount`` (three normal draws)."""
        return np.clip(self.colours[cls] * (1 + amount * rng.standard_normal(3)), 0, 1).astype(np.float32)


def shifted_colours(colours: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Colours shifted per class, mostly in brightness and less in hue (a road stays grey-ish)."""
    n = len(colours)
    shift = 1 + jitter * (0.8 * rng.standard_normal((n, 1)) + 0.45 * rng.standard_normal((n, 3)))
    return np.clip(colours * shift, 0, 1).astype(np.float32)


def domain_palette(rng: np.random.Generator, jitter: float) -> Palette:
    """Per-class colour shifts of one dataset (drawn once from the dataset's look stream)."""
    return Palette(shifted_colours(BASE_COLOURS, rng, jitter))
