"""Execution match: the test-suite evaluator's result equivalence, on hand-made results, against a
brute-force reference, and end to end through score_predictions on a real SQLite file."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter

import pytest

from t2s_bench.datasets import Dataset, Example, Schema
from t2s_bench.execution import ExecResult
from t2s_bench.scoring import ExecMatchOptions, exec_match, results_equal, score_predictions, summarize
from t2s_bench.scoring.exec_match import results_equal_by_definition as brute_force


def ok(rows, columns=None):
    cols = columns or [f"c{i}" for i in range(len(rows[0]) if rows else 0)]
    return ExecResult(rows=[tuple(r) for r in rows], columns=cols)


def test_column_order_is_free_row_order_only_when_asked():
    gold = ok([(1, "a"), (2, "b")])
    assert exec_match(gold, ok([("a", 1), ("b", 2)]), order_matters=True)
    assert exec_match(gold, ok([(2, "b"), (1, "a")]), order_matters=False)
    assert not exec_match(gold, ok([(2, "b"), (1, "a")]), order_matters=True)


def test_duplicates_count():
    assert not exec_match(ok([(1,), (1,), (2,)]), ok([(1,), (2,), (2,)]), order_matters=False)
    assert not exec_match(ok([(1,), (1,)]), ok([(1,)]), order_matters=False)


def test_rows_must_pair_up_not_just_columns():
    # same column value multisets, different pairing
    assert not exec_match(ok([(1, "a"), (2, "b")]), ok([(1, "b"), (2, "a")]), order_matters=False)


def test_empty_results_match_whatever_their_columns():
    assert exec_match(ok([], ["a"]), ok([], ["x", "y"]), order_matters=False)
    assert not exec_match(ok([], ["a"]), ok([(1,)]), order_matters=False)


def test_failures_never_match():
    gold = ok([(1,)])
    assert not exec_match(gold, ExecResult(None, [], "no such column: x"), order_matters=False)
    assert not exec_match(gold, ExecResult(None, [], "timed out", timed_out=True), order_matters=False)
    assert not exec_match(gold, ExecResult([(1,)], ["a"], truncated=True), order_matters=False)
    assert not exec_match(gold, None, order_matters=False)


def test_numbers_compare_by_value_and_tolerance_is_opt_in():
    assert exec_match(ok([(1, 2.0)]), ok([(1.0, 2)]), order_matters=False)
    assert not exec_match(ok([(0.1 + 0.2,)]), ok([(0.3,)]), order_matters=False)
    assert exec_match(ok([(0.1 + 0.2,)]), ok([(0.3,)]), order_matters=False, options=ExecMatchOptions(float_tolerance=1e-9))
    assert not exec_match(ok([("1",)]), ok([(1,)]), order_matters=False)


def test_agrees_with_brute_force_on_random_tables():
    rng = random.Random(7)
    checked = positives = 0
    for _ in range(1500):
        n_rows, n_cols = rng.randint(0, 6), rng.randint(1, 4)
        values = [rng.randint(0, 2) for _ in range(3)] + ["x", None]
        gold = [tuple(rng.choice(values) for _ in range(n_cols)) for _ in range(n_rows)]
        kind = rng.random()
        if kind < 0.4:  # a true permutation of rows and columns
            perm = list(range(n_cols))
            rng.shuffle(perm)
            pred = [tuple(r[i] for i in perm) for r in gold]
            rng.shuffle(pred)
        elif kind < 0.7:  # swap two cells of a permuted copy
            pred = [list(r) for r in gold]
            if pred and n_cols > 1:
                r = rng.randrange(len(pred))
                pred[r][0], pred[r][1] = pred[r][1], pred[r][0]
            pred = [tuple(r) for r in pred]
        else:
            pred = [tuple(rng.choice(values) for _ in range(n_cols)) for _ in range(n_rows)]
        for order in (True, False):
            expected = brute_force(gold, pred, order)
            assert results_equal(gold, pred, order_matters=order) == expected, (gold, pred, order)
            checked += 1
            positives += expected
    assert positives > 300 and checked - positives > 300  # both outcomes well covered


def test_wide_results_with_shared_values_stay_fast():
    # 12 columns holding the same values: 12! candidate permutations for a naive search
    n_cols, n_rows = 12, 200
    gold = [tuple((r * (c + 1)) % 7 for c in range(n_cols)) for r in range(n_rows)]
    perm = list(reversed(range(n_cols)))
    pred = [tuple(row[i] for i in perm) for row in reversed(gold)]
    broken = list(pred)
    broken[0], broken[1] = (broken[0][:1] + broken[1][1:]), (broken[1][:1] + broken[0][1:])
    start = time.perf_counter()
    assert results_equal(gold, pred, order_matters=False)
    assert not results_equal(gold, broken, order_matters=False) or Counter(broken) == Counter(pred)
    same = [tuple(1 for _ in range(n_cols))] * n_rows
    assert results_equal(same, same, order_matters=False)
    assert time.perf_counter() - start < 2.0


# --- end to end on a real SQLite database ----------------------------------------------------
@pytest.fixture()
def tiny_dataset(tmp_path):
    db_dir = tmp_path / "database"
    (db_dir / "shop").mkdir(parents=True)
    path = db_dir / "shop" / "shop.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, kind TEXT, price REAL);
        INSERT INTO item VALUES (1, 'pen', 'office', 2.5), (2, 'ink', 'office', 9.0),
                                (3, 'apple', 'food', 1.0), (4, 'pear', 'food', 1.0);
        """
    )
    con.commit()
    con.close()
    examples = [
        Example(0, "shop", "kinds", "SELECT kind FROM item"),
        Example(1, "shop", "cheapest first", "SELECT name FROM item ORDER BY price, id"),
        Example(2, "shop", "count", "SELECT count(*) FROM item WHERE kind = 'food'"),
        Example(3, "gone", "missing db", "SELECT count(*) FROM t"),
        Example(4, "shop", "no prediction", "SELECT name FROM item"),
    ]
    schemas = {"shop": Schema.from_sqlite(path, "shop")}
    return Dataset("tiny", examples, schemas, db_dir)


