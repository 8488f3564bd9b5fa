"""What is trained: LoRA on a bf16 base, QLoRA on a 4-bit NF4 base, or every weight (full).

Each builder returns the model the Trainer optimises. Trainable weights are float32 in every case
(LoRA matrices, or the whole model for `full`); on CUDA the forward runs under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from t2s_bench.training.config import TrainConfig

log = logging.getLogger(__name__)

SDPA_KERNELS = {"efficient": "EFFICIENT_ATTENTION", "math": "MATH", "flash": "FLASH_ATTENTION",
                "cudnn": "CUDNN_ATTENTION"}


def attention_kernels(names, device):
    """A context restricting scaled-dot-product attention to `names` on CUDA (no-op elsewhere)."""
    if not names:
        return contextlib.nullcontext()
    unknown = [n for n in names if n not in SDPA_KERNELS]
    if unknown:
        raise ValueError(f"unknown SDPA kernel(s) {unknown}; choose from {sorted(SDPA_KERNELS)}")
    if getattr(device, "type", str(device)) != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([getattr(SDPBackend, SDPA_KERNELS[n]) for n in names])


def _lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_targets), bias="none", task_type="CAUSAL_LM")


def _float32_trainables(model) -> None:
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()  # trainable weights and their Adam state in float32


def build_lora(config: TrainConfig, device):
    import torch
    from peft import get_peft_model

    from t2s_bench.training.models import load_model

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = load_model(config.base, config.gguf_file, dtype=dtype,
                       attn_implementation=config.attn_implementation)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, _lora_config(config))
    _float32_trainables(model)
    return model


def build_qlora(config: TrainConfig, device):
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training

    from t2s_bench.training.models import load_model

    if device.type != "cuda":
        raise RuntimeError("builder 'qlora' needs a CUDA GPU (bitsandbytes 4-bit); use --builder lora on CPU")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as e:
        raise RuntimeError("builder 'qlora' needs bitsandbytes: pip install 't2s-bench[train]'") from e
    if config.gguf_file or config.base.endswith(".gguf"):
        raise ValueError("qlora quantizes plain HF weights: materialize the GGUF base first (train() does)")
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.bfloat16)
    model = load_model(config.base, None, dtype=torch.bfloat16, quantization_config=bnb,
                       device=device.index or 0, attn_implementation=config.attn_implementation)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    model = get_peft_model(model, _lora_config(config))
    _float32_trainables(model)
    return model


def build_full(config: TrainConfig, device):
    """Every weight trained, float32 master weights (bf16 autocast on CUDA): for the small models."""
    import torch

    from t2s_bench.training.models import load_model

    model = load_model(config.base, config.gguf_file, dtype=torch.float32,
                       attn_implementation=config.attn_implementation)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


BUILDERS = {"lora": build_lora, "qlora": build_qlora, "full": build_full}


def build_model(config: TrainConfig, device):
    """The model `config.builder` trains, with the KV cache off (training never uses it)."""
    model = BUILDERS[config.builder](config, device)
    (model.get_base_model() if hasattr(model, "get_base_model") else model).config.use_cache = False
    return model


def count_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def is_adapter(model) -> bool:
    return hasattr(model, "peft_config")


def save_weights(model, tokenizer, folder: Path) -> None:
    """An adapter folder (LoRA/QLoRA) or a full HF model folder with its tokenizer (full)."""
    model.save_pretrained(folder)
    if not is_adapter(model):
        tokenizer.save_pretrained(folder)
