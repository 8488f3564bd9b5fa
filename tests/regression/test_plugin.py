"""The pytest plugin, exercised through pytest's own pytester: real sessions over the demo data with
the oracle, a deliberately worse plugin system (broken_oracle.py) and the tiny random-weight model."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from importlib.metadata import distributions

import pytest

pytest_plugins = ["pytester"]

HARD_TEN = [8, 9, 10, 11, 24, 25, 26, 27, 40, 41]  # 10 of the 12 hard demo questions


def test_the_plugin_is_registered_through_the_pytest11_entry_point():
    # as pluggy reads them: every distribution (a stale t2s_bench.egg-info in the working directory
    # shadows the installed metadata for importlib.metadata.entry_points(), not for pytest)
    found = {ep.name: ep.value for dist in distributions() for ep in dist.entry_points if ep.group == "pytest11"}
    assert found.get("t2s_bench") == "t2s_bench.regression.plugin", (
        "t2s-bench's pytest11 entry point is missing: reinstall the package (pip install -e .)")


def test_a_passing_suite(suite, oracle_baseline):
    suite.makefile(".t2s.yaml", bench=f"""
defaults: {{dataset: demo}}
cases:
  - name: oracle
    system: oracle
    min_ex: 1.0
    min_em: 1.0
    by_hardness: {{extra: 1.0, hard: {{ex: 1.0, em: 1.0}}}}
    max_error_rate: {{syntax_error: 0.0, skipped: 0.0}}
    p95_s: 1.0
    baseline: {oracle_baseline}
""")
    suite.makepyfile(test_sql="""
def test_two_wrong_answers_stay_within_bounds(t2s):
    run = t2s.evaluate("broken-oracle", "demo", wrong=[1, 2], how="no_rows")
    t2s.assert_accuracy(run, min_ex=0.95, max_error_rate={"syntax_error": 0.0})
    t2s.assert_latency(run, p95_s=5.0)
    assert run.records.loc[[1, 2], "exec_match"].tolist() == [False, False]
""")
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*t2s: 2 runs (0 reused), 96 new predictions*"])


def test_a_threshold_miss_fails_with_a_useful_message(suite):
    suite.makefile(".t2s.yaml", bench=f"""
cases:
  - name: broken
    system: broken-oracle
    options: {{wrong: {HARD_TEN}, how: syntax}}
    min_ex: 0.9
    min_em: 0.5
    by_hardness: {{hard: 0.4}}
    max_error_rate: {{syntax_error: 0.05}}
""")
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*bench.t2s.yaml::broken: demo-broken-oracle-*: 3 accuracy thresholds missed",
        "*EX 79.2% (38/48) < 90.0%",
        "*hard EX 16.7% (2/12) < 40.0%",
        "*syntax_error rate 20.8% (10/48) > 5.0%: questions #8, #9, #10, #11, #24, #25, #26, #27, #40, #41",
        "*run: */runs/demo-broken-oracle-* (EX 79.2%, EM *",
    ])
    assert "EM " not in result.stdout.str().split("thresholds missed")[1].split("hard EX")[0]  # EM met its bound


def test_a_significant_regression_fails_listing_the_flipped_questions(suite, oracle_baseline):
    """6 of 48 right answers lost, none gained: McNemar exact p = 2 / 2**6 = 0.031 < 0.05."""
    suite.makefile(".t2s.yaml", bench=f"""
cases:
  - name: six-lost
    system: broken-oracle
    options: {{wrong: [0, 1, 2, 3, 4, 5], how: no_rows}}
    baseline: {oracle_baseline}
