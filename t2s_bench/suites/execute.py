"""Test-suite execution accuracy: a prediction is correct only when its result matches the
gold's on the main database *and* on every variant of its database in the suite.

Suite layout (the test-suite evaluator's distilled format): ``SUITE/<db_id>/*.sqlite``. The
official evaluator runs every ``.sqlite`` file in the folder of the database; here the main
database is the dataset's own (already executed by the scorer), so ``SUITE/<db_id>/<db_id>.sqlite``,
the original's copy, is not run a second time. Variants run through the same worker pool,
timeout, read-only connection and memory bounds as the main database; gold results come from the
gold cache (keyed by content hash, so each variant has its own entries). A failed, timed-out or
truncated prediction on any variant is wrong, as in the official evaluator; a gold query that
fails on a variant leaves the verdict undefined (None) for that example, where the official
evaluator stops with an assertion.
"""

from __future__ import annotations

import logging
from pathlib import Path

from t2s_bench.execution import execute_many
from t2s_bench.scoring.exec_match import ExecMatchOptions, exec_match
from t2s_bench.suites.ties import tie_probes, ties_decide

log = logging.getLogger(__name__)

FIELD = "exec_suite"


def suite_databases(suite_dir: str | Path, db_id: str) -> list[Path]:
    """The variants of `db_id` in a suite folder, in name order (the original's copy left out)."""
    folder = Path(suite_dir) / db_id
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.sqlite") if p.is_file() and p.name != f"{db_id}.sqlite")


def check_suite_dir(suite_dir: str | Path) -> Path:
    path = Path(suite_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"test suite folder not found: {path} (build one with `t2s-bench suite build`)")
    return path


def resolve_suite_dir(suite_dir: str | Path | None) -> str | None:
    """An existing suite folder as an absolute path (what a run records), checked before any work."""
    return None if suite_dir is None else str(check_suite_dir(suite_dir).resolve())


def apply_suite(plan: list[tuple], suite_dir: str | Path, *, cache, workers: int, timeout: float, max_rows: int,
                options: ExecMatchOptions) -> None:
    """Set ``exec_suite`` on the records of the scorer's execution plan, in place.

    `plan` holds ``(record, db_path, gold_sql, pred_sql, order_matters)`` after the main execution:
    records whose main-database verdict is False stay False without running the variants."""
    suite_dir = check_suite_dir(suite_dir)
    variants: dict[str, list[Path]] = {}
    todo = []  # (record, variant path, gold sql, pred sql, order_matters)
    no_suite: set[str] = set()
    for rec, _db, gold_sql, pred_sql, order_matters in plan:
        if rec.get("skipped") or rec.get("exec_match") is None:
            continue
        if rec["db_id"] not in variants:
            variants[rec["db_id"]] = suite_databases(suite_dir, rec["db_id"])
        if not variants[rec["db_id"]] and not (suite_dir / rec["db_id"]).is_dir():
            no_suite.add(rec["db_id"])
            continue  # no suite for this database: undefined, not a pass
        rec[FIELD] = bool(rec["exec_match"])  # type: ignore[literal-required]
        if rec["exec_match"]:
            todo += [(rec, v, gold_sql, pred_sql, order_matters) for v in variants[rec["db_id"]]]
    if no_suite:
        log.warning("the suite %s has no folder for %d database(s) (their examples get no suite verdict): %s",
                    suite_dir, len(no_suite), ", ".join(sorted(no_suite)))
    if not todo:
        return
    probes = [tie_probes(g) if order_matters else None for _, _, g, _, order_matters in todo]
    gold_side = [(v, g) for _, v, g, _, _ in todo]
    probe_at = {}  # todo position -> position of its first probe in gold_side
    for i, ((_, v, _, _, _), pair) in enumerate(zip(todo, probes)):
        if pair is not None:
            probe_at[i] = len(gold_side)
            gold_side += [(v, pair[0]), (v, pair[1])]
    gold_results = _gold_results(gold_side, cache, workers, timeout, max_rows)
    pred_results = execute_many([(v, p) for _, v, _, p, _ in todo], workers=workers, timeout=timeout, max_rows=max_rows)
    gold_failed: set[int] = set()  # records (by id) whose gold fails on some variant
    mismatched: set[int] = set()
    n_tied = 0
    for i, ((rec, _v, _g, _p, order_matters), gold, pred) in enumerate(zip(todo, gold_results, pred_results)):
        if gold is None or not gold.ok or gold.truncated:
            gold_failed.add(id(rec))
        elif i in probe_at and ties_decide(gold_results[probe_at[i]], gold_results[probe_at[i] + 1]):
            n_tied += 1  # the gold's result on this variant depends on how tied rows come out: not a test
        elif not exec_match(gold, pred, order_matters=order_matters, options=options):
            mismatched.add(id(rec))
    for rec, *_ in todo:
        if id(rec) in gold_failed:
            rec[FIELD] = None  # type: ignore[literal-required]
        elif id(rec) in mismatched:
            rec[FIELD] = False  # type: ignore[literal-required]
    if n_tied:
        log.info("%d (example, variant) pairs left out: the gold's result there depends on the order of tied rows", n_tied)
    if gold_failed:
        log.warning("gold queries failed on suite variants for %d example(s): they get no suite verdict",
                    len(gold_failed))


def _gold_results(jobs: list[tuple[Path, str]], cache, workers: int, timeout: float, max_rows: int) -> list:
    """Results of gold-side queries (gold and tie probes), through the gold cache."""
    results = [cache.get(v, g) if cache is not None else None for v, g in jobs]
    misses = [i for i, r in enumerate(results) if r is None or (r.truncated and r.rows is not None and len(r.rows) < max_rows)]
    if misses:
        fresh = execute_many([jobs[i] for i in misses], workers=workers, timeout=timeout, max_rows=max_rows)
        for i, res in zip(misses, fresh):
            results[i] = res
        if cache is not None:
            cache.put_many([(jobs[i][0], jobs[i][1], results[i]) for i in misses])
    return results
