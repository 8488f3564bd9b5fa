"""Test helpers shipped with the package: a tiny random-weight Qwen2 model (HF folder + GGUF)."""

from t2s_bench.testing.tiny_model import (
    TinyModel,
    build_tiny_model,
    compare_hf_and_gguf,
    write_qwen2_gguf,
)

__all__ = ["TinyModel", "build_tiny_model", "compare_hf_and_gguf", "write_qwen2_gguf"]
