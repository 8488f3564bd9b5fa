"""A tiny random-weight model for the example suite: a cheap "system that got worse" to show that
the guard catches it. Needs the `hf` extra (to build it) and the `gguf` extra (to run it)."""

import pytest


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    pytest.importorskip("transformers", reason="building the tiny model needs pip install 't2s-bench[hf]'")
    pytest.importorskip("llama_cpp", reason="running a GGUF needs pip install 't2s-bench[gguf]'")
    from t2s_bench.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model")).gguf_path
