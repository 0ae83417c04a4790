"""Which files under a folder are label files of one encoding, told by the registry's layouts.

Real dataset copies keep several files per frame side by side (Cityscapes: ``_labelIds``,
``_labelTrainIds``, ``_instanceIds``, ``_color`` PNGs and ``_polygons.json``). A file is a
label of encoding E when its path ends like a label pattern of E in one of the space's layouts
(``gtFine/train/<city>/<stem>_gtFine_labelIds.png``, ``{split}`` being one of the layout's split
folders). Three rules, the first that recognises any file under the folder wins:

1. ``layout``: paths that end like a layout's label pattern (the folder is inside a real copy);
2. ``name``: file names that look like a pattern's last part (labels copied out of their tree);
3. ``all``: no known pattern at all — every PNG/TIFF/BMP, since the user named the encoding.

Files of the space's other encodings, and every other file, are left out and counted.
When E has several sources (IDD ``id``: raw-id PNGs and polygon JSON) the one with the most
files is used and the others are counted as left out.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from uniseg.labelspaces.schema import LabelSource, LabelSpace, compile_pattern

LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
OTHER = "other files"


def pattern_for_split(pattern: str, dir: str) -> str:
    """A layout pattern with ``{split}`` replaced by a split folder (``''``: no folder)."""
    out = pattern.replace("{split}", dir)
    while "//" in out:
        out = out.replace("//", "/")
    return out.lstrip("/")


@dataclass(frozen=True)
class _Rule:
    order: int
    source: LabelSource
    tail: tuple[re.Pattern[str], ...]  # the whole pattern, matched at the end of a path
    name: tuple[re.Pattern[str], ...]  # its last path part, matched against a file name


def _rules(space: LabelSpace) -> list[_Rule]:
    rules = []
    for lay in space.layouts.values():
        dirs = [sp.dir for sp in lay.splits.values()] or [""]
        for src in lay.labels:
            pats = dict.fromkeys(pattern_for_split(src.pattern, d) for d in dirs)
            tail = tuple(re.compile("(?:^|/)" + compile_pattern(p).pattern[1:-1] + "$") for p in pats)
            name = tuple(dict.fromkeys(compile_pattern(p.rsplit("/", 1)[-1]) for p in pats))
            rules.append(_Rule(len(rules), src, tail, name))
    return rules


@dataclass
class Selection:
    """The label files of one encoding among some files, and what was left out (kind -> count)."""

    files: list[Path] = field(default_factory=list)
    format: str = "png"  # 'png' or 'polygons'
    rule: str = "all"  # 'layout' | 'name' | 'all'
    left_out: dict[str, int] = field(default_factory=dict)  # other source name or OTHER -> files


def select_label_files(space: LabelSpace, encoding: str, files: Sequence[Path]) -> Selection:
    """The files among ``files`` that hold ``space``'s labels in ``encoding`` (see the module doc)."""
    rules = _rules(space)
    mine = [r for r in rules if r.source.encoding == encoding]
    ordered = mine + [r for r in rules if r.source.encoding != encoding]  # a file both could claim is the user's
    posix = [Path(os.path.abspath(f)).as_posix() for f in files]
    for rule_kind in ("layout", "name"):
        found: list[_Rule | None] = []
        for p in posix:
            name = p.rsplit("/", 1)[-1]
            hit = None
            for r in ordered:
                if (any(rx.search(p) for rx in r.tail) if rule_kind == "layout" else any(rx.match(name) for rx in r.name)):
                    hit = r
                    break
            found.append(hit)
        if any(r is not None for r in found):
            return _choose(files, found, mine, rule_kind)
    sel = Selection(rule="all")
    for f in files:
        if f.suffix.lower() in LABEL_SUFFIXES:
            sel.files.append(f)
        else:
            sel.left_out[OTHER] = sel.left_out.get(OTHER, 0) + 1
    return sel


def _choose(files: Sequence[Path], found: list[_Rule | None], mine: list[_Rule], rule_kind: str) -> Selection:
    counts = {r.order: sum(1 for h in found if h is not None and h.order == r.order) for r in mine}
    best = max(mine, key=lambda r: (counts[r.order], -r.order), default=None)
    if best is not None and counts[best.order] == 0:
        best = None
    sel = Selection(format=best.source.format if best else "png", rule=rule_kind)
    for f, hit in zip(files, found):
        if hit is not None and best is not None and hit.order == best.order:
            sel.files.append(f)
        else:
            kind = OTHER if hit is None else hit.source.name
            sel.left_out[kind] = sel.left_out.get(kind, 0) + 1
    return sel
