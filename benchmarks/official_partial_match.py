"""Agreement of t2s-bench's partial-match table with the official Spider evaluator, on Spider dev.

    python benchmarks/official_partial_match.py --official-dir DIR [--runs RUN_DIR ...] \
        [--out results/official_partial_match.json]

DIR holds the official test-suite-sql-eval modules, as for `official_agreement.py` (same loader,
same nltk tokenizer shim). Two comparisons per prediction set:

- per example and component: the official `Evaluator.eval_partial_match` (after the official value
  and foreign-key rebuilding, empty SQL for an unparsable prediction) against
  `t2s_bench.scoring.partial_match.partial_match`: acc, rec, f1, label_total, pred_total;
- the printed table: the official `evaluate(..., etype="match")` run on a gold file and a
  prediction file (stdout captured), against our `format_partial` / exact-match row of
  `summarize` over `score_predictions` records. The official `evaluate` reads each database's
  schema from its SQLite file: databases absent from our Spider copy (wta_1) get an empty SQLite
  file with the tables and columns of tables.json, built in a temporary folder (nothing else
  there: the folder links to the real database files).

Prediction sets: ``gold``, ``swapped``, ``mutated`` (the edits `official_agreement.py` builds), and
the committed predictions of each ``--runs`` directory (real model output; examples without a
prediction are left out of both sides). For a run, the same comparison is repeated on the
predictions the official parser can read (``run-official-readable:``): where it cannot, it scores
an empty query and we decompose the SQL (docs/SCORING.md, deliberate difference 1).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import io
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_agreement import (  # noqa: E402
    EMPTY_SQL,
    Official,
    ast_mutations,
    swapped_predictions,
    token_mutations,
)

from t2s_bench.datasets import Dataset, Example, load_dataset  # noqa: E402
from t2s_bench.scoring import score_predictions, summarize  # noqa: E402
from t2s_bench.scoring.hardness import LEVELS  # noqa: E402
from t2s_bench.scoring.partial_match import (  # noqa: E402
    COMPONENTS,
    FIELD,
    format_partial,
    partial_match,
    partial_match_official,
)
from t2s_bench.sql.components import UnsupportedSQL  # noqa: E402
from t2s_bench.sql.parse import SQLParseError  # noqa: E402

MAX_EXAMPLES = 5
KEYS = ("acc", "rec", "f1", "label_total", "pred_total")


def official_partial(official: Official, gold: str, pred: str, schema, db_id: str):
    """(scores, pred_parsed): the official per-component scores, or (None, note) on a crash."""
    ev = official.ev
    g_sql = official.ps.get_sql(schema, gold)
    try:
        p_sql = official.ps.get_sql(schema, pred.replace(" value ", " 1 "))
        parsed = True
    except Exception:
        p_sql, parsed = copy.deepcopy(EMPTY_SQL), False
    kmap = official.kmaps[db_id]
    g_valid = ev.build_valid_col_units(g_sql["from"]["table_units"], schema)
    g_sql = ev.rebuild_sql_col(g_valid, ev.rebuild_sql_val(g_sql), kmap)
    p_valid = ev.build_valid_col_units(p_sql["from"]["table_units"], schema)
    p_sql = ev.rebuild_sql_col(p_valid, ev.rebuild_sql_val(p_sql), kmap)
    evaluator = ev.Evaluator()
    evaluator.eval_exact_match(p_sql, g_sql)
    return evaluator.partial_scores, parsed


def compare_examples(pairs, official: Official, dataset: Dataset) -> tuple[dict, list]:
    """(agreement counts and examples, the pairs whose prediction the official parser reads)."""
    counts: Counter = Counter()
    readable = []
    by_component = {c: Counter() for c in COMPONENTS}
    examples = []
    for ex, pred in pairs:
        schema = dataset.schema(ex.db_id)
        off_schema = official.schema(ex.db_id, dataset.db_path(ex.db_id))
        try:
            off, parsed = official_partial(official, ex.query, pred, off_schema, ex.db_id)
        except Exception as e:  # the official matcher crashing on this pair
            counts["official_crash"] += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append({"index": ex.index, "pred": pred, "official": f"{type(e).__name__}: {e}"})
            continue
        try:
            ours = partial_match(ex.query, pred, schema)
        except (SQLParseError, UnsupportedSQL) as e:
            counts["ours_gold_undecomposable"] += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append({"index": ex.index, "gold": ex.query, "ours": str(e)})
            continue
        counts["n"] += 1
        counts["official_pred_parse_failures"] += not parsed
        # the official-compatible variant (scoring/official_parse.py reads both queries): every component equal?
        ours_off = partial_match_official(ex.query, pred, schema)
        counts["official_compatible_agree_all_components"] += all(
            int(ours_off[c][k]) == int(off[c][k]) for c in COMPONENTS for k in KEYS)
        if parsed:
            readable.append((ex, pred))
        same_all = True
        for c in COMPONENTS:
            same = all(int(ours[c][k]) == int(off[c][k]) for k in KEYS)
            by_component[c]["agree"] += same
            by_component[c]["n"] += 1
            same_all &= same
        counts["agree_all_components"] += same_all
        if not same_all:
            counts[f"disagree_official_parsed_{parsed}"] += 1
            if len(examples) < MAX_EXAMPLES:
                diff = {c: {"ours": " ".join(str(int(ours[c][k])) for k in KEYS),
                            "official": " ".join(str(int(off[c][k])) for k in KEYS)}
                        for c in COMPONENTS if any(int(ours[c][k]) != int(off[c][k]) for k in KEYS)}
                examples.append({"index": ex.index, "gold": ex.query, "pred": pred,
                                 "official_parsed_pred": parsed, "diff": diff})
    return {**dict(counts), "by_component": {c: dict(v) for c, v in by_component.items()},
            "example_fields": list(KEYS), "examples": examples}, readable


def pe_agree(per_example: dict) -> str:
    return f"{per_example.get('agree_all_components', 0)}/{per_example.get('n', 0)}"


def official_db_dir(dataset: Dataset, tables_json: Path, tmp: Path) -> Path:
    """A folder <db_id>/<db_id>.sqlite for the official `evaluate`: links to the real files, and for
    absent databases an empty SQLite file with the tables and columns of tables.json."""
    out = tmp / "database"
    for entry in json.loads(tables_json.read_text(encoding="utf-8")):
        db_id = entry["db_id"]
        (out / db_id).mkdir(parents=True, exist_ok=True)
        target = out / db_id / f"{db_id}.sqlite"
        real = dataset.db_path(db_id)
        if real is not None:
            target.symlink_to(Path(real).resolve())
            continue
        conn = sqlite3.connect(target)
        tables = entry["table_names_original"]
        cols: dict[int, list[str]] = {i: [] for i in range(len(tables))}
        for t_idx, col in entry["column_names_original"]:
            if t_idx >= 0:
                cols[t_idx].append(col)
        for i, name in enumerate(tables):
            if name.lower() == "sqlite_sequence":  # SQLite's own table: made by an AUTOINCREMENT key
                conn.execute("CREATE TABLE t2s_tmp (id INTEGER PRIMARY KEY AUTOINCREMENT)")
                conn.execute("DROP TABLE t2s_tmp")
                continue
            conn.execute(f'CREATE TABLE {_quote(name)} ({", ".join(_quote(c) for c in cols[i])})')
        conn.commit()
        conn.close()
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def official_table(official: Official, pairs, db_dir: Path, tmp: Path) -> tuple[dict[str, list[str]], str]:
    """Run the official `evaluate` (match only) and parse its partial-matching rows and exact row."""
    gold_file, pred_file = tmp / "gold.sql", tmp / "pred.sql"
    gold_file.write_text("".join(f"{ex.query}\t{ex.db_id}\n" for ex, _ in pairs), encoding="utf-8")
    pred_file.write_text("".join(f"{p}\n" for _, p in pairs), encoding="utf-8")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        official.ev.evaluate(str(gold_file), str(pred_file), str(db_dir), "match", official.kmaps, False, False, False)
    text = buf.getvalue()
    return parse_table(text), text[text.index("====================== EXACT MATCHING"):]


def parse_table(text: str) -> dict[str, list[str]]:
    """{'exact match': [5 cells], 'acc:select': [...], ...} from the printed table."""
    rows: dict[str, list[str]] = {}
    block = None
    for line in text.splitlines():
        if "PARTIAL MATCHING ACCURACY" in line:
            block = "acc"
        elif "PARTIAL MATCHING RECALL" in line:
            block = "rec"
        elif "PARTIAL MATCHING F1" in line:
            block = "f1"
        name, cells = line[:20].strip(), line[21:].split()
        if name == "exact match":
            rows[name] = cells
        elif block and name in COMPONENTS:
            rows[f"{block}:{name}"] = cells
        elif name == "count":
            rows[name] = cells
    return rows


def our_table(pairs, dataset: Dataset) -> tuple[dict[str, list[str]], str, dict]:
    synthetic = Dataset("partial-agreement", [Example(i, ex.db_id, ex.question, ex.query) for i, (ex, _) in enumerate(pairs)],
                        dataset.schemas, dataset.db_dir)
    records = score_predictions(synthetic, {i: p for i, (_, p) in enumerate(pairs)}, workers=2, timeout=30.0,
                                gold_cache=None)
    summary = summarize(records)
    levels = [*LEVELS, "all"]
    exact = summary["levels"]
    # the official divides exact match by all examples of a level: our exact_all
    exact_row = [f"{exact[lv]['exact_all']:.3f}" for lv in levels]
    text = format_partial(summary["partial"])
    rows = parse_table(text)
    rows["exact match"] = exact_row
    rows["count"] = [str(exact[lv]["count"]) for lv in levels]
    n_partial = sum(r.get(FIELD) is not None for r in records)
    return rows, text, {"n_records": len(records), "n_with_partial": n_partial}


def run_predictions(run_dir: Path) -> dict[int, str]:
    path = run_dir / "predictions.jsonl.gz"
    opener = gzip.open if path.is_file() else open
    if not path.is_file():
        path = run_dir / "predictions.jsonl"
    out = {}
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                p = json.loads(line)
                out[int(p["index"])] = " ".join((p.get("sql") or "").split())  # one line, as the official files
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official-dir", required=True, type=Path)
    ap.add_argument("--dataset", default="spider-dev")
    ap.add_argument("--sets", default="gold,swapped,mutated")
    ap.add_argument("--runs", nargs="*", default=[], type=Path, help="run directories with committed predictions")
    ap.add_argument("--out", type=Path, default=Path("results/official_partial_match.json"))
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    dataset = load_dataset(args.dataset)
    tables = dataset.db_dir.parent / "tables.json"
    official = Official(args.official_dir.resolve(), tables)

    def official_ok(sql: str) -> bool:
        try:
            official.ps.get_sql(official.schema(current_db[0], dataset.db_path(current_db[0])), sql)
            return True
        except Exception:
            return False

    current_db = [""]
    sets: dict[str, list] = {}
    wanted = args.sets.split(",") if args.sets else []
    if "gold" in wanted:
        sets["gold"] = [(ex, ex.query) for ex in dataset.examples]
    if "swapped" in wanted:
        sets["swapped"] = [(ex, pred) for ex, pred, _ in swapped_predictions(dataset.examples)]
    if "mutated" in wanted:
        pairs = []
        for ex in dataset.examples:
            current_db[0] = ex.db_id
            pairs += [(ex, sql) for _, sql in token_mutations(ex.query) + ast_mutations(ex.query, official_ok)]
        sets["mutated"] = pairs
    for run_dir in args.runs:
        preds = run_predictions(run_dir)
        sets[f"run:{run_dir.name}"] = [(ex, preds[ex.index]) for ex in dataset.examples if ex.index in preds]

    report: dict = {"dataset": args.dataset, "official": {
        "source": "taoyds/test-suite-sql-eval: evaluation.py (eval_partial_match, evaluate, print_scores), process_sql.py",
        "tokenizer_shim": official.tokenizer_shim}, "summary": {}, "sets": {}}
    with tempfile.TemporaryDirectory(prefix="t2s-partial-") as tmp_name:
        tmp = Path(tmp_name)
        db_dir = official_db_dir(dataset, tables, tmp)
        todo = list(sets.items())
        while todo:
            name, pairs = todo.pop(0)
            t0 = time.perf_counter()
            per_example, readable = compare_examples(pairs, official, dataset)
            if name.startswith("run:") and len(readable) < len(pairs):  # also: only what the official parser reads
                todo.insert(0, (name.replace("run:", "run-official-readable:"), readable))
            off_rows, off_text, ours_rows, ours_text, ours_info = {}, "", {}, "", {}
            try:
                off_rows, off_text = official_table(official, pairs, db_dir, tmp)
            except Exception as e:
                off_text = f"official evaluate crashed: {type(e).__name__}: {e}"
            ours_rows, ours_text, ours_info = our_table(pairs, dataset)
            keys = sorted(set(off_rows) | set(ours_rows))
            differing = {k: {"ours": " ".join(ours_rows.get(k) or []), "official": " ".join(off_rows.get(k) or [])}
                         for k in keys if ours_rows.get(k) != off_rows.get(k)}
            cells = sum(len(v) for k, v in off_rows.items() if k != "count")
            same_cells = sum(a == b for k in off_rows if k != "count"
                             for a, b in zip(off_rows[k], ours_rows.get(k, [])))
            report["sets"][name] = {
                "n_predictions": len(pairs),
                "per_example": per_example,
                "table": {"rows_compared": len(keys), "cells_compared": cells, "cells_equal": same_cells,
                          "identical": not differing and bool(off_rows), "differing_rows": differing,
                          "ours": ours_info},
                "seconds": round(time.perf_counter() - t0, 2),
            }
            report["summary"][name] = {
                "predictions": len(pairs), "per_example_all_components_agree": pe_agree(per_example),
                "official_compatible_all_components_agree":
                    f"{per_example.get('official_compatible_agree_all_components', 0)}/{per_example.get('n', 0)}",
                "table_cells_equal": f"{same_cells}/{cells}", "table_identical": not differing and bool(off_rows),
            }
            pe = per_example
            if name == "gold":  # the two printed tables, for the record
                report["sets"][name]["official_printed"] = off_text.splitlines()
                report["sets"][name]["ours_printed"] = ours_text.splitlines()
            print(f"{name}: {len(pairs)} predictions; per example all components agree "
                  f"{pe.get('agree_all_components', 0)}/{pe.get('n', 0)}; printed table "
                  f"{same_cells}/{cells} cells equal{' (identical)' if not differing and off_rows else ''}", flush=True)
    report["seconds"] = round(time.perf_counter() - t_start, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
