# Sourced on the GPU machine (no network) after gpu_wheels.sh, to use the vllm backend: installs, --no-deps
# into /tmp/vsite, each wheel of $VLLM_WHEELS whose distribution the image lacks (the image's torch, CUDA
# libraries and the rest stay), then puts /tmp/vsite on PYTHONPATH. FORCE="name ..." installs those even if
# present. The wheel set is vllm 0.23.0 (the last release built for the image's torch 2.11 + CUDA 13) and its
# dependencies minus torch and the optional kernel packages; scripts/GPU_RUNS.md says how it was downloaded.
#   VLLM_WHEELS=/root/vw . scripts/gpu_vllm.sh && python3 -c "import vllm; print(vllm.__version__)"
mkdir -p /tmp/vsite
if [ ! -f /tmp/vsite/.installed ]; then
  missing=$(python3 - "${VLLM_WHEELS:-/root/vw}" <<'EOF'
import importlib.metadata as md, os, sys
from pathlib import Path

force = set(os.environ.get("FORCE", "").replace("-", "_").lower().split())
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    name = wheel.name.split("-")[0]
    try:
        md.version(name)
        if name.lower() in force:
            print(wheel)
    except md.PackageNotFoundError:
        print(wheel)
EOF
)
  # shellcheck disable=SC2086
  if [ -z "$missing" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/vsite $missing; then
    echo "$missing" | wc -w > /tmp/vsite/.installed  # only after a successful install: a failed one is retried
  fi
fi
export PYTHONPATH="${PYTHONPATH:-}:/tmp/vsite"
