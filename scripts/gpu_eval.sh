#!/usr/bin/env bash
# Prompting baselines on one GPU with the transformers backend (batched, left padding), over every
# executable Spider dev question, through the normal runner; then the batching benchmark.
# usage (repo root, on the GPU machine, after scripts/gpu_train.sh has de-quantised the base):
#   OUT=$OUT bash scripts/gpu_eval.sh [BASE_HF_DIR] [SPIDER_DIR]
set -euo pipefail
BASE=${1:-/root/t2s/base_hf}
export T2S_SPIDER_DIR=${2:-/root/spider/spider}
OUT=${OUT:-gpu_out}
RUNS=${RUNS:-/root/runs}
SYSTEMS=${SYSTEMS:-zero-shot few-shot}
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH="$PWD:/tmp/site:${PYTHONPATH:-}" T2S_CACHE_DIR=/root/cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
for sys in $SYSTEMS; do
  python3 -m t2s_bench run --system "$sys" --dataset spider-dev --model "$BASE" --backend transformers \
    --gen-batch-size 128 --batch-size 1024 --workers 8 --out "$RUNS/spider-dev-$sys-gpu" --no-progress 2>&1 | tail -n 12
done
python3 benchmarks/bench_hf_batching.py --model "$BASE" --n 256 --n-single 32 --batch-size 64 --device cuda \
  --out "$RUNS/bench_hf_batching.json" 2>&1 | tail -n 20 || true
tar -C "$RUNS" -czf "$OUT/runs.tgz" .
ls -la "$OUT"
