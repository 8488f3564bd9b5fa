"""Assertions over a scored run: accuracy thresholds, no regression against a baseline, latency.

Each raises `RegressionFailure` (an AssertionError) whose message says what missed, by how much,
on which questions, and where the run (and its report) lies; each returns what it checked.
`run` is a RunResult or a run directory; `baseline` a RunResult, a run directory or a baseline file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from t2s_bench.regression.baseline import METRIC_NAMES, Comparison, Verdicts, compare_verdicts, load_verdicts

LEVELS = ("easy", "medium", "hard", "extra", "all")


class RegressionFailure(AssertionError):
    """A threshold missed or a regression found; the message is the whole story (no traceback needed)."""


def _as_run(run: Any):
    from t2s_bench.api import RunResult, load_run

    return run if isinstance(run, RunResult) else load_run(run)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def assert_accuracy(run: Any, *, min_ex: float | None = None, min_em: float | None = None,
                    by_hardness: dict[str, float | dict[str, float]] | None = None,
                    max_error_rate: dict[str, float] | None = None) -> dict:
    """EX/EM at least the given fractions (overall and per Spider hardness level), and each error
    class at most the given share of the selected questions.

    `by_hardness={"hard": 0.4}` bounds EX of that level; `{"hard": {"ex": 0.4, "em": 0.2}}` both.
    """
    from t2s_bench.scoring.errors import ERROR_CLASSES

    result = _as_run(run)
    levels = result.metrics["levels"]
    checks: list[tuple[str, float | None, float, str, int, int]] = []  # label, value, bound, op, k, n

    def level_check(label: str, level: str, metric: str, bound: float) -> None:
        stats = levels.get(level)
        if stats is None or not stats.get("count"):
            checks.append((f"{label} (no question of level {level!r} in the run)", None, bound, ">=", 0, 0))
            return
        k, n = ((stats["n_exec_correct"], stats["n_scored"]) if metric == "exec"
                else (stats["n_exact_correct"], stats["n_exact_scored"]))
        checks.append((label, stats[metric], bound, ">=", k, n))

    if min_ex is not None:
        level_check("EX", "all", "exec", min_ex)
    if min_em is not None:
        level_check("EM", "all", "exact", min_em)
    for level, bound in (by_hardness or {}).items():
        if level not in LEVELS:
            raise ValueError(f"by_hardness: unknown level {level!r}; use {', '.join(LEVELS)}")
        bounds = bound if isinstance(bound, dict) else {"ex": bound}
        for metric_key, value in bounds.items():
            metric = {"ex": "exec", "em": "exact"}.get(metric_key)
            if metric is None:
                raise ValueError(f"by_hardness[{level!r}]: unknown metric {metric_key!r}; use ex or em")
            level_check(f"{level} {metric_key.upper()}", level, metric, value)
    records = result.records
    n_total = len(records)
    offenders: dict[str, list[int]] = {}
    for error_class, bound in (max_error_rate or {}).items():
        if error_class not in ERROR_CLASSES:
            raise ValueError(f"max_error_rate: unknown error class {error_class!r}; use {', '.join(ERROR_CLASSES)}")
        hit = records.index[records["error_class"] == error_class].tolist() if n_total else []
        offenders[error_class] = hit
        checks.append((f"{error_class} rate", len(hit) / n_total if n_total else 0.0, bound, "<=", len(hit), n_total))

    missed, checked = [], {}
    for label, value, bound, op, k, n in checks:
        checked[label] = value
        ok = value is not None and (value >= bound - 1e-12 if op == ">=" else value <= bound + 1e-12)
        if not ok:
            line = f"{label} {_pct(value)} ({k}/{n}) {'<' if op == '>=' else '>'} {_pct(bound)}"
            cls = label.removesuffix(" rate")
            if cls in offenders:
                line += ": questions " + ", ".join(f"#{i}" for i in offenders[cls][:20])
            missed.append(line)
    if missed:
        raise RegressionFailure(
            f"{result.name}: {len(missed)} accuracy threshold{'s' if len(missed) > 1 else ''} missed\n"
            + "\n".join(f"  {m}" for m in missed)
            + f"\n  run: {result.path} (EX {_pct(result.ex)}, EM {_pct(result.em)} on {n_total} questions)"
            + f"\n  per-question records: {result.path / 'scores.jsonl'}"
        )
    return checked


def assert_no_regression(run: Any, baseline: Any, *, alpha: float = 0.05, max_drop: float | None = None,
                         metric: str = "exec", report_dir: str | Path | None = None, show: int = 10) -> Comparison:
    """The run is not worse than the baseline on the same questions: fails on a drop that McNemar's
    exact test finds significant at `alpha`, or on a drop larger than `max_drop` (a fraction).

    The message lists the questions that flipped right→wrong with the gold SQL, both predicted SQLs
    and the error class, and the path of an HTML report (written to `report_dir`, else into the run)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if max_drop is not None and not 0 <= max_drop <= 1:
        raise ValueError(f"max_drop is a fraction between 0 and 1, got {max_drop}")
    result = _as_run(run)
    base = load_verdicts(baseline)
    comparison = compare_verdicts(Verdicts.from_run(result), base, metric=metric)
    reasons = comparison.failures(alpha=alpha, max_drop=max_drop)
    if not reasons:
        return comparison
    report = write_failure_report(result, base, report_dir)
    name = METRIC_NAMES.get(metric, metric)
    raise RegressionFailure(
        f"{result.name}: {name} regressed against the baseline {base.source} ({'; '.join(reasons)})\n"
        f"  {comparison.summary()}\n"
        f"  questions right in the baseline, wrong now:\n{comparison.describe_flips(show)}\n"
        f"  run: {result.path}\n  report: {report}"
    )


