"""The hand-written LoRA / QLoRA loop that `t2s_bench.training` replaced with `transformers.Trainer`.

Kept only as the baseline of benchmarks/bench_training.py (and for the NaN probe beside it).

A plain torch loop (no `Trainer`) so that every numerical safeguard is visible in one place:
float32 loss on SQL tokens only, gradient clipping, LoRA weights in float32, and the non-finite
guard of `guard.py` before each optimizer step. Every `eval_every` steps (and at each epoch's
end) the model writes SQL for a held-out sample (greedy, batched, left padding), which the core
scorer executes; the best adapter by execution accuracy is kept in `best/` and copied to the
output folder's root, so `<out>` itself is a PEFT adapter folder.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import random
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from t2s_bench import paths
from t2s_bench.training.data import IGNORE_INDEX, PrepSettings, prepare_training_data
from t2s_bench.training.trainer import package_versions, write_curves  # shared with the Trainer path

log = logging.getLogger(__name__)

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass
class TrainConfig:
    base: str  # HF folder, hub id, or a .gguf file (de-quantized on load)
    out: str
    builder: str = "qlora"  # "qlora" (4-bit NF4 base, CUDA only) or "lora"
    gguf_file: str | None = None
    train: str = "spider-train"
    val: str = "spider-dev"
    val_limit: int | None = None  # `spider-dev[:N]`: first N validation questions
    val_size: int | None = 200  # seeded sample of validation used for the periodic evaluations
    train_db_ids: list[str] | None = None
    val_db_ids: list[str] | None = None
    template: str = "v1.0"
    schema_formats: tuple[str, ...] = ("ddl", "compact")
    max_length: int = 1024
    epochs: float = 2.0
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    lr: float = 2e-4
    warmup_ratio: float = 0.03
    batch_size: int = 8
    grad_accum: int = 2
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    gradient_checkpointing: bool = False
    # SDPA kernels allowed while training on CUDA. PyTorch's default choice on an H100 (bf16, padded
    # batches) gave NaN gradients at finite loss; the memory-efficient and math kernels did not
    # (results/nan-probe/). None = PyTorch's default choice.
    sdpa_kernels: tuple[str, ...] | None = ("efficient", "math")
    eval_every: int = 100  # optimizer steps; 0 = only at epoch ends
    patience: int = 3  # evaluations without a better val exec acc before stopping
    gen_batch_size: int = 64
    max_new_tokens: int = 200
    exec_workers: int = 2
    exec_timeout: float = 30.0
    max_consecutive_nonfinite: int = 5
    log_every: int = 10
    seed: int = 42
    device: str | None = None  # default: cuda when available, else cpu
    time_budget_s: float | None = None  # stop (checkpointed) after this long in this call; a rerun resumes
    eval_at_start: bool = True  # evaluate the base model before the first step (the curve's starting point)
    resume: bool = True
    report_to: str | None = None  # wandb | mlflow | tensorboard
    data_cache: str | None = None  # default: <cache>/training_data

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        for key in ("schema_formats", "lora_targets", "sdpa_kernels"):
            if key in d and d[key] is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def validate(self) -> None:
        if self.builder not in ("lora", "qlora"):
            raise ValueError(f"builder must be 'lora' or 'qlora', got {self.builder!r}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("batch_size and grad_accum must be >= 1")
        if self.report_to not in (None, "", "none", "wandb", "mlflow", "tensorboard"):
            raise ValueError(f"report_to must be wandb, mlflow or tensorboard, got {self.report_to!r}")


# ---------------------------------------------------------------- batching


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar length (less padding): shuffle, sort inside mega-batches, shuffle batches."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * 32
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(records: list[dict], pad_id: int, device, *, left: bool = False, with_labels: bool = True) -> dict:
    import torch

    width = max(len(r["input_ids"]) for r in records)
    ids, mask, labels = [], [], []
    for r in records:
        n = len(r["input_ids"])
        pad = [pad_id] * (width - n)
        ids.append(pad + r["input_ids"] if left else r["input_ids"] + pad)
        mask.append([0] * (width - n) + [1] * n if left else [1] * n + [0] * (width - n))
        if with_labels:
            lab = [IGNORE_INDEX] * (width - n)
            labels.append(lab + r["labels"] if left else r["labels"] + lab)
    out = {"input_ids": torch.tensor(ids, device=device), "attention_mask": torch.tensor(mask, device=device)}
    if with_labels:
        out["labels"] = torch.tensor(labels, device=device)
    return out


# ---------------------------------------------------------------- model


def _device(config: TrainConfig):
    import torch

    return torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))


SDPA_KERNELS = {"efficient": "EFFICIENT_ATTENTION", "math": "MATH", "flash": "FLASH_ATTENTION",
                "cudnn": "CUDNN_ATTENTION"}


def attention_kernels(names, device):
    """A context restricting scaled-dot-product attention to `names` on CUDA (no-op elsewhere)."""
    import contextlib

    if not names:
        return contextlib.nullcontext()
    unknown = [n for n in names if n not in SDPA_KERNELS]
    if unknown:
        raise ValueError(f"unknown SDPA kernel(s) {unknown}; choose from {sorted(SDPA_KERNELS)}")
    if getattr(device, "type", str(device)) != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([getattr(SDPBackend, SDPA_KERNELS[n]) for n in names])


def build_model(config: TrainConfig, device):
    """The base model (bf16 on CUDA, fp32 on CPU; 4-bit NF4 for QLoRA) with LoRA adapters in float32."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from t2s_bench.training.models import load_model, materialize_hf

    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    if config.builder == "qlora":
        if not cuda:
            raise RuntimeError("builder 'qlora' needs a CUDA GPU (bitsandbytes 4-bit); use --builder lora on CPU")
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as e:
            raise RuntimeError("builder 'qlora' needs bitsandbytes: pip install 't2s-bench[train]'") from e
        base, gguf = config.base, config.gguf_file
        if gguf or base.endswith(".gguf"):  # 4-bit quantization needs plain HF weights
            base = str(materialize_hf(base, gguf, Path(config.out) / "_base_hf", dtype=dtype))
            gguf = None
        bnb = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = load_model(base, gguf, dtype=dtype, quantization_config=bnb, device=device.index or 0)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    else:
        model = load_model(config.base, config.gguf_file, dtype=dtype, device=device)
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
    model.config.use_cache = False
    lora = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets), bias="none", task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()  # LoRA weights and their Adam state in float32
    return model


