"""Regression benchmarks: guard a text-to-SQL system's accuracy in pytest or in CI.

- `plugin`: the pytest plugin (entry point `pytest11`): the `t2s` fixture, `*.t2s.yaml` / `*.t2s.toml`
  benchmark files collected as test items, and the `--t2s-*` options. Its import stays cheap.
- `fixture`: what the `t2s` fixture hands a test (evaluate / load_run with run reuse and skips).
- `cases`: parsing and checking of benchmark files.
- `baseline`: per-question verdicts of a run or a committed baseline file, and their paired comparison.
- `assertions`: `assert_accuracy`, `assert_no_regression` (McNemar exact), `assert_latency`.

The assertions are importable without pytest:

    from t2s_bench.regression import assert_no_regression
    assert_no_regression("runs/demo-zero-shot-1a2b3c4d", "baselines/zero-shot.json", alpha=0.05)

Names load on first use, so importing this package (done by the pytest plugin) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "assert_accuracy": "t2s_bench.regression.assertions",
    "assert_no_regression": "t2s_bench.regression.assertions",
    "assert_latency": "t2s_bench.regression.assertions",
    "RegressionFailure": "t2s_bench.regression.assertions",
    "Verdicts": "t2s_bench.regression.baseline",
    "Comparison": "t2s_bench.regression.baseline",
    "compare_verdicts": "t2s_bench.regression.baseline",
    "load_verdicts": "t2s_bench.regression.baseline",
    "save_baseline": "t2s_bench.regression.baseline",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't2s_bench.regression' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
