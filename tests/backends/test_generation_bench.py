"""benchmarks/bench_generation.py end to end on the CPU: the tiny model, a few demo questions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_generation.py"


@pytest.mark.slow
def test_bench_generation_runs_compares_and_records_failures(tmp_path, monkeypatch):
    from t2s_bench.backends import hf_generation

    def broken(*args, **kwargs):  # an injected failure: the benchmark records it and goes on
        raise RuntimeError("simulated compile error")

    monkeypatch.setattr(hf_generation, "generate_continuous", broken)
    spec = importlib.util.spec_from_file_location("bench_generation", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    rc = bench.main(["--model", "tiny", "--dataset", "demo", "--limit", "4", "--max-tokens", "6", "--samples", "2",
                     "--vote", "--strategies", "padded,continuous,static,vllm", "--no-compile", "--workers", "1", "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    padded, static = result["strategies"]["padded"], result["strategies"]["static"]
    assert padded["questions"] == 4 and padded["questions_per_s"] > 0 and "error" not in static
    assert static["vs_padded"] == {"texts_differing": 0, "sql_differing": 0, "verdicts_differing": 0,
                                   "gained": 0, "lost": 0}
    assert "simulated compile error" in result["strategies"]["continuous"]["error"]
    if importlib.util.find_spec("vllm") is None:  # recorded, and the sampling pass still ran
        assert "vllm" in result["strategies"]["vllm"]["error"]
    sampling = result["sampling"]
    assert sampling["strategy"] == "static" and sampling["answers"] == 8
    assert "execution_accuracy" in sampling["self_consistency"]
