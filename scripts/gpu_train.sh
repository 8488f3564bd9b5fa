#!/usr/bin/env bash
# Fine-tuning on one H100: LoRA (default) or QLoRA on Qwen2.5-Coder-0.5B-Instruct (de-quantized from GGUF),
# over the 6,904 Spider train questions whose database is present, then every executable Spider dev question
# (972) scored by execution. Rerun the same command to resume from the checkpoint under $WORK; a run stopped
# by its time budget continues with the budget given to the rerun (this call's time). See scripts/GPU_RUNS.md.
#
# usage (repo root, on the GPU machine):
#   bash scripts/gpu_train.sh [SPIDER_DIR] [BASE_GGUF]
# env: OUT (results folder, default ./gpu_out), WORK (persistent work, default /root/t2s),
#      WHEELS (folder of .whl for sqlglot/datasets/gguf/bitsandbytes installed to /tmp/site; default .whl),
#      BUILDER (lora|qlora, default lora), TIME_BUDGET_S (this call's budget, default 330),
#      MAX_STEPS (optimizer steps instead of 1 epoch), EVAL_EVERY (default 100), NO_RESUME=1 (start over),
#      MODE (train | probe: the NaN probe of t2s_bench.training.nan_probe instead of training), EXTRA (more flags)
set -euo pipefail
SPIDER_DIR=${1:-.gpu/spider}
BASE=${2:-/root/m/model.gguf}
OUT=${OUT:-gpu_out}
WORK=${WORK:-/root/t2s}
WHEELS=${WHEELS:-.whl}
BUILDER=${BUILDER:-lora}
MODE=${MODE:-train}
mkdir -p "$OUT" "$WORK" /tmp/site

. "$(dirname "$0")/gpu_wheels.sh"  # wheels -> /tmp/site, PYTHONPATH
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

if [ "$BUILDER" = qlora ]; then  # fail now, not after loading everything
  python3 -c "import torch, bitsandbytes as b; assert torch.cuda.is_available(), 'no CUDA'; print('bitsandbytes', b.__version__)" \
    || { echo "BUILDER=qlora needs bitsandbytes (a wheel in $WHEELS or /tmp/site) and a CUDA GPU" >&2; exit 2; }
fi

FLAGS=(--base "$BASE" --spider-dir "$SPIDER_DIR" --work "$WORK" --builder "$BUILDER" --epochs 1 --batch-size 8
       --grad-accum 2 --max-length 1024 --eval-every "${EVAL_EVERY:-100}" --val-size 200
       --time-budget-s "${TIME_BUDGET_S:-330}" --gen-batch-size 128 --workers 8)
[ -n "${MAX_STEPS:-}" ] && FLAGS+=(--max-steps "$MAX_STEPS")
[ -n "${NO_RESUME:-}" ] && FLAGS+=(--no-resume)

if [ "$MODE" = probe ]; then
  python3 -m t2s_bench.training.nan_probe "${FLAGS[@]}" --out "$OUT" \
    --expect results/finetune-qwen2.5-coder-0.5b-lora/nonfinite_steps.jsonl ${EXTRA:-} 2>&1 | tee "$OUT/probe_log.txt"
  ls -la "$OUT"
  exit 0
fi

RES="$WORK/results-$BUILDER"
ADAPTER="$WORK/adapter"; [ "$BUILDER" = lora ] || ADAPTER="$WORK/adapter-$BUILDER"
mkdir -p "$RES"
python3 -m t2s_bench.training.full_run "${FLAGS[@]}" --out "$RES" ${EXTRA:-} 2>&1 | tee "$RES/log.txt"

# the adapter (about 35 MB in float32) comes back in 15 MB parts: cat adapter.tar.part_* | tar x
tar -C "$ADAPTER" -cf "$WORK/adapter.tar" adapter_config.json adapter_model.safetensors
split -b 15M -d -a 1 "$WORK/adapter.tar" "$OUT/adapter.tar.part_"
# the device returns at most 8 files: everything small in one archive, the headline files beside it
tar -C "$RES" -czf "$OUT/results.tgz" .
cp "$RES/log.txt" "$OUT/" ; for f in dev-run/metrics.json train_summary.json; do if [ -f "$RES/$f" ]; then cp "$RES/$f" "$OUT/"; fi; done
ls -la "$OUT"