""")
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*six-lost: demo-broken-oracle-*: EX regressed against the baseline *oracle.json "
        "(significant drop: McNemar exact p = 0.03125 < alpha 0.05)",
        "*EX 100.0% → 87.5% (−12.5 points, 95% CI *) on 48 paired questions; McNemar exact p = 0.03125; "
        "6 right→wrong, 0 wrong→right",
        "*#0 ?school? How many students are there?",
        "*gold:     SELECT *",
        "*baseline: SELECT *",  # the baseline file was saved --with-sql
        "*now:      SELECT * FROM (SELECT *) WHERE 0",
        "*error:    wrong_projection (gold selects COUNT(*), pred *)",
        "*report: */regression-report.html",
    ])
    report = re.search(r"report: (\S+regression-report\.html)", result.stdout.str()).group(1)
    assert "six-lost" not in report and open(report).read().startswith("<!")


def test_a_non_significant_difference_passes_unless_it_exceeds_max_drop(suite, oracle_baseline):
    """5 lost: p = 2 / 2**5 = 0.0625, not significant at 0.05 (a 10.4-point drop on 48 questions can be noise);
    the same run with max_drop 0.05 fails."""
    suite.makefile(".t2s.yaml", bench=f"""
defaults:
  system: broken-oracle
  options: {{wrong: [0, 1, 2, 3, 4], how: no_rows}}
  baseline: {oracle_baseline}
cases:
  - name: five-lost
  - name: five-lost-bounded
    max_drop: 0.05
""")
    result = suite.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*five-lost-bounded: *EX regressed against the baseline * (drop of 10.4 points > max_drop 5.0 points)",
        "*McNemar exact p = 0.0625; 5 right→wrong*",
        "*t2s: 2 runs (1 reused), 48 new predictions*",  # the second case reused the first one's run
        "PASSED bench.t2s.yaml::five-lost",
    ])


def test_a_benchmark_file_with_two_cases_gives_two_test_items(suite):
    suite.makefile(".t2s.yaml", bench="""
cases:
  - system: oracle
  - name: broken
    system: broken-oracle
    options: {wrong: [3]}
""")
    suite.makefile(".t2s.toml", more="""
[defaults]
dataset = "demo"
sample = 6

[[cases]]
system = "oracle"
min_ex = 1.0

[[cases]]
system = "oracle"
hardness = ["easy"]
""")
    result = suite.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["bench.t2s.yaml::oracle", "bench.t2s.yaml::broken", "more.t2s.toml::oracle",
                                 "more.t2s.toml::oracle-2", "4 tests collected*"])
    result = suite.runpytest("-p", "no:cacheprovider", "-m", "t2s", "-k", "toml")
    result.assert_outcomes(passed=2)


def test_a_bad_benchmark_file_is_a_collection_error_naming_the_key(suite):
    suite.makefile(".t2s.yaml", bench="cases:\n  - system: oracle\n    min_exx: 0.5\n")
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bench.t2s.yaml: case 1: unknown key min_exx; known keys: *"])


def test_a_missing_model_or_gpu_skips_with_its_reason(suite):
    from t2s_bench.backends.catalog import resolve_model_offline

    if resolve_model_offline("qwen2.5-coder-1.5b-gguf") is not None:
        pytest.skip("the 1.5B model is cached here: it cannot stand for an absent model")
    suite.makefile(".t2s.yaml", bench="""
cases:
  - name: no-file
    system: zero-shot
    options: {model: /nonexistent/model.gguf}
    min_ex: 0.5
  - name: on-gpu
    system: oracle
    requires: gpu
""")
    suite.makepyfile(test_sql="""
def test_uncached_catalog_model(t2s):
    t2s.evaluate("zero-shot", "demo", sample=4, model="qwen2.5-coder-1.5b-gguf")
    raise AssertionError("not reached")
