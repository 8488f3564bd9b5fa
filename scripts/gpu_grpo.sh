#!/usr/bin/env bash
# GRPO with an execution reward after SFT, on one GPU: `t2s-bench train --method grpo` continues an SFT LoRA
# adapter (from scripts/gpu_train.sh) on the SFT prompts of Spider train minus the held-out validation databases,
# validating by execution on 200 held-out questions (best checkpoint by validation EX), then scores the result on
# every executable Spider dev question with `t2s-bench run --system finetuned`. Rerun the same command to resume
# from the last checkpoint under $WORK (a run stopped by its time budget continues). See scripts/GPU_RUNS.md.
#
# usage (repo root, on the GPU machine):
#   bash scripts/gpu_grpo.sh [SPIDER_DIR] [INIT_ADAPTER] [BASE]
#     INIT_ADAPTER: the SFT adapter folder (with its train_config.json: base, prompt settings and split come from
#     it); BASE: only when the base recorded there is not on this machine (an HF folder, e.g. /root/t2s/base_hf)
# env: OUT (results folder, default ./gpu_out), WORK (persistent work, default /root/t2s), NAME (run name, default
#      grpo), WHEELS (folder of .whl: trl, datasets, sqlglot, ...; default .whl), TIME_BUDGET_S (training budget of
#      this call, default 300), MAX_STEPS (default 60), EVAL_EVERY (default 20), NUM_GENERATIONS (default 8),
#      BETA (default 0.04), TEMPERATURE (default 1.0), LR (default 2e-5), NO_RESUME=1, DEV_LIMIT, SKIP_EVAL=1,
#      STEPS_PER_GENERATION (micro-batches generated per call; e.g. 16 = four optimiser steps at --grad-accum 4),
#      EXTRA (more `t2s-bench train` flags)
set -euo pipefail
SPIDER_DIR=${1:-/root/spider/spider}
INIT=${2:-/root/t2s/runs/lora}
BASE=${3:-}
OUT=${OUT:-gpu_out}
WORK=${WORK:-/root/t2s}
WHEELS=${WHEELS:-.whl}
NAME=${NAME:-grpo}
mkdir -p "$OUT" "$WORK" /tmp/site

. "$(dirname "$0")/gpu_wheels.sh"  # wheels -> /tmp/site, PYTHONPATH
. "$(dirname "$0")/gpu_collect.sh"  # keep_training_files, send_back
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export T2S_SPIDER_DIR="$SPIDER_DIR" T2S_CACHE_DIR="$WORK/cache"
T2S=(python3 -m t2s_bench)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import trl; print('trl', trl.__version__)" \
  || { echo "GRPO needs trl: put its wheel in $WHEELS (see scripts/GPU_RUNS.md)" >&2; exit 2; }
[ -f "$INIT/adapter_config.json" ] || { echo "$INIT: not an adapter folder" >&2; exit 2; }
[ -f "$INIT/train_config.json" ] || echo "warning: $INIT has no train_config.json: prompts and split fall back to the defaults" >&2

ADAPTER="$WORK/runs/$NAME"
RES="$WORK/results-$NAME"
mkdir -p "$RES"
FLAGS=(--method grpo --init-adapter "$INIT" --out "$ADAPTER" --max-steps "${MAX_STEPS:-60}"
       --num-generations "${NUM_GENERATIONS:-8}" --beta "${BETA:-0.04}" --temperature "${TEMPERATURE:-1.0}"
       --lr "${LR:-2e-5}" --batch-size 16 --grad-accum 4 --eval-every "${EVAL_EVERY:-20}" --val-size 200
       --time-budget-s "${TIME_BUDGET_S:-300}" --gen-batch-size 128 --exec-workers 8 --log-every 5)
[ -n "$BASE" ] && FLAGS+=(--base "$BASE")
[ -n "${NO_RESUME:-}" ] && FLAGS+=(--no-resume)
[ -n "${STEPS_PER_GENERATION:-}" ] && FLAGS+=(--steps-per-generation "$STEPS_PER_GENERATION")
# shellcheck disable=SC2086
"${T2S[@]}" train "${FLAGS[@]}" ${EXTRA:-} 2>&1 | tee "$RES/train_log.txt"

STOPPED=$(keep_training_files "$ADAPTER" "$RES")
echo "training stopped: $STOPPED (the adapter is the best checkpoint so far by validation EX)"
if [ -z "${SKIP_EVAL:-}" ]; then
  MODEL=(); [ -n "$BASE" ] && MODEL=(--model "$BASE")
  LIMIT=(); [ -n "${DEV_LIMIT:-}" ] && LIMIT=(--limit "$DEV_LIMIT")
  "${T2S[@]}" run --system finetuned --adapter "$ADAPTER" "${MODEL[@]}" --backend transformers --dataset spider-dev \
    "${LIMIT[@]}" --gen-batch-size 128 --batch-size 1024 --workers 8 --no-progress --out "$RES/dev-run" 2>&1 \
    | tail -n 20 | tee "$RES/dev_log.txt"
fi

send_back "$ADAPTER" "$RES" "$OUT" "$NAME" adapter_config.json adapter_model.safetensors train_config.json
