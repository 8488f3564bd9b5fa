"""The public Python API: evaluate / load_run / score / report, option checking, registries,
default run directories, the run lock and packed (committed) runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import t2s_bench as t
from t2s_bench.records import Prediction
from t2s_bench.registry import OptionError, Registry, RegistryError
from t2s_bench.rundir import RunDir, RunLockedError


class HalfRight:
    """Answers every other question with the gold SQL, the rest with a wrong one."""

    name = "half-right"

    def predict(self, tasks):
        return [Prediction(x.example.index, x.example.db_id,
                           x.example.query if x.example.index % 2 else "SELECT 1") for x in tasks]

    def config(self):
        return {"system": "half-right"}


def test_evaluate_returns_metrics_and_records(tmp_path):
    r = t.evaluate("oracle", dataset="demo", limit=8, out=tmp_path / "oracle")
    assert r.metrics["levels"]["all"]["count"] == 8 and r.ex == 1.0 and r.em == 1.0
    head = r.records.head()
    assert len(r.records) == 8 and {"question", "gold", "pred", "exec_match", "hardness"} <= set(head.columns)
    assert "execution" in r.table()
    again = t.load_run(r.path)
    assert again.metrics == r.metrics and again.system == "oracle"


def test_compare_is_paired_and_significant(tmp_path):
    oracle = t.evaluate("oracle", dataset="demo", out=tmp_path / "a")
    half = t.evaluate(HalfRight(), dataset="demo", out=tmp_path / "b")
    c = half.compare(oracle)
    assert c["n"] == 48 and c["only_baseline"] == 24 and c["only_system"] == 0
    assert c["difference"] == pytest.approx(-0.5) and c["p_value"] < 0.001


def test_an_option_the_system_does_not_take_is_one_clear_error():
    with pytest.raises(OptionError, match=r"zero-shot does not take the option k; its options: .*template"):
        t.evaluate("zero-shot", dataset="demo", limit=1, model="/nowhere/model.gguf", k=3)
    with pytest.raises(OptionError, match="oracle"):
        t.evaluate("oracle", dataset="demo", limit=1, model="x")


def test_cli_unknown_option_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "t2s_bench.cli", "run", "--system", "zero-shot", "--k", "3",
                           "--limit", "1", "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not take the option k" in lines[0] and "Traceback" not in proc.stderr


def test_invalid_selection_is_refused(tmp_path):
    for bad in ({"limit": 0}, {"limit": -1}, {"sample": -5}):
        with pytest.raises(ValueError, match="positive whole number"):
            t.evaluate("oracle", dataset="demo", out=tmp_path / "r", **bad)


def test_sample_and_full_runs_get_different_default_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    full = t.evaluate("oracle", dataset="demo")
    sample = t.evaluate("oracle", dataset="demo", sample=5)
    limited = t.evaluate("oracle", dataset="demo", limit=5)
    assert len({full.path, sample.path, limited.path}) == 3
    assert len(sample.records) == 5 and len(full.records) == 48


def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "r"
    with RunDir(out).lock():
        with pytest.raises(RunLockedError, match="another process"):
            t.evaluate("oracle", dataset="demo", limit=2, out=out)
    assert t.evaluate("oracle", dataset="demo", limit=2, out=out).ex == 1.0  # free again


def test_a_packed_run_rescored_gives_its_metrics(tmp_path):
    r = t.evaluate(HalfRight(), dataset="demo", out=tmp_path / "r")
    before = r.metrics["levels"]
    RunDir(r.path).pack()
    assert not (r.path / "scores.jsonl").exists() and (r.path / "predictions.jsonl.gz").is_file()
    (r.path / "metrics.json").unlink()
    again = t.load_run(r.path)
    assert again.metrics["levels"] == before


def test_score_a_dict_of_predictions():
    demo = t.load_dataset("demo")
    preds = {ex.index: ex.query for ex in demo.examples[:4]}
    s = t.score(preds, dataset=demo)
    assert s.metrics["levels"]["all"]["n_exec_correct"] == 4
    assert s.metrics["levels"]["all"]["count"] == 48  # the others count as missing predictions


def test_registry_refuses_duplicates_and_names_known_entries():
    reg: Registry = Registry("widget")
    reg.register("a", "json:dumps")
    assert reg.get("a") is json.dumps
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a", "json:loads")
    reg.register("a", "json:loads", replace=True)
    with pytest.raises(RegistryError, match="unknown widget 'b'; known: a"):
        reg.get("b")


PLUGIN = textwrap.dedent('''
    from t2s_bench.backends.base import Backend, Generation

    class EchoBackend(Backend):
        """Answers every request with a fixed SQL string."""
        context_window = 4096

        def __init__(self, model="echo", *, answer="SELECT 1"):
            self.model, self.answer = model, answer

        def generate(self, requests):
            return [Generation(self.answer, 10, 3, 0.0, "stop") for _ in requests]

        def count_tokens(self, messages):
            return sum(len(m["content"].split()) for m in messages)

        def config(self):
            return {"backend": "echo", "answer": self.answer}
''')


def test_a_backend_registered_by_entry_point_is_selectable_from_the_cli(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "echo_plugin.py").write_text(PLUGIN)
    dist = site / "echo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[t2s_bench.backends]\necho = echo_plugin:EchoBackend\n")
    env = {**os.environ, "PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "t2s_bench.cli", "run", "--system", "zero-shot", "--backend", "echo", "--model", "m",
         "-B", "answer=SELECT count(*) FROM students", "--db", "school", "--limit", "3", "--out", str(out),
         "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["system"]["backend"] == {"backend": "echo", "answer": "SELECT count(*) FROM students"}
    preds = RunDir(out).read_predictions()
    assert len(preds) == 3 and all(p["sql"] == "SELECT count(*) FROM students" for p in preds.values())
    # a wrong backend option names the backend's options
    bad = subprocess.run(
        [sys.executable, "-m", "t2s_bench.cli", "run", "--system", "zero-shot", "--backend", "echo", "--model", "m",
         "-B", "temperature=0.3", "--limit", "1", "--out", str(tmp_path / "bad")],
        capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "backend 'echo' options: answer" in bad.stderr


def test_unknown_config_file_key_is_an_error(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("system: oracle\nlimt: 3\n")
    proc = subprocess.run([sys.executable, "-m", "t2s_bench.cli", "run", "--config", str(cfg), "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown setting limt" in proc.stderr


def test_a_metric_added_here_appears_in_the_json_and_markdown_reports(tmp_path):
    from t2s_bench.scoring.metrics import METRICS, register_metric

    @register_metric("selects_count", label="CNT", description="prediction uses count()")
    def selects_count(record, schema):
        return "count(" in record["pred"].lower() if record["pred"] else None

    try:
        r = t.evaluate("oracle", dataset="demo", out=tmp_path / "r")
        level = r.metrics["levels"]["all"]
        assert level["n_selects_count_scored"] == 48 and 0 < level["selects_count"] < 1
        assert "selects_count" in r.records.columns and "CNT" in r.table()
        md = t.report([r], out=tmp_path / "rep.md").read_text()
        assert "Overall CNT" in md
        data = json.loads(t.report([r], out=tmp_path / "rep.json").read_text())
        assert {"name": "selects_count", "label": "CNT", "description": "prediction uses count()"} in data["metrics"]
        assert data["summary"][0]["cells"]["overall"]["selects_count"]["n"] == 48
        html = t.report([r], out=tmp_path / "rep.html").read_text()
        assert ">CNT</th>" in html
    finally:
        METRICS.unregister("selects_count")


def test_a_report_over_different_question_sets_compares_the_common_ones(tmp_path):
    full = t.evaluate(HalfRight(), dataset="demo", out=tmp_path / "full")
    part = t.evaluate("oracle", dataset="demo", limit=16, out=tmp_path / "part")
    md = t.report([full, part], out=tmp_path / "r.md").read_text()
    assert "The runs cover different questions (full: 48, part: 16)" in md
    assert "compares the 16 questions all of them scored" in md and "full 50.0% of 48" in md
    data = json.loads(t.report([full, part], out=tmp_path / "r.json").read_text())
    assert data["questions"]["n_common"] == 16 and len(data["questions"]["left_out"]["full"]) == 32
    assert all(row["cells"]["overall"]["exec"]["n"] == 16 for row in data["summary"])
    assert "Different question sets" in t.report([full, part], out=tmp_path / "r.html").read_text()


def test_rerunning_a_finished_run_reuses_its_scores(tmp_path):
    first = t.evaluate(HalfRight(), dataset="demo", limit=6, out=tmp_path / "r")
    lines = (first.path / "scores.jsonl").read_text().splitlines()
    marked = json.loads(lines[0])
    marked["error_reason"] = "kept from the first session"
    (first.path / "scores.jsonl").write_text("\n".join([json.dumps(marked), *lines[1:]]) + "\n")
    again = t.evaluate(HalfRight(), dataset="demo", limit=6, out=tmp_path / "r")
    assert again.records.iloc[0]["error_reason"] == "kept from the first session"  # not executed again
    assert again.metrics["levels"] == first.metrics["levels"]
