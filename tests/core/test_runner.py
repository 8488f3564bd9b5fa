"""The harness: run directory contents, resume after kill -9, filters, missing databases."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from t2s_bench.datasets import load_dataset
from t2s_bench.runner import RunConfig, load_predictions, run

SLOW_PLUGIN = textwrap.dedent('''
    import time
    from t2s_bench.systems.base import Prediction, register_system

    class Slow:
        name = "slow-oracle"
        def predict(self, tasks):
            out = []
            for t in tasks:
                time.sleep(0.15)
                sql = t.example.query if t.example.index % 3 else "SELECT 1"  # some wrong answers
                out.append(Prediction(t.example.index, t.example.db_id, sql, raw_output=sql))
            return out
        def config(self):
            return {"system": "slow-oracle"}

    @register_system("slow-oracle")
    def slow(**_):
        return Slow()
''')


def test_oracle_run_scores_everything_correct(tmp_path):
    out = run(RunConfig(system="oracle", dataset="demo", out=str(tmp_path / "r"), progress=False))
    metrics = json.loads((out / "metrics.json").read_text())
    n = len(load_dataset("demo"))
    assert metrics["all"]["count"] == n if "all" in metrics else True
    records = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert len(records) == n
    assert all(r["exec_match"] for r in records), [r for r in records if not r["exec_match"]][:2]
    assert all(r["exact_match"] for r in records)
    config = json.loads((out / "config.json").read_text())
    assert config["config_hash"] and config["environment"]["packages"]["sqlglot"]


def test_filters_and_config_mismatch(tmp_path):
    demo = load_dataset("demo")
    db = demo.examples[0].db_id
    out = run(RunConfig(system="oracle", dataset="demo", db_ids=[db], limit=5, out=str(tmp_path / "r"), progress=False))
    preds = load_predictions(out / "predictions.jsonl")
    assert len(preds) == 5 and {p["db_id"] for p in preds.values()} == {db}
    # the same directory with another system configuration is refused, not overwritten
    with pytest.raises(ValueError, match="another configuration"):
        run(RunConfig(system="zero-shot", dataset="demo", out=str(tmp_path / "r"), progress=False,
                      system_options={"model": "/nonexistent.gguf"}), system=_Other())


class _Other:
    name = "other"

    def predict(self, tasks):
        return []

    def config(self):
        return {"system": "other"}


def test_hardness_filter(tmp_path):
    out = run(RunConfig(system="oracle", dataset="demo", hardness=["easy"], out=str(tmp_path / "r"), progress=False))
    records = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert records and {r["hardness"] for r in records} == {"easy"}


def _cli(out, env):
    return [sys.executable, "-m", "t2s_bench", "run", "--system", "slow-oracle", "--dataset", "demo",
            "--out", str(out), "--batch-size", "2", "--no-progress"]


def test_resume_after_kill_minus_9_loses_and_duplicates_nothing(tmp_path):
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "slow_plugin.py").write_text(SLOW_PLUGIN)
    env = {**os.environ, "T2S_PLUGINS": "slow_plugin",
           "PYTHONPATH": f"{plugin_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    killed, clean = tmp_path / "killed", tmp_path / "clean"

    proc = subprocess.Popen(_cli(killed, env), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    pred_file = killed / "predictions.jsonl"
    while time.time() < deadline:
        if pred_file.is_file() and len(pred_file.read_text().splitlines()) >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(load_predictions(pred_file))
    assert 10 <= n_before < len(load_dataset("demo")), "the kill must land mid-run"
    # simulate a torn write as well
    with open(pred_file, "a") as f:
        f.write('{"index": 99999, "sq')

    subprocess.run(_cli(killed, env), env=env, check=True, capture_output=True)
    subprocess.run(_cli(clean, env), env=env, check=True, capture_output=True)

    lines = [json.loads(line) for line in pred_file.read_text().splitlines() if line.startswith("{") and line.endswith("}")]
    indices = [rec["index"] for rec in lines]
    assert len(indices) == len(set(indices)) == len(load_dataset("demo"))
    m_killed = json.loads((killed / "metrics.json").read_text())
    m_clean = json.loads((clean / "metrics.json").read_text())
    strip = lambda m: {k: v for k, v in m.items() if k != "throughput"}  # noqa: E731
    assert strip(m_killed) == strip(m_clean)
    s_killed = sorted((killed / "scores.jsonl").read_text().splitlines())
    s_clean = sorted((clean / "scores.jsonl").read_text().splitlines())
    assert s_killed == s_clean
