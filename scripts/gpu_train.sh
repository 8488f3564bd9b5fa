#!/usr/bin/env bash
# Fine-tune on one GPU with `t2s-bench train` (transformers Trainer), then score the result on every executable
# Spider dev question with `t2s-bench run --system finetuned`. Validation during training uses databases held
# out from Spider train (schema-disjoint), so Spider dev is used once, for the reported number. Rerun the same
# command to resume from the last Trainer checkpoint under $WORK (a run stopped by its time budget continues
# with the budget given to the rerun). See scripts/GPU_RUNS.md for the exact commands.
#
# usage (repo root, on the GPU machine):
#   bash scripts/gpu_train.sh [SPIDER_DIR] [BASE]          BASE: a .gguf file (de-quantized once into $WORK/cache)
# env: OUT (results folder, default ./gpu_out), WORK (persistent work, default /root/t2s), NAME (run name),
#      WHEELS (folder of .whl for sqlglot/datasets/gguf/bitsandbytes, installed to /tmp/site; default .whl),
#      BUILDER (lora|qlora|full, default lora), EPOCHS (default 1), MAX_STEPS, EVAL_EVERY (default 100),
#      TIME_BUDGET_S (training budget of this call, default 420), NO_RESUME=1, AUGMENT=spider-syn (needs
#      T2S_SPIDER_SYN_DIR), DEV_LIMIT (first N dev questions), SKIP_EVAL=1, EXTRA (more `t2s-bench train` flags)
set -euo pipefail
SPIDER_DIR=${1:-/root/spider/spider}
BASE=${2:-/root/m/model.gguf}
OUT=${OUT:-gpu_out}
WORK=${WORK:-/root/t2s}
WHEELS=${WHEELS:-.whl}
BUILDER=${BUILDER:-lora}
NAME=${NAME:-$BUILDER}
mkdir -p "$OUT" "$WORK" /tmp/site

. "$(dirname "$0")/gpu_wheels.sh"  # wheels -> /tmp/site, PYTHONPATH
. "$(dirname "$0")/gpu_collect.sh"  # keep_training_files, send_back
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export T2S_SPIDER_DIR="$SPIDER_DIR" T2S_CACHE_DIR="$WORK/cache"
T2S=(python3 -m t2s_bench)  # the `t2s-bench` command, from the repository checkout
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

if [ "$BUILDER" = qlora ]; then  # fail now, not after loading everything
  python3 -c "import torch, bitsandbytes as b; assert torch.cuda.is_available(), 'no CUDA'; print('bitsandbytes', b.__version__)" \
    || { echo "BUILDER=qlora needs bitsandbytes (a wheel in $WHEELS or /tmp/site) and a CUDA GPU" >&2; exit 2; }
fi

ADAPTER="$WORK/runs/$NAME"
RES="$WORK/results-$NAME"
mkdir -p "$RES"
FLAGS=(--builder "$BUILDER" --base "$BASE" --train spider-train --val held-out --out "$ADAPTER"
       --epochs "${EPOCHS:-1}" --batch-size 16 --grad-accum 1 --max-length 1024 --eval-every "${EVAL_EVERY:-100}"
       --val-size 200 --time-budget-s "${TIME_BUDGET_S:-420}" --gen-batch-size 128 --exec-workers 8)
[ -n "${MAX_STEPS:-}" ] && FLAGS+=(--max-steps "$MAX_STEPS")
[ -n "${NO_RESUME:-}" ] && FLAGS+=(--no-resume)
[ -n "${AUGMENT:-}" ] && FLAGS+=(--augment "$AUGMENT")
# shellcheck disable=SC2086
"${T2S[@]}" train "${FLAGS[@]}" ${EXTRA:-} 2>&1 | tee "$RES/train_log.txt"

STOPPED=$(keep_training_files "$ADAPTER" "$RES")
echo "training stopped: $STOPPED"
if [ -z "${SKIP_EVAL:-}" ] && [[ "$STOPPED" != "time budget"* ]]; then
  WEIGHTS=(--adapter "$ADAPTER"); [ "$BUILDER" = full ] && WEIGHTS=(--model "$ADAPTER")
  LIMIT=(); [ -n "${DEV_LIMIT:-}" ] && LIMIT=(--limit "$DEV_LIMIT")
  "${T2S[@]}" run --system finetuned "${WEIGHTS[@]}" --backend transformers --dataset spider-dev "${LIMIT[@]}" \
    --gen-batch-size 128 --batch-size 1024 --workers 8 --no-progress --out "$RES/dev-run" 2>&1 | tail -n 20 \
    | tee "$RES/dev_log.txt"
fi

# the adapter (LoRA: about 35 MB in float32) comes back in parts; a full fine-tune stays on the machine
FILES=(); [ "$BUILDER" != full ] && FILES=(adapter_config.json adapter_model.safetensors)
send_back "$ADAPTER" "$RES" "$OUT" "$NAME" "${FILES[@]}"
