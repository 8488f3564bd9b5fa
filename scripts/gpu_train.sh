#!/usr/bin/env bash
# Full fine-tuning run on one H100: LoRA on Qwen2.5-Coder-0.5B-Instruct (de-quantized from GGUF),
# 1 epoch over the 6,904 Spider train questions whose database is present, then every executable
# Spider dev question (972) scored by execution. Fits one 10-minute call; rerun the same command
# to resume from the checkpoint under $WORK if a call is cut short.
#
# usage (repo root, on the GPU machine):
#   bash scripts/gpu_train.sh [SPIDER_DIR] [BASE_GGUF]
# env: OUT (results folder, default ./gpu_out), WORK (persistent work, default /root/t2s),
#      WHEELS (folder of .whl for sqlglot/datasets/gguf/... installed to /tmp/site; default .whl),
#      BUILDER (lora|qlora, default lora), TIME_BUDGET_S (training budget, default 330), EXTRA (more flags)
set -euo pipefail
SPIDER_DIR=${1:-.gpu/spider}
BASE=${2:-/root/m/model.gguf}
OUT=${OUT:-gpu_out}
WORK=${WORK:-/root/t2s}
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT" "$WORK"

if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1 && [ ! -f /tmp/site/.installed ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  touch /tmp/site/.installed
fi
export PYTHONPATH="$PWD:/tmp/site:${PYTHONPATH:-}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

set -o pipefail
RES="$WORK/results"
mkdir -p "$RES"
python3 -m t2s_bench.training.full_run --base "$BASE" --spider-dir "$SPIDER_DIR" --work "$WORK" --out "$RES" \
  --builder "${BUILDER:-lora}" --epochs 1 --batch-size 8 --grad-accum 2 --max-length 1024 \
  --eval-every 100 --val-size 200 --time-budget-s "${TIME_BUDGET_S:-330}" --gen-batch-size 128 --workers 8 \
  ${EXTRA:-} 2>&1 | tee "$RES/log.txt"

# the adapter (about 35 MB in float32) comes back in 15 MB parts: cat adapter.tar.part_* | tar x
tar -C "$WORK/adapter" -cf "$WORK/adapter.tar" adapter_config.json adapter_model.safetensors
split -b 15M -d -a 1 "$WORK/adapter.tar" "$OUT/adapter.tar.part_"
# the device returns at most 8 files: everything small in one archive, the headline files beside it
tar -C "$RES" -czf "$OUT/results.tgz" .
cp "$RES/log.txt" "$OUT/" ; for f in dev_metrics.json train_summary.json; do if [ -f "$RES/$f" ]; then cp "$RES/$f" "$OUT/"; fi; done
ls -la "$OUT"
