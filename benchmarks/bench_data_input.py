"""Training input speed: images/s from a prepare cache versus from the raw files.

Mapillary-like data: 4000 x 3000 JPEG photos with paletted PNG labels in the v1.2 layout. The
same ``SegDataset`` + ``TrainTransform`` (shorter side 1080, scale 0.5-2, 713 crop, flip,
normalise) reads the raw root and a cache written by ``prepare_cache`` (shorter side 1080,
JPEG 95). One process, no DataLoader workers: per-core throughput.

    .venv/bin/python benchmarks/bench_data_input.py [--images 6] [--size 3000x4000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uniseg.data import SegDataset, TrainTransform, prepare_cache  # noqa: E402
from uniseg.labelspaces import default_registry  # noqa: E402
from uniseg.unify.artifact import open_union  # noqa: E402

PALETTE = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8).ravel().tolist()


def photo(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """A street-photo-like JPEG: smooth gradients, large shapes, mild sensor noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([yy / h * 180 + 40, xx / w * 120 + 60, (yy + xx) / (h + w) * 200 + 20], axis=-1)
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(20, w // 4)), y0 + int(rng.integers(20, h // 4))
        draw.rectangle([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    arr = np.asarray(img).astype(np.int16) + rng.integers(-6, 7, (h, w, 1), dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def label(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """A paletted label of Mapillary ids (0..65): polygons over a road/sky split."""
    img = Image.new("L", (w, h), 27)  # sky
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, h // 2, w, h], fill=13)  # road
    for _ in range(80):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        pts = [(x + int(rng.integers(-300, 300)), y + int(rng.integers(-300, 300))) for _ in range(5)]
        draw.polygon(pts, fill=int(rng.integers(0, 66)))
    img.putpalette(PALETTE)
    return img


def build(root: Path, n: int, h: int, w: int) -> None:
    rng = np.random.default_rng(1)
    for i in range(n):
        key = f"bench{i:03d}_q8Zr-XmvKp2TnWc4aLbE"
        (root / "training/images").mkdir(parents=True, exist_ok=True)
        (root / "training/v1.2/labels").mkdir(parents=True, exist_ok=True)
        photo(rng, h, w).save(root / f"training/images/{key}.jpg", quality=90)
        label(rng, h, w).save(root / f"training/v1.2/labels/{key}.png")


def throughput(ds: SegDataset, epochs: int) -> float:
    ds[(0, 0)]  # warm up (tables, imports)
    n = 0
    t0 = time.perf_counter()
    for e in range(epochs):
        for i in range(len(ds)):
            item = ds[(i, 1000 * e + i)]
            assert item["image"].shape == (3, 713, 713)
            n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--size", default="3000x4000", help="HEIGHTxWIDTH of the raw photos")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="processes for prepare")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))

    reg = default_registry()
    union, spaces = open_union(["cityscapes", "bdd", "idd", "mapillary"], reg)
    with tempfile.TemporaryDirectory(prefix="uniseg-bench-") as tmp:
        raw, cache = Path(tmp) / "mapillary", Path(tmp) / "cache"
        t0 = time.perf_counter()
        build(raw, args.images, h, w)
        t_build = time.perf_counter() - t0
        raw_mb = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()) / 1e6

        rep = prepare_cache(union, spaces["mapillary"], raw, cache, short_side=1080, workers=args.workers)
        assert rep.ok and rep.done == args.images
        cache_mb = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 1e6

        t = TrainTransform()  # 1080 shorter side, scale 0.5-2, 713 crop, flip
        from_raw = throughput(SegDataset("mapillary", raw, union, split="train", transform=t), args.epochs)
        from_cache = throughput(SegDataset("mapillary", cache, union, split="train", transform=t), args.epochs)

    print(f"Training input, Mapillary-like {w}x{h} JPEG + paletted PNG, {args.images} images x {args.epochs} epochs, one process")
    print(f"(fixture built in {t_build:.1f} s; prepare: {rep.seconds:.2f} s with {args.workers} workers = {args.images / rep.seconds:.1f} images/s)")
    print()
    print(f"{'source':<8} {'images/s':>9} {'ms/image':>9} {'on disk MB':>11}")
    print(f"{'raw':<8} {from_raw:>9.2f} {1000 / from_raw:>9.1f} {raw_mb:>11.1f}")
    print(f"{'cache':<8} {from_cache:>9.2f} {1000 / from_cache:>9.1f} {cache_mb:>11.1f}")
    print(f"speed-up: {from_cache / from_raw:.1f}x")


if __name__ == "__main__":
    main()
