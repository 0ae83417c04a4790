"""Speed of ``uniseg labels audit`` (issue: labels audit), side by side with its baseline.

1. The audit's whole pass (discovery, decoding every paired label file, class counts, the
   union's sums and facts: ``uniseg.data.audit.audit_datasets``) versus plainly reading the same
   label files with Pillow, ``np.array(Image.open(p))`` for every file, one process each.
   Target: within 1.3x of the plain read. Also the pass with ``--workers 2``.
2. Per dataset (ids ``L``, paletted ``P``, colour ``RGB`` labels): the per-file work alone
   (``count_label``) versus the plain read of the same files.

The world is written by ``uniseg data synth`` into a temp folder. The methods are timed in turn
within each round and the fastest round of each is kept, so load from other jobs on the machine
hits them alike; on a shared CPU, rerun before quoting a figure.

Run: python benchmarks/bench_audit.py [--images 12] [--size 512x1024] [--repeat 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

import numpy as np
from PIL import Image

from uniseg.data.audit import RawTable, audit_datasets, count_label
from uniseg.data.layout import discover
from uniseg.labelspaces import default_registry
from uniseg.unify.lut import build_dataset_lut

DATASETS = ("cityscapes", "idd", "mapillary", "bdd", "kitti", "wilddash", "camvid")


def best_of_interleaved(fns: dict, repeat: int) -> dict:
    """The fastest of ``repeat`` single calls of each function, in seconds, the calls taken in turn."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            best[k] = min(best[k], timeit.timeit(fn, number=1))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=12, help="images per dataset (default 12)")
    ap.add_argument("--size", default="512x1024", help="HEIGHTxWIDTH of the synthetic world (default 512x1024)")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    reg = default_registry()
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp)
        cmd = [sys.executable, "-m", "uniseg.cli.main", "data", "synth", "--out", str(world), "--images", str(args.images),
               "--size", args.size, "--format", "json", *(a for n in DATASETS for a in ("--dataset", n))]
        subprocess.run(cmd, check=True, capture_output=True)
        pairs = [(reg.get(n), world / n) for n in DATASETS]
        files = {}
        for space, root in pairs:
            found = discover(space, root)
            files[space.name] = [root / s.label for s in found.samples() if s.label is not None]
        every = [p for ps in files.values() for p in ps]

        def pillow(paths):
            for p in paths:
                np.array(Image.open(p))

        pillow(every)  # warm the page cache
        audit_datasets(pairs, workers=1)
        print(f"== one pass over {len(every)} label files of {len(DATASETS)} datasets ({args.size}), best of {args.repeat}")
        print(f"{'what':<44}{'ms':>10}{'vs Pillow':>12}")
        t = best_of_interleaved({
            "pillow": lambda: pillow(every),
            "one": lambda: audit_datasets(pairs, workers=1),
            "two": lambda: audit_datasets(pairs, workers=2),
        }, args.repeat)
        print(f"{'np.array(Image.open(p)) for every file':<44}{t['pillow'] * 1e3:>10.1f}{1:>11.2f}x")
        print(f"{'uniseg audit pass, 1 process':<44}{t['one'] * 1e3:>10.1f}{t['one'] / t['pillow']:>11.2f}x")
        print(f"{'uniseg audit pass, --workers 2':<44}{t['two'] * 1e3:>10.1f}{t['two'] / t['pillow']:>11.2f}x")
        print(f"audit / plain Pillow read, one process each: {t['one'] / t['pillow']:.2f}x (target <= 1.3x)")

        print("\n== per dataset, per-file work (count_label) vs the plain read, one process")
        print(f"{'dataset':<14}{'mode':>6}{'files':>7}{'Pillow ms/file':>16}{'audit ms/file':>15}{'ratio':>9}")
        for space, root in pairs:
            paths = files[space.name]
            found = discover(space, root)
            enc = space.encoding(found.encoding)
            table = RawTable.of(build_dataset_lut(space, enc))
            t = best_of_interleaved({
                "pillow": lambda: pillow(paths),
                "audit": lambda: [count_label(p, table, found.format, enc) for p in paths],
            }, args.repeat)
            mode = Image.open(paths[0]).mode
            per = {k: v / len(paths) * 1e3 for k, v in t.items()}
            print(f"{space.name:<14}{mode:>6}{len(paths):>7}{per['pillow']:>16.2f}{per['audit']:>15.2f}{t['audit'] / t['pillow']:>8.2f}x")


if __name__ == "__main__":
    main()