def write_failure_report(result: Any, baseline: Verdicts, report_dir: str | Path | None) -> str:
    """HTML report of the run (and the baseline, when it is a run directory); its path, or why none."""
    from t2s_bench.api import report

    runs = [baseline.run_path, result.path] if baseline.run_path else [result.path]
    target_dir = Path(report_dir) if report_dir else result.path
    name = f"{result.name}-vs-{baseline.name}.html" if report_dir else "regression-report.html"
    try:
        return str(report(runs, out=target_dir / name, title=f"{result.name} against {baseline.name}"))
    except Exception as e:  # noqa: BLE001 - the regression is the failure to report, not the report
        return f"(not written: {type(e).__name__}: {e})"


def assert_latency(run: Any, *, p95_s: float | None = None, p50_s: float | None = None) -> dict:
    """Per-question generation latency (nearest-rank percentiles over the run's predictions) at most
    the given seconds."""
    result = _as_run(run)
    latencies = sorted((float(p.get("latency_s") or 0.0), i) for i, p in result.predictions.items())
    if not latencies:
        raise RegressionFailure(f"{result.name}: no predictions, no latency to check ({result.path})")
    values = [v for v, _ in latencies]

    def percentile(q: float) -> float:  # the runner's definition (metrics.json's latency_p95_s)
        return values[int(q * (len(values) - 1))]

    checked, missed = {}, []
    for label, q, bound in (("p50", 0.50, p50_s), ("p95", 0.95, p95_s)):
        if bound is None:
            continue
        checked[f"{label}_s"] = value = percentile(q)
        if value > bound:
            missed.append(f"{label} latency {value:.3f} s > {bound:.3f} s")
    if missed:
        slowest = ", ".join(f"#{i} {v:.2f} s" for v, i in reversed(latencies[-5:]))
        raise RegressionFailure(f"{result.name}: " + "; ".join(missed)
                                + f" over {len(values)} questions\n  slowest: {slowest}\n  run: {result.path}")
    return checked
