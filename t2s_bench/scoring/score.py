"""Score a whole prediction set: one score record per example, then summaries.

Per example (see docs/SCORING.md):

- hardness of the gold query (Spider's levels; None when sqlglot cannot parse the gold);
- exact-set match (needs only the schema; None when the gold falls outside Spider's grammar);
- execution match against the gold result: both queries get the test-suite evaluator's
  preprocessing (`> =` joined to `>=`; every DISTINCT removed unless ``keep_distinct``), row order
  matters when the gold has ORDER BY anywhere; gold results come from the gold cache;
- an example whose database file is absent is *skipped* (exec_match None, reason recorded), as is
  one whose gold query fails to execute ("gold error: ...");
- error_class / error_reason from `t2s_bench.scoring.errors.classify_error` when that module exists.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from t2s_bench.records import ScoreRecord, new_score_record
from t2s_bench.scoring.exact_match import exact_match
from t2s_bench.scoring.exec_match import ExecMatchOptions, exec_match
from t2s_bench.scoring.hardness import LEVELS, hardness
from t2s_bench.scoring.metrics import apply_metrics, extra_metrics, table_metrics
from t2s_bench.sql.components import UnsupportedSQL
from t2s_bench.sql.parse import SQLParseError, has_order_by, join_split_operators, parse_sql, remove_distinct
from t2s_bench.sql.values import plug_values

log = logging.getLogger(__name__)

MISSING_DATABASE = "missing database"
MISSING_PREDICTION = "missing prediction"
EMPTY_PREDICTION = "empty prediction"
PREVIEW_ROWS = 10
DEFAULT_MAX_ROWS = 100_000
DEFAULT_OPTIONS = ExecMatchOptions()  # frozen: safe to share as a default


def prepare_for_execution(sql: str, keep_distinct: bool) -> str:
    """The test-suite evaluator's rewrites before execution (token-level, semantics otherwise kept)."""
    sql = join_split_operators(sql)
    return sql if keep_distinct else remove_distinct(sql)


def score_predictions(
    dataset,
    predictions: dict[int, str],
    *,
    workers: int = 2,
    timeout: float = 30.0,
    options: ExecMatchOptions = DEFAULT_OPTIONS,
    gold_cache=True,
    max_rows: int = DEFAULT_MAX_ROWS,
    suite: str | Path | None = None,
    plug_value: bool = False,
) -> list[ScoreRecord]:
    """Score predictions (example index -> SQL) against `dataset`; one record per example, in order.

    ``gold_cache``: True for the default on-disk cache, a GoldCache instance, or None/False for none.
    ``suite``: a test-suite folder (``SUITE/<db_id>/*.sqlite``): sets ``exec_suite``, correct only when
    the result matches on every variant too (t2s_bench/suites/execute.py).
    ``plug_value``: execute the prediction with the gold query's values (the official evaluator's
    --plug_value, for systems that predict skeletons; t2s_bench/sql/values.py); the executed text is
    kept as ``plugged_pred`` when it differs.
    """
    cache = _resolve_cache(gold_cache)
    try:
        return _score(dataset, predictions, workers, timeout, options, cache, max_rows, suite, plug_value)
    finally:
        if gold_cache is True and cache is not None:
            cache.close()


