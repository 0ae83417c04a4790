"""The union space, lookup tables, artifact folders, remapping and exports."""

from uniseg.unify.lut import LookupTable, RemapRow, build_lut, pack_rgb
from uniseg.unify.union import EvalMap, UnifiedClass, UnionSpace, build_union, fingerprint_of

__all__ = [
    "EvalMap",
    "LookupTable",
    "RemapRow",
    "UnifiedClass",
    "UnionSpace",
    "build_lut",
    "build_union",
    "fingerprint_of",
    "pack_rgb",
]
