"""Fine-tuning: data prep into a hashed HF `datasets` artefact, LoRA/QLoRA/full fine-tuning on
`transformers.Trainer` validated by execution through the harness, GGUF export."""

from t2s_bench.training.config import TrainConfig
from t2s_bench.training.data import PreparedData, PrepSettings, prepare_training_data
from t2s_bench.training.export import (
    export_adapter,
    export_gguf,
    export_lora_gguf,
    fine_tuning_kept,
    merge_adapter,
    quantize_gguf,
    verify_gguf,
)
from t2s_bench.training.guard import NonFiniteGuard, NonFiniteTrainingError, optimizer_step, sft_loss_sum
from t2s_bench.training.trainer import train

__all__ = [
    "PrepSettings", "PreparedData", "prepare_training_data", "export_adapter", "export_gguf", "export_lora_gguf",
    "fine_tuning_kept", "merge_adapter", "quantize_gguf", "verify_gguf", "NonFiniteGuard", "NonFiniteTrainingError",
    "optimizer_step", "sft_loss_sum",
    "TrainConfig", "train",
]
