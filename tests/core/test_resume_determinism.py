"""Fault injection: a run killed with SIGKILL at three seeded random points, then resumed, gives the
predictions and metrics of an uninterrupted run (llama.cpp, batched decoding with a prefix cache);
a second concurrent run into the same directory is refused with a clear message."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from t2s_bench.rundir import RunDir


def _cli(model: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "t2s_bench", "run", "--system", "zero-shot", "--model", str(model),
            "--dataset", "demo", "--out", str(out), "--batch-size", "4", "--workers", "1", "--n-threads", "1",
            "--no-progress", *extra]


def _n_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_three_times(cmd: list[str], out: Path, n_total: int, seed: int, timeout: float, env=None) -> int:
    """Start `cmd`, SIGKILL it once `out` holds a seeded random number of predictions (plus a seeded
    random delay, so that kills land between and inside batch writes), three times. Returns the
    number of kills that landed before the run finished."""
    rng = random.Random(seed)
    targets = sorted(rng.sample(range(1, n_total - 1), 3))
    pred_file = out / "predictions.jsonl"
    landed = 0
    for target in targets:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and _n_lines(pred_file) < target:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += 1
        proc.wait()
    return landed


def _predictions(out: Path) -> dict[int, tuple]:
    return {i: (p["sql"], p["raw_output"], p["error"]) for i, p in RunDir(out).read_predictions().items()}


def _metrics(out: Path) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    return {k: v for k, v in m.items() if k != "throughput"}


def _check_resume_identical(cli, tmp_path: Path, n_total: int, *, timeout: float, env=None):
    """`cli(out)`: the run command writing to `out`."""
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run(cli(clean), env=env, check=True, capture_output=True, timeout=timeout)

    landed = _kill_three_times(cli(killed), killed, n_total, seed=11, timeout=timeout, env=env)
    assert landed >= 1, "no kill landed mid-run"
    # a batch cut short (a kill during its write): drop its last complete line as well
    pred_file = killed / "predictions.jsonl"
    lines = pred_file.read_text().splitlines(keepends=True)
    complete = [line for line in lines if line.endswith("\n")]
    assert len(complete) > 1
    pred_file.write_text("".join(complete[:-1]) + '{"index": 7, "sq')  # and a torn tail
    subprocess.run(cli(killed), env=env, check=True, capture_output=True, timeout=timeout)

    clean_preds, killed_preds = _predictions(clean), _predictions(killed)
    assert len(clean_preds) == n_total
    differing = {i: (clean_preds[i], killed_preds.get(i)) for i in clean_preds if clean_preds[i] != killed_preds.get(i)}
    assert not differing, differing
    lines = [json.loads(x) for x in pred_file.read_text().splitlines() if x.endswith("}")]
    assert len(lines) == len({r["index"] for r in lines}) == n_total  # nothing duplicated
    assert _metrics(killed) == _metrics(clean)
    assert sorted((killed / "scores.jsonl").read_text().splitlines()) == \
        sorted((clean / "scores.jsonl").read_text().splitlines())


BATCH_SENSITIVE_PLUGIN = """
import hashlib, time
from t2s_bench.systems.base import Prediction, register_system

class BatchSensitive:
    # like a batched decoder, its answers depend on which examples share a call
    name = "batch-sensitive"
    def predict(self, tasks):
        time.sleep(0.05 * len(tasks))
        key = hashlib.sha256(repr([t.example.index for t in tasks]).encode()).digest()
        out = []
        for k, t in enumerate(tasks):
            sql = t.example.query if key[k] % 3 else "SELECT 1"
            out.append(Prediction(t.example.index, t.example.db_id, sql, raw_output=f"{key.hex()[:8]} {sql}"))
        return out
    def config(self):
        return {"system": "batch-sensitive"}

@register_system("batch-sensitive")
def batch_sensitive(**_):
    return BatchSensitive()
