"""Fine-tuning on `transformers.Trainer`, with what this project adds as small overrides and callbacks.

- Loss: summed float32 cross-entropy over the SQL tokens only, divided by the accumulated batch's
  SQL-token count (the Trainer's `num_items_in_batch`, across processes). The LM head runs only at
  those positions (`logits_to_keep`, computed by the collator on the CPU: no host sync).
- Batches: padded and grouped by length (default), or padding-free (one row of concatenated examples,
  `position_ids` restarting at each; the attention mask keeps each example to itself); bf16 autocast
  on CUDA. Host syncs: one read of loss and gradient norm per optimizer step (the guard), plus the one
  transformers does per forward to detect packed rows.
- Non-finite guard (`guard.NonFiniteGuard`): after clipping, one host read of the step's loss and
  gradient norm; a non-finite step drops the gradients (weights and optimizer state untouched), is
  logged to `nonfinite_steps.jsonl`, and training stops after N in a row.
- Validation: the eval loss, plus execution accuracy of the in-memory model through the harness
  (`validation.validate`, a run directory per validation under `<out>/validation/`). The Trainer's
  best-checkpoint tracking and early stopping use `eval_exec_acc`.
- Time budget (this call's time): a stop is checkpointed; running again resumes from the last
  Trainer checkpoint (`resume_from_checkpoint`).
- Outputs in `<out>`: the best weights (a PEFT adapter folder, or a full model folder), curves
  (json/csv/png), train_config.json (the reproducibility record), train_summary.json, data_stats.json.

Works under `accelerate launch` / `torchrun` (DDP; FSDP for full fine-tuning): validation by
generation runs on the main process and its accuracy is broadcast.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path

from t2s_bench import paths
from t2s_bench.training.builders import attention_kernels, build_model, count_parameters, is_adapter
from t2s_bench.training.config import HELD_OUT, TrainConfig
from t2s_bench.training.data import IGNORE_INDEX, PrepSettings, prepare_training_data
from t2s_bench.training.guard import NonFiniteGuard, NonFiniteTrainingError

log = logging.getLogger(__name__)

CURVE_FIELDS = ("step", "epoch", "train_loss", "val_loss", "val_exec_acc", "lr", "grad_norm", "skipped_steps")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
CHECKPOINTS = "checkpoints"
_RESUMABLE_STOP = "time budget"


# ---------------------------------------------------------------- batches


class SQLCollator:
    """Micro-batches for the SQL-only loss.

    Padding-free (default): `DataCollatorWithFlattening` concatenates the examples into one row with
    `position_ids` restarting at each example. Padded: right padding to the longest example.
    Both add `keep_positions` (positions whose next token is a SQL label: the only positions the LM
    head runs on) and `targets` (those next tokens), computed here on the CPU so the training step
    never waits on the GPU to learn how many there are.
    """

    def __init__(self, pad_id: int, padding_free: bool = True):
        from transformers import DataCollatorWithFlattening

        self.pad_id, self.padding_free = pad_id, padding_free
        self._flatten = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)

    def __call__(self, features: list[dict]) -> dict:
        import torch

        features = [{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features]
        if self.padding_free:
            batch = self._flatten(features, return_tensors="pt")
        else:
            width = max(len(f["input_ids"]) for f in features)
            ids, mask, labels = [], [], []
            for f in features:
                pad = width - len(f["input_ids"])
                ids.append(f["input_ids"] + [self.pad_id] * pad)
                mask.append([1] * len(f["input_ids"]) + [0] * pad)
                labels.append(f["labels"] + [IGNORE_INDEX] * pad)
            batch = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
                     "labels": torch.tensor(labels)}
        shifted = batch["labels"][:, 1:]
        keep = (shifted != IGNORE_INDEX).any(0).nonzero().squeeze(-1)  # CPU tensor: no device sync
        batch["keep_positions"] = keep
        batch["targets"] = shifted[:, keep]
        batch["n_tokens"] = sum(len(f["input_ids"]) for f in features)  # real tokens (throughput counting)
        return batch


def sql_loss_sum(model, batch: dict):
    """(summed float32 cross-entropy over the batch's SQL tokens, targets, model outputs): the LM head
    runs only at the positions the collator marked (`logits_to_keep`)."""
    import torch.nn.functional as F

    inputs = {k: v for k, v in batch.items() if k not in ("labels", "keep_positions", "targets", "n_tokens")}
    targets = batch["targets"]
    outputs = model(**inputs, logits_to_keep=batch["keep_positions"], use_cache=False)
    logits = outputs.logits.float()
    loss_sum = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX,
                               reduction="sum")
    return loss_sum, targets, outputs


# ---------------------------------------------------------------- the Trainer


def _trainer_class():
    """The Trainer subclass (built on first use: transformers loads only when training)."""
    import torch
    from transformers import Trainer

    class SQLTrainer(Trainer):
        def __init__(self, *args, guard: NonFiniteGuard, validator=None, loss_hook=None, out: Path, **kwargs):
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = True  # compute_loss divides by num_items_in_batch itself
            self.guard, self.validator, self.loss_hook, self.out = guard, validator, loss_hook, out
            self.stop_reason: str | None = None
            self._step_loss = None
            self._step_examples: list[int] = []

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:  # real tokens of this process (the collator counts them on the CPU)
                self.state.num_input_tokens_seen += int(inputs.get("n_tokens", 0))
            loss_sum, targets, outputs = sql_loss_sum(model, inputs)
            if num_items_in_batch is None:  # evaluation: the mean over this batch's SQL tokens
                loss = loss_sum / (targets != IGNORE_INDEX).sum().clamp(min=1)
            else:
                loss = loss_sum / num_items_in_batch
                if self.args.average_tokens_across_devices and self.args.world_size > 1:
                    loss = loss * self.args.world_size  # DDP averages gradients; the count is global
            if self.loss_hook is not None and model.training:
                loss = self.loss_hook(self.state.global_step, loss)
            return (loss, outputs) if return_outputs else loss

        def training_step(self, model, inputs, num_items_in_batch=None):
            with attention_kernels(self._sdpa_kernels, self.args.device):
                loss = super().training_step(model, inputs, num_items_in_batch)
            self._step_loss = loss if self._step_loss is None else self._step_loss + loss
            # a non-finite micro-batch loss would make the logged mean NaN: count it as 0 (the step is skipped)
            return torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss))

        _sdpa_kernels: tuple[str, ...] | None = None

        def _clip_grad_norm(self, model):
            norm = super()._clip_grad_norm(model)
            self._guard_step(model, norm)
            return norm

        def _guard_step(self, model, norm) -> None:
            """One host read per optimizer step: the step's loss and pre-clipping gradient norm."""
            step_loss = self._step_loss if self._step_loss is not None else torch.zeros(())
            self._step_loss = None
            loss, grad_norm = torch.stack([step_loss.detach().float().reshape(()).to(norm.device),
                                           torch.as_tensor(norm).float().reshape(())]).tolist()
            try:
                applied = self.guard.allow(loss, grad_norm, self.state.global_step + 1)
            except NonFiniteTrainingError as e:
                applied = False
                self.stop_reason = f"non-finite: {e}"
                self.control.should_training_stop = True
            if not applied:
                for p in model.parameters():  # no gradient: AdamW leaves the weight and its state alone
                    p.grad = None
                log.warning("step %d skipped: loss %s, grad norm %s (%d skipped so far)", self.state.global_step + 1,
                            loss, grad_norm, self.guard.skipped)
                if self.is_world_process_zero():
                    with open(self.out / "nonfinite_steps.jsonl", "a") as f:
                        f.write(json.dumps({"step": self.state.global_step + 1, "loss": str(loss),
                                            "grad_norm": str(grad_norm)}) + "\n")

        def log(self, logs, *args, **kwargs):
            if "loss" in logs:
                logs["skipped_steps"] = self.guard.skipped
            super().log(logs, *args, **kwargs)

        def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                            metric_key_prefix="eval"):
            output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys,
                                             metric_key_prefix)
            if self.validator is not None and metric_key_prefix == "eval":
                output.metrics[f"{metric_key_prefix}_exec_acc"] = self._validated_accuracy()
            return output

        def _validated_accuracy(self) -> float:
            """Generation + execution on the main process; every process gets the accuracy."""
            acc = None
            if self.is_world_process_zero():
                t0 = time.monotonic()
                acc = self.validator(self.accelerator.unwrap_model(self.model), self.state.global_step)
                log.info("step %d: validation execution accuracy %.4f (%.1fs)", self.state.global_step, acc,
                         time.monotonic() - t0)
            if self.args.world_size > 1:
                import torch.distributed as dist

                box = [acc]
                dist.broadcast_object_list(box, src=0)
                acc = box[0]
            return float(acc)

    return SQLTrainer


