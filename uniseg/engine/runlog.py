"""``RUN/metrics.jsonl``: one JSON object per logged iteration and per validation, appended as they happen.

A resumed run first drops the records written after its checkpoint (they describe iterations
that are about to be redone), so the file always tells one consistent history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from uniseg.io import atomic_write_text, write_fault

METRICS_FILE = "metrics.jsonl"


class RunLog:
    """Appends records to ``metrics.jsonl``; a no-op on processes other than rank 0."""

    def __init__(self, folder: str | Path, enabled: bool = True) -> None:
        self.path = Path(folder) / METRICS_FILE
        self.enabled = enabled

    def reset(self) -> None:
        if self.enabled:
            atomic_write_text(self.path, "")

    def truncate_after(self, iteration: int) -> None:
        """Keep only the records of iterations up to ``iteration`` (resume)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [json.dumps(r, separators=(",", ":")) for r in read_metrics(self.path) if int(r.get("iteration", 0)) <= iteration]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def append(self, record: dict) -> None:
        if not self.enabled:
            return
        line = json.dumps(record, separators=(",", ":")) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
        except OSError as exc:  # a full disk: one line naming it (a torn line is skipped on reading)
            fault = write_fault(self.path, exc, len(line))
            if fault is None:
                raise
            raise fault from None


def read_metrics(path: str | Path) -> Iterator[dict]:
    """The records of a ``metrics.jsonl`` (a torn last line from a killed process is skipped)."""
    p = Path(path)
    if p.is_dir():
        p = p / METRICS_FILE
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
