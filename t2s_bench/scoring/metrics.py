"""The metric seam: every per-example metric, built in or added by a user, is a `Metric` here.

A metric gives each score record a verdict (True / False / None when undefined) under its own
key; `summarize`, the score table, the JSON, Markdown and HTML reports and the comparisons read
the list of metrics from this registry, so a metric added here appears everywhere:

    from t2s_bench.scoring.metrics import register_metric

    @register_metric("selects_star", label="SEL*", description="prediction selects *")
    def selects_star(record, schema):
        return "*" in record["pred"] if record["pred"] else None

Execution accuracy and exact-set match are computed by the scorer itself (they need the
execution results and Spider's component parser), so their `fn` is None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from t2s_bench.datasets.schema import Schema
from t2s_bench.records import ScoreRecord
from t2s_bench.registry import Registry

log = logging.getLogger(__name__)

MetricFn = Callable[[ScoreRecord, "Schema | None"], "bool | None"]


@dataclass(frozen=True)
class Metric:
    name: str  # summary key ("exec")
    field: str  # score-record key ("exec_match")
    label: str  # column header ("EX")
    description: str = ""
    fn: MetricFn | None = None  # None: set by the scorer


METRICS: Registry[Metric] = Registry("metric", entry_point_group="t2s_bench.metrics")
METRICS.register("exec", Metric("exec", "exec_match", "EX", "execution accuracy (test-suite semantics)"))
METRICS.register("exact", Metric("exact", "exact_match", "EM", "exact-set match, values ignored (corrected)"))


def register_metric(name: str, *, label: str | None = None, description: str = "", field: str | None = None,
                    replace: bool = False) -> Callable[[MetricFn], MetricFn]:
    """Decorator: `fn(record, schema) -> bool | None` becomes the metric `name`."""

    def decorate(fn: MetricFn) -> MetricFn:
        METRICS.register(name, Metric(name, field or name, label or name, description, fn), replace=replace)
        return fn

    return decorate


def all_metrics() -> list[Metric]:
    return METRICS.values()


def extra_metrics() -> list[Metric]:
    """The metrics computed from records (everything but the scorer's own)."""
    return [m for m in all_metrics() if m.fn is not None]


def apply_metrics(records: Iterable[ScoreRecord], schema_of: Callable[[str], Schema | None],
                  *, only_missing: bool = False) -> None:
    """Set each extra metric's verdict on each record (in place). A failing metric function
    records None for that example and a warning, never loses the scores."""
    for metric in extra_metrics():
        assert metric.fn is not None
        for rec in records:
            if only_missing and metric.field in rec:
                continue
            try:
                value = metric.fn(rec, schema_of(rec["db_id"]))
            except Exception as e:  # a user metric's bug must not lose the run
                log.warning("metric %s failed on example %s: %s", metric.name, rec.get("index"), e)
                value = None
            rec[metric.field] = None if value is None else bool(value)  # type: ignore[literal-required]
