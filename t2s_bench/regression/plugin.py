"""The pytest plugin of t2s-bench (entry point `pytest11`, loaded in every pytest session once
t2s-bench is installed; disable with `-p no:t2s_bench`).

- fixture `t2s`: see `t2s_bench.regression.fixture.T2S`
- `*.t2s.yaml` / `*.t2s.yml` / `*.t2s.toml` files are collected as test items, one per case
  (`bench.t2s.yaml::oracle`), marked `t2s`
- options: `--t2s-report DIR` (HTML comparison report of every run the session touched),
  `--t2s-update-baselines`, `--t2s-rerun`, `--t2s-runs DIR` (where runs are kept, default `runs/`
  under the rootdir)

This module imports only pytest and the standard library: everything else loads when a t2s test runs.
Sessions that touch no t2s run print nothing and collect exactly what they did without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SUFFIXES = (".t2s.yaml", ".t2s.yml", ".t2s.toml")
_STATE = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("t2s", "t2s-bench regression benchmarks")
    group.addoption("--t2s-report", metavar="DIR", default=None,
                    help="write the HTML comparison report of every t2s run this session touched into DIR")
    group.addoption("--t2s-update-baselines", action="store_true", default=False,
                    help="rewrite the baseline files that t2s tests compare against from this session's runs")
    group.addoption("--t2s-rerun", action="store_true", default=False,
                    help="generate t2s runs again instead of reusing finished ones")
    group.addoption("--t2s-runs", metavar="DIR", default=None,
                    help="where t2s runs are kept and reused (default: runs/ under the rootdir)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "t2s: a t2s-bench regression benchmark case (from a *.t2s.yaml/toml file)")


def session_state(config: pytest.Config):
    """The session's t2s options and bookkeeping, made on first use."""
    state = config.stash.get(_STATE, None)
    if state is None:
        from t2s_bench.regression.fixture import SessionState

        runs = config.getoption("t2s_runs")
        report = config.getoption("t2s_report")
        state = SessionState(
            runs_root=Path(runs).resolve() if runs else config.rootpath / "runs",
            report_dir=Path(report).resolve() if report else None,
            rerun=config.getoption("t2s_rerun"), update_baselines=config.getoption("t2s_update_baselines"),
        )
        config.stash[_STATE] = state
    return state


@pytest.fixture
def t2s(request: pytest.FixtureRequest):
    """t2s-bench's API for regression tests: `t2s.evaluate(...)`, `t2s.load_run(...)`,
    `t2s.assert_accuracy(...)`, `t2s.assert_no_regression(...)`, `t2s.assert_latency(...)`."""
    from t2s_bench.regression.fixture import T2S

    return T2S(session_state(request.config), base_dir=request.path.parent, label=request.node.nodeid)


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    if file_path.name.endswith(SUFFIXES):
        return BenchmarkFile.from_parent(parent, path=file_path)
    return None


class BenchmarkFile(pytest.File):
    """A benchmark file: one test item per case."""

    def collect(self):
        from t2s_bench.regression.cases import CaseFileError, load_cases

        try:
            cases = load_cases(self.path)
        except CaseFileError as e:
            raise self.CollectError(str(e)) from None
        for case in cases:
            item = CaseItem.from_parent(self, name=case.name, case=case)
            item.add_marker("t2s")
            for mark in case.marks:
                item.add_marker(mark)
            yield item


class CaseItem(pytest.Item):
    """One case: evaluate (or reuse) the run, then check its thresholds, latency and baseline."""

    def __init__(self, *, case: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        from t2s_bench.regression.assertions import RegressionFailure
        from t2s_bench.regression.fixture import T2S

        case = self.case
        t2s = T2S(session_state(self.config), base_dir=self.path.parent, label=self.nodeid)
        run = t2s.evaluate(case.system, **case.evaluate_kwargs())
        failures = []
        checks = [
            lambda: t2s.assert_accuracy(run, min_ex=case.min_ex, min_em=case.min_em, by_hardness=case.by_hardness,
                                        max_error_rate=case.max_error_rate),
            lambda: (case.p50_s or case.p95_s) and t2s.assert_latency(run, p50_s=case.p50_s, p95_s=case.p95_s),
            lambda: case.baseline and t2s.assert_no_regression(run, case.baseline, alpha=case.alpha,
                                                               max_drop=case.max_drop, metric=case.metric),
        ]
        for check in checks:
            try:
                check()
            except RegressionFailure as e:
                failures.append(str(e))
        if failures:
            raise RegressionFailure("\n".join(failures))

    def repr_failure(self, excinfo, style=None):
        from t2s_bench.regression.assertions import RegressionFailure

        if isinstance(excinfo.value, RegressionFailure):
            return f"{self.path.name}::{self.name}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}::{self.name} ({self.case.system} on {self.case.dataset})"


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or state.report_dir is None or not state.runs:
        return
    from t2s_bench.regression.reports import write_session_reports

    state.reports.extend(write_session_reports(state))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not (state.runs or state.updated_baselines):
        return
    from t2s_bench.regression.reports import summary_lines

    terminalreporter.section("t2s-bench")
    for line in summary_lines(state):
        terminalreporter.write_line(line)