def count_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- validation


def generate_sql(model, tokenizer, prompts: list[list[int]], *, pad_id: int, stop_ids: list[int], device,
                 batch_size: int = 64, max_new_tokens: int = 200) -> list[str]:
    """Greedy SQL for each prompt (token ids): batches sorted by length, left padding; extracted SQL."""
    import torch

    from t2s_bench.systems.extract import extract_sql

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                batch = collate([{"input_ids": prompts[i]} for i in chunk], pad_id, device, left=True,
                                with_labels=False)
                gen = model.generate(
                    **batch, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop_ids,
                    pad_token_id=pad_id, use_cache=True,
                )
                width = batch["input_ids"].shape[1]
                for i, row in zip(chunk, gen[:, width:].tolist()):
                    out[i] = extract_sql(tokenizer.decode(row, skip_special_tokens=True))
    finally:
        model.train(was_training)
    return out


def execution_accuracy(dataset, predictions: dict[int, str], *, workers: int, timeout: float) -> tuple[float, list]:
    """Execution accuracy of predictions on `dataset` with the core scorer (skipped examples excluded)."""
    from t2s_bench.scoring import score_predictions

    subset = dataset.filter(indices=list(predictions))
    records = score_predictions(subset, predictions, workers=workers, timeout=timeout)
    scored = [r for r in records if r.get("exec_match") is not None]
    acc = sum(bool(r["exec_match"]) for r in scored) / len(scored) if scored else 0.0
    return acc, records


