"""Hand edits of a multi-label table (``uniseg relations review``): what they are and how they replay.

An edit names one relation, ``dataset: primary -> secondary`` (a pixel of ``primary`` in ``dataset``
also trains ``secondary``), and an action: ``accept`` (keep a switched-on relation, or switch on a
near miss), ``reject`` (switch it off) or ``add`` (switch on any pair of the dataset's rows). A
reviewed ``relations.yaml`` keeps the edits in order (``review.edits``); the table is the Eq. 6
table with them replayed (:func:`replay`), the last edit of a relation deciding. ``kind`` types a
relation like the Missing Link paper's edges (subset, equivalent, overlap); ``note`` and ``date``
say why and when. Pure numpy.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from uniseg.errors import UnisegError

ACTIONS = ("accept", "reject", "add")
#: The typed edges a person may give a relation (the graph's own kinds for mined ones come from
#: which directions Eq. 6 switched on: subset / equivalent).
KINDS = ("subset", "equivalent", "overlap")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Edit:
    """One hand edit of a relation (see the module docstring)."""

    action: str
    dataset: str
    primary: str
    secondary: str
    kind: str = ""  # "" = the graph's kind
    note: str = ""
    date: str = ""  # YYYY-MM-DD

    @property
    def key(self) -> tuple[str, str, str]:
        return self.dataset, self.primary, self.secondary

    def as_dict(self) -> dict:
        out = {"action": self.action, "dataset": self.dataset, "primary": self.primary, "secondary": self.secondary}
        if self.kind:
            out["kind"] = self.kind
        out.update(note=self.note, date=self.date)
        return out


def check_kind(kind: str, flag: str = "--kind") -> str:
    kind = (kind or "").strip().lower()
    if kind and kind not in KINDS:
        raise UnisegError(f"{flag} {kind!r}: choose {', '.join(KINDS)}")
    return kind


def review_date(text: str | None = None) -> str:
    """``--date YYYY-MM-DD``, else the day of ``SOURCE_DATE_EPOCH`` (reproducible builds' convention),
    else today (UTC): the date a hand edit records."""
    if text:
        if not _DATE.match(text.strip()):
            raise UnisegError(f"--date {text!r}: give YYYY-MM-DD, e.g. --date 2024-05-01")
        try:
            return _dt.date.fromisoformat(text.strip()).isoformat()
        except ValueError:
            raise UnisegError(f"--date {text!r}: no such day; give YYYY-MM-DD, e.g. --date 2024-05-01") from None
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            return _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc).date().isoformat()
        except (ValueError, OverflowError, OSError):
            raise UnisegError(f"SOURCE_DATE_EPOCH={epoch!r}: not a number of seconds since 1970 (unset it or give --date)") from None
    return _dt.datetime.now(tz=_dt.timezone.utc).date().isoformat()


def edit_from_record(record: object, where: str) -> Edit:
    """An :class:`Edit` from its ``review.edits`` record; ``where`` names it in errors."""
    if not isinstance(record, Mapping):
        raise UnisegError(f"{where}: expected a mapping with action, dataset, primary, secondary")
    missing = [k for k in ("action", "dataset", "primary", "secondary") if k not in record]
    if missing:
        raise UnisegError(f"{where}: missing key {missing[0]!r}")
    action = str(record["action"])
    if action not in ACTIONS:
        raise UnisegError(f"{where}: action {action!r}: one of {', '.join(ACTIONS)}")
    kind = str(record.get("kind", "") or "")
    if kind and kind not in KINDS:
        raise UnisegError(f"{where}: kind {kind!r}: one of {', '.join(KINDS)}")
    return Edit(action, str(record["dataset"]), str(record["primary"]), str(record["secondary"]), kind,
                str(record.get("note", "") or ""), str(record.get("date", "") or ""))


def locate(edit: Edit, datasets: Sequence[str], classes: Sequence[str], valid: np.ndarray, where: str = "") -> tuple[int, int, int]:
    """``(d, c, c2)`` indices of an edit's relation; refuses a dataset or class outside the union,
    a primary class outside the dataset's label space (its row never trains) and a class on itself."""
    pre = f"{where}: " if where else ""
    if edit.dataset not in datasets:
        raise UnisegError(f"{pre}dataset {edit.dataset!r} is not one of these relations' datasets ({', '.join(datasets)})")
    for role, name in (("primary", edit.primary), ("secondary", edit.secondary)):
        if name not in classes:
            import difflib

            close = difflib.get_close_matches(name, list(classes), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else "; see 'uniseg labels union' for the class names"
            raise UnisegError(f"{pre}{role} class {name!r} is not in this union{hint}")
    d, c, c2 = datasets.index(edit.dataset), list(classes).index(edit.primary), list(classes).index(edit.secondary)
    if c == c2:
        raise UnisegError(f"{pre}{edit.primary!r} -> itself: a class always trains itself; name two classes")
    if not valid[d, c]:
        raise UnisegError(f"{pre}{edit.primary!r} is not a class of {edit.dataset}'s label space: {edit.dataset} has no pixels of it "
                          f"to train {edit.secondary!r} from")
    return d, c, c2


def off_value(valid: np.ndarray, d: int, c2: int) -> int:
    """The table value of a relation switched off: 0 for a class of the dataset's space, else null."""
    return 0 if valid[d, c2] else -1


def replay(table: np.ndarray, edits: Iterable[Edit], datasets: Sequence[str], classes: Sequence[str], valid: np.ndarray,
           where: str = "review.edits") -> np.ndarray:
    """``table`` (not changed) with ``edits`` applied in order: accept / add switch on, reject off."""
    out = np.array(table, dtype=np.int8, copy=True)
    for i, e in enumerate(edits):
        d, c, c2 = locate(e, datasets, classes, valid, f"{where}[{i}]")
        out[d, c, c2] = off_value(valid, d, c2) if e.action == "reject" else 1
    return out


def final_edits(edits: Iterable[Edit]) -> dict[tuple[str, str, str], Edit]:
    """The last edit of each relation (the one that decides it), in the order they were last edited."""
    out: dict[tuple[str, str, str], Edit] = {}
    for e in edits:
        out.pop(e.key, None)
        out[e.key] = e
    return out
