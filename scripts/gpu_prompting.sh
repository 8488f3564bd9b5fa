#!/usr/bin/env bash
# Prompting systems on one GPU through the normal runner (transformers backend, batched greedy, left
# padding), over every executable Spider dev question: zero-shot, few-shot, RAG, their DAIL-style
# skeleton re-ranking and execution-guided repair. One run directory per system under $WORK/runs, packed
# into $OUT/runs.tgz after each system (a call cut by its time limit keeps what finished; rerunning the
# same command skips finished systems: the runner resumes from their predictions).
#
# usage (repo root, on the GPU machine):
#   OUT=$OUT bash scripts/gpu_prompting.sh [SPIDER_DIR] [BASE_GGUF] -- NAME:FLAGS ...
#   e.g. ... -- "zero-shot:--system zero-shot" "few-shot:--system few-shot --k 3"
# env: WORK (persistent work, default /root/t2s: the de-quantised base, the cache, the run dirs),
#      WHEELS (folder of .whl installed to /tmp/site once each; default .whl), GEN_BATCH (default 512)
set -euo pipefail
SPIDER_DIR=${1:-.gpu/spider}
BASE=${2:-/root/m/model.gguf}
shift 2 || true
[ "${1:-}" = "--" ] && shift
OUT=${OUT:-gpu_out}
WORK=${WORK:-/root/t2s}
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT" "$WORK/runs" /tmp/site

. "$(dirname "$0")/gpu_wheels.sh"  # wheels -> /tmp/site, PYTHONPATH
export T2S_SPIDER_DIR="$(cd "$SPIDER_DIR" && pwd)" T2S_CACHE_DIR="$WORK/cache"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

if [ ! -f "$WORK/base_hf/config.json" ]; then  # de-quantise the GGUF once per machine
  python3 -c "import sys, torch; from t2s_bench.training.models import materialize_hf; \
print(materialize_hf(sys.argv[1], None, sys.argv[2], dtype=torch.bfloat16))" "$BASE" "$WORK/base_hf"
fi

for spec in "$@"; do
  name=${spec%%:*}
  flags=${spec#*:}
  t0=$(date +%s)
  # shellcheck disable=SC2086
  python3 -m t2s_bench run $flags --dataset spider-dev --model "$WORK/base_hf" --backend transformers \
    --gen-batch-size "${GEN_BATCH:-512}" --batch-size 1100 --workers 12 --out "$WORK/runs/$name" --no-progress \
    2>&1 | grep -v Warning | tail -n 9
  echo "== $name: $(( $(date +%s) - t0 )) s"
  tar -C "$WORK/runs" -czf "$OUT/runs.tgz.tmp" . && mv "$OUT/runs.tgz.tmp" "$OUT/runs.tgz"
done
ls -la "$OUT"