def _score(dataset, predictions, workers, timeout, options, cache, max_rows, suite=None, plug_value=False) -> list[dict]:
    classify = _error_classifier()
    records, exec_plan = [], []
    for ex in dataset.examples:
        pred = predictions.get(ex.index)
        rec = new_score_record(ex.index, ex.db_id, ex.question, ex.query, pred if pred is not None else "")
        if pred is None:
            rec["pred_error"] = MISSING_PREDICTION
        elif not pred.strip():
            rec["pred_error"] = EMPTY_PREDICTION
        db_path = dataset.db_path(ex.db_id)
        if db_path is None:
            rec["skipped"] = MISSING_DATABASE
            if rec["pred_error"] is None:
                rec["pred_error"] = _parse_error(pred)
        else:
            gold_sql = prepare_for_execution(ex.query, options.keep_distinct)
            executed = rec["pred"]
            if plug_value and rec["pred_error"] is None:
                executed = plug_values(ex.query, executed, _schema_or_none(dataset, ex.db_id))
                if executed != rec["pred"]:
                    rec["plugged_pred"] = executed  # type: ignore[typeddict-unknown-key]
            pred_sql = prepare_for_execution(executed, options.keep_distinct) if rec["pred_error"] is None else None
            exec_plan.append((rec, Path(db_path), gold_sql, pred_sql, has_order_by(gold_sql)))
        records.append(rec)

    # execution runs in worker processes; meanwhile this process does the parsing work
    with ThreadPoolExecutor(max_workers=1) as background:
        running = background.submit(_execute_plan, exec_plan, cache, workers, timeout, max_rows)
        for ex, rec in zip(dataset.examples, records):
            schema = _schema_or_none(dataset, ex.db_id)
            rec["hardness"] = _hardness_or_none(ex.query, schema)
            rec["exact_match"] = _exact_or_none(ex.query, rec["pred"], schema)
        gold_results, pred_results = running.result()

    for (rec, _db, _g, pred_sql, order_matters), gold_res, pred_res in zip(exec_plan, gold_results, pred_results):
        rec["gold_result"] = gold_res.to_json(PREVIEW_ROWS) if gold_res is not None else None
        if gold_res is None or not gold_res.ok:
            reason = "timeout" if gold_res is not None and gold_res.timed_out else (gold_res.error if gold_res else "?")
            rec["skipped"] = f"gold error: {reason}"
        if pred_res is not None:
            rec["pred_result"] = pred_res.to_json(PREVIEW_ROWS)
            rec["timed_out"] = bool(pred_res.timed_out)
            if not pred_res.ok:
                rec["pred_error"] = pred_res.error or ("timeout" if pred_res.timed_out else "execution failed")
            elif pred_res.truncated:
                rec["pred_error"] = f"result truncated at {max_rows} rows"
        if rec["skipped"] is None:
            rec["exec_match"] = pred_res is not None and exec_match(
                gold_res, pred_res, order_matters=order_matters, options=options
            )
    if suite is not None:
        from t2s_bench.suites.execute import apply_suite  # late: suites build on the scorer

        apply_suite(exec_plan, suite, cache=cache, workers=workers, timeout=timeout, max_rows=max_rows, options=options)
    if classify is not None:
        for rec in records:
            try:
                rec["error_class"], rec["error_reason"] = classify(rec, _schema_or_none(dataset, rec["db_id"]))
            except Exception as e:  # a classifier bug must not lose the scores
                log.warning("classify_error failed on example %s: %s", rec["index"], e)
                rec["error_class"], rec["error_reason"] = "other", f"classifier failed: {e}"
    apply_metrics(records, lambda db_id: _schema_or_none(dataset, db_id))
    return records


def _execute_plan(exec_plan, cache, workers, timeout, max_rows):
    """(gold results, pred results or None) aligned with the plan: gold through the cache, then
    predictions and gold misses together in one worker pool."""
    from t2s_bench.execution import execute_many

    gold_jobs = [(db, g) for _, db, g, _, _ in exec_plan]
    gold_results = [cache.get(db, sql) if cache is not None else None for db, sql in gold_jobs]
    for i, r in enumerate(gold_results):
        if r is not None and r.rows is not None:
            if r.truncated and len(r.rows) < max_rows:
                gold_results[i] = None  # cached under a smaller row cap: run again
            elif len(r.rows) > max_rows:
                r.rows, r.truncated = r.rows[:max_rows], True
    misses = [i for i, r in enumerate(gold_results) if r is None]
    pred_idx = [i for i, (_, _, _, p, _) in enumerate(exec_plan) if p is not None]
    jobs = [gold_jobs[i] for i in misses] + [(exec_plan[i][1], exec_plan[i][3]) for i in pred_idx]
    results = execute_many(jobs, workers=workers, timeout=timeout, max_rows=max_rows) if jobs else []
    for i, res in zip(misses, results):
        gold_results[i] = res
    if cache is not None and misses:
        cache.put_many([(gold_jobs[i][0], gold_jobs[i][1], gold_results[i]) for i in misses])
    pred_results: list = [None] * len(exec_plan)
    for i, res in zip(pred_idx, results[len(misses):]):
        pred_results[i] = res
    return gold_results, pred_results


