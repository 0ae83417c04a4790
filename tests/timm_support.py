"""Import timm (a dev dependency) where torchvision's compiled operators cannot load.

timm imports torchvision. PyPI's Linux torchvision wheels are CUDA builds; beside a CPU-only torch
(this project's test machines: torch 2.13.0+cpu) their ``_C`` extension does not load, which
torchvision tolerates, except that its ``_meta_registrations`` then registers fake kernels for
``torchvision::nms`` and ``torchvision::qnms`` unconditionally and the import fails with
"operator torchvision::nms does not exist" (pytorch/vision#9085). Declaring those two operators'
schemas lets the pure-Python rest of torchvision, all that timm's HRNet needs, import. Nothing is
declared where torchvision imports on its own (a CPU build from PyTorch's index, a matching CUDA pair).
"""

from __future__ import annotations

import sys
from types import ModuleType

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIBRARY = []  # keeps the torch.library.Library (and its definitions) alive


def import_timm() -> ModuleType:
    """``timm``, with torchvision's two operator schemas declared first where its extension did not load."""
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError as exc:
        if "torchvision::nms does not exist" not in str(exc):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]  # the half-imported package, imported again below
        lib = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS:
            lib.define(schema)
        _LIBRARY.append(lib)
        import torchvision  # noqa: F401,F811
    import timm

    return timm