def test_score_predictions_records(tiny_dataset):
    preds = {
        0: "SELECT DISTINCT kind FROM item",  # DISTINCT removed before execution (official default)
        1: "SELECT name FROM item ORDER BY price DESC",  # wrong order, gold has ORDER BY
        2: "SELECT count(*) FROM item WHERE kind = 'office'",  # same rows count, different value: 2 == 2
        3: "SELECT count(*) FROM t",
    }
    recs = score_predictions(tiny_dataset, preds, workers=1, timeout=5.0, gold_cache=None)
    assert [r["index"] for r in recs] == [0, 1, 2, 3, 4]
    # the record's own fields plus one field per registered metric (built-in and table metrics), and no others
    from t2s_bench.records import RECORD_FIELDS
    from t2s_bench.scoring.metrics import all_metrics, table_metrics

    keys = set(RECORD_FIELDS) | {m.field for m in all_metrics()} | {m.field for m in table_metrics()}
    assert {"partial_match", "exact_match_official", "exec_suite"} <= keys
    assert all(set(r) == keys for r in recs)
    r0, r1, r2, r3, r4 = recs
    assert r0["exec_match"] is True and r0["exact_match"] is True
    assert r1["exec_match"] is False and r1["exact_match"] is False
    assert r2["exec_match"] is True and r2["exact_match"] is True and r2["pred_result"]["rows"] == [[2]]
    assert r3["skipped"] == "missing database" and r3["exec_match"] is None and r3["hardness"] == "easy"
    assert r4["pred"] == "" and r4["pred_error"] == "missing prediction" and r4["exec_match"] is False
    assert r0["gold_result"] == {"columns": ["kind"], "rows": [["office"], ["office"], ["food"], ["food"]], "n_rows": 4}
    assert r0["error_class"] is None and r1["error_class"] not in (None, "skipped")

    kept = score_predictions(tiny_dataset, preds, workers=1, timeout=5.0, gold_cache=None,
                             options=ExecMatchOptions(keep_distinct=True))
    assert kept[0]["exec_match"] is False  # with DISTINCT kept, 2 rows vs 4

    s = summarize(recs)
    assert s["n"] == 5 and s["n_skipped"] == 1
    assert s["levels"]["all"]["n_scored"] == 4 and s["levels"]["all"]["exec"] == pytest.approx(2 / 4)
    assert s["levels"]["all"]["count"] == 5


def test_execution_errors_are_recorded(tiny_dataset):
    recs = score_predictions(tiny_dataset, {0: "SELECT nope FROM item", 1: "SELEC name", 2: "  "},
                             workers=1, timeout=5.0, gold_cache=None)
    assert "no such column" in recs[0]["pred_error"] and recs[0]["exec_match"] is False
    assert recs[1]["pred_error"] and recs[1]["exact_match"] is False
    assert recs[2]["pred_error"] == "empty prediction"