def validation_loss(model, records, pad_id: int, device, batch_size: int) -> float:
    import torch

    from t2s_bench.training.guard import sft_loss_sum

    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    try:
        with torch.no_grad():
            for start in range(0, len(records), batch_size):
                batch = collate(records[start:start + batch_size], pad_id, device)
                loss_sum, k = sft_loss_sum(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
                total += float(loss_sum)
                n += k
    finally:
        model.train(was_training)
    return total / max(n, 1)


# ---------------------------------------------------------------- outputs


class _Reporter:
    """Optional experiment tracker; only when the package is importable."""

    def __init__(self, kind: str | None, out: Path, config: dict):
        self.kind = None if kind in (None, "", "none") else kind
        self._run = None
        if self.kind == "wandb":
            try:
                import wandb
            except ImportError as e:
                raise RuntimeError("--report-to wandb needs the wandb package (pip install wandb)") from e
            self._run = wandb.init(project="t2s-bench", dir=str(out), config=config)
        elif self.kind == "mlflow":
            try:
                import mlflow
            except ImportError as e:
                raise RuntimeError("--report-to mlflow needs the mlflow package (pip install mlflow)") from e
            self._run = mlflow.start_run()
            mlflow.log_params({k: str(v)[:250] for k, v in config.items()})
        elif self.kind == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise RuntimeError("--report-to tensorboard needs the tensorboard package") from e
            self._run = SummaryWriter(str(out / "tensorboard"))

    def log(self, row: dict) -> None:
        metrics = {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float)) and v is not None}
        if self.kind == "wandb":
            self._run.log(metrics, step=row["step"])
        elif self.kind == "mlflow":
            import mlflow

            mlflow.log_metrics(metrics, step=row["step"])
        elif self.kind == "tensorboard":
            for k, v in metrics.items():
                self._run.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.kind == "wandb":
            self._run.finish()
        elif self.kind == "mlflow":
            import mlflow

            mlflow.end_run()
        elif self.kind == "tensorboard":
            self._run.close()


