"""Reinforcement learning with an execution reward: GRPO (TRL's `GRPOTrainer`) as a stage after SFT.

- Policy: an SFT LoRA adapter continued (`init_adapter`), or a fresh LoRA on the base (the `lora` builder).
  With beta > 0 TRL keeps a frozen copy of the starting adapter as the KL reference.
- Prompts: exactly the SFT prompts. The adapter's train_config.json supplies the template, schema formats and
  schema options (`grpo_defaults`); the prompt text is rendered by the SFT data code over the same prepared
  split (Spider train minus the held-out validation databases; never dev), and its tokens are checked
  against the SFT prompt tokens.
- Reward (`ExecutionReward`): the SQL the project's extraction finds in a completion, executed read-only
  with a timeout and memory bound in the worker pool (all completions of a step in parallel), compared with
  the gold result by the scorer's own preprocessing and `exec_match`: 1.0 same result, 0.1 executes but
  differs, 0.0 error / timeout / no SQL. Gold results are cached (in memory and the on-disk gold cache).
- Everything else is the SFT trainer's: validation by generation and execution through the runner on the
  held-out databases (best checkpoint by `eval_exec_acc`, early stopping), the non-finite guard, the time
  budget with resume, curves (reward mean/std, KL, validation EX), train_config.json / train_summary.json
  (with `method: grpo` and the GRPO settings).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from t2s_bench import paths
from t2s_bench.training.config import HELD_OUT, TrainConfig, reject_unknown

log = logging.getLogger(__name__)

METHOD = "grpo"
CURVE_FIELDS = ("step", "epoch", "reward", "reward_std", "kl", "loss", "exec_correct", "exec_executes",
                "completion_length", "lr", "grad_norm", "skipped_steps", "val_exec_acc")
# TrainConfig fields the SFT adapter's record decides: the prompt (so GRPO sees the SFT prompts), the base and
# the data split (so the held-out validation databases stay out of training)
_PROMPT_FIELDS = ("template", "schema_formats", "schema_options", "max_length")
_INHERITED_FIELDS = ("base", "gguf_file", "train", *_PROMPT_FIELDS, "seed")
_SPLIT_FIELDS = ("val", "val_limit", "val_fraction", "val_size", "train_db_ids", "val_db_ids")
# GRPO's defaults where they differ from SFT's: a small learning rate, 8 prompts x 8 completions per step
GRPO_TRAIN_DEFAULTS = {"lr": 1e-5, "batch_size": 16, "grad_accum": 4, "eval_every": 50, "warmup_ratio": 0.0,
                       "log_every": 5}


@dataclass
class GRPOSettings:
    init_adapter: str | None = None  # SFT adapter folder to continue; None: a fresh LoRA on the base
    num_generations: int = 8  # completions sampled per prompt (the group the advantage is relative to)
    beta: float = 0.04  # KL weight against the starting policy
    temperature: float = 1.0
    top_p: float = 1.0
    epsilon: float = 0.2  # clipping of the probability ratio
    num_iterations: int = 1  # optimisation passes over each generated batch
    # micro-batches generated in one call (TRL's steps_per_generation; None: grad_accum, one optimiser step).
    # A decoding step costs about the same for 64 rows as for 512, so generating several optimiser steps'
    # completions at once divides the generation time; the later steps are then slightly off-policy, which
    # GRPO's clipped ratio (computed against the generating policy's log-probabilities) accounts for
    steps_per_generation: int | None = None
    loss_type: str = "dapo"  # TRL's default (token-level normalisation over the accumulated batch)
    scale_rewards: str = "group"  # group | batch | none
    reward_correct: float = 1.0
    reward_executes: float = 0.1  # executable SQL whose result differs from the gold
    reward_timeout: float = 5.0  # seconds per completion's query
    reward_workers: int | None = None  # processes executing completions (default: every core)

    @classmethod
    def from_dict(cls, d: dict) -> GRPOSettings:
        reject_unknown(cls, d, "GRPO")
        return cls(**d)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


# ---------------------------------------------------------------- the reward


class ExecutionReward:
    """TRL reward function: completion SQL executed and compared with the gold as the scorer does.

    Called as `reward(prompts=..., completions=[str], gold=[str], db_path=[str], **kwargs) -> [float]`
    (TRL passes the dataset's columns by name). Identical (database, SQL) pairs within a call execute once."""

    __name__ = "execution"  # the name TRL logs the reward under (rewards/execution/mean)

    def __init__(self, *, timeout: float = 5.0, gold_timeout: float = 30.0, workers: int | None = None,
                 correct: float = 1.0, executes: float = 0.1, gold_cache=True, max_rows: int = 100_000):
        self.timeout, self.gold_timeout, self.workers = timeout, gold_timeout, workers
        self.correct, self.executes, self.max_rows = correct, executes, max_rows
        self._gold_cache_arg = gold_cache
        self._disk_cache = None
        self._gold: dict[tuple[str, str], object] = {}  # (db path, prepared gold SQL) -> ExecResult
        self.gold_executions = 0  # gold queries executed or read from disk (not from memory)
        self.calls = 0

    def _disk(self):
        if self._disk_cache is None and self._gold_cache_arg:
            from t2s_bench.execution import GoldCache

            self._disk_cache = self._gold_cache_arg if isinstance(self._gold_cache_arg, GoldCache) else GoldCache()
        return self._disk_cache

    def gold_results(self, pairs: list[tuple[str, str]]) -> list:
        """ExecResults of prepared gold queries, each executed once per process lifetime."""
        from t2s_bench.execution import execute_many

        missing = list(dict.fromkeys(p for p in pairs if p not in self._gold))
        if missing:
            disk = self._disk()
            if disk is not None:
                results = disk.execute_cached(missing, workers=self.workers, timeout=self.gold_timeout,
                                              max_rows=self.max_rows)
            else:
                results = execute_many(missing, workers=self.workers, timeout=self.gold_timeout, max_rows=self.max_rows)
            self.gold_executions += len(missing)
            for pair, result in zip(missing, results):
                if not result.timed_out:  # a timeout may be the machine's fault: try again next time
                    self._gold[pair] = result
            return [self._gold.get(p) or results[missing.index(p)] for p in pairs]
        return [self._gold[p] for p in pairs]

    def score(self, completions: list[str], golds: list[str], db_paths: list[str]) -> list[float]:
        from t2s_bench.execution import execute_many
        from t2s_bench.scoring.exec_match import exec_match
        from t2s_bench.scoring.score import DEFAULT_OPTIONS, prepare_for_execution
        from t2s_bench.sql.parse import has_order_by
        from t2s_bench.systems.extract import extract_sql

        keep_distinct = DEFAULT_OPTIONS.keep_distinct
        gold_pairs = [(str(db), prepare_for_execution(g, keep_distinct)) for db, g in zip(db_paths, golds)]
        golds_done = self.gold_results(gold_pairs)
        preds = []
        for (db, _), text in zip(gold_pairs, completions):
            sql = extract_sql(text if isinstance(text, str) else _message_text(text))
            preds.append((db, prepare_for_execution(sql, keep_distinct)) if sql else None)
        jobs = list(dict.fromkeys(p for p in preds if p is not None))
        results = dict(zip(jobs, execute_many(jobs, workers=self.workers, timeout=self.timeout,
                                              max_rows=self.max_rows))) if jobs else {}
        rewards = []
        for (_, gold_sql), gold_res, pred in zip(gold_pairs, golds_done, preds):
            res = results.get(pred) if pred is not None else None
            if res is None or not res.ok or res.truncated:
                rewards.append(0.0)  # no SQL, an error, a timeout, or a result over the row cap (the scorer's errors)
            elif gold_res is not None and gold_res.ok and exec_match(gold_res, res, order_matters=has_order_by(gold_sql),
                                                                     options=DEFAULT_OPTIONS):
                rewards.append(self.correct)
            else:
                rewards.append(self.executes)
        self.calls += 1
        return rewards

    def __call__(self, prompts=None, completions=None, gold=None, db_path=None, log_metric=None, **kwargs):
        rewards = self.score(list(completions or []), list(gold or []), list(db_path or []))
        if log_metric is not None and rewards:
            n = len(rewards)
            log_metric("execution/correct", sum(r == self.correct for r in rewards) / n)
            log_metric("execution/executes", sum(r != 0.0 for r in rewards) / n)
        return rewards

    def close(self) -> None:
        if self._disk_cache is not None and self._gold_cache_arg is True:
            self._disk_cache.close()
        self._disk_cache = None


def _message_text(completion) -> str:
    """A conversational completion ([{"role": "assistant", "content": ...}]) as text."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion or "")


# ---------------------------------------------------------------- settings from the SFT adapter


def adapter_record(adapter: str | Path) -> dict:
    """The SFT adapter's train_config.json ({} when absent: a bare PEFT folder)."""
    path = Path(adapter) / "train_config.json"
    if not Path(adapter).is_dir():
        raise FileNotFoundError(f"--init-adapter {adapter}: no such folder")
    return json.loads(path.read_text()) if path.is_file() else {}


def grpo_defaults(init_adapter: str | None) -> dict:
    """TrainConfig values GRPO starts from: GRPO's own defaults, then what the SFT adapter was trained with
    (base, data split, prompt settings), so flags and config files override only what they name."""
    values = dict(GRPO_TRAIN_DEFAULTS)
    if not init_adapter:
        return values
    record = adapter_record(init_adapter)
    trained = record.get("config", {})
    if not trained:  # a bare adapter: the base from adapter_config.json
        cfg = Path(init_adapter) / "adapter_config.json"
        base = json.loads(cfg.read_text()).get("base_model_name_or_path") if cfg.is_file() else None
        return {**values, **({"base": base} if base else {})}
    values.update({k: trained[k] for k in _INHERITED_FIELDS if trained.get(k) is not None})
    if "dev" not in str(trained.get("val", HELD_OUT)).lower():  # the SFT validation split, never a dev one
        values.update({k: trained[k] for k in _SPLIT_FIELDS if trained.get(k) is not None})
        val_dbs = record.get("data", {}).get("validation_db_ids")
        if val_dbs and trained.get("val", HELD_OUT) == HELD_OUT:  # the held-out databases the SFT run drew
            values["val_db_ids"] = list(val_dbs)
    return values


def check_prompt_settings(config: TrainConfig, init_adapter: str | None) -> None:
    """GRPO trains on the prompts the adapter was trained on: refuse other prompt settings."""
    trained = adapter_record(init_adapter).get("config", {}) if init_adapter else {}
    for key in _PROMPT_FIELDS:
        if key not in trained:
            continue
        mine, theirs = getattr(config, key), trained[key]
        if isinstance(mine, tuple):
            mine, theirs = list(mine), list(theirs)
        if mine != theirs:
            raise ValueError(f"GRPO prompts must be the SFT prompts: {key}={mine!r}, but {init_adapter} was trained "
                             f"with {theirs!r} (leave the option out to inherit it)")
    if "dev" in config.train.lower():
        raise ValueError(f"GRPO prompts come from a training split, not {config.train!r} (dev is for the reported number)")


# ---------------------------------------------------------------- prompts


def grpo_prompts(prep, train_ds, tokenizer, config: TrainConfig):
    """An HF dataset of the SFT prompts as text (`prompt`), with `gold`, `db_path`, `index`, `db_id`: one row per
    prepared training example (same split, same schema format as SFT chose for it)."""
    from datasets import Dataset as HFDataset

    from t2s_bench.prompting import load_template
    from t2s_bench.training.data import PrepSettings, render_prompt_text, schema_text

    settings = PrepSettings(config.template, config.max_length, tuple(config.schema_formats),
                            PrepSettings.options_tuple(config.schema_options))
    template = load_template(config.template)
    by_index = {e.index: e for e in train_ds.examples}
    rows = []
    for rec in prep.train.select_columns(["index", "schema_format", "input_ids", "n_prompt"]):
        ex = by_index[rec["index"]]
        db_path = train_ds.db_path(ex.db_id)
        text = render_prompt_text(tokenizer, template,
                                  schema_text(train_ds.schema(ex.db_id), ex.question, rec["schema_format"], settings,
                                              db_path), ex.question)
        if not rows:  # TRL tokenizes the text as given: it must give the SFT prompt's tokens
            ids = tokenizer(text)["input_ids"]
            if ids != list(rec["input_ids"][: rec["n_prompt"]]):
                raise RuntimeError("the GRPO prompt does not tokenize to the SFT prompt (special tokens added?)")
        rows.append({"prompt": text, "gold": ex.query, "db_path": str(db_path), "index": ex.index, "db_id": ex.db_id})
    return HFDataset.from_list(rows)


# ---------------------------------------------------------------- the policy


def policy_model(config: TrainConfig, settings: GRPOSettings, device):
    """The trainable policy: the SFT adapter continued, or a fresh LoRA from the `lora` builder."""
    import torch

    from t2s_bench.training.builders import _float32_trainables, build_model

    if config.builder != "lora":
        raise ValueError(f"GRPO trains a LoRA adapter (builder 'lora'), not {config.builder!r}")
    if settings.init_adapter is None:
        return build_model(config, device)
    from peft import PeftModel

    from t2s_bench.training.models import load_model

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    base = load_model(config.base, config.gguf_file, dtype=dtype, attn_implementation=config.attn_implementation)
    base.config.use_cache = False
    if config.gradient_checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()
    model = PeftModel.from_pretrained(base, settings.init_adapter, is_trainable=True)
    _float32_trainables(model)
    return model


# ---------------------------------------------------------------- the trainer


def _grpo_trainer_class():
    """GRPOTrainer with the SFT trainer's guard, validation and time budget (built on first use: trl loads
    only when training)."""
    import torch
    from trl import GRPOTrainer

    from t2s_bench.training.builders import attention_kernels
    from t2s_bench.training.trainer import _trainer_class

    sft = _trainer_class()

    class SQLGRPOTrainer(GRPOTrainer):
        # the SFT trainer's one-read-per-step non-finite guard and main-process validation, shared as they are
        _guard_step = sft._guard_step
        _validated_accuracy = sft._validated_accuracy

        def __init__(self, *args, guard, validator, out: Path, sdpa_kernels=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.guard, self.validator, self.out, self._sdpa_kernels = guard, validator, out, sdpa_kernels
            self.stop_reason: str | None = None
            self._step_loss = None

        def training_step(self, model, inputs, num_items_in_batch=None):
            with attention_kernels(self._sdpa_kernels, self.args.device):
                loss = super().training_step(model, inputs, num_items_in_batch)
            self._step_loss = loss if self._step_loss is None else self._step_loss + loss
            return torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss))

        def _clip_grad_norm(self, model):
            norm = super()._clip_grad_norm(model)
            self._guard_step(model, norm)
            return norm

        def log(self, logs, start_time=None):
            if "loss" in logs:
                logs["skipped_steps"] = self.guard.skipped
            super().log(logs, start_time)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            """Validation EX by generation and execution through the runner (not TRL's sampled eval reward)."""
            metrics = {f"{metric_key_prefix}_exec_acc": self._validated_accuracy()}
            was_training = self.model.training
            self.model.eval()  # TRL's log() files metrics by the model's mode: keep the training metrics apart
            try:
                self.log(dict(metrics))
            finally:
                self.model.train(was_training)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return SQLGRPOTrainer


