# Sourced by gpu_train.sh and gpu_grpo.sh: what a training call keeps on the machine and what it sends back.

# keep_training_files ADAPTER RES: the run's small files into RES; prints how training stopped
keep_training_files() {
  local adapter=$1 res=$2 f
  for f in train_config.json train_summary.json curves.json curves.csv curves.png data_stats.json nonfinite_steps.jsonl; do
    if [ -f "$adapter/$f" ]; then cp "$adapter/$f" "$res/"; fi
  done
  python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['stopped'])" "$adapter/train_summary.json"
}

# send_back ADAPTER RES OUT NAME [ADAPTER_FILE...]: the named adapter files in 15 MB parts
# (cat adapter.tar.part_* | tar x), then, as the device returns at most 8 files, everything small in one
# archive (validation run directories included) and the headline files beside it
send_back() {
  local adapter=$1 res=$2 out=$3 name=$4 f
  shift 4
  if [ $# -gt 0 ]; then
    tar -C "$adapter" -cf "$WORK/adapter-$name.tar" "$@"
    split -b 15M -d -a 1 "$WORK/adapter-$name.tar" "$out/adapter.tar.part_"
  fi
  local val=()
  if [ -d "$adapter/validation" ]; then val=(-C "$adapter" validation); fi
  tar -C "$res" -czf "$out/results.tgz" . "${val[@]}"
  cp "$res/train_log.txt" "$out/"
  for f in dev-run/metrics.json train_summary.json; do if [ -f "$res/$f" ]; then cp "$res/$f" "$out/"; fi; done
  ls -la "$out"
}
