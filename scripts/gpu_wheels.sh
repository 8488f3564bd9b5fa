# Sourced by the GPU scripts: install each wheel of $WHEELS into /tmp/site once (a marker per file,
# so a wheel brought by a later call is still installed) and put the repo and /tmp/site on PYTHONPATH.
mkdir -p /tmp/site
if [ -d "${WHEELS:-.whl}" ]; then
  for whl in "${WHEELS:-.whl}"/*.whl; do
    [ -f "$whl" ] || continue
    mark="/tmp/site/.installed-$(basename "$whl")"
    if [ ! -f "$mark" ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$whl"
      touch "$mark"
    fi
  done
fi
export PYTHONPATH="$PWD:/tmp/site:${PYTHONPATH:-}"