def curve_rows(history: list[dict]) -> list[dict]:
    """GRPO's log history as curve rows: one per training log (reward, KL, ...) and per validation."""
    rows = []
    for h in history:
        if "reward" in h:
            rows.append({"step": h.get("step"), "epoch": h.get("epoch"), "reward": h["reward"],
                         "reward_std": h.get("reward_std"), "kl": h.get("kl"), "loss": h.get("loss"),
                         "exec_correct": h.get("execution/correct"), "exec_executes": h.get("execution/executes"),
                         "completion_length": h.get("completions/mean_length"), "lr": h.get("learning_rate"),
                         "grad_norm": h.get("grad_norm"), "skipped_steps": h.get("skipped_steps")})
        elif h.get("eval_exec_acc") is not None:
            rows.append({"step": h.get("step"), "epoch": h.get("epoch"), "val_exec_acc": h["eval_exec_acc"]})
    return rows


def write_curves(out: Path, rows: list[dict]) -> None:
    from t2s_bench.training.trainer import write_curves as write_curve_files

    write_curve_files(out, rows, CURVE_FIELDS, plot_curves)


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    pts = [(r["step"], r["reward"], r.get("reward_std") or 0.0) for r in rows if r.get("reward") is not None]
    if pts:
        steps, mean, std = zip(*pts)
        axes[0].plot(steps, mean, "-", label="reward mean")
        axes[0].fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2,
                             label="± std")
        axes[0].legend()
    axes[0].set_ylabel("execution reward")
    pts_kl = [(r["step"], r["kl"]) for r in rows if r.get("kl") is not None]
    if pts_kl:
        axes[1].plot(*zip(*pts_kl), "-", color="tab:red")
    axes[1].set_ylabel("KL to the starting policy")
    pts_val = [(r["step"], r["val_exec_acc"]) for r in rows if r.get("val_exec_acc") is not None]
    if pts_val:
        axes[2].plot(*zip(*pts_val), "o-", color="tab:green")
    axes[2].set_ylabel("validation execution accuracy")
    axes[2].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("optimizer step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grpo_arguments(config: TrainConfig, settings: GRPOSettings, out: Path, device, total_steps: int, *,
                   resuming: bool):
    from trl import GRPOConfig

    from t2s_bench.training.trainer import CHECKPOINTS, _tracker_locations

    cuda = device.type == "cuda"
    strategy = "steps" if config.eval_every else "epoch"
    report = [] if config.report_to in (None, "", "none") else [config.report_to]
    if report:
        _tracker_locations(out)
    return GRPOConfig(
        output_dir=str(out / CHECKPOINTS),
        per_device_train_batch_size=config.batch_size,  # completions (not prompts) per micro-batch
        gradient_accumulation_steps=config.grad_accum, per_device_eval_batch_size=settings.num_generations,
        learning_rate=config.lr, weight_decay=config.weight_decay, lr_scheduler_type="cosine",
        warmup_steps=math.ceil(config.warmup_ratio * total_steps), max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        bf16=cuda, use_cpu=not cuda, seed=config.seed, data_seed=config.seed,
        logging_steps=config.log_every, logging_nan_inf_filter=False,
        eval_strategy=strategy, eval_steps=config.eval_every or None, save_strategy=strategy,
        save_steps=config.eval_every or None, eval_on_start=config.eval_at_start and not resuming,
        save_total_limit=config.save_total_limit, load_best_model_at_end=True, metric_for_best_model="eval_exec_acc",
        greater_is_better=True, report_to=report, run_name=out.name, remove_unused_columns=False,
        gradient_checkpointing=False,  # policy_model enables it itself (PEFT needs input grads)
        ddp_find_unused_parameters=False, restore_callback_states_from_checkpoint=True,
        dataloader_num_workers=0, shuffle_dataset=config.shuffle,
        # GRPO
        num_generations=settings.num_generations, max_completion_length=config.max_new_tokens,
        temperature=settings.temperature, top_p=settings.top_p, beta=settings.beta, epsilon=settings.epsilon,
        num_iterations=settings.num_iterations, loss_type=settings.loss_type, scale_rewards=settings.scale_rewards,
        steps_per_generation=settings.steps_per_generation,
        generation_kwargs={"use_cache": True},  # the policy's config has the cache off for training
        log_completions=False,
    )


