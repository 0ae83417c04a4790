"""What unknown raw values say about a file: a few stray pixels are counted and ignored; many
pixels or many distinct values mean the file is not a label of that encoding at all.

A photo given to a colour encoding, a colour visualisation given to an ids encoding or the
labels of another dataset version would otherwise be written as (mostly) ignore with exit 0.
Reports keep the ``REPORT_TOP`` most frequent values, so a photo cannot produce a huge report.
"""

from __future__ import annotations

import os
from typing import Mapping, TypeVar

from uniseg.labelfiles.decode import LabelFileError
from uniseg.labelfiles.rgbkey import format_raw

MAX_UNKNOWN_SHARE = 0.05  # more than 5% of the pixels hold values the encoding does not list ...
MAX_UNKNOWN_VALUES = 8  # ... or more than 8 distinct such values: not a label of this encoding
REPORT_TOP = 10  # unknown values listed per file in reports (the most frequent first)

K = TypeVar("K", int, str)


def top_values(counts: Mapping[K, int], n: int = REPORT_TOP) -> dict[K, int]:
    """The ``n`` most frequent values (ties: smaller value first), most frequent first."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]) if isinstance(kv[0], str) else kv[0]))[:n])


def refuse_unlikely_label(unknown: Mapping[int, int], pixels: int, *, path: str | os.PathLike, encoding: str,
                          colour: bool) -> None:
    """Raise ``LabelFileError`` ('refused') when the unknown values show ``path`` is no label of ``encoding``."""
    bad = sum(unknown.values())
    if not pixels or (bad <= MAX_UNKNOWN_SHARE * pixels and len(unknown) <= MAX_UNKNOWN_VALUES):
        return
    shown = ", ".join(f"{format_raw(v, colour)}: {n} px" for v, n in top_values(unknown, 3).items())
    raise LabelFileError(
        f"{path}: not a label of {encoding}: {bad / pixels:.0%} of its pixels hold {len(unknown)} values the encoding "
        f"does not list ({shown}{', …' if len(unknown) > 3 else ''}); is it a photo, a colour visualisation "
        "or another encoding's file?",
        "refused",
    )
