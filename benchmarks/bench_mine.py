"""Relation mining (Eq. 7) against a plain inference pass over the same images.

Issue target: ``uniseg.engine.mining.mine`` costs at most 1.1x a plain inference pass: the same
datasets, transform and DataLoader, the model's forward and an argmax over the union's classes
per image, nothing else. Mining adds the sigmoid, two scatter-adds and a bincount per image (and,
on interior pixels, the default, a separable max/min filter over the label map), and,
as ``uniseg relations mine`` runs it (resumable: partial sums in a state folder), hashing the
weights and image lists once per pass for its resume key (in a thread, beside the pass) and
saving the sums at the end.

Data: the synthetic world (Cityscapes, IDD, Mapillary train splits). The model is a cosine-head
network with random weights (timing does not depend on training). Both passes run ``--repeat``
times, alternating; the best of each is compared and every run is printed, to show the noise.

    python benchmarks/bench_mine.py                                  # CPU, 1 thread: hrnet_w18_small_v2, 256x512 images
    python benchmarks/bench_mine.py --model hrnet_tiny               # the cheapest network: the worst case
    python benchmarks/bench_mine.py --device cuda --model hrnet_w48 --size 1024x2048 --short-side 1080
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uniseg.data import EvalTransform, SegDataset  # noqa: E402
from uniseg.data.synth import synthesize  # noqa: E402
from uniseg.engine.checkpoint import TrainedModel, model_spec  # noqa: E402
from uniseg.engine.inputs import quiet_worker  # noqa: E402
from uniseg.engine.mining import mine  # noqa: E402
from uniseg.engine.runtime import setup_runtime  # noqa: E402
from uniseg.labelspaces import default_registry  # noqa: E402
from uniseg.models import build_model  # noqa: E402
from uniseg.unify.artifact import union_of  # noqa: E402

TRAIN = ("cityscapes", "idd", "mapillary")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its reaped children, the DataLoader workers).
    On a busy machine CPU time is the steadier measure of the work done."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def since(start: tuple[float, float], device: torch.device) -> tuple[float, float]:
    sync(device)
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def inference_pass(trained: TrainedModel, pairs, registry, device, short_side: int, workers: int, autocast) -> tuple[tuple[float, float], int]:
    """(wall, CPU) seconds and images of the baseline: mining's datasets and loader, forward + argmax per image."""
    sync(device)
    t0 = clock()
    tf = EvalTransform(short_side=short_side or None, resize_label=True)
    n = 0
    with torch.no_grad():
        for name, root in pairs:
            ds = SegDataset(name, root, trained.union, split=["train"], transform=tf, registry=registry)
            loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, list(range(len(ds)))), batch_size=None, num_workers=workers,
                                                 worker_init_fn=quiet_worker if workers else None, pin_memory=device.type == "cuda")
            for item in loader:
                item["label"].to(device)  # the label travels to the device as mining's does
                image = item["image"].unsqueeze(0).to(device)
                with autocast:
                    logits = trained.model(image)
                logits.argmax(1)  # the prediction at the label size (the network output is at the input size)
                n += 1
    return since(t0, device), n


def mining_pass(trained: TrainedModel, pairs, registry, device, short_side: int, workers: int, autocast, interior: str) -> tuple[float, float]:
    from uniseg.engine.mining import clear_state

    with tempfile.TemporaryDirectory() as state_dir:  # resumable, as the CLI runs it
        sync(device)
        t0 = clock()
        mine(trained, pairs, registry, device=device, short_side=short_side, workers=workers, autocast=autocast, state_dir=Path(state_dir),
             interior=interior)
        clear_state(Path(state_dir))
        return since(t0, device)