# ---------------------------------------------------------------- callbacks


def _callbacks():
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        """Stop (with a checkpoint) once this call has run `budget_s`; every process agrees."""

        def __init__(self, budget_s: float | None, started: float, trainer_ref: dict):
            self.budget_s, self.started, self.ref = budget_s, started, trainer_ref

        def on_step_end(self, args, state, control, **kwargs):
            if not self.budget_s:
                return
            over = time.monotonic() - self.started > self.budget_s
            if args.world_size > 1:
                import torch
                import torch.distributed as dist

                flag = torch.tensor([1.0 if over else 0.0], device=args.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                over = bool(flag.item())
            if over:
                self.ref["trainer"].stop_reason = f"time budget of {self.budget_s:.0f}s reached"
                control.should_training_stop = True
                control.should_save = True

    class FinalEvaluation(TrainerCallback):
        """Validate and save at the last step unless the schedule does already (a multiple of the
        evaluation interval; with per-epoch evaluation the Trainer's epoch end always does)."""

        def __init__(self, every: int):
            self.every = every

        def on_step_end(self, args, state, control, **kwargs):
            if self.every and state.global_step >= state.max_steps and state.global_step % self.every:
                control.should_evaluate = True
                control.should_save = True

    class Curves(TrainerCallback):
        """curves.json / .csv / .png from the Trainer's log history, rewritten at each log (`write(out, history)`;
        default: the SFT curves)."""

        def __init__(self, out: Path, write=None):
            self.out = out
            self.write = write or (lambda out, history: write_curves(out, curve_rows(history)))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero:
                self.write(self.out, state.log_history)

    return TimeBudget, FinalEvaluation, Curves


def curve_rows(history: list[dict]) -> list[dict]:
    """The Trainer's log history as curve rows (one per training log and per evaluation)."""
    rows = []
    for h in history:
        if "loss" in h:
            rows.append({"step": h.get("step"), "epoch": h.get("epoch"), "train_loss": h["loss"],
                         "lr": h.get("learning_rate"), "grad_norm": h.get("grad_norm"),
                         "skipped_steps": h.get("skipped_steps")})
        elif "eval_loss" in h or "eval_exec_acc" in h:
            rows.append({"step": h.get("step"), "epoch": h.get("epoch"), "val_loss": h.get("eval_loss"),
                         "val_exec_acc": h.get("eval_exec_acc")})
    return rows


def write_curves(out: Path, rows: list[dict], fields=None, plot=None) -> None:
    """curves.json, curves.csv (columns `fields`, default the SFT curve) and curves.png (`plot`)."""
    import csv

    fields = fields or CURVE_FIELDS
    (out / "curves.json").write_text(json.dumps(rows, indent=1))
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in fields})
    try:
        (plot or plot_curves)(rows, out / "curves.png")
    except Exception as e:  # a plot is a convenience; never lose a run over it
        log.warning("could not plot curves: %s", e)


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, style in (("train_loss", "-"), ("val_loss", "o-")):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            ax1.plot(*zip(*pts), style, label=key.replace("_", " "), markersize=3)
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel("loss per SQL token")
    ax1.legend()
    pts = [(r["step"], r["val_exec_acc"]) for r in rows if r.get("val_exec_acc") is not None]
    if pts:
        ax2.plot(*zip(*pts), "o-", color="tab:green")
    ax2.set_xlabel("optimizer step")
    ax2.set_ylabel("validation execution accuracy")
    ax2.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def package_versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("t2s-bench", "torch", "transformers", "peft", "accelerate", "datasets", "bitsandbytes", "gguf",
                "sqlglot", "trl"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


# ---------------------------------------------------------------- data


def training_split(config: TrainConfig):
    """(train dataset, validation dataset, train db ids, validation db ids) for `config`."""
    from t2s_bench.datasets import load_dataset
    from t2s_bench.training.augment import augmented
    from t2s_bench.training.data import held_out_databases

    train_ds = load_dataset(config.train)
    train_dbs, val_dbs = config.train_db_ids, config.val_db_ids
    if config.val == HELD_OUT:
        if val_dbs is None:
            val_dbs = held_out_databases(train_ds, config.val_fraction, config.seed)
        if train_dbs is None:
            train_dbs = sorted({e.db_id for e in train_ds.examples} - set(val_dbs))
        val_ds = train_ds.filter(db_ids=val_dbs)
    else:
        val_ds = load_dataset(config.val)
    if config.val_limit is not None:
        val_ds = val_ds.filter(db_ids=val_dbs, limit=config.val_limit)
    stats = {}
    if config.augment:
        forbidden = set(val_dbs) if val_dbs else {e.db_id for e in val_ds.examples}
        if paths.spider_dir() is not None and (paths.spider_dir() / "dev.json").is_file():
            from t2s_bench.datasets import load_dataset as _load

            forbidden |= {e.db_id for e in _load("spider-dev").examples}  # never a dev database
        train_ds, stats = augmented(train_ds, tuple(config.augment),
                                    db_ids=set(train_dbs) if train_dbs is not None else None,
                                    forbidden_db_ids=forbidden)
    return train_ds, val_ds, train_dbs, val_dbs, stats


# ---------------------------------------------------------------- train


def _process_state(config: TrainConfig):
    """(accelerate's process state, this process's device). On the CPU the state must be told so, or
    two torchrun processes do not form a (gloo) group."""
    import torch
    from accelerate import PartialState

    cpu = (config.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cpu")
    state = PartialState(cpu=cpu)
    return state, torch.device(config.device) if config.device and not state.use_distributed else state.device


def _checkpoint_state(out: Path, data_hash: str, builder: str, resume: bool) -> str | None:
    """The checkpoint to resume from, after checking it was made from the same data and builder."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / CHECKPOINTS
    marker = out / "run_state.json"
    if not resume or not folder.is_dir():
        return None
    last = get_last_checkpoint(str(folder))
    if last is None:
        return None
    state = json.loads(marker.read_text()) if marker.is_file() else {}
    if state.get("data_hash") not in (None, data_hash):
        raise ValueError(f"{folder}: checkpoints were trained on other data ({state.get('data_hash')} != {data_hash}); "
                         "use another --out or pass --no-resume")
    if state.get("builder") not in (None, builder):
        raise ValueError(f"{folder}: checkpoints were trained with builder {state.get('builder')!r}, not {builder!r}; "
                         "use another --out or pass --no-resume")
    return last


def _tracker_locations(out: Path) -> None:
    """Where the Trainer's tracker integrations write, unless the environment says otherwise."""
    import os

    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(out / "tensorboard"))
    # a local SQLite store (MLflow 3 keeps the ./mlruns file store only behind MLFLOW_ALLOW_FILE_STORE)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{(out / 'mlflow.db').resolve()}")
    os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "t2s-bench")
    os.environ.setdefault("WANDB_DIR", str(out))
    os.environ.setdefault("WANDB_PROJECT", "t2s-bench")


