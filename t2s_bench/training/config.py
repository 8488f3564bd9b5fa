"""The options of one training run (`t2s-bench train`, a YAML/TOML --config, or Python)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BUILDERS = ("lora", "qlora", "full")
REPORT_TO = ("mlflow", "tensorboard", "wandb")
AUGMENTATIONS = ("spider-syn",)
# the validation split carved from the training set by whole databases (data.held_out_databases)
HELD_OUT = "held-out"


def reject_unknown(cls, d: dict, what: str) -> None:
    """A clear error for keys of `d` that are not fields of the dataclass `cls`."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {what} option(s) {unknown}; known: {sorted(known)}")


@dataclass
class TrainConfig:
    base: str  # HF folder, hub id, catalog name, or a .gguf file (de-quantized once into the cache)
    out: str
    builder: str = "lora"  # lora | qlora (4-bit NF4 base, CUDA + bitsandbytes) | full (every weight)
    gguf_file: str | None = None
    train: str = "spider-train"
    # "held-out": whole databases of `train` (about 10% of its questions, schema-disjoint from the rest,
    # as Spider dev is from train), so Spider dev is used once, for the reported number
    val: str = HELD_OUT
    val_limit: int | None = None  # `spider-dev[:N]`: first N validation questions
    val_size: int | None = 200  # seeded sample of validation used for the periodic evaluations
    val_fraction: float = 0.1  # share of the training questions held out when val == "held-out"
    train_db_ids: list[str] | None = None
    val_db_ids: list[str] | None = None
    augment: tuple[str, ...] = ()  # "spider-syn": Spider-Syn train paraphrases of the training questions
    template: str = "v1.0"
    schema_formats: tuple[str, ...] = ("ddl", "compact")
    # the prompt's schema options, as the systems take them (prompting.SchemaOptions fields: schema=pruned,
    # values=True, sample_rows=3, ...); {} = the full schema, as every earlier run
    schema_options: dict = field(default_factory=dict)
    max_length: int = 1024
    epochs: float = 1.0
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    lr: float = 2e-4
    warmup_ratio: float = 0.03
    batch_size: int = 16  # examples per device per micro-batch
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    gradient_checkpointing: bool = False
    # padding-free batches: a micro-batch is one row of concatenated examples with position_ids restarting
    # at each (DataCollatorWithFlattening); attention stays inside each example. Off by default: with SDPA
    # the mask over the packed row is dense (quadratic in the row's length), and on the CPU padded,
    # length-grouped batches measured 7x faster (benchmarks/bench_training.py); with flex_attention the
    # mask is block-sparse: measure on the GPU (variants packed / packed-flex) before switching
    padding_free: bool = False
    attn_implementation: str = "sdpa"  # sdpa | flex_attention | eager
    torch_compile: bool = False  # the Trainer's torch.compile of the model (measure: benchmarks/bench_training.py)
    shuffle: bool = True  # False: examples in file order (the multi-process agreement test)
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
    report_to: str | None = None  # mlflow | tensorboard | wandb (the Trainer's integrations)
    save_total_limit: int = 2  # checkpoints kept besides the best
    fsdp: str | None = None  # e.g. "full_shard auto_wrap" for full fine-tuning over several GPUs
    data_cache: str | None = None  # default: <cache>/training_data
    dataloader_workers: int = 2

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        reject_unknown(cls, d, "training")
        d = dict(d)
        for key in ("schema_formats", "lora_targets", "sdpa_kernels", "augment"):
            if key in d and d[key] is not None:
                d[key] = (d[key],) if isinstance(d[key], str) else tuple(d[key])
        return cls(**d)

    def validate(self) -> None:
        if self.builder not in BUILDERS:
            raise ValueError(f"builder must be one of {', '.join(BUILDERS)}, got {self.builder!r}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("batch_size and grad_accum must be >= 1")
        if self.report_to not in (None, "", "none", *REPORT_TO):
            raise ValueError(f"report_to must be one of {', '.join(REPORT_TO)}, got {self.report_to!r}")
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; choose from {AUGMENTATIONS}")
        if self.max_grad_norm <= 0:  # the non-finite guard reads the norm that clipping computes
            raise ValueError("max_grad_norm must be > 0")
        if self.attn_implementation not in ("sdpa", "flex_attention", "eager"):
            raise ValueError(f"attn_implementation must be sdpa, flex_attention or eager, got {self.attn_implementation!r}")
