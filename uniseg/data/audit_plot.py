"""The PNG chart of ``uniseg labels audit``: each union class's pixel share in every dataset.

One row per union class (union order, top to bottom), share on a log axis, one marker colour per
dataset; an ``x`` at the left edge marks a class in the dataset's label space with no pixel in the
audited files, no marker a class the dataset leaves null; a dashed line marks the rare threshold.
matplotlib is imported inside the function and used through its object API on the Agg canvas (as
``uniseg.relations.plots``), so importing this module is free and nothing needs a display.
"""

from __future__ import annotations

import io
from pathlib import Path

from uniseg.data.audit import AuditReport
from uniseg.io import atomic_write_bytes

DPI = 100
WIDTH_IN = 10.0
LEFT_IN, RIGHT_IN, TOP_IN, BOTTOM_IN = 2.4, 1.9, 0.6, 0.7  # room for class names, legend, title, axis label
ROW_IN = 0.17  # per union class


def chart_size(num_classes: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of the chart for a union of ``num_classes`` classes."""
    height = TOP_IN + BOTTOM_IN + ROW_IN * max(num_classes, 1)
    return round(WIDTH_IN * DPI), round(height * DPI)


def share_chart(report: AuditReport, path: str | Path) -> Path:
    """Write the class-share chart of ``report`` to ``path`` (a PNG, written atomically)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    classes = report.classes
    k = len(classes)
    w_px, h_px = chart_size(k)
    fig = Figure(figsize=(w_px / DPI, h_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    height = h_px / DPI
    ax = fig.add_axes((LEFT_IN / WIDTH_IN, BOTTOM_IN / height, 1 - (LEFT_IN + RIGHT_IN) / WIDTH_IN,
                       1 - (TOP_IN + BOTTOM_IN) / height))
    shares = [c.share for c in classes if c.share > 0] + [
        s["share"] for c in classes for s in c.per_dataset.values() if s and s["share"] > 0
    ]
    floor = min(min(shares, default=1e-4) / 3, report.rare_share / 10)
    rows = np.arange(k)
    cmap = _colours(len(report.datasets))
    n = max(len(report.datasets), 1)
    for d, audit in enumerate(report.datasets):
        offset = (d - (n - 1) / 2) * min(0.7 / n, 0.18)  # datasets side by side within a row
        stats = [c.per_dataset.get(audit.dataset) for c in classes]
        taught = [(r, s["share"]) for r, s in zip(rows, stats) if s and s["pixels"] > 0]
        absent = [r for r, s in zip(rows, stats) if s and s["pixels"] == 0]
        if taught:
            ys, xs = zip(*taught)
            ax.scatter(xs, np.asarray(ys) + offset, s=16, color=cmap[d], label=audit.dataset, zorder=3)
        else:
            ax.scatter([], [], s=16, color=cmap[d], label=audit.dataset)
        if absent:
            ax.scatter([floor] * len(absent), np.asarray(absent) + offset, s=14, marker="x", color=cmap[d], linewidths=0.8,
                       zorder=3)
    ax.set_xscale("log")
    ax.set_xlim(floor / 1.5, 1.0)
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_yticks(rows, [c.name for c in classes], fontsize=7)
    for tick, c in zip(ax.get_yticklabels(), classes):
        if c.rare:
            tick.set_color("tab:red")
    ax.axvline(report.rare_share, color="gray", linestyle="--", linewidth=0.9)
    ax.text(report.rare_share, -0.5, f" {report.rare_share:.1%}", color="gray", fontsize=7, va="top", ha="left")
    ax.grid(axis="x", which="major", color="0.9", linewidth=0.6)
    ax.set_xlabel("share of the dataset's audited pixels (log); x: in the label space, no pixel", fontsize=8)
    sampled = f", {report.sample} per dataset" if report.sample else ""
    ax.set_title(f"Class pixel share per dataset: union of {k} classes, {report.files} label files{sampled}; "
                 "red: rare overall", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _colours(n: int) -> list:
    """``n`` distinct marker colours (tab10, then tab20 for more datasets)."""
    from matplotlib import colormaps

    name = "tab10" if n <= 10 else "tab20"
    cmap = colormaps[name]
    return [cmap(i % cmap.N) for i in range(n)]
