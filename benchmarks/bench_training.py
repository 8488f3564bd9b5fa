"""Training throughput: the Trainer-based path (`t2s_bench.training.train`) against the hand-written loop it
replaced (benchmarks/baselines/legacy_trainer.py), same prepared data, same global batch, same number of
optimizer steps, in one call.

For each variant: tokens/s over `--steps` optimizer steps after `--warmup` steps (real tokens, padding not
counted; CUDA synchronised at both ends), seconds per step, peak GPU memory, and model-FLOPs utilisation
MFU = 6 x parameters x tokens/s / peak (the usual 6N per token; with LoRA the frozen weights need no weight
gradient, so the FLOPs actually done are lower: compare MFU between variants, as a ratio). No validation runs
inside the timed window (the new path's validation is switched off; the old loop is stopped before its own).

    python benchmarks/bench_training.py --base /root/m/model.gguf --steps 30 --out bench_training.json   # GPU
    python benchmarks/bench_training.py --tiny --steps 4 --warmup 1                                       # CPU

Variants: legacy (8 x 2 accumulation, padded, length-grouped, as measured in issue 15), padded (Trainer,
16 x 1, padded, group-by-length), packed (Trainer, padding-free), packed-flex (padding-free with
flex_attention; CUDA only by default: it compiles), padded-compile (padded with the Trainer's torch.compile; asked for
by name).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # baselines/

log = logging.getLogger("bench_training")
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 3050": 35.0}


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_gb():
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def _reset_peak():
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def run_legacy(args, base, split, work: Path) -> dict:
    from baselines.legacy_trainer import TrainConfig as LegacyConfig
    from baselines.legacy_trainer import train as legacy_train

    train_dbs, val_dbs = split
    config = LegacyConfig(
        base=base, out=str(work / "legacy"), builder="lora", train=args.train, val=args.train, train_db_ids=train_dbs,
        val_db_ids=val_dbs, schema_formats=("ddl", "compact"), max_length=args.max_length,
        max_steps=args.warmup + args.steps + 1, batch_size=args.legacy_batch, grad_accum=args.legacy_accum,
        eval_every=0, eval_at_start=False, resume=False, data_cache=str(work / "data"), seed=args.seed,
        device="cuda" if args.cuda else "cpu", log_every=10**9,
        # the old loop validates at every epoch end: on the tiny demo set (2 steps an epoch) keep that short;
        # on Spider train no epoch ends inside the timed steps
        max_new_tokens=8 if args.tiny else 200, val_size=args.val_size, patience=10**9,
    )
    timing: dict = {"tokens": 0}

    def before_step(setup, state, group, micro):
        done = state["step"]
        if done == args.warmup:
            _sync()
            timing["t0"] = time.perf_counter()
        if done == args.warmup + args.steps:
            _sync()
            timing["t1"] = time.perf_counter()
            timing["params"] = sum(p.numel() for p in setup.model.parameters() if not p.requires_grad)
            return True
        if done >= args.warmup:
            timing["tokens"] += sum(setup.lengths[i] for b in group for i in b)
        return False

    legacy_train(config, before_step=before_step)
    return timing


def run_new(args, base, split, work: Path, name: str, **overrides) -> dict:
    from transformers import TrainerCallback

    from t2s_bench.training import TrainConfig, train

    train_dbs, val_dbs = split
    timing: dict = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, a, state, control, model=None, **kw):
            timing["params"] = sum(p.numel() for p in model.parameters() if not p.requires_grad)  # the base

        def on_step_begin(self, a, state, control, **kw):
            if state.global_step == args.warmup:
                _sync()
                timing["t0"], timing["tokens0"] = time.perf_counter(), state.num_input_tokens_seen

        def on_step_end(self, a, state, control, **kw):
            if state.global_step == args.warmup + args.steps:
                _sync()
                timing["t1"] = time.perf_counter()
                timing["tokens"] = state.num_input_tokens_seen - timing["tokens0"]  # counted by the collator
                control.should_training_stop = True
                control.should_evaluate = control.should_save = False

    config = TrainConfig(
        base=base, out=str(work / name), builder="lora", train=args.train, val=args.train, train_db_ids=train_dbs,
        val_db_ids=val_dbs, val_size=args.val_size, schema_formats=("ddl", "compact"), max_length=args.max_length,
        max_steps=args.warmup + args.steps + 1, batch_size=args.batch_size, grad_accum=1, eval_every=10**9,
        eval_at_start=False, resume=False, data_cache=str(work / "data"), seed=args.seed,
        device="cuda" if args.cuda else "cpu", log_every=10**9, save_total_limit=1, **overrides,
    )
    train(config, callbacks=[Timer()])
    return timing


def summarise(name: str, timing: dict, args, peak_tflops: float | None, peak_gb) -> dict:
    seconds = timing["t1"] - timing["t0"]
    tps = timing["tokens"] / seconds
    row = {"variant": name, "steps": args.steps, "tokens": timing["tokens"], "seconds": round(seconds, 3),
           "s_per_step": round(seconds / args.steps, 4), "tokens_per_s": round(tps, 1),
           "base_params": timing.get("params"), "peak_gpu_gb": peak_gb}
    if peak_tflops and timing.get("params"):
        row["mfu"] = round(6 * timing["params"] * tps / (peak_tflops * 1e12), 4)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", help="base model: a .gguf file, HF folder or catalog name")
    p.add_argument("--tiny", action="store_true", help="the tiny random model on the demo data (CPU smoke run)")
    p.add_argument("--train", default=None, help="training set (default spider-train, demo with --tiny)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16, help="examples per step, new path (1 micro-batch)")
    p.add_argument("--legacy-batch", type=int, default=8)
    p.add_argument("--legacy-accum", type=int, default=2)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--val-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--variants", default=None,
                   help="comma-separated from legacy,padded,packed,packed-flex,padded-compile (default: the first four; "
                        "packed-flex on CUDA only)")
    p.add_argument("--peak-tflops", type=float, help="accelerator bf16 dense peak (default: by GPU name)")
    p.add_argument("--work", help="work folder (default: a temporary one)")
    p.add_argument("--out", help="write the results JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from t2s_bench import paths
    from t2s_bench.datasets import load_dataset
    from t2s_bench.training.data import held_out_databases
    from t2s_bench.training.models import materialized_base

    args.cuda = torch.cuda.is_available()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_training-"))
    if args.tiny:
        from t2s_bench.testing.tiny_model import build_tiny_model

        base = str(build_tiny_model(work / "tiny").hf_dir)
        args.train = args.train or "demo"
        args.val_size = min(args.val_size, 4)
    else:
        if not args.base:
            p.error("--base is required (or --tiny)")
        base = materialized_base(args.base, None, paths.cache_dir() / "base_hf")
        args.train = args.train or "spider-train"
    train_set = load_dataset(args.train)
    val_dbs = held_out_databases(train_set)
    split = (sorted({e.db_id for e in train_set.examples} - set(val_dbs)), val_dbs)
    variants = (args.variants or ("legacy,padded,packed,packed-flex" if args.cuda else "legacy,padded,packed")).split(",")
    device = torch.cuda.get_device_name(0) if args.cuda else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device), None)

    runners = {
        "legacy": lambda: run_legacy(args, base, split, work),
        "padded": lambda: run_new(args, base, split, work, "padded", padding_free=False),
        "packed": lambda: run_new(args, base, split, work, "packed", padding_free=True),
        "packed-flex": lambda: run_new(args, base, split, work, "packed-flex", padding_free=True,
                                       attn_implementation="flex_attention"),
        "padded-compile": lambda: run_new(args, base, split, work, "padded-compile", padding_free=False,
                                          torch_compile=True),
    }
    unknown = [v for v in variants if v not in runners]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; choose from {sorted(runners)}")
    result = {"device": device, "base": base, "train": args.train, "steps": args.steps, "warmup": args.warmup,
              "global_batch_examples": args.batch_size, "peak_tflops": peak, "torch": torch.__version__,
              "variants": []}
    rows = result["variants"]
    for name in variants:
        _reset_peak()
        t0 = time.perf_counter()
        try:
            row = summarise(name, runners[name](), args, peak, _peak_gb())
        except Exception as e:  # one variant failing (e.g. flex attention not compiling) keeps the others
            log.exception("variant %s failed", name)
            row = {"variant": name, "error": f"{type(e).__name__}: {e}"[:500]}
        row["wall_s_incl_setup"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        legacy = next((r for r in rows if r["variant"] == "legacy" and "tokens_per_s" in r), None)
        for r in rows:
            if legacy and "tokens_per_s" in r:
                r["speedup_vs_legacy"] = round(r["tokens_per_s"] / legacy["tokens_per_s"], 2)
        if args.out:  # after every variant: a later failure keeps the earlier numbers
            Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