"""


def test_sigkill_three_times_then_resume_equals_uninterrupted_batch_sensitive_system(tmp_path):
    """Always runs (about 15 s): a system whose answers depend on the batch composition, as llama.cpp's
    batched decoding does. A resumed run must send the same batches (a batch cut short by the kill
    is generated again whole), or its answers differ."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "batch_sensitive_plugin.py").write_text(BATCH_SENSITIVE_PLUGIN)
    env = {**os.environ, "T2S_PLUGINS": "batch_sensitive_plugin",
           "PYTHONPATH": f"{plugins}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "t2s_bench", "run", "--system", "batch-sensitive", "--dataset", "demo",
           "--batch-size", "5", "--workers", "1", "--no-progress"]
    _check_resume_identical(lambda out: [*cmd, "--out", str(out)], tmp_path, 48, env=env, timeout=120)


@pytest.mark.slow
def test_sigkill_three_times_then_resume_equals_uninterrupted_tiny_llama(tiny_model, tmp_path):
    """The tiny random GGUF through the llama.cpp paths (batched decoder, cached shared prefix)."""
    _check_resume_identical(
        lambda out: _cli(tiny_model.gguf_path, out, "--limit", "24", "--max-new-tokens", "24", "--n-ctx", "2048"),
        tmp_path, 24, timeout=300)


@pytest.mark.model
@pytest.mark.slow
def test_sigkill_three_times_then_resume_equals_uninterrupted_qwen(qwen_gguf, tmp_path):
    """The real Qwen2.5-Coder-0.5B Q4_K_M GGUF (where the difference was first seen)."""
    _check_resume_identical(lambda out: _cli(qwen_gguf, out, "--limit", "16", "--max-new-tokens", "96"),
                            tmp_path, 16, timeout=900)


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 8])
def test_llama_cpp_answers_do_not_depend_on_earlier_requests(qwen_gguf, parallel):
    """The same requests give bit-identical answers (text and token log-probabilities) in a fresh
    backend and after other requests; one at a time, also whatever else is in the call. Before the
    fix, a cached prefix shared only in part with the previous prompt changed the log-probabilities."""
    from t2s_bench.backends import GenerationRequest, get_backend
    from t2s_bench.datasets import load_dataset
    from t2s_bench.prompting import serialize_schema

    demo = load_dataset("demo")
    db = demo.examples[0].db_id
    schema = "Write one SQLite query answering the question.\n" + serialize_schema(demo.schema(db), "ddl")
    questions = [ex.question for ex in demo.examples if ex.db_id == db][:10]

    def requests(system, qs):
        return [GenerationRequest([{"role": "system", "content": system}, {"role": "user", "content": q}], max_tokens=40)
                for q in qs]

    def answers(*calls):
        backend = get_backend("llama-cpp", model=str(qwen_gguf), parallel=parallel, n_threads=2)
        try:
            for call in calls:
                out = backend.generate(call)
        finally:
            backend.close()
        return [(g.text, g.token_logprobs) for g in out]

    target = requests(schema, questions[:5])
    fresh = answers(target)
    assert answers(requests(schema, questions[5:]), target) == fresh  # same system turn before
    assert answers(requests("Answer in SQL.\n" + schema, questions[5:]), target) == fresh  # partly shared
    if parallel == 1:
        assert answers(target[2:]) == fresh[2:]


SLOW_PLUGIN = '''
import time
from t2s_bench.systems.base import Prediction, register_system

class Slow:
    name = "slow-oracle"
    def predict(self, tasks):
        time.sleep(0.3 * len(tasks))
        return [Prediction(t.example.index, t.example.db_id, t.example.query, raw_output=t.example.query)
                for t in tasks]
    def config(self):
        return {"system": "slow-oracle"}

@register_system("slow-oracle")
def slow(**_):
    return Slow()
'''


def test_a_second_concurrent_run_into_the_same_directory_is_refused(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "slow_resume_plugin.py").write_text(SLOW_PLUGIN)
    env = {**os.environ, "T2S_PLUGINS": "slow_resume_plugin",
           "PYTHONPATH": f"{plugins}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "t2s_bench", "run", "--system", "slow-oracle", "--dataset", "demo", "--limit", "8",
           "--out", str(out), "--batch-size", "2", "--workers", "1", "--no-progress"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and _n_lines(out / "predictions.jsonl") < 2:
        time.sleep(0.02)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert second.returncode != 0
    message = second.stderr + second.stdout
    assert "being written by another process" in message and "Traceback" not in message, message
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(x)["index"] for x in lines}) == 8
