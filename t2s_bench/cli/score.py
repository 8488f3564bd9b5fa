"""`t2s-bench score`: score predictions with execution and exact-set match, Spider style.

Two input forms:
  t2s-bench score --gold dev_gold.sql --pred pred.sql --db-dir database/ --tables tables.json
      (the official format: GOLD has `SQL<TAB>db_id` per line, PRED one SQL per line, aligned)
  t2s-bench score --dataset spider-dev --predictions preds.jsonl
      (JSONL with `index` and `pred_sql` or `sql`)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="score predictions (execution accuracy, exact match, per-example records)",
        description=__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("official format")
    src.add_argument("--gold", help="gold file: one `SQL<TAB>db_id` per line")
    src.add_argument("--pred", help="prediction file: one SQL per line, aligned with --gold")
    src.add_argument("--db-dir", help="folder with <db_id>/<db_id>.sqlite")
    src.add_argument("--tables", help="tables.json (optional: schemas are read from SQLite otherwise)")
    ds = p.add_argument_group("dataset form")
    ds.add_argument("--dataset", help="dataset name (demo, spider-dev, ...) or questions JSON path")
    ds.add_argument("--predictions", help="JSONL: {index, pred_sql|sql} per line")
    rd = p.add_argument_group("run directory form")
    rd.add_argument("--run", metavar="RUN_DIR", help="re-score a run directory from its predictions "
                    "(writes its scores.jsonl and metrics.json; committed runs keep only predictions)")
    p.add_argument("--out", help="write per-example score records (JSONL) here")
    p.add_argument("--summary-out", help="write the summary (JSON) here")
    p.add_argument("--workers", type=int, default=2, help="execution worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per query (default 30)")
    p.add_argument("--keep-distinct", action="store_true", help="do not remove DISTINCT before executing")
    p.add_argument("--float-tol", type=float, default=None, help="compare numbers on a grid of this step")
    p.add_argument("--no-gold-cache", action="store_true", help="execute gold queries without the cache")
    p.add_argument("--plug-value", action="store_true",
                   help="execute each prediction with the gold query's values (official --plug_value)")
    p.add_argument("--partial", action="store_true",
                   help="also print the partial-match table (per SQL component accuracy, recall, F1; "
                   "always in --summary-out)")
    p.add_argument("--suite", metavar="DIR", help="test suite of databases (DIR/<db_id>/*.sqlite, built by "
                   "`t2s-bench suite build` or the official distilled suite): adds test-suite execution "
                   "accuracy (EX-suite), correct only when the result matches on every variant")
    p.set_defaults(func=run)


def load_inputs(args):
    """(dataset, predictions) from either input form; raises ValueError on bad combinations."""
    from t2s_bench.datasets import dataset_from_gold_file, load_dataset, load_pred_file

    if args.gold or args.pred:
        if not (args.gold and args.pred and args.db_dir):
            raise ValueError("--gold, --pred and --db-dir go together")
        if args.dataset or args.predictions:
            raise ValueError("use either --gold/--pred or --dataset/--predictions, not both")
        dataset = dataset_from_gold_file(args.gold, args.tables, args.db_dir)
        preds = load_pred_file(args.pred)
        while len(preds) > len(dataset.examples) and not preds[-1]:
            preds.pop()  # blank lines at the end of the file are not predictions
        if len(preds) < len(dataset.examples):
            log.warning("%s has %d lines for %d gold queries: the rest count as missing predictions",
                        args.pred, len(preds), len(dataset.examples))
        elif len(preds) > len(dataset.examples):
            raise ValueError(f"{args.pred} has {len(preds)} lines but {args.gold} has {len(dataset.examples)} queries")
        return dataset, {i: sql for i, sql in enumerate(preds)}
    if args.dataset and args.predictions:
        dataset = load_dataset(args.dataset, tables=args.tables, db_dir=args.db_dir)
        return dataset, load_prediction_jsonl(args.predictions)
    raise ValueError("give --gold/--pred/--db-dir (official format) or --dataset/--predictions")


def load_prediction_jsonl(path: str | Path) -> dict[int, str]:
    """index -> SQL from a JSONL file; a bad line raises ValueError naming the file and line."""
    out: dict[int, str] = {}
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from e
            if not isinstance(rec, dict) or "index" not in rec:
                raise ValueError(f"{path}:{n}: expected an object with 'index' and 'pred_sql' (or 'sql')")
            try:
                index = int(rec["index"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{n}: 'index' must be an integer, not {rec['index']!r}") from None
            sql = rec.get("pred_sql", rec.get("sql"))
            out[index] = sql if isinstance(sql, str) else ""
    return out


def run(args) -> int:
    from t2s_bench.rundir import write_records
    from t2s_bench.scoring import ExecMatchOptions, format_table, score_predictions, summarize

    if args.run:
        from t2s_bench.api import load_run
        from t2s_bench.runner import score_run

        result = load_run(score_run(args.run, workers=args.workers, timeout=args.timeout, suite=_suite(args),
                                    plug_value=True if args.plug_value else None))
        print(format_table(result.metrics, tables=args.partial))
        print(f"\nscored: {result.path / 'scores.jsonl'}")
        return 0
    dataset, preds = load_inputs(args)
    options = ExecMatchOptions(float_tolerance=args.float_tol, keep_distinct=args.keep_distinct)
    records = score_predictions(
        dataset, preds, workers=args.workers, timeout=args.timeout, options=options,
        gold_cache=not args.no_gold_cache, suite=_suite(args), plug_value=args.plug_value,
    )
    summary = summarize(records)
    summary["plug_value"] = args.plug_value
    print(format_table(summary, tables=args.partial))
    if args.out:
        write_records(args.out, records)
        print(f"\nper-example records: {args.out}")
    if args.summary_out:
        Path(args.summary_out).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


def _suite(args) -> str | None:
    from t2s_bench.suites.execute import resolve_suite_dir

    return resolve_suite_dir(getattr(args, "suite", None))