def training_arguments(config: TrainConfig, out: Path, device, total_steps: int | None, *, resuming: bool = False):
    from transformers import TrainingArguments

    cuda = device.type == "cuda"
    eval_steps = config.eval_every or None
    strategy = "steps" if config.eval_every else "epoch"
    report = [] if config.report_to in (None, "", "none") else [config.report_to]
    if report:
        _tracker_locations(out)
    kwargs = {}
    if config.fsdp:
        kwargs["fsdp"] = config.fsdp
    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS),
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr, weight_decay=config.weight_decay,
        lr_scheduler_type="cosine", warmup_steps=math.ceil(config.warmup_ratio * (total_steps or 0)),
        max_grad_norm=config.max_grad_norm, num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        bf16=cuda, use_cpu=not cuda, seed=config.seed, data_seed=config.seed,
        logging_steps=config.log_every, logging_nan_inf_filter=False,  # the filter reads the loss every step
        eval_strategy=strategy, eval_steps=eval_steps, save_strategy=strategy, save_steps=eval_steps,
        eval_on_start=config.eval_at_start and not resuming, save_total_limit=config.save_total_limit,
        load_best_model_at_end=True, metric_for_best_model="eval_exec_acc", greater_is_better=True,
        train_sampling_strategy=("random" if config.padding_free else "group_by_length") if config.shuffle
        else "sequential",
        remove_unused_columns=False, label_names=["labels"], prediction_loss_only=True,
        dataloader_num_workers=config.dataloader_workers if cuda else 0, dataloader_pin_memory=cuda,
        report_to=report, run_name=out.name,
        gradient_checkpointing=False,  # the builders enable it themselves (PEFT needs input grads)
        ddp_find_unused_parameters=False, restore_callback_states_from_checkpoint=True,
        torch_compile=config.torch_compile,
        **kwargs,
    )


