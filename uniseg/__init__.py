"""uniseg: one segmentation model, many datasets, conflicting label spaces (UniSeg, ECCV 2022)."""

__version__ = "0.1.0"
