"""The full fine-tuning run on one GPU: train on Spider train, then score every executable Spider dev question.

    python -m t2s_bench.training.full_run --base /root/m/model.gguf --spider-dir shared_spider --work /root/t2s \
        --out $OUT [--builder lora|qlora] [--time-budget-s 330] [--max-steps N] [--no-resume]

Resumable: everything lives under --work (the de-quantized base, the prepared data, the checkpoint);
running the same command again continues from the last checkpoint and then evaluates.
Writes to --out: train_config.json, train_summary.json, curves.{json,csv,png}, data_stats.json, and
dev-run/, the run directory of the adapter on Spider dev written by the harness (as `t2s-bench run
--system finetuned --adapter ...` writes it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger("t2s_bench.full_run")


def evaluate_adapter(base: str, adapter: Path, *, batch_size: int, max_new_tokens: int, workers: int, out: Path,
                     limit: int | None = None) -> Path:
    """Score base + adapter on Spider dev through the harness (`finetuned` system, transformers
    backend): the same generation path and run directory as `t2s-bench run --system finetuned`."""
    from t2s_bench.api import evaluate

    result = evaluate("finetuned", dataset="spider-dev", adapter=str(adapter), model=base, backend="transformers",
                      gen_batch_size=batch_size, max_new_tokens=max_new_tokens,
                      batch_size=4 * batch_size,  # questions per system call: several generation batches
                      workers=workers, limit=limit, out=out / "dev-run", progress=True)
    return result.path


def adapter_dir(work: Path, builder: str) -> Path:
    """Where the adapter and its checkpoint live: one folder per builder, so a QLoRA run never resumes LoRA's."""
    return Path(work) / ("adapter" if builder == "lora" else f"adapter-{builder}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="base model: a .gguf file, HF folder or hub id")
    p.add_argument("--spider-dir", required=True, help="Spider copy (tables.json, train_spider.json, dev.json, database/)")
    p.add_argument("--work", default="/root/t2s", help="persistent work folder (base, data, checkpoint)")
    p.add_argument("--out", required=True, help="where the small result files go")
    p.add_argument("--builder", default="lora", choices=["lora", "qlora"])
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=2)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--val-size", type=int, default=200)
    p.add_argument("--val-from", choices=["train", "dev"], default="train",
                   help="train (default): validate on whole Spider train databases held out from training "
                        "(schema-disjoint, ~10%% of the questions), so Spider dev is used once, for the reported "
                        "number; dev: the old behaviour (validation on Spider dev)")
    p.add_argument("--time-budget-s", type=float, default=330.0,
                   help="this call's time (setup included) after which training stops, checkpointed; a rerun "
                        "resumes with the budget it is given")
    p.add_argument("--no-resume", action="store_true", help="start from step 0 even if --work holds a checkpoint")
    p.add_argument("--max-steps", type=int, help="optimizer steps (overrides --epochs; cosine schedule over them)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--no-initial-eval", action="store_true", help="skip validating the base model before step 0")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--sdpa-kernels", default="efficient,math",
                   help="SDPA kernels allowed in training, comma-separated, or 'default' for PyTorch's choice "
                   "(which gave NaN gradients on an H100: results/nan-probe/)")
    p.add_argument("--gen-batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--dev-limit", type=int, help="final evaluation on the first N executable dev questions (smoke tests)")
    p.add_argument("--skip-final-eval", action="store_true")
    return p


def train_config(args, base: str, work: Path, budget_left_s: float):
    """The TrainConfig of a full run from its command-line arguments."""
    from t2s_bench.training import TrainConfig

    split = {}
    if args.val_from == "train":
        from t2s_bench.datasets import load_dataset
        from t2s_bench.training.data import held_out_databases

        train_set = load_dataset("spider-train")
        val_dbs = held_out_databases(train_set)
        split = {"val": "spider-train", "val_db_ids": val_dbs,
                 "train_db_ids": sorted({e.db_id for e in train_set.examples} - set(val_dbs))}
    return TrainConfig(
        base=base, out=str(adapter_dir(work, args.builder)), builder=args.builder, resume=not args.no_resume,
        max_steps=args.max_steps, lr=args.lr, eval_at_start=not args.no_initial_eval,
        gradient_checkpointing=args.gradient_checkpointing, train="spider-train", val=split.get("val", "spider-dev"),
        train_db_ids=split.get("train_db_ids"), val_db_ids=split.get("val_db_ids"),
        val_size=args.val_size, epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum,
        max_length=args.max_length, eval_every=args.eval_every, gen_batch_size=args.gen_batch_size,
        exec_workers=args.workers, time_budget_s=max(10.0, budget_left_s),
        data_cache=str(work / "cache" / "training_data"), max_new_tokens=args.max_new_tokens,
        sdpa_kernels=None if args.sdpa_kernels == "default" else tuple(args.sdpa_kernels.split(",")),
    )


def prepare_work(args, work: Path, out: Path) -> str:
    """Folders, environment, and the base model: a GGUF is de-quantised once into a plain HF folder
    under `work` (later loads take seconds). Returns the base to train on."""
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["T2S_SPIDER_DIR"] = str(Path(args.spider_dir).resolve())
    os.environ.setdefault("T2S_CACHE_DIR", str(work / "cache"))
    import torch

    from t2s_bench.training.models import materialize_hf, resolve_base

    if resolve_base(args.base)[1]:
        return str(materialize_hf(args.base, None, work / "base_hf", dtype=torch.bfloat16))
    return args.base


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    work, out = Path(args.work), Path(args.out)
    started = time.monotonic()
    base = prepare_work(args, work, out)
    log.info("base ready at %s after %.0fs", base, time.monotonic() - started)

    from t2s_bench.training import train

    config = train_config(args, base, work, args.time_budget_s - (time.monotonic() - started))
    adapter = train(config)
    summary = json.loads((adapter / "train_summary.json").read_text())
    log.info("%s: %s trainable of %s parameters, peak VRAM %s GB, %s steps (%s), %s s training", args.builder,
             f"{summary['trainable_params']:,}", f"{summary['total_params']:,}", summary["peak_vram_gb"],
             summary["steps"], summary["stopped"], summary["train_time_s"])
    for name in ("train_config.json", "train_summary.json", "curves.json", "curves.csv", "curves.png",
                 "data_stats.json", "nonfinite_steps.jsonl"):
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, out / name)
    if not args.skip_final_eval:
        run_dir = evaluate_adapter(base, adapter, batch_size=args.gen_batch_size, max_new_tokens=config.max_new_tokens,
                                   workers=args.workers, out=out, limit=args.dev_limit)
        level = json.loads((run_dir / "metrics.json").read_text())["levels"]["all"]
        log.info("Spider dev execution accuracy %.4f on %d scored questions (run directory %s)", level["exec"],
                 level["n_scored"], run_dir)
    log.info("total %.0fs", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
