"""Loss speed and memory, side by side with the baselines named in issue #3.

Forward + backward on ``B x K x H x W`` logits (default 8 x 70 x 256 x 512, the 70-class
Cityscapes+BDD+IDD+Mapillary union with its real label-space masks, mixed-dataset batch, 5 %
ignore pixels, 23 mined relations like the paper's Table A-1):

- ``F.cross_entropy`` (the reference time) and uniseg's ``UnifiedCrossEntropy``;
- uniseg's ``NullBCELoss`` (target: <= 1.3x cross-entropy) and ``ClassRelationalBCELoss``
  (target: <= 1.6x), the latter also with its dense int8-row fallback forced;
- the straightforward implementations: a float one-hot target, ``one_hot @ table`` for the
  multi-label rows, then masked ``binary_cross_entropy_with_logits``.

Peak extra memory is measured per loss in a fresh subprocess (Linux: peak RSS reset through
/proc/self/clear_refs) on CPU, or with ``torch.cuda.max_memory_allocated`` on a GPU; it counts
everything above the inputs, including the ``B x K x H x W`` gradient every loss must return.
On a GPU the logits can be float16/bfloat16 (``--dtype``), as under AMP.

Run: python benchmarks/bench_losses.py [--batch 8 --classes 70 --height 256 --width 512] [--repeat 5]
     python benchmarks/bench_losses.py --height 128 --width 256      # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from uniseg.models.losses import ClassRelationalBCELoss, NullBCELoss, UnifiedCrossEntropy
from uniseg.relations.eq6 import identity_table

IGN = 255
NAMES = ["F.cross_entropy", "UnifiedCrossEntropy", "NullBCELoss", "ClassRelationalBCELoss", "ClassRelationalBCELoss (dense rows)", "straightforward Null BCE", "straightforward CR-BCE"]


def union_mask(classes: int) -> torch.Tensor:
    """The real 4 x 70 mask of the C+B+I+M union when K = 70, else a random one with the same density."""
    if classes == 70:
        from uniseg.labelspaces import default_registry
        from uniseg.unify import build_union

        reg = default_registry()
        union = build_union(reg.get_many(["cityscapes", "bdd", "idd", "mapillary"]))
        return torch.as_tensor(union.null_mask())
    g = torch.Generator().manual_seed(0)
    valid = torch.rand(4, classes, generator=g) < 0.5
    valid[:, 0] = True
    return valid


def make_inputs(args, device: torch.device):
    g = torch.Generator().manual_seed(0)
    valid = union_mask(args.classes)
    d = valid.shape[0]
    table = torch.from_numpy(identity_table(valid.numpy()))
    added = 0
    while added < args.relations:  # "on" relations to classes outside the dataset's space
        di = int(torch.randint(0, d, (1,), generator=g))
        own, other = valid[di].nonzero().flatten(), (~valid[di]).nonzero().flatten()
        if len(other) == 0:
            continue
        gi, ci = int(own[torch.randint(0, len(own), (1,), generator=g)]), int(other[torch.randint(0, len(other), (1,), generator=g)])
        if table[di, gi, ci] != 1:
            table[di, gi, ci] = 1
            added += 1
    b, k, h, w = args.batch, args.classes, args.height, args.width
    ds = torch.arange(b) % d
    # blocky labels (label maps are piecewise constant), each sample inside its dataset's space
    cells = torch.randint(0, 1 << 30, (b, h // 16 + 1, w // 16 + 1), generator=g)
    cells = cells.repeat_interleave(16, 1).repeat_interleave(16, 2)[:, :h, :w]
    target = torch.empty(b, h, w, dtype=torch.long)
    for i in range(b):
        own = valid[ds[i]].nonzero().flatten()
        target[i] = own[cells[i] % len(own)]
    target[torch.rand(b, h, w, generator=g) < 0.05] = IGN
    logits = (torch.randn(b, k, h, w, generator=g) * 2).to(device=device, dtype=getattr(torch, args.dtype))
    return logits.requires_grad_(), target.to(device), ds.to(device), valid.to(device), table.to(device)


def straightforward_null(logits, target, ds, valid):
    """Float one-hot target, BCE over all classes, mask by the dataset's space and valid pixels."""
    m = target != IGN
    onehot = F.one_hot(torch.where(m, target, 0), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    mask = valid[ds][:, :, None, None] & m[:, None]
    bce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    return (bce * mask).sum() / m.sum().clamp(min=1)


def straightforward_cr(logits, target, ds, table):
    """Float one-hot, ``one_hot @ table`` for the multi-label rows, masked BCE."""
    m = target != IGN
    k = logits.shape[1]
    onehot = F.one_hot(torch.where(m, target, 0), k).to(logits.dtype)  # B H W K
    rows = torch.einsum("bhwg,bgc->bhwc", onehot, table[ds].to(logits.dtype)).permute(0, 3, 1, 2)
    mask = (rows != -1) & m[:, None]
    bce = F.binary_cross_entropy_with_logits(logits, (rows == 1).to(logits.dtype), reduction="none")
    return (bce * mask).sum() / m.sum().clamp(min=1)


def contenders(valid, table):
    ce = UnifiedCrossEntropy()
    nb = NullBCELoss(valid)
    cr = ClassRelationalBCELoss(table, valid=valid)
    crd = ClassRelationalBCELoss(table, valid=valid, dense_threshold=-1)
    return {
        "F.cross_entropy": lambda x, t, d: F.cross_entropy(x if x.dtype == torch.float32 else x.float(), t, ignore_index=IGN),
        "UnifiedCrossEntropy": ce,
        "NullBCELoss": nb,
        "ClassRelationalBCELoss": cr,
        "ClassRelationalBCELoss (dense rows)": crd,
        "straightforward Null BCE": lambda x, t, d: straightforward_null(x, t, d, valid),
        "straightforward CR-BCE": lambda x, t, d: straightforward_cr(x, t, d, table),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_round_robin(fns: dict, logits, target, ds, device, repeat: int) -> dict:
    """Best and median seconds of forward + backward per loss; the losses take turns, so a
    transient slowdown of the machine hits them all alike. One untimed warm-up round first."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    failed: set[str] = set()
    for r in range(repeat + 1):
        for name, fn in fns.items():
            if name in failed:
                continue
            logits.grad = None
            sync(device)
            t0 = time.perf_counter()
            try:
                fn(logits, target, ds).backward()
            except RuntimeError as exc:  # e.g. out of memory for the straightforward versions
                print(f"  {name}: failed ({str(exc).splitlines()[0]})")
                failed.add(name)
                continue
            sync(device)
            if r:
                times[name].append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        if ts:
            ts.sort()
            out[name] = (ts[0], ts[len(ts) // 2])
    return out


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def memory_child(args) -> None:
    """Run one loss once, cold, and print the peak RSS growth in bytes (Linux)."""
    device = torch.device("cpu")
    logits, target, ds, valid, table = make_inputs(args, device)
    fn = contenders(valid, table)[args.memory_of]
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    base = _status_kib("VmRSS")
    fn(logits, target, ds).backward()
    print(json.dumps({"peak_extra": (_status_kib("VmHWM") - base) * 1024}))


def peak_extra_cpu(args, name: str) -> float | None:
    cmd = [sys.executable, __file__, "--memory-of", name, "--batch", str(args.batch), "--classes", str(args.classes),
           "--height", str(args.height), "--width", str(args.width), "--relations", str(args.relations), "--dtype", args.dtype]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        return json.loads(res.stdout.strip().splitlines()[-1])["peak_extra"]
    except Exception:
        return None


def peak_extra_cuda(fn, logits, target, ds) -> float:
    logits.grad = None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn(logits, target, ds).backward()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--classes", type=int, default=70)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--relations", type=int, default=23)
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds after one warm-up round")
    ap.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"], help="logits dtype (default: float32 on CPU, float16 on CUDA)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--skip-memory", action="store_true", help="time only")
    ap.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    if args.dtype is None:
        args.dtype = "float16" if device.type == "cuda" else "float32"
    if args.memory_of:
        memory_child(args)
        return

    logits, target, ds, valid, table = make_inputs(args, device)
    fns = contenders(valid, table)
    cr_info = ClassRelationalBCELoss(table, valid=valid)
    mib = 1 << 20
    print(f"device {device} ({torch.get_num_threads()} threads on CPU), torch {torch.__version__}")
    print(
        f"logits {tuple(logits.shape)} {args.dtype} = {logits.numel() * logits.element_size() / mib:.0f} MiB; "
        f"{valid.shape[0]} datasets mixed per batch; {args.relations} relations -> CR-BCE {cr_info.strategy}, "
        f"{cr_info.num_corrections} correction(s) per row"
    )
    timed = time_round_robin({name: fns[name] for name in NAMES}, logits, target, ds, device, args.repeat)
    results = {}
    for name, (best, med) in timed.items():
        mem = None
        if not args.skip_memory:
            mem = peak_extra_cuda(fns[name], logits, target, ds) if device.type == "cuda" else peak_extra_cpu(args, name)
        results[name] = (best, med, mem)

    ref = results["F.cross_entropy"][0]
    print()
    print(f"{'loss (forward + backward)':<38}{'best ms':>10}{'median ms':>11}{'x F.ce':>9}{'peak extra MiB':>16}")
    for name, (best, med, mem) in results.items():
        mem_s = f"{mem / mib:.0f}" if mem is not None else "-"
        print(f"{name:<38}{best * 1e3:>10.1f}{med * 1e3:>11.1f}{best / ref:>9.2f}{mem_s:>16}")
    print()
    targets = {"NullBCELoss": 1.3, "ClassRelationalBCELoss": 1.6}
    for name, limit in targets.items():
        if name in results:
            ratio = results[name][0] / ref
            print(f"{name}: {ratio:.2f}x F.cross_entropy (target <= {limit}x) {'OK' if ratio <= limit else 'MISSED'}")
    for ours, naive in (("NullBCELoss", "straightforward Null BCE"), ("ClassRelationalBCELoss", "straightforward CR-BCE")):
        if ours in results and naive in results:
            t_ratio = results[naive][0] / results[ours][0]
            m_o, m_n = results[ours][2], results[naive][2]
            mem_s = f", {m_n / m_o:.1f}x less peak memory" if m_o and m_n else ""
            print(f"{ours}: {t_ratio:.1f}x faster than the {naive}{mem_s}")


if __name__ == "__main__":
    main()
