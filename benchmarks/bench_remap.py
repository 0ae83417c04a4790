"""Remap speed, side by side with the baselines named in issue #2.

1. One 1080x1920 uint8 Mapillary-id label image: uniseg's LookupTable.apply versus the per-class
   loop most codebases use (``out[label == raw] = new`` for each class) and versus a bare numpy
   ``lut[label]``. Targets: >= 30x faster than the loop, within 1.3x of the bare lookup.
2. Directory remap throughput (files/s) versus PNG decode+encode alone (the bound).
3. Wall time of ``uniseg labels union cityscapes bdd idd mapillary`` (start-up included).

Run: python benchmarks/bench_remap.py [--files 24] [--repeat 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np
from PIL import Image

from uniseg.labelspaces import default_registry
from uniseg.unify import build_lut, build_union
from uniseg.unify.remap import remap_paths


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` single calls, in seconds."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def mapillary_like_label(rng: np.random.Generator, h: int = 1080, w: int = 1920) -> np.ndarray:
    """Blocky regions of Mapillary ids 0-65 (label images are piecewise constant, not noise)."""
    coarse = rng.integers(0, 66, size=(h // 24 + 1, w // 24 + 1), dtype=np.uint8)
    return np.repeat(np.repeat(coarse, 24, 0), 24, 1)[:h, :w].copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    reg = default_registry()
    union = build_union(reg.get_many(["cityscapes", "bdd", "idd", "mapillary"]))
    lut = build_lut(union, reg.get("mapillary"), "ids")
    rng = np.random.default_rng(0)
    label = mapillary_like_label(rng)
    table = lut.table
    pairs = [(r.raw_id, r.unified_index) for r in lut.rows]

    def loop():
        out = np.full_like(label, 255)
        for raw, new in pairs:
            out[label == raw] = new
        return out

    assert np.array_equal(loop(), lut.apply(label))
    t_loop = best_of(loop, max(3, args.repeat // 5))
    t_bare = best_of(lambda: table[label], args.repeat)
    t_ours = best_of(lambda: lut.apply(label), args.repeat)
    print("== 1. one 1080x1920 Mapillary label image (best of N)")
    print(f"{'method':<34}{'ms':>10}{'vs uniseg':>12}")
    print(f"{'per-class loop (66 classes)':<34}{t_loop * 1e3:>10.2f}{t_loop / t_ours:>11.1f}x")
    print(f"{'bare numpy lut[label]':<34}{t_bare * 1e3:>10.2f}{t_bare / t_ours:>11.2f}x")
    print(f"{'uniseg LookupTable.apply':<34}{t_ours * 1e3:>10.2f}{1:>11.2f}x")
    print(f"speed-up over the loop: {t_loop / t_ours:.1f}x (target >= 30x); "
          f"cost over bare lookup: {t_ours / t_bare:.2f}x (target <= 1.3x)")

    print(f"\n== 2. directory remap, {args.files} paletted 1080x1920 PNGs")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "src")
        src.mkdir()
        palette = [v for c in reg.get("mapillary").classes for v in c.colour]
        for i in range(args.files):
            img = Image.fromarray(mapillary_like_label(rng), mode="P")
            img.putpalette(palette + [0] * (768 - len(palette)))
            img.save(src / f"{i:05d}.png")
        files = sorted(src.glob("*.png"))

        def decode_encode():
            for f in files:
                arr = np.asarray(Image.open(f))
                buf = io.BytesIO()
                Image.fromarray(arr, mode="L").save(buf, format="PNG")

        t_io = best_of(decode_encode, 2)
        rows = [("PNG decode+encode alone (1 proc)", t_io)]
        for workers in (1, 2):
            out = Path(tmp, f"out{workers}")
            t0 = time.perf_counter()
            report = remap_paths(lut, [src], out, workers=workers)
            rows.append((f"uniseg remap, --workers {workers}", time.perf_counter() - t0))
            assert report.count("done") == len(files)
        print(f"{'what':<34}{'files/s':>10}{'vs decode+encode':>18}")
        for name, t in rows:
            print(f"{name:<34}{len(files) / t:>10.1f}{t_io / t:>17.2f}x")

    print("\n== 3. CLI wall time: uniseg labels union cityscapes bdd idd mapillary")
    cmd = [sys.executable, "-m", "uniseg.cli.main", "labels", "union", "cityscapes", "bdd", "idd", "mapillary", "--format", "json"]
    walls = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t0
    print(f"median {statistics.median(walls) * 1e3:.0f} ms (python start-up alone {bare * 1e3:.0f} ms); torch is not imported")


if __name__ == "__main__":
    main()
