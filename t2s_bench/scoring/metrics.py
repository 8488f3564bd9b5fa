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

A `TableMetric` (registry `TABLE_METRICS`, built in: Spider's partial match) gives each record a
structured value and the summary a table of its own (`summarize(records)[name]`, printed by
`format_table(..., tables=True)`, shown in the JSON and HTML reports).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    optional: bool = False  # shown in tables and reports only where some example has a verdict


METRICS: Registry[Metric] = Registry("metric", entry_point_group="t2s_bench.metrics")
METRICS.register("exec", Metric("exec", "exec_match", "EX", "execution accuracy (test-suite semantics)"))
METRICS.register("exact", Metric("exact", "exact_match", "EM", "exact-set match, values ignored (corrected)"))


def _exact_official(rec: ScoreRecord, schema: Schema | None) -> bool | None:
    """Exact match as the official evaluator scores it (0 where its SQL reader fails)."""
    from t2s_bench.scoring.official_parse import OfficialParseError, official_exact_match

    if schema is None or rec.get("exact_match") is None:  # same examples as the corrected EM
        return None
    try:
        return official_exact_match(rec["gold"], rec["pred"] or "", schema)
    except OfficialParseError:
        return None  # the official reader cannot read the gold


METRICS.register("exact_official", Metric("exact_official", "exact_match_official", "EM-official",
                                          "exact-set match as the official evaluator scores it (comparable "
                                          "with published figures)",
                                          fn=_exact_official))
# test-suite execution accuracy: set by the scorer when a suite is given (`--suite DIR`, see
# t2s_bench/suites/execute.py); the function keeps that verdict, None (undefined) without a suite
def _exec_suite(rec: ScoreRecord, schema: Schema | None) -> bool | None:
    value = rec.get("exec_suite")
    return None if value is None else bool(value)


METRICS.register("exec_suite", Metric("exec_suite", "exec_suite", "EX-suite",
                                      "execution accuracy on a test suite of databases", fn=_exec_suite,
                                      optional=True))


def register_metric(name: str, *, label: str | None = None, description: str = "", field: str | None = None,
                    replace: bool = False, optional: bool = False) -> Callable[[MetricFn], MetricFn]:
    """Decorator: `fn(record, schema) -> bool | None` becomes the metric `name`."""

    def decorate(fn: MetricFn) -> MetricFn:
        METRICS.register(name, Metric(name, field or name, label or name, description, fn, optional), replace=replace)
        return fn

    return decorate


def all_metrics() -> list[Metric]:
    return METRICS.values()


def extra_metrics() -> list[Metric]:
    """The metrics computed from records (everything but the scorer's own)."""
    return [m for m in all_metrics() if m.fn is not None]


@dataclass(frozen=True)
class TableMetric:
    """A metric whose per-example value is a structure (not a verdict) and whose summary is a table,
    e.g. Spider's partial match (scoring/partial_match.py). `fn(record, schema)` gives the record's
    value under `field` (JSON, or None when undefined); `summarize(records)` the summary kept under
    `name` in `summarize`'s output (metrics.json, JSON report); `format(summary)` its text table."""

    name: str
    field: str
    label: str
    description: str
    fn: Callable[[ScoreRecord, Schema | None], Any]
    summarize: Callable[[Sequence[Mapping]], dict]
    format: Callable[[Mapping], str]


TABLE_METRICS: Registry[TableMetric] = Registry("table metric", entry_point_group="t2s_bench.table_metrics")
TABLE_METRICS.register("partial", "t2s_bench.scoring.partial_match:PARTIAL_MATCH")
TABLE_METRICS.register("partial_official", "t2s_bench.scoring.partial_match:PARTIAL_MATCH_OFFICIAL")


def table_metrics() -> list[TableMetric]:
    return TABLE_METRICS.values()


def apply_metrics(records: Iterable[ScoreRecord], schema_of: Callable[[str], Schema | None],
                  *, only_missing: bool = False) -> None:
    """Set each extra metric's verdict (and each table metric's value) on each record (in place).
    A failing metric function records None for that example and a warning, never loses the scores."""
    records = list(records)
    metrics: list[Metric | TableMetric] = [*extra_metrics(), *table_metrics()]
    for metric in metrics:
        assert metric.fn is not None
        is_verdict = isinstance(metric, Metric)
        for rec in records:
            if only_missing and metric.field in rec:
                continue
            try:
                value = metric.fn(rec, schema_of(rec["db_id"]))
            except Exception as e:  # a user metric's bug must not lose the run
                log.warning("metric %s failed on example %s: %s", metric.name, rec.get("index"), e)
                value = None
            if is_verdict and value is not None:
                value = bool(value)
            rec[metric.field] = value  # type: ignore[literal-required]


# ---------------------------------------------------------------- schema linking recall
# A system that prunes the schema records what its prompt showed in the prediction's trace (stage
# "schema"); the runner copies it into the score record as `prompt_schema`, and these two metrics
# say whether it kept every gold table / column (None for full-schema runs).


def attach_prediction_facts(records: Iterable[ScoreRecord], predictions: dict[int, dict],
                            schema_of: Callable[[str], Schema | None]) -> None:
    """Copy the schema a prompt showed from each prediction's trace into its score record, then
    compute the metrics again for the records that got it."""
    changed = []
    for rec in records:
        pred = predictions.get(rec["index"]) or {}
        shown = next((e for e in pred.get("trace") or [] if e.get("stage") == "schema"), None)
        if shown is not None and rec.get("prompt_schema") is None:
            rec["prompt_schema"] = {"tables": shown.get("tables"), "columns": shown.get("columns")}  # type: ignore[typeddict-unknown-key]
            changed.append(rec)
    if changed:
        apply_metrics(changed, schema_of)


def _linked(part: str) -> MetricFn:
    def fn(record: ScoreRecord, schema: Schema | None) -> bool | None:
        shown: Any = record.get("prompt_schema")  # type: ignore[typeddict-item]
        if not shown or schema is None:
            return None
        from t2s_bench.linking.gold import gold_needs
        from t2s_bench.linking.prune import PrunedSchema

        needs = gold_needs(record["gold"], schema)
        if needs is None:
            return None
        pruned = PrunedSchema(tables=shown["tables"], columns=shown.get("columns"))
        if part == "tables":
            return all(pruned.keeps_table(t) for t in needs.tables)
        return all(pruned.keeps_column(*c.split(".", 1)) for c in needs.columns)

    return fn


register_metric("tables_linked", label="TR", field="tables_linked", optional=True,
                description="table recall: the prompt's (pruned) schema keeps every gold table")(_linked("tables"))
register_metric("columns_linked", label="CR", field="columns_linked", optional=True,
                description="column recall: the prompt's (pruned) schema keeps every gold column")(_linked("columns"))