def components(trained: TrainedModel, pairs, registry, device, short_side: int, autocast, interior: str, runs: int = 7) -> dict[str, float]:
    """Best-of-``runs`` milliseconds of the per-image pieces on the first image: the forward pass,
    the baseline's argmax and mining's Eq. 7 accumulation (less exposed to a busy machine's noise
    than whole passes)."""
    from uniseg.engine.mining import MiningSums, interior_radius

    name, root = pairs[0]
    ds = SegDataset(name, root, trained.union, split=["train"], transform=EvalTransform(short_side=short_side or None, resize_label=True), registry=registry)
    item = ds[0]
    image, target = item["image"].unsqueeze(0).to(device), item["label"].to(device)
    sums = MiningSums.zeros(len(trained.union.datasets), trained.union.num_classes, device, interior_radius(trained.model, interior))
    scale = float(trained.model.classifier.scale)
    with torch.no_grad():
        with autocast:
            logits = trained.model(image)
        pieces = {
            "forward": lambda: trained.model(image),
            "argmax": lambda: logits.argmax(1),
            "eq7": lambda: sums.add(0, logits[0], target, scale),
        }
        best = {}
        for key, fn in pieces.items():
            times = []
            for _ in range(runs + 1):
                t0 = clock()
                with autocast:
                    fn()
                times.append(since(t0, device)[1 if device.type == "cpu" else 0])
            best[key] = 1000 * min(times[1:])
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", default="auto", help="auto (CUDA: bf16), off, bf16, fp16")
    ap.add_argument("--model", default="hrnet_w18_small_v2")
    ap.add_argument("--images", type=int, default=8, help="synthetic images per dataset (train split: about 8 in 9)")
    ap.add_argument("--size", default="256x512", help="synthetic image size HxW")
    ap.add_argument("--short-side", type=int, default=0, help="mining's resize (0 = native)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: decoding counts in this process's CPU time)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads; 1 keeps OpenMP threads from spinning while the "
                    "machine is busy, which inflates CPU time too")
    ap.add_argument("--repeat", type=int, default=3, help="alternate the two passes this many times; best of each")
    ap.add_argument("--interior", default="auto", help="mining's --interior: auto (the default of 'relations mine'), off or N")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    reg = default_registry()
    rt = setup_runtime(args.device, args.amp)
    if rt.device.type == "cpu":
        torch.set_num_threads(args.threads)
    union = union_of(list(TRAIN), reg)
    torch.manual_seed(0)
    model = build_model(args.model, union.num_classes, head="cosine").to(rt.device).eval()
    trained = TrainedModel(model, union, model_spec(model), {}, 0, "random-weights")
    with tempfile.TemporaryDirectory() as tmpdir:
        world = Path(tmpdir) / "world"
        synthesize(world, images=args.images, size=(h, w), seed=0, datasets=list(TRAIN))
        pairs = [(n, str(world / n)) for n in TRAIN]
        where = torch.cuda.get_device_name() if rt.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        _, count = inference_pass(trained, pairs, reg, rt.device, args.short_side, args.workers, rt.autocast())  # warm-up
        print(f"{where}; torch {torch.__version__}; {args.model} (cosine head, {union.num_classes} classes), amp {rt.amp_name}; "
              f"{count} images of {h}x{w} (short side {args.short_side or 'native'}), {args.workers} workers")
        c = components(trained, pairs, reg, rt.device, args.short_side, rt.autocast(), args.interior)
        expected = (c["forward"] + c["eq7"]) / (c["forward"] + c["argmax"])
        print(f"per image, best of 7 ({'CPU' if rt.device.type == 'cpu' else 'wall'} time): forward {c['forward']:.1f} ms, argmax {c['argmax']:.1f} ms, Eq. 7 accumulation {c['eq7']:.1f} ms "
              f"-> (forward + Eq. 7) / (forward + argmax) = {expected:.3f}")
        base, mined = [], []
        for _ in range(args.repeat):
            mined.append(mining_pass(trained, pairs, reg, rt.device, args.short_side, args.workers, rt.autocast(), args.interior))
            base.append(inference_pass(trained, pairs, reg, rt.device, args.short_side, args.workers, rt.autocast())[0])
        print(f"{'pass (best of ' + str(args.repeat) + ')':<34}{'wall s':>8}{'ms/image':>10}{'CPU s':>8}")
        for label, runs in (("plain inference (forward+argmax)", base), (f"mining (Eq. 7, --interior {args.interior})", mined)):
            wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
            print(f"{label:<34}{wall:>8.2f}{1000 * wall / count:>10.1f}{cpu:>8.2f}")
        for k, what in ((0, "wall"), (1, "CPU")):
            ratio = min(r[k] for r in mined) / min(r[k] for r in base)
            spread = max(max(r[k] for r in runs) / min(r[k] for r in runs) for runs in (base, mined))
            print(f"mining / inference ({what} time) = {ratio:.3f} (target <= 1.1: {'met' if ratio <= 1.1 else 'MISSED'}); "
                  f"runs: mining {[round(r[k], 2) for r in mined]}, inference {[round(r[k], 2) for r in base]}, "
                  f"slowest / best run {spread:.2f}x")
        print("CPU time: this process and its DataLoader workers; on a busy machine it is the steadier of the two")

if __name__ == "__main__":
    main()
