"""Scoring speed on Spider dev: t2s-bench's scorer vs a naive one-process, no-cache scorer.

    python benchmarks/bench_scoring.py [--out results/bench_scoring.json] [--workers 2]

Predictions: every executable dev question scored twice, once with its gold query as the
prediction and once with the gold query of the next question on the same database ("swapped"),
so half the verdicts are negative and execution work is realistic.

Measured in one run, on the same machine:
- ``ours``: `score_predictions` (workers=2, gold cache warmed by a first run), the full record
  (hardness, exact match, execution match, error class);
- ``ours_cold``: the same with the gold cache empty (first run);
- ``naive``: a loop in one process that opens a connection per example, executes gold and
  prediction, compares results by enumerating all column permutations (the test-suite
  evaluator's approach, without its asyncio wrapper), and computes hardness, exact match and
  the error class from scratch (same functions, no memoised parses);
- ``ours_one_process``: `score_predictions` with workers=1 and no gold cache;
- scaling: ``ours`` (warm) on the first 250 / 500 / 1000 / all predictions;
- with ``--official-dir``, the official test-suite evaluator's own per-example work (hardness,
  exact match, execution match) on the same predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from t2s_bench.datasets import Dataset, Example, load_dataset
from t2s_bench.execution import GoldCache
from t2s_bench.scoring import ExecMatchOptions, score_predictions, summarize
from t2s_bench.scoring.exec_match import results_equal_by_definition
from t2s_bench.scoring.score import prepare_for_execution
from t2s_bench.sql.parse import clear_caches, has_order_by


def build_predictions(dataset: Dataset) -> tuple[Dataset, dict[int, str]]:
    runnable = [ex for ex in dataset.examples if dataset.db_path(ex.db_id) is not None]
    by_db: dict[str, list[Example]] = {}
    for ex in runnable:
        by_db.setdefault(ex.db_id, []).append(ex)
    examples, preds = [], {}
    for ex in runnable:
        examples.append(Example(len(examples), ex.db_id, ex.question, ex.query))
        preds[examples[-1].index] = ex.query
    for ex in runnable:
        group = by_db[ex.db_id]
        other = group[(group.index(ex) + 1) % len(group)]
        examples.append(Example(len(examples), ex.db_id, ex.question, ex.query))
        preds[examples[-1].index] = other.query
    return Dataset("bench", examples, dataset.schemas, dataset.db_dir), preds


def naive_score(dataset: Dataset, preds: dict[int, str]) -> list[bool]:
    """The straightforward scorer: per example a fresh connection, gold and prediction executed in
    this process, a brute-force permutation comparison, then hardness, exact match and error class
    computed from scratch (no memoised parses)."""
    from t2s_bench.scoring import classify_error, exact_match, hardness

    out = []
    for ex in dataset.examples:
        clear_caches()
        path = dataset.db_path(ex.db_id)
        schema = dataset.schema(ex.db_id)
        gold_sql = prepare_for_execution(ex.query, False)
        pred_sql = prepare_for_execution(preds[ex.index], False)
        con = sqlite3.connect(path)
        con.text_factory = lambda b: b.decode(errors="ignore")
        try:
            gold = con.execute(gold_sql).fetchall()
            try:
                pred = con.execute(pred_sql).fetchall()
                verdict = results_equal_by_definition(gold, pred, has_order_by(gold_sql))
            except sqlite3.Error:
                verdict = False
        finally:
            con.close()
        rec = {"gold": ex.query, "pred": preds[ex.index], "exec_match": verdict, "skipped": None,
               "hardness": hardness(ex.query, schema), "exact_match": exact_match(ex.query, preds[ex.index], schema),
               "pred_error": None, "timed_out": False}
        if classify_error is not None:
            classify_error(rec, schema)
        out.append(verdict)
    return out


def official_score(official_dir: Path, dataset: Dataset, preds: dict[int, str]) -> list[bool]:
    """The official test-suite evaluator's per-example work (hardness, exact match, execution),
    from a user-provided folder (see official_agreement.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from official_agreement import Official

    official = Official(official_dir.resolve(), dataset.db_dir.parent / "tables.json")
    out = []
    for ex in dataset.examples:
        schema = official.schema(ex.db_id, dataset.db_path(ex.db_id))
        official.hardness(ex.query, schema)
        official.exact(ex.query, preds[ex.index], schema, ex.db_id)
        out.append(official.exec(dataset.db_path(ex.db_id), ex.query, preds[ex.index])[0])
    return out


def timed(fn):
    clear_caches()  # each timed run parses from scratch: "warm" means only the gold cache is warm
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="spider-dev")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("results/bench_scoring.json"))
    ap.add_argument("--official-dir", type=Path, help="also time the official evaluator (folder as in official_agreement.py)")
    args = ap.parse_args(argv)

    dataset, preds = build_predictions(load_dataset(args.dataset))
    n = len(dataset.examples)
    opts = ExecMatchOptions()
    with tempfile.TemporaryDirectory() as tmp:
        cache = GoldCache(Path(tmp) / "gold.sqlite")
        cold, t_cold = timed(lambda: score_predictions(dataset, preds, workers=args.workers, gold_cache=cache, options=opts))
        warm, t_warm = timed(lambda: score_predictions(dataset, preds, workers=args.workers, gold_cache=cache, options=opts))
        scaling = []
        for size in (250, 500, 1000, n):
            sub = dataset.filter(limit=size)
            _, t = timed(lambda: score_predictions(sub, preds, workers=args.workers, gold_cache=cache, options=opts))
            scaling.append({"n": len(sub.examples), "seconds": round(t, 3), "per_1000": round(1000 * t / len(sub.examples), 3)})
        cache.close()
    one, t_one = timed(lambda: score_predictions(dataset, preds, workers=1, gold_cache=None, options=opts))
    naive, t_naive = timed(lambda: naive_score(dataset, preds))

    official_t = None
    if args.official_dir:
        official_verdicts, official_t = timed(lambda: official_score(args.official_dir, dataset, preds))
    ours_verdicts = [r["exec_match"] for r in warm]
    agree = sum(a == b for a, b in zip(ours_verdicts, naive))
    s = summarize(warm)["levels"]["all"]
    report = {
        "dataset": args.dataset,
        "n_predictions": n,
        "workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "seconds": {
            "ours_warm_cache": round(t_warm, 3),
            "ours_cold_cache": round(t_cold, 3),
            "ours_one_process_no_cache": round(t_one, 3),
            "naive_one_process_no_cache": round(t_naive, 3),
        },
        "speedup_naive_over_ours_warm": round(t_naive / t_warm, 2),
        "speedup_one_process_over_ours_warm": round(t_one / t_warm, 2),
        "scaling_warm": scaling,
        "exec_accuracy": s["exec"],
        "exact_accuracy": s["exact"],
        "naive_agreement_exec": f"{agree}/{n}",
        "cold_equals_warm": [r["exec_match"] for r in cold] == ours_verdicts,
        "one_process_equals_warm": [r["exec_match"] for r in one] == ours_verdicts,
    }
    if official_t is not None:
        report["seconds"]["official_evaluator_one_process"] = round(official_t, 3)
        report["speedup_official_over_ours_warm"] = round(official_t / t_warm, 2)
        report["official_agreement_exec"] = f"{sum(a == b for a, b in zip(ours_verdicts, official_verdicts))}/{n}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
