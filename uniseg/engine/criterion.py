"""The loss of a run, from its ``--loss`` choice and the union (and, for cr-bce, the relation table)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from uniseg.unify.union import UnionSpace


def build_criterion(loss: str, union: UnionSpace, relations: Optional[str] = None) -> tuple[nn.Module, Optional[str]]:
    """``(loss module, relation-table fingerprint or None)``.

    ``ce``: Eq. 1 over the whole union; ``null-bce``: Eq. 4 with the union's null mask;
    ``cr-bce``: Eq. 8 with the multi-label table of ``relations`` (refused if made for another union).

    The losses' per-call check of target values is off: the training data is remapped through the
    union's lookup table (or a cache refused for another union), so every value is a class or 255,
    and on a GPU the check would stall every step on a device-to-host read.
    """
    from uniseg.models.losses import ClassRelationalBCELoss, NullBCELoss, UnifiedCrossEntropy

    valid = torch.from_numpy(union.null_mask())
    if loss == "ce":
        return UnifiedCrossEntropy(check_targets=False), None
    if loss == "null-bce":
        return NullBCELoss(valid, check_targets=False), None
    if loss == "cr-bce":
        from uniseg.relations.artifact import check_table, read_relation_table

        if not relations:
            raise ValueError("cr-bce needs a relation table")
        rt = read_relation_table(relations)
        table = rt.for_union(union)
        check_table(table, union.null_mask(), union.datasets)
        return ClassRelationalBCELoss(torch.from_numpy(table), valid=valid, check_targets=False), rt.fingerprint
    raise ValueError(f"unknown loss {loss!r}")