""")
    try:  # imported here first: pytester's in-process run would drop torch, which cannot be imported twice
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    result = suite.runpytest("-p", "no:cacheprovider", "-rs")
    expected = ["*model file /nonexistent/model.gguf not found",
                "*model qwen2.5-coder-1.5b-gguf is not available locally (`t2s-bench models fetch *"]
    if not gpu:
        expected.append("*needs a GPU: *")
    result.assert_outcomes(skipped=len(expected), passed=3 - len(expected))
    for line in expected:  # skip reasons are listed by location, not in case order
        result.stdout.fnmatch_lines([line])
    if not gpu:
        assert not (suite.path / "runs").exists()  # skipped before any generation


def test_a_real_model_regression_is_caught_and_an_unchanged_rerun_generates_nothing(suite, tiny_model,
                                                                                     oracle_baseline):
    """zero-shot with the tiny random-weight model (its SQL is garbage) against the oracle's baseline:
    a significant regression, each time. The second session reuses both runs (0 new predictions, the
    predictions files untouched, less wall time); --t2s-rerun generates again."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 't2s-bench[gguf]')")
    suite.makefile(".t2s.yaml", bench=f"""
defaults: {{dataset: demo, sample: 8, seed: 0, baseline: {oracle_baseline}}}
cases:
  - name: tiny
    system: zero-shot
    options: {{model: {tiny_model.gguf_path}, max_new_tokens: 16, n_ctx: 2048}}
  - name: oracle
    system: oracle
""")

    def session(*args):
        start = time.perf_counter()
        result = suite.runpytest("-p", "no:cacheprovider", *args)
        return result, time.perf_counter() - start

    first, first_s = session()
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines([
        "*tiny: demo-zero-shot-*: EX regressed against the baseline * (significant drop: McNemar exact p = 0.007812 *",
        "*8 right→wrong*", "*error:    empty_output*",
        "*t2s: 2 runs (0 reused), 16 new predictions*"])
    runs = sorted((suite.path / "runs").glob("*/predictions.jsonl"))
    stamps = {p: p.stat().st_mtime_ns for p in runs}

    second, second_s = session()
    second.assert_outcomes(passed=1, failed=1)
    second.stdout.fnmatch_lines(["*t2s: 2 runs (2 reused), 0 new predictions*"])
    assert {p: p.stat().st_mtime_ns for p in runs} == stamps
    print(f"first session {first_s:.1f} s, unchanged rerun {second_s:.1f} s")
    assert second_s < first_s

    third, _ = session("--t2s-rerun")
    third.stdout.fnmatch_lines(["*t2s: 2 runs (0 reused), 16 new predictions*"])


def test_update_baselines_writes_a_missing_baseline_on_purpose(suite):
    suite.makefile(".t2s.yaml", bench="""
cases:
  - system: oracle
    sample: 10
    baseline: baselines/oracle.json
""")
    missing = suite.runpytest("-p", "no:cacheprovider")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*baseline */baselines/oracle.json not found: write it from this run with "
                                  "`pytest --t2s-update-baselines`*"])
    updated = suite.runpytest("-p", "no:cacheprovider", "--t2s-update-baselines")
    updated.assert_outcomes(passed=1)
    updated.stdout.fnmatch_lines(["*t2s: baseline updated: */baselines/oracle.json"])
    assert '"summary": {\n  "n": 10,' in (suite.path / "baselines" / "oracle.json").read_text()
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_report_option_writes_one_html_comparison_of_the_session_runs(suite):
    suite.makefile(".t2s.yaml", bench="""
cases:
  - system: oracle
  - system: broken-oracle
    options: {wrong: [7, 8]}
""")
    result = suite.runpytest("-p", "no:cacheprovider", "--t2s-report", "reports")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*t2s: report: */reports/demo.html"])
    html = (suite.path / "reports" / "demo.html").read_text()
    assert "demo-oracle-" in html and "demo-broken-oracle-" in html


def test_the_plugin_leaves_other_sessions_alone(pytester):
    """Collection and output of a session without t2s tests are the same with the plugin disabled."""
    pytester.makepyfile(test_plain="def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    with_plugin = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    without = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:t2s_bench")
    assert with_plugin.outlines[:3] == without.outlines[:3] == ["test_plain.py::test_one", "test_plain.py::test_two", ""]
    run = pytester.runpytest("-p", "no:cacheprovider")
    run.assert_outcomes(passed=2)
    assert "t2s-bench ===" not in run.stdout.str() and "t2s:" not in run.stdout.str()
    assert "--t2s-report" in pytester.runpytest("--help").stdout.str()  # loaded without any configuration


def test_importing_the_plugin_loads_nothing_heavy():
    """Every pytest session of every user imports the plugin: it may add only its own modules."""
    code = ("import sys; import pytest; before = set(sys.modules); import t2s_bench.regression.plugin; "
            "print(sorted(set(sys.modules) - before))")
    added = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(added) == ["t2s_bench", "t2s_bench.regression", "t2s_bench.regression.plugin"]
