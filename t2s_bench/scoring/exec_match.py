"""Execution match with the test-suite evaluator's semantics (`result_eq` in exec_eval.py).

Two results match when some permutation of the predicted columns makes the row *bags* equal:

- row order matters only when asked (the scorer asks when the gold query has ORDER BY anywhere);
- duplicates count (multiset comparison), so DISTINCT matters unless removed beforehand;
- column order and names do not matter; values compare with Python equality (``1 == 1.0``);
- two empty results match whatever their columns; a failed, timed-out or truncated side never matches.

The official search enumerates column permutations (all of them up to 3 columns; beyond that it
filters candidates by sampling 20 rows, then enumerates the product), which can blow up on wide
results whose columns share values. This implementation gives the same verdicts with:

1. quick rejections: row count, column count, the multiset of rows as value-multisets;
2. ordered case: a column permutation exists iff the gold columns and predicted columns are the
   same multiset of column *sequences* (one Counter, linear time);
3. unordered case: each gold column may only map to predicted columns with the same value
   multiset; columns are assigned most-constrained first, identical candidate columns are tried
   once, and after each assignment the multiset of partially projected rows must agree on both
   sides, which prunes wrong partial permutations immediately.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class ExecMatchOptions:
    # numbers within a grid of this step compare equal (values are bucketed as round(x / tol));
    # None compares exactly, as the official evaluator does
    float_tolerance: float | None = None
    # keep DISTINCT in both queries before executing (official default: removed, see score.py)
    keep_distinct: bool = False


def exec_match(gold, pred, *, order_matters: bool, options: ExecMatchOptions = ExecMatchOptions()) -> bool:
    """Whether the predicted ExecResult denotes the same answer as the gold one."""
    if gold is None or pred is None:
        return False
    for res in (gold, pred):
        if res.rows is None or res.error is not None or res.timed_out or res.truncated:
            return False
    return results_equal(gold.rows, pred.rows, order_matters=order_matters, float_tolerance=options.float_tolerance)


def results_equal_by_definition(gold: list, pred: list, order_matters: bool) -> bool:
    """The test-suite definition, literally: some column permutation makes the rows equal (as lists
    when order matters, as multisets otherwise). Exponential in the column count: a reference for
    tests and the naive baseline of benchmarks/bench_scoring.py, not for scoring."""
    if not gold and not pred:
        return True
    if len(gold) != len(pred) or len(gold[0]) != len(pred[0]):
        return False
    for perm in itertools.permutations(range(len(gold[0]))):
        permuted = [tuple(r[i] for i in perm) for r in pred]
        if (gold == permuted) if order_matters else (Counter(gold) == Counter(permuted)):
            return True
    return False


def results_equal(gold_rows, pred_rows, *, order_matters: bool, float_tolerance: float | None = None) -> bool:
    gold_rows, pred_rows = list(gold_rows), list(pred_rows)
    if not gold_rows and not pred_rows:
        return True
    if len(gold_rows) != len(pred_rows):
        return False
    n_cols = len(gold_rows[0])
    if len(pred_rows[0]) != n_cols:
        return False
    if float_tolerance:
        gold_rows = [tuple(_bucket(v, float_tolerance) for v in r) for r in gold_rows]
        pred_rows = [tuple(_bucket(v, float_tolerance) for v in r) for r in pred_rows]
    else:
        gold_rows = [tuple(r) for r in gold_rows]
        pred_rows = [tuple(r) for r in pred_rows]
    if n_cols == 1:
        return gold_rows == pred_rows if order_matters else Counter(gold_rows) == Counter(pred_rows)
    gold_cols, pred_cols = list(zip(*gold_rows)), list(zip(*pred_rows))
    if order_matters:
        return Counter(gold_cols) == Counter(pred_cols)
    if Counter(_row_bag(r) for r in gold_rows) != Counter(_row_bag(r) for r in pred_rows):
        return False
    return _find_column_mapping(gold_cols, pred_cols, len(gold_rows))


def _row_bag(row: tuple) -> frozenset:
    return frozenset(Counter(row).items())


def _bucket(value, tol: float):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return ("num", round(value / tol))
        except (OverflowError, ValueError):  # inf / nan
            return value
    return value


def _find_column_mapping(gold_cols: list[tuple], pred_cols: list[tuple], n_rows: int) -> bool:
    n = len(gold_cols)
    pred_sigs = [Counter(c) for c in pred_cols]
    candidates = []
    for g in gold_cols:
        sig = Counter(g)
        cands = [j for j in range(n) if pred_sigs[j] == sig]
        if not cands:
            return False
        candidates.append(cands)
    order = sorted(range(n), key=lambda i: len(candidates[i]))
    used = [False] * n

    def extend(partial: list[tuple], cols: tuple) -> list[tuple]:
        return [p + (v,) for p, v in zip(partial, cols)]

    def search(depth: int, g_part: list[tuple], p_part: list[tuple]) -> bool:
        if depth == n:
            return True
        i = order[depth]
        g_next = extend(g_part, gold_cols[i])
        g_count = Counter(g_next)
        tried: set[tuple] = set()
        for j in candidates[i]:
            if used[j] or pred_cols[j] in tried:  # an identical unused column was already tried
                continue
            tried.add(pred_cols[j])
            p_next = extend(p_part, pred_cols[j])
            if Counter(p_next) != g_count:
                continue
            used[j] = True
            if search(depth + 1, g_next, p_next):
                return True
            used[j] = False
        return False

    empty = [()] * n_rows
    return search(0, empty, empty)
