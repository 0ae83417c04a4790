"""The head's final upsampling: ``F.interpolate(mode="bilinear")`` against ``resize_bilinear``
(two matrix products), forward + backward and forward alone, on the CPU.

The baseline is PyTorch's own kernel, which ``resize_bilinear`` replaces on the CPU (the HRNet
head and ``uniseg.engine.inference.to_size``); the shapes are the demo's training step (batch 8,
the union's ~100 classes at 40 x 40 -> 160 x 160) and a full-image inference.

Run: python benchmarks/bench_resize.py [--classes 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import timeit

import torch
import torch.nn.functional as F

from uniseg.models.resize import MAX_SIDE, resize_bilinear


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` single calls, in seconds."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU, {args.threads} threads, torch {torch.__version__}, {args.classes} classes, float32, best of {args.repeat}")
    print(f"{'case':<44}{'F.interpolate ms':>18}{'resize_bilinear ms':>20}{'speed-up':>10}")
    for label, shape, size, backward in (
        ("train step 8x40x40 -> 160x160, fwd+bwd", (8, args.classes, 40, 40), (160, 160), True),
        ("inference 1x48x96 -> 192x384, fwd", (1, args.classes, 48, 96), (192, 384), False),
        ("inference 1x32x128 -> 128x512, fwd", (1, 19, 32, 128), (128, 512), False),
        ("train 713 crop 2x179x179 -> 713, fwd+bwd *", (2, 19, 179, 179), (713, 713), True),
    ):
        x = torch.randn(*shape, requires_grad=backward)
        g = torch.randn(shape[0], shape[1], *size) if backward else None

        def run(resize):
            def step():
                y = resize(x)
                if backward:
                    y.backward(g)
            return step

        with torch.set_grad_enabled(backward):
            base = best_of(run(lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False)), args.repeat)
            ours = best_of(run(lambda t: resize_bilinear(t, size, False)), args.repeat)
        print(f"{label:<44}{1000 * base:>18.1f}{1000 * ours:>20.1f}{base / ours:>9.1f}x")
    print(f"* an input side over MAX_SIDE = {MAX_SIDE}: resize_bilinear hands it to F.interpolate (same kernel)")


if __name__ == "__main__":
    main()
