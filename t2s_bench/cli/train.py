"""`t2s-bench train`: fine-tune (LoRA, QLoRA or every weight) on transformers' Trainer;
`t2s-bench train --method grpo --init-adapter DIR`: GRPO with an execution reward after SFT (training/grpo.py);
`t2s-bench train export`: adapter -> GGUF. Several GPUs: `accelerate launch -m t2s_bench train ...`
(or `torchrun --nproc_per_node N -m t2s_bench train ...`); see scripts/launch_multi_gpu.sh."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

# command-line flag -> TrainConfig field
_OPTIONS = {
    "epochs": float, "lr": float, "batch_size": int, "grad_accum": int, "max_length": int, "eval_every": int,
    "val_size": int, "seed": int, "patience": int, "max_steps": int, "time_budget_s": float, "lora_r": int,
    "lora_alpha": int, "gen_batch_size": int, "max_new_tokens": int, "exec_workers": int, "log_every": int,
    "attn_implementation": str, "fsdp": str, "device": str, "warmup_ratio": float, "padding_free": bool,
    "gradient_checkpointing": bool, "eval_at_start": bool, "torch_compile": bool,
}


def _schema_options(pairs: list[str]) -> dict:
    """`--schema-option schema=pruned --schema-option values=true` -> {"schema": "pruned", "values": True}."""
    out: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ValueError(f"--schema-option {pair!r}: expected KEY=VALUE")
        value: object = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            try:
                value = int(raw)
            except ValueError:
                try:
                    value = float(raw)
                except ValueError:
                    pass
        out[key.strip()] = value
    return out


def _split_spec(spec: str) -> tuple[str, int | None]:
    """`spider-dev[:200]` -> ("spider-dev", 200)."""
    m = re.fullmatch(r"(.+)\[:(\d+)\]", spec)
    return (m.group(1), int(m.group(2))) if m else (spec, None)


def _read_config_file(path: str) -> dict:
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    elif p.suffix == ".toml":
        import tomllib

        data = tomllib.loads(text)
        data = data.get("train", data)
    else:
        raise ValueError(f"{path}: config must be .yaml, .yml or .toml")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of training options")
    return {k.replace("-", "_"): v for k, v in data.items()}


def config_from_args(args, defaults: dict | None = None, file_values: dict | None = None) -> object:
    """TrainConfig from `defaults` < the --config file (or `file_values`, already read) < flags."""
    from t2s_bench.training import TrainConfig

    if file_values is None:
        file_values = _read_config_file(args.config) if args.config else {}
    values = {**(defaults or {}), **file_values}
    for key in ("builder", "base", "gguf_file", "out", "report_to", "template"):
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    if args.train:
        values["train"] = args.train
    if args.val:
        values["val"], limit = _split_spec(args.val)
        if limit is not None:
            values["val_limit"] = limit
    for key in _OPTIONS:
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.no_resume:
        values["resume"] = False
    if args.augment:
        values["augment"] = tuple(args.augment)
    if args.schema_option:
        values["schema_options"] = {**values.get("schema_options", {}), **_schema_options(args.schema_option)}
    if args.sdpa_kernels:
        values["sdpa_kernels"] = None if args.sdpa_kernels == "default" else tuple(args.sdpa_kernels.split(","))
    missing = [k for k in ("base", "out") if not values.get(k)]
    if missing:
        raise ValueError(f"train: missing {', '.join('--' + m for m in missing)} (on the command line or in --config)")
    return TrainConfig.from_dict(values)


def _grpo_settings(args, file_values: dict):
    """GRPOSettings from the --config file's GRPO keys (taken out of `file_values`) < flags."""
    from t2s_bench.training.grpo import GRPOSettings

    values = {k: file_values.pop(k) for k in GRPOSettings.field_names() if k in file_values}
    values.update({k: getattr(args, k) for k in GRPOSettings.field_names() if getattr(args, k, None) is not None})
    return GRPOSettings.from_dict(values)


def grpo_from_args(args):
    """(TrainConfig, GRPOSettings) of `train --method grpo`: the SFT adapter's record and GRPO's defaults
    first, then the config file, then flags."""
    from t2s_bench.training.grpo import grpo_defaults

    file_values = _read_config_file(args.config) if args.config else {}
    settings = _grpo_settings(args, file_values)
    return config_from_args(args, grpo_defaults(settings.init_adapter), file_values), settings