def _run_hash(data_hash: str, settings: GRPOSettings, config: TrainConfig) -> str:
    """What a checkpoint must have been trained with to be resumed: data, GRPO settings, starting adapter."""
    key = {k: v for k, v in asdict(settings).items() if k != "reward_workers"}
    key.update(data=data_hash, lr=config.lr, batch=(config.batch_size, config.grad_accum))
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _adapter_fingerprint(adapter: str | None) -> dict | None:
    if adapter is None:
        return None
    from t2s_bench.files import file_sha256

    weights = Path(adapter) / "adapter_model.safetensors"
    return {"path": str(adapter), "sha256": file_sha256(weights) if weights.is_file() else None,
            "train_summary": _json_or_none(Path(adapter) / "train_summary.json")}


def _json_or_none(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def train_grpo(config: TrainConfig, settings: GRPOSettings, *, callbacks=()) -> Path:
    """GRPO with the execution reward, validated by execution like SFT; returns the adapter folder `config.out`.

    A run stopped by its time budget resumes when called again (`config.resume`)."""

    import torch
    from transformers import EarlyStoppingCallback

    from t2s_bench.training.guard import NonFiniteGuard, NonFiniteTrainingError
    from t2s_bench.training.trainer import (
        _callbacks,
        _checkpoint_state,
        _early_stop_reason,
        _finished,
        _process_state,
        _step_of,
        base_and_data,
        make_validator,
        run_record,
    )

    started = time.monotonic()
    config.validate()
    check_prompt_settings(config, settings.init_adapter)
    state, device = _process_state(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = paths.cache_dir()
    tokenizer, train_ds, val_ds, aug_stats, prep = base_and_data(config, state, cache)
    prompts = grpo_prompts(prep, train_ds, tokenizer, config)
    run_hash = _run_hash(prep.data_hash, settings, config)
    resume_from = _checkpoint_state(out, run_hash, METHOD, config.resume)
    finished = _finished(out) if resume_from else None
    if finished:
        log.info("%s: this run already finished (%s); pass --no-resume to train again", out, finished)
        return out
    main = state.is_main_process
    if main:
        if resume_from is None:
            (out / "nonfinite_steps.jsonl").unlink(missing_ok=True)
        (out / "data_stats.json").write_text(json.dumps({**prep.meta["stats"], "augment": aug_stats}, indent=1))
        (out / "run_state.json").write_text(json.dumps({"data_hash": run_hash, "builder": METHOD}))

    torch.manual_seed(config.seed)
    model = policy_model(config, settings, device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    world = state.num_processes
    completions_per_step = config.batch_size * world * config.grad_accum
    if completions_per_step % settings.num_generations:
        raise ValueError(f"batch_size x grad_accum x processes ({completions_per_step}) completions per step must be "
                         f"a multiple of num_generations ({settings.num_generations})")
    prompts_per_step = completions_per_step // settings.num_generations
    total_steps = config.max_steps or max(1, math.ceil(len(prompts) / prompts_per_step * config.epochs))

    run_info = {"method": METHOD, **run_record(config, prep, device, world, n_train=len(prompts),
                                                n_validation=len(prep.validation)),
                "grpo": asdict(settings), "init_adapter": _adapter_fingerprint(settings.init_adapter),
                "prompts_per_step": prompts_per_step}
    run_info["data"]["run_hash"] = run_hash
    if main:
        (out / "train_config.json").write_text(json.dumps(run_info, indent=1, default=str))
    validator = make_validator(config, tokenizer, val_ds, prep, out, {"builder": METHOD,
                                                                     "init_adapter": settings.init_adapter})

    reward = ExecutionReward(timeout=settings.reward_timeout, gold_timeout=config.exec_timeout,
                             workers=settings.reward_workers, correct=settings.reward_correct,
                             executes=settings.reward_executes)
    guard = NonFiniteGuard(config.max_consecutive_nonfinite)
    if resume_from is not None and main and (out / "nonfinite_steps.jsonl").is_file():
        guard.skipped = len((out / "nonfinite_steps.jsonl").read_text().splitlines())
    TimeBudget, FinalEvaluation, Curves = _callbacks()
    ref: dict = {}
    tokenizer.padding_side = "left"  # TRL generates from left-padded prompts
    trainer = _grpo_trainer_class()(
        model=model, reward_funcs=[reward],
        args=grpo_arguments(config, settings, out, device, total_steps, resuming=resume_from is not None),
        train_dataset=prompts, eval_dataset=prompts.select(range(min(len(prompts), settings.num_generations))),
        processing_class=tokenizer,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience),
                   TimeBudget(config.time_budget_s, started, ref), FinalEvaluation(config.eval_every),
                   Curves(out, lambda out, history: write_curves(out, curve_rows(history))), *callbacks],
        guard=guard, validator=validator, out=out, sdpa_kernels=config.sdpa_kernels,
    )
    ref["trainer"] = trainer
    if resume_from:
        log.info("resuming from %s", resume_from)
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        reward.close()
    stopped = trainer.stop_reason or _early_stop_reason(trainer, config) or "completed"

    if main:
        policy = trainer.accelerator.unwrap_model(trainer.model)
        # the best weights (load_best_model_at_end), the trained adapter only (TRL's frozen "ref" copy stays out)
        policy.save_pretrained(str(out), selected_adapters=["default"])
        history = trainer.state.log_history
        write_curves(out, curve_rows(history))
        rewards = [h for h in history if "reward" in h]
        evals = [h["eval_exec_acc"] for h in history if h.get("eval_exec_acc") is not None]
        summary = {
            "method": METHOD,
            "best_val_exec_acc": trainer.state.best_metric, "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_step": _step_of(trainer.state.best_model_checkpoint),
            "start_val_exec_acc": evals[0] if evals and config.eval_at_start else None,
            "steps": trainer.state.global_step, "total_steps_planned": trainer.state.max_steps,
            "epochs": trainer.state.epoch, "stopped": stopped, "skipped_nonfinite_steps": guard.skipped,
            "trainable_params": trainable, "total_params": total,
            "peak_vram_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
            "train_time_s": round(time.monotonic() - started, 1), "time_budget_s": config.time_budget_s,
            "first_reward": rewards[0]["reward"] if rewards else None,
            "last_reward": rewards[-1]["reward"] if rewards else None,
            "reward_logs": len(rewards), "reward_calls": reward.calls, "gold_executions": reward.gold_executions,
            "num_generations": settings.num_generations, "prompts_per_step": prompts_per_step,
            "processes": world, "data_hash": prep.data_hash, "run_hash": run_hash, "n_train": len(prompts),
            "n_validation": len(prep.validation), "init_adapter": settings.init_adapter,
        }
        (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
        (out / "run_state.json").write_text(json.dumps({"data_hash": run_hash, "builder": METHOD, "stopped": stopped}))
        log.info("GRPO done: %s", json.dumps(summary))
    state.wait_for_everyone()
    if stopped.startswith("non-finite"):
        raise NonFiniteTrainingError(stopped)
    return out
