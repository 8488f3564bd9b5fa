#!/usr/bin/env bash
# `t2s-bench train` over several GPUs of one machine: one process per GPU (DDP), or FSDP for full fine-tuning.
# Every flag after the first two arguments goes to `t2s-bench train`; the global batch is
# NPROC x --batch-size x --grad-accum, so halve --batch-size on 2 GPUs to keep a one-GPU run's batch.
#
# usage (repo root):
#   NPROC=2 bash scripts/launch_multi_gpu.sh ddp  --base BASE --out runs/lora-2gpu --batch-size 8 ...
#   NPROC=2 bash scripts/launch_multi_gpu.sh fsdp --builder full --base BASE --out runs/full-2gpu ...
# LAUNCHER=torchrun uses torchrun instead of accelerate (DDP only; FSDP then needs --fsdp 'full_shard auto_wrap').
# NVLink multicast stays off (the lent machines need it so): NCCL_NVLS_ENABLE=0 and friends are set below.
set -euo pipefail
MODE=${1:?ddp or fsdp}; shift
NPROC=${NPROC:-$(python3 -c "import torch; print(torch.cuda.device_count())")}
HERE="$(cd "$(dirname "$0")" && pwd)"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONPATH="$PWD:/tmp/site:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
case "$MODE" in
  ddp) CONFIG="$HERE/accelerate/ddp.yaml" ;;
  fsdp) CONFIG="$HERE/accelerate/fsdp_full.yaml" ;;
  *) echo "mode must be ddp or fsdp" >&2; exit 2 ;;
esac
if [ "${LAUNCHER:-accelerate}" = torchrun ]; then
  exec torchrun --standalone --nproc_per_node "$NPROC" -m t2s_bench train "$@"
fi
exec accelerate launch --config_file "$CONFIG" --num_processes "$NPROC" -m t2s_bench train "$@"