def _train(args) -> int:
    from accelerate import PartialState

    from t2s_bench.training import train

    if args.method == "grpo":
        from t2s_bench.training.grpo import train_grpo

        config, settings = grpo_from_args(args)
        out = train_grpo(config, settings)
    else:
        if args.init_adapter:
            raise ValueError("--init-adapter continues an adapter with --method grpo")
        config = config_from_args(args)
        out = train(config)
    if PartialState().is_main_process:
        print(json.dumps(json.loads((out / "train_summary.json").read_text()), indent=1))
        flag = "--adapter" if config.builder != "full" else "--model"
        print(f"weights: {out}  (evaluate with: t2s-bench run --system finetuned {flag} {out})")
    return 0


def _export(args) -> int:
    from t2s_bench.training import export_adapter, export_lora_gguf

    if args.lora:  # the adapter alone; the base GGUF stays as it is
        from t2s_bench.systems.builtin import LORA_GGUF

        out = export_lora_gguf(args.adapter, args.out or Path(args.adapter) / LORA_GGUF)
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB); run it with: t2s-bench run --system finetuned "
              f"--adapter {args.adapter} --model BASE.gguf --backend llama-cpp")
        return 0
    if not args.out:
        raise SystemExit("train export: --out X.gguf is required (or --lora-gguf for the adapter alone)")
    summary = export_adapter(args.adapter, args.out, quant=args.quant, verify=not args.no_verify,
                             base=args.export_base, gguf_file=args.export_gguf_file)
    print(json.dumps(summary, indent=1))
    check = summary.get("verify")
    if isinstance(check, dict) and not check.get("tokens_equal"):
        print("export: transformers and llama.cpp tokenize differently", flush=True)
        return 1
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune (LoRA/QLoRA/full) validated by execution accuracy; `train export` writes GGUF",
        description="Fine-tune a model on Spider-format data with transformers' Trainer, validated by execution "
        "on databases held out from training. Several GPUs: `accelerate launch -m t2s_bench train ...`. "
        "`t2s-bench train export ADAPTER --out X.gguf` merges an adapter and converts it to GGUF.",
    )
    p.add_argument("--builder", choices=["lora", "qlora", "full"],
                   help="lora (default): bf16 base + LoRA; qlora: 4-bit NF4 base (CUDA, bitsandbytes); full: every "
                   "weight (small models)")
    p.add_argument("--base", help="base model: HF folder, hub id, or a .gguf file (de-quantized on load)")
    p.add_argument("--gguf-file", dest="gguf_file", help="GGUF file name inside --base (a folder or hub id)")
    p.add_argument("--train", help="training dataset (default spider-train)")
    p.add_argument("--val", help="validation: 'held-out' (default: whole databases of the training set, schema-"
                   "disjoint from the rest) or a dataset, optionally first N: spider-dev[:200]")
    p.add_argument("--augment", action="append", choices=["spider-syn"],
                   help="add Spider-Syn train paraphrases of the training questions (never dev)")
    p.add_argument("--schema-option", dest="schema_option", action="append", metavar="KEY=VALUE",
                   help="the prompt's schema options, as the systems take them (schema=pruned, values=true, "
                   "sample_rows=3, ...); repeatable")
    p.add_argument("--out", help="output folder, e.g. adapters/NAME (becomes a PEFT adapter folder)")
    p.add_argument("--config", help="YAML or TOML file of TrainConfig options; flags override it")
    p.add_argument("--template", help="prompt template version (default v1.0)")
    p.add_argument("--epochs", type=float)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--grad-accum", dest="grad_accum", type=int)
    p.add_argument("--max-length", dest="max_length", type=int)
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.add_argument("--eval-every", dest="eval_every", type=int, help="optimizer steps between validations")
    p.add_argument("--val-size", dest="val_size", type=int, help="validation questions generated per evaluation")
    p.add_argument("--patience", type=int, help="evaluations without improvement before early stop")
    p.add_argument("--time-budget-s", dest="time_budget_s", type=float, help="stop training after this long")
    p.add_argument("--seed", type=int)
    p.add_argument("--lora-r", dest="lora_r", type=int)
    p.add_argument("--lora-alpha", dest="lora_alpha", type=int)
    p.add_argument("--warmup-ratio", dest="warmup_ratio", type=float)
    p.add_argument("--gen-batch-size", dest="gen_batch_size", type=int, help="validation generation batch")
    p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int)
    p.add_argument("--exec-workers", dest="exec_workers", type=int, help="processes executing validation SQL")
    p.add_argument("--log-every", dest="log_every", type=int)
    p.add_argument("--attn", dest="attn_implementation", choices=["sdpa", "flex_attention", "eager"])
    p.add_argument("--padding-free", dest="padding_free", action=argparse.BooleanOptionalAction,
                   help="one row of concatenated examples per micro-batch, or padded length-grouped batches "
                   "(default); with --padding-free prefer --attn flex_attention (block-sparse mask)")
    p.add_argument("--gradient-checkpointing", dest="gradient_checkpointing", action="store_true", default=None)
    p.add_argument("--torch-compile", dest="torch_compile", action="store_true", default=None,
                   help="compile the model (the Trainer's torch_compile); measure it with benchmarks/bench_training.py")
    p.add_argument("--no-initial-eval", dest="eval_at_start", action="store_false", default=None,
                   help="skip validating the base model before step 0")
    p.add_argument("--sdpa-kernels", dest="sdpa_kernels",
                   help="SDPA kernels allowed on CUDA, comma-separated (default efficient,math), or 'default'")
    p.add_argument("--fsdp", help="FSDP mode for full fine-tuning on several GPUs, e.g. 'full_shard auto_wrap'")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--report-to", dest="report_to", choices=["wandb", "mlflow", "tensorboard"],
                   help="the Trainer's tracker integration (mlflow: <out>/mlflow.db unless MLFLOW_TRACKING_URI; "
                   "tensorboard: <out>/tensorboard; wandb: WANDB_MODE=offline without network)")
    p.add_argument("--no-resume", dest="no_resume", action="store_true", help="ignore a checkpoint in --out")
    g = p.add_argument_group("reinforcement learning (--method grpo: TRL's GRPO with an execution reward)")
    g.add_argument("--method", choices=["sft", "grpo"], default="sft",
                   help="sft (default): supervised fine-tuning; grpo: GRPO from --init-adapter (or a fresh LoRA), "
                   "reward 1 for the gold result, 0.1 for executable SQL, 0 otherwise")
    g.add_argument("--init-adapter", dest="init_adapter",
                   help="SFT adapter folder to continue; its train_config.json gives the base, prompts and split")
    g.add_argument("--num-generations", dest="num_generations", type=int, help="completions per prompt (default 8)")
    g.add_argument("--beta", type=float, help="KL weight against the starting policy (default 0.04)")
    g.add_argument("--temperature", type=float, help="sampling temperature (default 1.0)")
    g.add_argument("--top-p", dest="top_p", type=float)
    g.add_argument("--epsilon", type=float, help="ratio clipping (default 0.2)")
    g.add_argument("--num-iterations", dest="num_iterations", type=int, help="passes over each generated batch")
    g.add_argument("--loss-type", dest="loss_type", help="TRL loss type (default dapo)")
    g.add_argument("--steps-per-generation", dest="steps_per_generation", type=int,
                   help="micro-batches of completions generated in one call (default --grad-accum: one optimiser "
                   "step); a multiple of --grad-accum generates several steps at once, far cheaper per completion")
    g.add_argument("--reward-timeout", dest="reward_timeout", type=float, help="seconds per completion's query")
    g.add_argument("--reward-workers", dest="reward_workers", type=int,
                   help="processes executing completions (default: every core)")
    p.set_defaults(func=_train)
    sub = p.add_subparsers(dest="train_command", metavar="export")
    e = sub.add_parser("export", help="merge an adapter into its base model and write GGUF")
    e.add_argument("adapter", help="adapter folder (output of `t2s-bench train`)")
    e.add_argument("--out", help="GGUF file to write (with --lora-gguf: default ADAPTER/adapter-lora-f16.gguf)")
    e.add_argument("--lora-gguf", dest="lora", action="store_true",
                   help="write the adapter alone as a GGUF LoRA (f16) that llama.cpp applies at run time to the "
                   "unchanged base GGUF: nothing is re-quantised, so a 4-bit base keeps all of the fine-tuning")
    e.add_argument("--quant", default="f16", choices=["f32", "f16", "q8_0", "q4_k_m", "q5_k_m", "q6_k"],
                   help="GGUF type; quantised types use llama.cpp's quantizer (default f16)")
    e.add_argument("--base", dest="export_base",
                   help="base model to merge into (default: the one recorded in the adapter's train_config.json), "
                   "e.g. a .gguf file when the adapter was trained on another machine")
    e.add_argument("--gguf-file", dest="export_gguf_file", help="GGUF file name inside --base")
    e.add_argument("--no-verify", dest="no_verify", action="store_true", help="skip the llama-cpp round-trip check")
    e.set_defaults(func=_export)
