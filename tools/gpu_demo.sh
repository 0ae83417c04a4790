#!/usr/bin/env bash
# The demo's gpu plan, measured on a lent GPU machine in one prepared command (docs/demo.md, "The
# plans"): no install (the machine's python3 holds torch and the other dependencies; the repo is put
# on PYTHONPATH), each seed's run in a scratch folder, and what the docs need copied to $KEEP: the
# GPU's name, each seed's console log with its wall time, summary.json and the folder's index.
#
#   KEEP=$OUT SEEDS="0 1" bash tools/gpu_demo.sh        # on the GPU machine ($OUT comes back)
#   KEEP=/tmp/check PLAN=quick bash tools/gpu_demo.sh   # the same steps on a CPU, as a check
#
# At most 1 + 3 x seeds files land in $KEEP (the device tool returns 8). The world and the runs stay
# in $SCRATCH (default /tmp/uniseg-gpu-demo), so a second call on the same machine resumes them.
set -euo pipefail
keep=${KEEP:?set KEEP to the folder the results are copied to}
plan=${PLAN:-gpu}
seeds=${SEEDS:-0}
scratch=${SCRATCH:-/tmp/uniseg-gpu-demo}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$keep" "$scratch"
{
  date -u +"%Y-%m-%d %H:%M:%S UTC"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU (nvidia-smi absent)"
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  echo "cpu cores: $(nproc)"
} > "$keep/machine.txt"
for seed in $seeds; do
  start=$SECONDS
  "$py" -m uniseg demo --plan "$plan" --out "$scratch/$plan-s$seed" --seed "$seed" 2>&1 | tee "$keep/$plan-s$seed.log"
  echo "wall time: $((SECONDS - start)) s (plan $plan, seed $seed)" | tee -a "$keep/$plan-s$seed.log"
  cp "$scratch/$plan-s$seed/summary.json" "$keep/$plan-s$seed-summary.json"
  cp "$scratch/$plan-s$seed/README.md" "$keep/$plan-s$seed-index.md"
done
