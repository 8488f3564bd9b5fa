"""Regression tests written with the `t2s` fixture (the plugin comes with t2s-bench: nothing to import).

    python -m pytest benchmarks/regression                          # reuses finished runs
    python -m pytest benchmarks/regression --t2s-report reports/    # + HTML comparison report
    python -m pytest benchmarks/regression --t2s-update-baselines   # rewrite baselines on purpose
"""

import pytest


def test_oracle_scores_every_level(t2s):
    run = t2s.evaluate("oracle", "demo")
    t2s.assert_accuracy(run, min_ex=1.0, min_em=1.0, by_hardness={"extra": {"ex": 1.0, "em": 1.0}},
                        max_error_rate={"syntax_error": 0.0, "skipped": 0.0})
    t2s.assert_no_regression(run, "baselines/oracle.json")


def test_one_database_sample(t2s):
    run = t2s.evaluate("oracle", "demo", db="flights", hardness=["hard", "extra"])
    assert len(run.records) == 8 and set(run.records.db_id) == {"flights"}
    t2s.assert_accuracy(run, min_ex=1.0)


def test_a_broken_system_is_caught(t2s, tiny_gguf):
    """zero-shot with a random-weight model writes no SQL: against the oracle's baseline that is a
    significant regression (8 of 8 questions lost, McNemar exact p = 0.008), and the guard says so."""
    run = t2s.evaluate("zero-shot", "demo", sample=8, sample_seed=0, model=str(tiny_gguf),
                       max_new_tokens=16, n_ctx=2048)
    with pytest.raises(AssertionError, match=r"EX regressed against the baseline .* p = 0\.007812"):
        t2s.assert_no_regression(run, "baselines/oracle.json")
    t2s.assert_latency(run, p95_s=30)