def _save_adapter(model, folder: Path) -> None:
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def _peak_vram_gb(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


# ---------------------------------------------------------------- checkpoints (resume)


def _save_checkpoint(model, optimizer, scheduler, state: dict, out: Path) -> None:
    import torch

    ckpt = out / "checkpoint"
    tmp = out / "checkpoint.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(ckpt, ignore_errors=True)
    tmp.rename(ckpt)


def _load_checkpoint(model, optimizer, scheduler, out: Path, data_hash: str, builder: str | None = None) -> dict | None:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    ckpt = out / "checkpoint"
    if not (ckpt / "state.json").is_file():
        return None
    state = json.loads((ckpt / "state.json").read_text())
    if state.get("data_hash") != data_hash:
        raise ValueError(f"{ckpt}: checkpoint was trained on other data ({state.get('data_hash')} != {data_hash}); "
                         "use another --out or pass --no-resume")
    if builder is not None and state.get("builder", builder) != builder:
        raise ValueError(f"{ckpt}: checkpoint was trained with builder {state.get('builder')!r}, not {builder!r}; "
                         "use another --out or pass --no-resume")
    set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors")))
    blob = torch.load(ckpt / "trainer_state.pt", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["torch_rng"])
    log.info("resumed from %s at step %d (epoch %d, batch %d)", ckpt, state["step"], state["epoch"], state["batch"])
    return state


# ---------------------------------------------------------------- the loop


@dataclass
class TrainingSetup:
    """Everything the loop needs, built exactly as `train` builds it (the NaN probe replays steps with it)."""

    config: TrainConfig
    out: Path
    device: object
    tokenizer: object
    val_ds: object
    prep: object
    train_records: list
    val_records: list
    lengths: list
    pad_id: int
    stop_ids: list
    model: object
    optimizer: object
    scheduler: object
    guard: object
    total_steps: int
    batches_per_epoch: int
    trainable: int
    total: int
    run_info: dict


def setup_training(config: TrainConfig) -> TrainingSetup:
    """Seed, prepare the data, build the model, optimizer and schedule; writes data_stats/train_config.json."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    from t2s_bench.datasets import load_dataset
    from t2s_bench.prompting import load_template
    from t2s_bench.training.guard import NonFiniteGuard
    from t2s_bench.training.models import base_fingerprint, load_tokenizer

    config.validate()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(config)
    random.seed(config.seed)
    torch.manual_seed(config.seed)

    tokenizer = load_tokenizer(config.base, config.gguf_file)
    train_ds, val_ds = load_dataset(config.train), load_dataset(config.val)
    if config.val_limit is not None:
        val_ds = val_ds.filter(limit=config.val_limit)
    prep = prepare_training_data(
        train_ds, val_ds, tokenizer,
        PrepSettings(config.template, config.max_length, tuple(config.schema_formats)),
        cache_root=config.data_cache or paths.cache_dir() / "training_data",
        val_size=config.val_size, seed=config.seed,
        train_db_ids=config.train_db_ids, val_db_ids=config.val_db_ids,
    )
    (out / "data_stats.json").write_text(json.dumps(prep.meta["stats"], indent=1))
    pad_id, eot_id = prep.meta["pad_token_id"], prep.meta["end_of_turn_id"]
    stop_ids = sorted({eot_id} | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()))
    train_records = prep.train.remove_columns([c for c in prep.train.column_names
                                               if c not in ("input_ids", "labels", "index")]).to_list()
    val_records = prep.validation.to_list()
    lengths = [len(r["input_ids"]) for r in train_records]

    template = load_template(config.template)
    run_info = {
        "config": asdict(config),
        "seed": config.seed,
        "data": {"hash": prep.data_hash, "path": str(prep.path), "n_train": len(train_records),
                 "n_validation": len(val_records)},
        "template": {"version": template.version, "sha256": template.sha256},
        "base_model": base_fingerprint(config.base, config.gguf_file),
        "packages": package_versions(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
    }
    (out / "train_config.json").write_text(json.dumps(run_info, indent=1, default=str))

    model = build_model(config, device)
    trainable, total = count_parameters(model)
    log.info("trainable parameters: %s of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    batches_per_epoch = math.ceil(len(train_records) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    total_steps = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps)
    return TrainingSetup(
        config=config, out=out, device=device, tokenizer=tokenizer, val_ds=val_ds, prep=prep,
        train_records=train_records, val_records=val_records, lengths=lengths, pad_id=pad_id, stop_ids=stop_ids,
        model=model, optimizer=optimizer, scheduler=scheduler, guard=NonFiniteGuard(config.max_consecutive_nonfinite),
        total_steps=total_steps, batches_per_epoch=batches_per_epoch, trainable=trainable, total=total,
        run_info=run_info,
    )


def epoch_batches(setup: TrainingSetup, epoch: int) -> list[list[int]]:
    """The micro-batches (indices into `setup.train_records`) of one epoch, in training order."""
    return length_grouped_batches(setup.lengths, setup.config.batch_size, setup.config.seed, epoch)


def step_micro_batches(setup: TrainingSetup, group: list[list[int]]) -> list[dict]:
    """Padded tensors (right padding) of one optimizer step's micro-batches."""
    return [collate([setup.train_records[i] for i in b], setup.pad_id, setup.device) for b in group]


# A time-budget stop is resumable: rerunning continues with the budget given then.
_RESUMABLE_STOP = "time budget"


def train(config: TrainConfig, *, loss_hook=None, before_step=None) -> Path:
    """Fine-tune, validate by execution, keep the best adapter; returns the output folder (a PEFT adapter).

    `before_step(setup, state, group, micro_batches) -> bool` is called before every optimizer step
    (state["step"] = steps done so far); returning True ends training there, with no evaluation and
    no checkpoint (the NaN probe uses it to replay the run up to a given step).
    `config.time_budget_s` counts this call's time only: a run stopped by its budget resumes (with
    `resume`) and gets the budget given now, whatever the earlier one was.
    """
    from t2s_bench.training.guard import optimizer_step

    started = time.monotonic()
    setup = setup_training(config)
    out, device, tokenizer, model = setup.out, setup.device, setup.tokenizer, setup.model
    optimizer, scheduler, guard = setup.optimizer, setup.scheduler, setup.guard
    train_records, val_records, lengths = setup.train_records, setup.val_records, setup.lengths
    pad_id, stop_ids, val_ds = setup.pad_id, setup.stop_ids, setup.val_ds
    total_steps, batches_per_epoch, trainable, total = (setup.total_steps, setup.batches_per_epoch, setup.trainable,
                                                        setup.total)
    prep = setup.prep
    val_prompts = [r["input_ids"][: r["n_prompt"]] for r in val_records]
    val_index = [r["index"] for r in val_records]
    reporter = _Reporter(config.report_to, out, asdict(config))

    state = {"step": 0, "epoch": 0, "batch": 0, "best_acc": None, "best_step": None, "evals_since_best": 0,
             "curves": [], "skipped": 0, "data_hash": prep.data_hash, "builder": config.builder, "stopped": None,
             "train_time_s": 0.0}
    loaded = _load_checkpoint(model, optimizer, scheduler, out, prep.data_hash, config.builder) if config.resume \
        else None
    if loaded is None:
        (out / "nonfinite_steps.jsonl").unlink(missing_ok=True)  # a fresh run: no stale diagnosis
    else:
        state = {**state, **loaded}
        if (state.get("stopped") or "").startswith(_RESUMABLE_STOP):
            log.info("resuming a run stopped by %r with this call's time budget (%s s)", state["stopped"],
                     config.time_budget_s)
            state["stopped"] = None
    earlier_time_s = float(state.get("train_time_s") or 0.0)
    guard.skipped = state["skipped"]
    curves: list[dict] = state["curves"]

    def checkpoint() -> None:
        state["train_time_s"] = earlier_time_s + time.monotonic() - started
        _save_checkpoint(model, optimizer, scheduler, state, out)

    def evaluate(epoch_float: float) -> None:
        t0 = time.monotonic()
        sqls = generate_sql(model, tokenizer, val_prompts, pad_id=pad_id, stop_ids=stop_ids, device=device,
                            batch_size=config.gen_batch_size, max_new_tokens=config.max_new_tokens)
        acc, _ = execution_accuracy(val_ds, dict(zip(val_index, sqls)), workers=config.exec_workers,
                                    timeout=config.exec_timeout)
        vloss = validation_loss(model, val_records, pad_id, device, config.batch_size)
        row = {"step": state["step"], "epoch": round(epoch_float, 3), "val_loss": vloss, "val_exec_acc": acc,
               "lr": scheduler.get_last_lr()[0], "skipped_steps": guard.skipped}
        curves.append(row)
        reporter.log(row)
        log.info("step %d: val exec acc %.3f, val loss %.4f (%d questions, %.1fs)", state["step"], acc, vloss,
                 len(val_prompts), time.monotonic() - t0)
        if state["best_acc"] is None or acc > state["best_acc"]:
            state.update(best_acc=acc, best_step=state["step"], evals_since_best=0)
            _save_adapter(model, out / "best")
        else:
            state["evals_since_best"] += 1
        write_curves(out, curves)

    if state["step"] == 0 and not curves and config.eval_at_start:
        evaluate(0.0)  # the base model's accuracy: the curve's starting point
    model.train()
    window_loss, window_steps = 0.0, 0
    stop = state.get("stopped")
    last_eval_step = state["step"]
    max_epochs = 10**9 if config.max_steps else math.ceil(config.epochs)
    while stop is None and state["step"] < total_steps and state["epoch"] < max_epochs:
        batches = epoch_batches(setup, state["epoch"])
        while state["batch"] < len(batches) and state["step"] < total_steps:
            group = batches[state["batch"]:state["batch"] + config.grad_accum]
            micro = step_micro_batches(setup, group)
            if before_step is not None and before_step(setup, state, group, micro):
                reporter.close()
                return out
            with attention_kernels(config.sdpa_kernels, device):
                result = optimizer_step(model, optimizer, micro, guard=guard, max_grad_norm=config.max_grad_norm,
                                        step=state["step"], loss_hook=loss_hook)
            scheduler.step()
            state["batch"] += len(group)
            state["step"] += 1
            if result.applied:
                window_loss += result.loss
                window_steps += 1
            else:
                log.warning("step %d skipped: loss %s, grad norm %s (%d skipped so far)", state["step"],
                            result.loss, result.grad_norm, guard.skipped)
                with open(out / "nonfinite_steps.jsonl", "a") as f:  # which examples: the diagnosis
                    f.write(json.dumps({"step": state["step"], "loss": str(result.loss),
                                        "grad_norm": str(result.grad_norm), "n_label_tokens": result.n_tokens,
                                        "indices": [[train_records[i]["index"] for i in b] for b in group],
                                        "lengths": [[lengths[i] for i in b] for b in group]}) + "\n")
            if state["step"] % config.log_every == 0 and window_steps:
                row = {"step": state["step"], "epoch": round(state["epoch"] + state["batch"] / len(batches), 3),
                       "train_loss": window_loss / window_steps, "lr": scheduler.get_last_lr()[0],
                       "grad_norm": result.grad_norm, "skipped_steps": guard.skipped}
                curves.append(row)
                reporter.log(row)
                log.info("step %d/%d loss %.4f lr %.2e grad norm %.3f", state["step"], total_steps,
                         row["train_loss"], row["lr"], result.grad_norm)
                window_loss, window_steps = 0.0, 0
            state["skipped"] = guard.skipped
            epoch_float = state["epoch"] + state["batch"] / len(batches)
            if config.eval_every and state["step"] % config.eval_every == 0:
                evaluate(epoch_float)
                last_eval_step = state["step"]
                checkpoint()
                if state["evals_since_best"] >= config.patience:
                    stop = f"early stop: no better val exec acc in {config.patience} evaluations"
                    break
            if config.time_budget_s and time.monotonic() - started > config.time_budget_s:
                stop = f"time budget of {config.time_budget_s:.0f}s reached"
                break
        if stop is None and state["batch"] >= len(batches):  # epoch complete
            state["epoch"] += 1
            state["batch"] = 0
            _save_adapter(model, out / f"epoch-{state['epoch']}")
            if last_eval_step != state["step"]:
                evaluate(float(state["epoch"]))
                last_eval_step = state["step"]
                if state["evals_since_best"] >= config.patience:
                    stop = f"early stop: no better val exec acc in {config.patience} evaluations"
        checkpoint()
    if last_eval_step != state["step"]:
        evaluate(state["epoch"] + state["batch"] / max(1, batches_per_epoch))
    state["stopped"] = stop or "completed"
    state["skipped"] = guard.skipped
    checkpoint()
    for name in ADAPTER_FILES:  # <out> itself is the best adapter
        shutil.copy2(out / "best" / name, out / name)
    summary = {
        "best_val_exec_acc": state["best_acc"], "best_step": state["best_step"], "steps": state["step"],
        "total_steps_planned": total_steps, "epochs_completed": state["epoch"], "stopped": state["stopped"],
        "skipped_nonfinite_steps": guard.skipped, "trainable_params": trainable, "total_params": total,
        "peak_vram_gb": _peak_vram_gb(device), "train_time_s": round(time.monotonic() - started, 1),
        "train_time_all_calls_s": round(state["train_time_s"], 1), "time_budget_s": config.time_budget_s,
        "data_hash": prep.data_hash, "n_train": len(train_records), "n_validation": len(val_records),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    log.info("training done: %s", json.dumps(summary))
    reporter.close()
    return out
