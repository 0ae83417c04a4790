"""HRNet training throughput: forward + backward images/s per variant, contiguous vs channels_last.

On CPU (float32) at 512x1024 by default; on a GPU (when ``torch.cuda.is_available()``) with
AMP (float16 autocast; loss scaling does not change the timing, so it is left out) and batch 8.
Each row also gives the multiply-accumulates per image (the official counting) and the achieved
GMAC/s, taking a backward pass as twice a forward (3x forward MACs in all).

Run: python benchmarks/bench_hrnet.py                         # all variants, 512x1024, batch 1
     python benchmarks/bench_hrnet.py --size 256x512 --models hrnet_tiny hrnet_w18_small_v2
"""

from __future__ import annotations

import argparse
import time

import torch

from uniseg.cli.options import parse_hw
from uniseg.models import build_model, list_models
from uniseg.models.complexity import count_macs


def run(name: str, size: tuple[int, int], batch: int, channels_last: bool, device: torch.device, amp: bool, repeat: int, budget_s: float, classes: int):
    torch.manual_seed(0)
    model = build_model(name, classes).to(device).train()
    x = torch.randn(batch, 3, *size, device=device)
    target = torch.randint(0, classes, (batch, *size), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    times = []
    start = time.perf_counter()
    for i in range(repeat + 1):  # the first step is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s and times:
            break
    best = min(times)
    return batch / best, best, len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=None, help=f"default: all ({', '.join(list_models())})")
    ap.add_argument("--size", default="512x1024", help="HxW (default 512x1024)")
    ap.add_argument("--batch", type=int, default=None, help="default: 1 on CPU, 8 on a GPU")
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--repeat", type=int, default=3, help="timed steps after one warm-up (fewer if --budget runs out)")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per configuration before stopping early")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    amp = device.type == "cuda"
    batch = args.batch or (8 if device.type == "cuda" else 1)
    size = parse_hw(args.size, "--size")
    names = args.models or list_models()
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{where}; torch {torch.__version__}; {size[0]}x{size[1]}, batch {batch}, {'AMP float16' if amp else 'float32'}; forward + backward + SGD step")
    print(f"{'model':<20}{'GMACs/img':>10}{'contiguous img/s':>18}{'channels_last img/s':>21}{'best':>7}{'GMAC/s':>9}")
    for name in names:
        with torch.device("meta"):
            macs = count_macs(build_model(name, args.classes), size)
        res = {}
        for cl in (False, True):
            try:
                res[cl] = run(name, size, batch, cl, device, amp, args.repeat, args.budget, args.classes)
            except RuntimeError as exc:  # out of memory
                res[cl] = None
                print(f"  {name} channels_last={cl}: failed ({str(exc).splitlines()[0]})")
        ok = {k: v for k, v in res.items() if v}
        if not ok:
            continue
        best_cl = max(ok, key=lambda k: ok[k][0])
        ips = ok[best_cl][0]
        cells = [f"{res[c][0]:.3f} ({res[c][2]})" if res[c] else "-" for c in (False, True)]
        print(f"{name:<20}{macs / 1e9:>10.1f}{cells[0]:>18}{cells[1]:>21}{'CL' if best_cl else 'NCHW':>7}{3 * macs * ips / 1e9:>9.1f}")
    print("(n) = timed steps; GMAC/s counts forward + backward as 3x the forward MACs")


if __name__ == "__main__":
    main()
