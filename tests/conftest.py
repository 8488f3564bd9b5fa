"""Shared fixtures. Keep this small: one fixture per shared, expensive resource."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random-weight Qwen2 chat model: `.hf_dir` (HF folder) and `.gguf_path` (f32 GGUF)."""
    from t2s_bench.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def qwen_gguf():
    """Path of the real Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF, from local sources only; skips when absent."""
    from t2s_bench.backends.catalog import resolve_model_offline

    path = resolve_model_offline("qwen2.5-coder-0.5b-gguf")
    if path is None:
        pytest.skip("real Qwen2.5-Coder-0.5B GGUF not available locally (set T2S_MODEL_DIR or T2S_MODEL_WHEELS)")
    return path