def summarize(records: Sequence[Mapping]) -> dict:
    """Counts and accuracies per hardness level and overall.

    Execution accuracy divides by the examples that were executed (not skipped); exact-match
    accuracy by those whose gold query could be decomposed (exact_match not None). Both are also
    given over *all* examples (``exec_all``, ``exact_all``: unscored examples count as wrong).
    """
    out = {"levels": {}, "n": len(records)}
    for level in (*LEVELS, "all"):
        recs = [r for r in records if level == "all" or r.get("hardness") == level]
        scored = [r for r in recs if not r.get("skipped")]
        exact_scored = [r for r in recs if r.get("exact_match") is not None]
        n_exec = sum(r.get("exec_match") is True for r in scored)
        n_exact = sum(r.get("exact_match") is True for r in exact_scored)
        out["levels"][level] = {
            "count": len(recs),
            "n_scored": len(scored),
            "n_exec_correct": n_exec,
            "exec": n_exec / len(scored) if scored else None,
            "exec_all": n_exec / len(recs) if recs else None,
            "n_exact_scored": len(exact_scored),
            "n_exact_correct": n_exact,
            "exact": n_exact / len(exact_scored) if exact_scored else None,
            "exact_all": n_exact / len(recs) if recs else None,
        }
        for metric in extra_metrics():  # metrics registered in scoring.metrics
            defined = [r for r in recs if not r.get("skipped") and r.get(metric.field) is not None]
            n_true = sum(r.get(metric.field) is True for r in defined)
            out["levels"][level][metric.name] = n_true / len(defined) if defined else None
            out["levels"][level][f"n_{metric.name}_scored"] = len(defined)
            out["levels"][level][f"n_{metric.name}_correct"] = n_true
    out["n_skipped"] = sum(bool(r.get("skipped")) for r in records)
    out["n_pred_errors"] = sum(bool(r.get("pred_error")) for r in records)
    out["n_timeouts"] = sum(bool(r.get("timed_out")) for r in records)
    out["n_no_hardness"] = sum(r.get("hardness") is None for r in records)
    skipped: dict[str, int] = {}
    for r in records:
        if r.get("skipped"):
            key = r["skipped"] if not str(r["skipped"]).startswith("gold error") else "gold error"
            skipped[key] = skipped.get(key, 0) + 1
    out["skipped_reasons"] = skipped
    for table in table_metrics():  # e.g. partial match: a table of its own
        out[table.name] = table.summarize(records)
    return out


def format_table(summary: dict, *, tables: bool = False) -> str:
    """The official evaluator's table layout (counts, execution accuracy, exact matching accuracy);
    `tables=True` adds each table metric's table (partial matching accuracy, recall, F1)."""
    levels = [*LEVELS, "all"]
    rows = summary["levels"]

    def line(name, values, fmt):
        return f"{name:20} " + " ".join(fmt(v) for v in values)

    def acc(v):
        return f"{'-':<20}" if v is None else f"{v:<20.3f}"

    out = [
        line("", levels, lambda v: f"{v:20}"),
        line("count", [rows[lv]["count"] for lv in levels], lambda v: f"{v:<20d}"),
        "=====================   EXECUTION ACCURACY     =====================",
        line("execution", [rows[lv]["exec"] for lv in levels], acc),
        "",
        "====================== EXACT MATCHING ACCURACY =====================",
        line("exact match", [rows[lv]["exact"] for lv in levels], acc),
    ]
    for metric in extra_metrics():
        if metric.name in rows["all"] and (not metric.optional or rows["all"].get(f"n_{metric.name}_scored")):
            out += ["", f"{'=' * 22} {metric.label.upper()}: {metric.description or metric.name} ".ljust(68, "="),
                    line(metric.name, [rows[lv].get(metric.name) for lv in levels], acc)]
    if tables:
        for table in table_metrics():
            if summary.get(table.name):
                out += ["", table.format(summary[table.name])]
    notes = []
    if summary.get("plug_value"):
        notes.append("values plugged from the gold queries before execution (--plug-value)")
    if summary.get("n_skipped"):
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(summary.get("skipped_reasons", {}).items()))
        notes.append(f"skipped (not in execution accuracy): {summary['n_skipped']} ({reasons})")
    if summary.get("n_no_hardness"):
        notes.append(f"gold queries sqlglot cannot parse (counted only in 'all'): {summary['n_no_hardness']}")
    if notes:
        out += [""] + notes
    return "\n".join(out)


# --- helpers -------------------------------------------------------------------------------
def _schema_or_none(dataset, db_id):
    try:
        return dataset.schema(db_id)
    except KeyError:
        return None


def _hardness_or_none(sql: str, schema) -> str | None:
    try:
        return hardness(sql, schema)
    except SQLParseError:
        return None


def _exact_or_none(gold: str, pred: str, schema) -> bool | None:
    if schema is None:
        return None
    try:
        return exact_match(gold, pred, schema)
    except (SQLParseError, UnsupportedSQL):
        return None  # the gold itself cannot be decomposed into Spider's components


def _parse_error(sql: str) -> str | None:
    try:
        parse_sql(sql)
        return None
    except SQLParseError as e:
        return str(e)


def _resolve_cache(gold_cache):
    if gold_cache is None or gold_cache is False:
        return None
    if gold_cache is True:
        from t2s_bench.execution import GoldCache

        try:
            return GoldCache()  # paths.cache_dir()/gold_results.sqlite
        except Exception as e:  # an unusable cache directory must not stop scoring
            log.warning("gold cache unavailable (%s); executing gold queries directly", e)
            return None
    return gold_cache


def _error_classifier():
    """`classify_error` from t2s_bench.scoring.errors when that module is present."""
    try:
        module = importlib.import_module("t2s_bench.scoring.errors")
    except ModuleNotFoundError as e:
        if e.name != "t2s_bench.scoring.errors":
            raise
        return None
    return getattr(module, "classify_error", None)
