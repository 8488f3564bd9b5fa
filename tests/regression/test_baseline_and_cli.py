"""Baseline files and the CI commands without pytest: `t2s-bench baseline save` and `t2s-bench compare`
(exit codes 0 / 1 / 2), on real runs over the demo data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import t2s_bench as t
from t2s_bench.cli import main
from t2s_bench.regression import RegressionFailure, assert_accuracy, assert_no_regression
from t2s_bench.regression.baseline import compare_verdicts, load_verdicts


@pytest.fixture(scope="module")
def six_lost(broken_oracle, tmp_path_factory):
    return t.evaluate(broken_oracle(wrong=[0, 1, 2, 3, 4, 5], how="syntax"), "demo",
                      out=tmp_path_factory.mktemp("runs") / "six-lost")


def test_a_baseline_file_is_small_deterministic_and_keeps_the_verdicts(oracle_run, six_lost, tmp_path, capsys):
    assert main(["baseline", "save", str(six_lost.path), "--out", str(tmp_path / "a.json")]) == 0
    assert "wrote " in capsys.readouterr().out
    assert main(["baseline", "save", str(six_lost.path), "--out", str(tmp_path / "b.json")]) == 0
    text = (tmp_path / "a.json").read_text()
    assert text == (tmp_path / "b.json").read_text()  # no timestamps: re-saving changes nothing in git
    assert len(text.encode()) < 2500 and text.count("\n") < 80  # 48 questions, one line each
    data = json.loads(text)
    assert data["dataset"] == "demo" and data["config_hash"] == six_lost.config["config_hash"]
    assert data["questions"]["0"][:3] == [0, 0, "syntax_error"] and data["questions"]["6"][:3] == [1, 1, None]
    from_file, from_run = load_verdicts(tmp_path / "a.json"), load_verdicts(six_lost.path)
    assert {i: (q.exec, q.exact, q.error_class, q.gold_sha) for i, q in from_file.questions.items()} == \
           {i: (q.exec, q.exact, q.error_class, q.gold_sha) for i, q in from_run.questions.items()}
    assert from_file.accuracy() == six_lost.ex == 42 / 48


def test_comparisons_refuse_another_dataset_or_changed_gold_sql(oracle_run, oracle_baseline, tmp_path):
    data = json.loads(oracle_baseline.read_text())
    data["questions"]["7"][3] = "00000000"
    (tmp_path / "changed.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"gold SQL of 1 questions \(#7\) differs .* the dataset changed"):
        assert_no_regression(oracle_run, tmp_path / "changed.json")
    data["dataset"] = "spider-dev"
    (tmp_path / "other.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="on dataset 'spider-dev', the run .* on 'demo'"):
        compare_verdicts(load_verdicts(oracle_run), load_verdicts(tmp_path / "other.json"))


def test_the_assertions_work_outside_pytest_on_run_directories(oracle_run, six_lost, tmp_path):
    comparison = assert_no_regression(oracle_run, six_lost.path)  # improving is no regression
    assert comparison.difference == pytest.approx(6 / 48) and len(comparison.improved) == 6
    with pytest.raises(RegressionFailure) as failure:
        assert_no_regression(six_lost, oracle_run.path, report_dir=tmp_path / "reports")
    message = str(failure.value)
    assert "McNemar exact p = 0.03125" in message and "error:    syntax_error" in message
    report = tmp_path / "reports" / "six-lost-vs-oracle.html"
    assert f"report: {report}" in message and report.stat().st_size > 10_000
    with pytest.raises(RegressionFailure, match=r"EX 87\.5% \(42/48\) < 90\.0%"):
        assert_accuracy(six_lost, min_ex=0.9)
    with pytest.raises(ValueError, match="unknown error class 'syntax'"):
        assert_accuracy(six_lost, max_error_rate={"syntax": 0.1})


def test_compare_exit_codes(oracle_run, oracle_baseline, six_lost, broken_oracle, tmp_path, capsys):
    two_lost = t.evaluate(broken_oracle(wrong=[10, 20]), "demo", out=tmp_path / "two-lost")
    base = str(oracle_baseline)
    # 0: no regression (the oracle against its own baseline)
    assert main(["compare", str(oracle_run.path), base, "--fail-on-regression"]) == 0
    assert "no regression (alpha 0.05)" in capsys.readouterr().out
    # 1: a significant regression, with the flipped questions printed
    assert main(["compare", str(six_lost.path), base, "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: significant drop: McNemar exact p = 0.03125 < alpha 0.05" in out
    assert "#5 [school]" in out and "now:      SELEC " in out and "baseline: SELECT" in out
    # 0: the same regression is only reported without --fail-on-regression
    assert main(["compare", str(six_lost.path), base]) == 0
    assert "REGRESSION" in capsys.readouterr().out
    # 2 lost: p = 0.5, noise at alpha 0.05 (exit 0); larger than --max-drop 0.02 (exit 1)
    assert main(["compare", str(two_lost.path), base, "--fail-on-regression"]) == 0
    assert main(["compare", str(two_lost.path), base, "--fail-on-regression", "--max-drop", "0.02"]) == 1
    assert "drop of 4.2 points > max_drop 2.0 points" in capsys.readouterr().out
    # 2: bad input
    assert main(["compare", str(six_lost.path), str(tmp_path / "missing.json"), "--fail-on-regression"]) == 2
    assert "baseline " in capsys.readouterr().err
    assert main(["compare", str(six_lost.path), base, "--alpha", "1.5"]) == 2


def test_compare_as_a_ci_step_in_a_subprocess(six_lost, oracle_baseline):
    proc = subprocess.run([sys.executable, "-m", "t2s_bench", "compare", str(six_lost.path), str(oracle_baseline),
                           "--fail-on-regression", "--alpha", "0.05"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "6 right→wrong, 0 wrong→right" in proc.stdout