def base_and_data(config: TrainConfig, state, cache: Path):
    """One process de-quantizes a GGUF base and prepares the data (the others then read both): the tokenizer,
    the train and validation datasets, the augmentation stats and the prepared artefact. Shared with GRPO."""
    from t2s_bench.training.models import load_tokenizer, materialized_base

    with state.main_process_first():
        config.base = materialized_base(config.base, config.gguf_file, cache / "base_hf")
        tokenizer = load_tokenizer(config.base, None if Path(config.base).is_dir() else config.gguf_file)
        train_ds, val_ds, train_dbs, val_dbs, aug_stats = training_split(config)
        prep = prepare_training_data(
            train_ds, val_ds, tokenizer,
            PrepSettings(config.template, config.max_length, tuple(config.schema_formats),
                         PrepSettings.options_tuple(config.schema_options)),
            cache_root=config.data_cache or cache / "training_data", val_size=config.val_size, seed=config.seed,
            train_db_ids=train_dbs, val_db_ids=val_dbs,
        )
    if Path(config.base).is_dir():
        config.gguf_file = None
    return tokenizer, train_ds, val_ds, aug_stats, prep


def run_record(config: TrainConfig, prep, device, world: int, *, n_train: int, n_validation: int) -> dict:
    """The reproducibility record written as train_config.json (GRPO adds its own keys to it)."""
    import torch

    from t2s_bench.prompting import load_template
    from t2s_bench.training.models import base_fingerprint

    template = load_template(config.template)
    return {
        "config": asdict(config),
        "seed": config.seed,
        "data": {"hash": prep.data_hash, "path": str(prep.path), "n_train": n_train, "n_validation": n_validation,
                 "train_db_ids": prep.meta["train_db_ids"], "validation_db_ids": prep.meta["validation_db_ids"]},
        "template": {"version": template.version, "sha256": template.sha256},
        "base_model": base_fingerprint(config.base, config.gguf_file),
        "packages": package_versions(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "processes": world,
        "global_batch": config.batch_size * world * config.grad_accum,
    }


def make_validator(config: TrainConfig, tokenizer, val_ds, prep, out: Path, identity: dict):
    """validator(model, step) -> validation EX: the in-memory model answers the held-out questions as the
    `finetuned` system through the runner (one run directory per validation under out/validation/)."""
    from t2s_bench.training.validation import system_options, validate

    val_questions = val_ds.filter(indices=list(prep.validation["index"]))
    options = system_options(config.template, config.schema_formats[0], config.schema_options, config.max_new_tokens)

    def validator(m, step: int) -> float:
        acc, _ = validate(m, tokenizer, val_questions, out / "validation" / f"step-{step:06d}", base_path=config.base,
                          identity={"model": config.base, "trained_weights": f"{out} (in memory)", "step": step,
                                    **identity},
                          options=options, gen_batch_size=config.gen_batch_size, workers=config.exec_workers,
                          timeout=config.exec_timeout)
        return acc

    return validator


def train(config: TrainConfig, *, loss_hook=None, callbacks=()) -> Path:
    """Fine-tune, validate by execution, keep the best weights; returns the output folder.

    `loss_hook(step, loss) -> loss` lets tests inject faults; `callbacks` are extra TrainerCallbacks
    (the benchmark's timer). A run stopped by its time budget resumes when called again (`resume`)."""
    import torch
    from transformers import EarlyStoppingCallback


    started = time.monotonic()
    config.validate()
    state, device = _process_state(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = paths.cache_dir()
    tokenizer, train_ds, val_ds, aug_stats, prep = base_and_data(config, state, cache)
    resume_from = _checkpoint_state(out, prep.data_hash, config.builder, config.resume)
    main = state.is_main_process
    finished = _finished(out) if resume_from else None
    if finished:  # the Trainer would take one more step when resumed at its last one
        log.info("%s: this run already finished (%s); pass --no-resume to train again", out, finished)
        return out
    if main:
        if resume_from is None:
            (out / "nonfinite_steps.jsonl").unlink(missing_ok=True)  # a fresh run: no stale diagnosis
        (out / "data_stats.json").write_text(json.dumps({**prep.meta["stats"], "augment": aug_stats}, indent=1))
        (out / "run_state.json").write_text(json.dumps({"data_hash": prep.data_hash, "builder": config.builder}))
    torch.manual_seed(config.seed)
    model = build_model(config, device)
    trainable, total = count_parameters(model)
    log.info("trainable parameters: %s of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / total)

    columns = ["input_ids", "labels", "index"]
    train_set = prep.train.remove_columns([c for c in prep.train.column_names if c not in columns])
    if not config.padding_free and config.shuffle:
        train_set = train_set.add_column("length", [len(x) for x in train_set["input_ids"]])
    eval_set = prep.validation.remove_columns([c for c in prep.validation.column_names if c not in columns])
    world = state.num_processes
    steps_per_epoch = math.ceil(len(train_set) / (config.batch_size * world * config.grad_accum))
    total_steps = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))

    run_info = run_record(config, prep, device, world, n_train=len(train_set), n_validation=len(eval_set))
    if main:
        (out / "train_config.json").write_text(json.dumps(run_info, indent=1, default=str))
    validator = make_validator(config, tokenizer, val_ds, prep, out, {"builder": config.builder})

    guard = NonFiniteGuard(config.max_consecutive_nonfinite)
    if resume_from is not None and main and (out / "nonfinite_steps.jsonl").is_file():
        guard.skipped = len((out / "nonfinite_steps.jsonl").read_text().splitlines())
    TimeBudget, FinalEvaluation, Curves = _callbacks()
    ref: dict = {}
    trainer = _trainer_class()(
        model=model, args=training_arguments(config, out, device, total_steps, resuming=resume_from is not None), train_dataset=train_set,
        eval_dataset=eval_set, data_collator=SQLCollator(prep.meta["pad_token_id"], config.padding_free),
        processing_class=None if is_adapter(model) else tokenizer,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience),
                   TimeBudget(config.time_budget_s, started, ref), FinalEvaluation(config.eval_every), Curves(out),
                   *callbacks],
        guard=guard, validator=validator, loss_hook=loss_hook, out=out,
    )
    trainer._sdpa_kernels = config.sdpa_kernels
    ref["trainer"] = trainer
    if resume_from:
        log.info("resuming from %s", resume_from)
    trainer.train(resume_from_checkpoint=resume_from)
    stopped = trainer.stop_reason or _early_stop_reason(trainer, config) or "completed"
    checksums = _rank_checksums(trainer.model, world) if not config.fsdp else None
    tokens_seen = sum(_gathered(trainer.state.num_input_tokens_seen, world))

    if main:
        trainer.save_model(str(out))  # the best weights (load_best_model_at_end): <out> is an adapter folder
        (out / "training_args.bin").unlink(missing_ok=True)
        history = trainer.state.log_history
        write_curves(out, curve_rows(history))
        summary = {
            "best_val_exec_acc": trainer.state.best_metric, "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_step": _step_of(trainer.state.best_model_checkpoint), "steps": trainer.state.global_step,
            "total_steps_planned": trainer.state.max_steps, "epochs": trainer.state.epoch, "stopped": stopped,
            "skipped_nonfinite_steps": guard.skipped, "trainable_params": trainable, "total_params": total,
            "peak_vram_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
            "train_time_s": round(time.monotonic() - started, 1), "time_budget_s": config.time_budget_s,
            "tokens_seen": tokens_seen, "processes": world,
            "rank_weight_checksums": checksums,  # one per process: equal when the replicas agree
            "data_hash": prep.data_hash, "n_train": len(train_set), "n_validation": len(eval_set),
        }
        (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
        (out / "run_state.json").write_text(json.dumps({"data_hash": prep.data_hash, "builder": config.builder,
                                                        "stopped": stopped}))
        log.info("training done: %s", json.dumps(summary))
    state.wait_for_everyone()
    if stopped.startswith("non-finite"):
        raise NonFiniteTrainingError(stopped)
    return out


def _rank_checksums(model, world: int) -> list[float]:
    """A float64 sum over the trainable weights, from every process (DDP replicas must agree)."""
    return _gathered(float(sum(p.detach().double().abs().sum() for p in model.parameters() if p.requires_grad)), world)


def _gathered(value, world: int) -> list:
    """`value` from every process, in rank order."""
    if world == 1:
        return [value]
    import torch.distributed as dist

    out: list = [None] * world
    dist.all_gather_object(out, value)
    return out


def _finished(out: Path) -> str | None:
    """How the run in `out` ended, when it ended for good (not stopped by its time budget)."""
    marker = out / "run_state.json"
    stopped = json.loads(marker.read_text()).get("stopped") if marker.is_file() else None
    return stopped if stopped and not stopped.startswith(_RESUMABLE_STOP) else None


def _step_of(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    try:
        return int(Path(checkpoint).name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def _early_stop_reason(trainer, config: TrainConfig) -> str | None:
    state = trainer.state
    if state.global_step < state.max_steps and not trainer.stop_reason:
        return f"early stop: no better val exec acc in {config.patience} evaluations"
    return None
