#!/usr/bin/env bash
# One prepared pass over the CUDA paths that CI cannot run (no GPU there): training with bf16 and
# fp16 autocast + channels_last, eval and predict on the GPU, the losses on CUDA against float64 CPU,
# relation mining's GPU scatter, and the GPU figures of bench_train.py, bench_hrnet.py and
# bench_mine.py. Run from the repository root on a machine with torch + CUDA:
#   bash benchmarks/gpu_check.sh [OUTDIR]
set -uo pipefail
OUT=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
W=/tmp/uniseg_gpu_world
log() { echo "== $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'bf16', torch.cuda.is_bf16_supported())"

log synth; time $PY -m uniseg data synth --out $W --images 32 --size 512x1024 --dataset cityscapes --dataset idd --dataset mapillary --dataset kitti >/dev/null || exit 1

log "train bf16 (auto), channels_last, hrnet_w18_small_v2"
time $PY -m uniseg train --datasets cityscapes=$W/cityscapes idd=$W/idd mapillary=$W/mapillary --model hrnet_w18_small_v2 \
  --iterations 60 --batch-size 16 --crop 512x512 --short-side 512 --workers 8 --log-every 20 --out $OUT/run_bf16 --quiet || exit 1
log "train fp16 + GradScaler, linear head, CE"
time $PY -m uniseg train --datasets cityscapes=$W/cityscapes mapillary=$W/mapillary --model hrnet_w18_small_v1 --loss ce --head linear \
  --amp fp16 --iterations 20 --batch-size 8 --crop 384x384 --short-side 512 --workers 4 --log-every 10 --out $OUT/run_fp16 --quiet || exit 1
$PY - <<PYEOF
import torch
for run in ("run_bf16", "run_fp16"):
    c = torch.load("$OUT/" + run + "/last.pt", map_location="cpu", weights_only=True)
    ok = all(torch.isfinite(v).all() for v in c["model"].values() if v.is_floating_point())
    print(run, "iteration", c["iteration"], "finite weights", ok, "scaler", c["scaler"] is not None, "amp", c["config"]["amp"])
PYEOF

log "eval on GPU (seen cityscapes val, unseen kitti)"
time $PY -m uniseg eval --checkpoint $OUT/run_bf16/last.pt --datasets cityscapes=$W/cityscapes kitti=$W/kitti --out $OUT/eval --workers 4 || exit 1
log "predict on GPU, multilabel view"
$PY -m uniseg predict --checkpoint $OUT/run_bf16/last.pt --label-space cityscapes --multilabel --colour --out $OUT/pred $W/kitti/training/image_2 || exit 1

log "losses on CUDA vs float64 CPU"
$PY - <<'PYEOF'
import torch
from uniseg.models.losses import ClassRelationalBCELoss, NullBCELoss, identity_relation_table
torch.manual_seed(0)
D, K = 3, 70
valid = torch.rand(D, K) < 0.5
valid[:, :3] = True
table = identity_relation_table(valid)
table[1, 0, 5] = 1
x = torch.randn(4, K, 129, 131, dtype=torch.float64)
y = torch.randint(0, 3, (4, 129, 131)); y[0, :4] = 255
d = torch.tensor([0, 1, 2, 1])
for name, loss in (("null", NullBCELoss(valid)), ("cr", ClassRelationalBCELoss(table, valid=valid))):
    xc = x.clone().requires_grad_(True); lc = loss(xc, y, d); lc.backward()
    for dt in (torch.float32, torch.bfloat16, torch.float16):
        xg = x.to("cuda", dt).requires_grad_(True); lg = loss.to("cuda")(xg, y.cuda(), d.cuda()); lg.backward()
        print(f"{name} {str(dt):15} loss rel err {abs(lg.item() - lc.item()) / lc.item():.2e} grad max err {(xg.grad.double().cpu() - xc.grad).abs().max().item():.2e}")
PYEOF

log bench_train on GPU
$PY benchmarks/bench_train.py --device cuda --model hrnet_w18_small_v2 --crop 512 --batch 16 --steps 40 --warmup 8 --workers 8 --images 32 --size 512x1024 --repeat 2
log bench_hrnet AMP
$PY benchmarks/bench_hrnet.py --models hrnet_w18_small_v1 hrnet_w18_small_v2 hrnet_w48 --size 512x1024 --repeat 5 --budget 20
log "relations mine on GPU (bf16 forward, batched-GEMM scatter), then the scatter against CPU float64 and run to run"
time $PY -m uniseg relations mine --checkpoint $OUT/run_bf16/last.pt --datasets cityscapes=$W/cityscapes idd=$W/idd mapillary=$W/mapillary \
  --short-side 512 --workers 4 --out $OUT/mine --format json > $OUT/mine.json || exit 1
head -c 600 $OUT/mine.json; echo
$PY - <<'PYEOF'
import torch
from uniseg.engine.mining import class_sums
g = torch.Generator().manual_seed(0)
n = 1080 * 1920
v = torch.rand(70, n, generator=g)
ix = torch.randint(0, 71, (n,), generator=g)
ix[: n // 2] = 3  # a large region of one class
ref = torch.zeros(70, 71, dtype=torch.float64).index_add_(1, ix, v.double())
for m in ("gemm", "index"):
    a, b = class_sums(v.cuda(), ix.cuda(), 71, m), class_sums(v.cuda(), ix.cuda(), 71, m)
    torch.cuda.synchronize()
    print(f"{m:6} max rel err vs float64 {((a.cpu() - ref).abs() / ref.abs().clamp(min=1)).max().item():.2e}, same bits twice: {torch.equal(a, b)}")
PYEOF
log bench_mine on GPU
$PY benchmarks/bench_mine.py --device cuda --model hrnet_w48 --size 1024x2048 --short-side 1080 --images 6 --workers 8 --repeat 3
log done
