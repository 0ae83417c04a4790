"""The engine's training step against a bare PyTorch loop, and how long it waits for data.

Issue targets: ``uniseg.engine.train`` costs at most 1.05x a bare loop over the same model and
batches (the same DataLoader, no logging, no checks, no checkpoints), and with prepare caches and
2 DataLoader workers the data wait stays under 5% of the step time.

Data: the synthetic world (Cityscapes, IDD, Mapillary), prepared into caches for their union.
Both loops run the same number of steps; the first ``--warmup`` steps are not timed.

    python benchmarks/bench_train.py                      # CPU: hrnet_tiny, 256x256 crops, batch 8
    python benchmarks/bench_train.py --device cuda --model hrnet_w18_small_v2 --crop 512 --batch 16
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uniseg.data import prepare_cache  # noqa: E402
from uniseg.data.synth import synthesize  # noqa: E402
from uniseg.engine.config import DatasetSpec, TrainConfig  # noqa: E402
from uniseg.engine.criterion import build_criterion  # noqa: E402
from uniseg.engine.inputs import build_train_input  # noqa: E402
from uniseg.engine.runtime import setup_runtime  # noqa: E402
from uniseg.engine.schedule import poly_lr, set_lr  # noqa: E402
from uniseg.engine.trainer import build_network, train  # noqa: E402
from uniseg.labelspaces import default_registry  # noqa: E402
from uniseg.unify.artifact import open_union  # noqa: E402

TRAIN = ("cityscapes", "idd", "mapillary")


def make_caches(tmp: Path, images: int, size: tuple[int, int], workers: int) -> list[DatasetSpec]:
    world = tmp / "world"
    synthesize(world, images=images, size=size, seed=0, datasets=list(TRAIN))
    reg = default_registry()
    union, _ = open_union(list(TRAIN), reg)
    specs = []
    for name in TRAIN:
        out = tmp / "cache" / name
        prepare_cache(union, reg.get(name), world / name, out, split="train", short_side=0, workers=workers)
        specs.append(DatasetSpec(name, str(out)))
    return specs


def bare_loop(cfg: TrainConfig, steps: int, warmup: int) -> float:
    """Seconds per timed step of a plain loop: same model, loss, optimiser, schedule and loader."""
    rt = setup_runtime(cfg.device, cfg.amp, cfg.channels_last)
    reg = default_registry()
    union, _ = open_union([d.name for d in cfg.datasets], reg)
    model, _ = build_network(cfg, union)
    model.to(rt.device).train()
    if rt.channels_last:
        model.to(memory_format=torch.channels_last)
    criterion, _ = build_criterion(cfg.loss, union)
    criterion.to(rt.device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(rt.device.type) if rt.needs_scaler() else None
    loader = build_train_input(cfg, union, reg, rank=0, world_size=1, start_key=0, pin_memory=rt.device.type == "cuda").loader
    t0 = None
    for i, batch in enumerate(loader):
        if i == warmup:
            if rt.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        images, labels, index = rt.to_device(batch)
        set_lr(opt, poly_lr(cfg.base_lr, i, cfg.iterations, cfg.poly_power))
        with rt.autocast():
            logits = model(images)
        loss = criterion(logits, labels, index)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
    if rt.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / (steps - warmup)


def engine_loop(cfg: TrainConfig, out: Path, warmup: int) -> tuple[float, float]:
    """Seconds per timed step of ``uniseg.engine.train`` and its mean data-wait share, from metrics.jsonl."""
    train(cfg, out)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["type"] == "train"]
    start = next(r for r in steps if r["iteration"] == warmup)
    timed = [r for r in steps if r["iteration"] > warmup]
    seconds = (timed[-1]["seconds"] - start["seconds"]) / (timed[-1]["iteration"] - warmup)
    wait = sum(r["data_wait"] for r in timed) / len(timed)
    return seconds, wait


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="hrnet_tiny")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=24, help="synthetic images per dataset")
    ap.add_argument("--size", default="512x1024", help="synthetic image size HxW")
    ap.add_argument("--repeat", type=int, default=2, help="alternate engine and bare loop this many times; best of each")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        specs = make_caches(tmp, args.images, (h, w), args.workers)
        cfg = TrainConfig(
            datasets=specs, model=args.model, iterations=args.steps, batch_size=args.batch, crop=(args.crop, args.crop),
            short_side=0, workers=args.workers, log_every=1, checkpoint_every=10**9, device=args.device, val_split="none",
        )
        rt = setup_runtime(args.device, "auto")
        where = torch.cuda.get_device_name() if rt.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        print(f"{where}; torch {torch.__version__}; {args.model}, {args.crop}x{args.crop} crops, batch {args.batch}, "
              f"amp {rt.amp_name}, {args.workers} workers, caches of {args.images} x {h}x{w} images per dataset; "
              f"{args.steps} steps, {args.warmup} untimed")
        eng, bare, waits = [], [], []
        for k in range(args.repeat):
            s, wait = engine_loop(cfg, tmp / f"run{k}", args.warmup)
            eng.append(s)
            waits.append(wait)
            bare.append(bare_loop(cfg, args.steps, args.warmup))
        e, b = min(eng), min(bare)
        wait = min(waits)
        ratio = e / b
        print(f"{'loop':<28}{'ms/step':>10}{'img/s':>10}")
        print(f"{'bare PyTorch loop':<28}{1000 * b:>10.1f}{args.batch / b:>10.1f}")
        print(f"{'uniseg.engine.train':<28}{1000 * e:>10.1f}{args.batch / e:>10.1f}")
        print(f"engine / bare = {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'MISSED'}); "
              f"data wait {100 * wait:.1f}% of the step (target < 5%: {'met' if wait < 0.05 else 'MISSED'})")
        print(f"all runs ms/step: engine {[round(1000 * x, 1) for x in eng]}, bare {[round(1000 * x, 1) for x in bare]}")


if __name__ == "__main__":
    main()
