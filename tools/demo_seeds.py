"""Markdown tables over several finished demos (one per seed): what docs/demo.md reports.

    python tools/demo_seeds.py runs/demo-s0 runs/demo-s1 runs/demo-s2

Prints, as mean ± standard deviation over the folders and per seed: the unseen-dataset mIoU of
every method, outside-space IoU and multi-label consistency (at each model's own threshold and at
the paper's), the calibrated thresholds, and the mined relations against the planted ones. Reads
only ``summary.json``; nothing is recomputed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from uniseg.engine.demo.plan import METHODS, TITLES


def pm(values: list[float], scale: float = 100.0) -> str:
    v = np.asarray(values, dtype=np.float64) * scale
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v.mean():.1f}"


def per_set(summaries: list[dict], key: str, sets: list[str]) -> str:
    """``{method: {set: mean}}`` of every folder: mean ± std per set, and the mean over the sets."""
    head = "| " + key + " (%) | " + " | ".join(sets) + " | mean |"
    lines = [head, "|---|" + "---:|" * (len(sets) + 1)]
    for m in METHODS:
        cells = [pm([s[key][m][n] or 0.0 for s in summaries]) for n in sets]
        means = [np.mean([s[key][m][n] or 0.0 for n in sets]) for s in summaries]
        lines.append(f"| {TITLES[m]} | " + " | ".join(cells) + f" | {pm(means)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args()
    summaries = [json.loads((f / "summary.json").read_text()) for f in args.folders]
    seeds = [s["seed"] for s in summaries]
    unseen, sets = summaries[0]["unseen"], summaries[0]["evaluated"]

    lines = ["| unseen mIoU (%) | " + " | ".join(unseen) + " | mean |", "|---|" + "---:|" * (len(unseen) + 1)]
    for m in METHODS:
        lines.append(f"| {TITLES[m]} | " + " | ".join(pm([s["methods"][m]["unseen"][n] for s in summaries]) for n in unseen)
                     + f" | {pm([s['methods'][m]['mean'] for s in summaries])} |")
    print("\n".join(lines), "\n")

    lines = ["| seed | " + " | ".join(TITLES[m] for m in METHODS) + " | auto tau | mined | precision | recall | recall, known secondary |",
             "|---|" + "---:|" * (len(METHODS) + 5)]
    for s in summaries:
        rel = s["relations"]
        lines.append(f"| {s['seed']} | " + " | ".join(f"{100 * s['methods'][m]['mean']:.1f}" for m in METHODS)
                     + f" | {rel['tau']:.2f} | {len(rel['mined'])} | {rel['precision']:.2f} | {rel['recall']:.2f} | "
                     f"{rel['learned']['recall']:.2f} ({rel['learned']['found']} of {rel['learned']['expected']}) |")
    print("\n".join(lines), "\n")

    for key in ("outside_space", "consistency", "outside_space_paper", "consistency_paper"):
        print(per_set(summaries, key, sets), "\n")
    print("| calibrated threshold by seed | " + " | ".join(TITLES[m] for m in METHODS) + " |")
    print("|---|" + "---:|" * len(METHODS))
    for s in summaries:
        print(f"| {s['seed']} | " + " | ".join(f"{s['thresholds']['calibrated'][m]:g}" for m in METHODS) + " |")
    print(f"\nseeds {seeds}; mining {summaries[0]['mining']}")


if __name__ == "__main__":
    main()
