"""Report size and speed at Spider-dev scale: 1,034 examples × 4 synthetic systems.

Synthetic systems are derived from the real Spider dev questions: each keeps the gold SQL with a
system-specific probability, otherwise applies one sqlglot AST perturbation (aggregate swap, value
change, dropped condition, flipped ORDER BY, hallucinated table, truncation, empty output, another
question's SQL). Every query really runs on the Spider SQLite files, and every failure is classified
with `classify_error`, as the scorer does. Timed: loading the runs, rendering HTML/MD/JSON, and
loading the HTML in headless Chromium (its startup measured separately on an empty page).

    python benchmarks/bench_report.py [--out results/bench_report.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import sqlglot
from sqlglot import exp

from t2s_bench import paths
from t2s_bench.datasets import load_dataset
from t2s_bench.execution import execute
from t2s_bench.reporting.analysis import load_runs
from t2s_bench.reporting.render import render_report
from t2s_bench.scoring.errors import classify_error

SYSTEMS = {"small-zero-shot": 0.45, "small-few-shot": 0.58, "large-zero-shot": 0.70, "qlora-finetuned": 0.79}
AGG_SWAP = {exp.Count: exp.Sum, exp.Sum: exp.Avg, exp.Avg: exp.Max, exp.Max: exp.Min, exp.Min: exp.Max}


def perturb(sql: str, kind: str, rng: random.Random, other_sql: str) -> str:
    """One wrong prediction of the given kind (falls back to another question's SQL when not applicable)."""
    if kind == "empty":
        return ""
    if kind == "truncate":
        return sql[: max(8, int(len(sql) * rng.uniform(0.4, 0.8)))]
    if kind == "other_question":
        return other_sql
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except Exception:
        return other_sql
    if kind == "agg":
        aggs = [a for a in tree.find_all(exp.AggFunc) if type(a) in AGG_SWAP]
        if aggs:
            a = rng.choice(aggs)
            a.replace(AGG_SWAP[type(a)](this=a.this.copy()))
            return tree.sql(dialect="sqlite")
    if kind == "value":
        lits = [lit for lit in tree.find_all(exp.Literal) if not isinstance(lit.parent, exp.Limit)]
        if lits:
            lit = rng.choice(lits)
            new = (exp.Literal.number(int(float(lit.this)) + rng.choice([1, 5, 10])) if lit.is_number
                   else exp.Literal.string(lit.this.lower() if lit.this != lit.this.lower() else lit.this + "s"))
            lit.replace(new)
            return tree.sql(dialect="sqlite")
    if kind == "filter":
        where = tree.find(exp.Where)
        if where is not None:
            conj = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
            if len(conj) > 1:
                drop = rng.randrange(len(conj))
                where.set("this", exp.and_(*[c.copy() for i, c in enumerate(conj) if i != drop]))
            else:
                where.pop()
            return tree.sql(dialect="sqlite")
    if kind == "order":
        order = tree.find(exp.Ordered)
        if order is not None:
            order.set("desc", not order.args.get("desc"))
            return tree.sql(dialect="sqlite")
    if kind == "hallucinate":
        table = tree.find(exp.Table)
        if table is not None:
            table.set("this", exp.to_identifier(table.name + "s"))
            return tree.sql(dialect="sqlite")
    return other_sql


KINDS = ["agg", "value", "filter", "order", "hallucinate", "truncate", "other_question", "other_question", "empty"]


def same_result(gold, pred, ordered: bool) -> bool:
    if not gold.ok or not pred.ok:
        return False
    return gold.rows == pred.rows if ordered else Counter(gold.rows) == Counter(pred.rows)


def build_runs(root: Path, n_systems: int) -> tuple[list[Path], dict]:
    ds = load_dataset("spider-dev")
    try:
        from t2s_bench.scoring.hardness import hardness as spider_hardness
        hardness_source = "t2s_bench.scoring.hardness"
    except Exception:  # scorer not available: a coarse proxy keeps the report's layout realistic
        spider_hardness = None
        hardness_source = "proxy (query length)"
    by_db: dict[str, list] = {}
    for ex in ds.examples:
        by_db.setdefault(ex.db_id, []).append(ex)
    t0 = time.perf_counter()
    gold_results, hard = {}, {}
    for ex in ds.examples:
        path = ds.db_path(ex.db_id)
        gold_results[ex.index] = execute(path, ex.query, timeout=10) if path else None
        if spider_hardness is not None:
            try:
                hard[ex.index] = spider_hardness(ex.query, ds.schemas.get(ex.db_id))
            except Exception:
                hard[ex.index] = "unknown"
        else:
            n = len(ex.query)
            hard[ex.index] = "easy" if n < 50 else "medium" if n < 90 else "hard" if n < 140 else "extra"
    dirs, n_exec = [], 0
    for s, (name, p_correct) in enumerate(list(SYSTEMS.items())[:n_systems]):
        rng = random.Random(1000 + s)
        records = []
        for ex in ds.examples:
            path, gold = ds.db_path(ex.db_id), gold_results[ex.index]
            rec = {"index": ex.index, "db_id": ex.db_id, "question": ex.question, "gold": ex.query,
                   "hardness": hard[ex.index], "timed_out": False, "skipped": None}
            if path is None:
                rec.update(pred=None, exec_match=None, exact_match=None, pred_error=None,
                           skipped="missing database", gold_result=None, pred_result=None)
                rec["error_class"], rec["error_reason"] = classify_error(rec, None)
                records.append(rec)
                continue
            # harder questions fail more often, as real systems do
            penalty = {"easy": -0.12, "medium": 0.0, "hard": 0.12, "extra": 0.22}.get(rec["hardness"], 0.0)
            if rng.random() < p_correct - penalty:
                pred = ex.query
                result = gold
            else:
                other = rng.choice(by_db[ex.db_id]).query
                pred = perturb(ex.query, rng.choice(KINDS), rng, other)
                result = execute(path, pred, timeout=5)
                n_exec += 1
            ordered = "order by" in ex.query.lower()
            match = same_result(gold, result, ordered)
            rec.update(pred=pred, exec_match=match, exact_match=pred == ex.query,
                       pred_error=None if result.ok else result.error, timed_out=result.timed_out,
                       gold_result=gold.to_json(), pred_result=result.to_json())
            rec["error_class"], rec["error_reason"] = classify_error(rec, ds.schemas.get(ex.db_id))
            records.append(rec)
        d = root / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"config_hash": f"{s:064x}", "run": {"system": name},
                                                   "dataset": {"name": "spider-dev", "n_selected": len(records)}}))
        (d / "metrics.json").write_text(json.dumps({"system": name}))
        with open(d / "scores.jsonl", "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        dirs.append(d)
    info = {"n_examples": len(ds.examples), "n_systems": len(dirs), "hardness_source": hardness_source,
            "synthetic_build_s": round(time.perf_counter() - t0, 2), "pred_queries_executed": n_exec}
    return dirs, info


def chromium_load(html: Path, profile: Path) -> dict:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        return {"chromium": "absent"}
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={profile}", "--dump-dom"]
    empty = profile.parent / "empty.html"
    empty.write_text("<!DOCTYPE html><title>x</title>")
    times, dom_rows, errors = {}, 0, []
    for label, page in (("empty_page", empty), ("report", html)):
        best = None
        for _ in range(3):
            t0 = time.perf_counter()
            proc = subprocess.run(base + [page.resolve().as_uri()], capture_output=True, text=True, timeout=300)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        times[label] = round(best, 3)
        if label == "report":
            dom_rows = proc.stdout.count('class="card ex-row"')
            errors = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln and "Uncaught" in ln]
    return {"chromium_dump_dom_s": times, "chromium_report_overhead_s": round(times["report"] - times["empty_page"], 3),
            "browser_rows_on_first_page": dom_rows, "console_errors": errors}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(paths.REPO_ROOT / "results" / "bench_report.json"))
    ap.add_argument("--systems", type=int, default=4)
    ap.add_argument("--keep", help="keep the synthetic run dirs and the report in this folder")
    args = ap.parse_args(argv)
    if paths.spider_dir() is None:
        print("Spider not found (T2S_SPIDER_DIR): nothing to benchmark", file=sys.stderr)
        return 1
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_report_"))
    if args.keep and tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        dirs, info = build_runs(tmp / "runs", args.systems)
        t0 = time.perf_counter()
        runs = load_runs(dirs)
        t_load = time.perf_counter() - t0
        out = {}
        for fmt in ("html", "md", "json"):
            t0 = time.perf_counter()
            path = render_report(runs, tmp / f"report.{fmt}", fmt=fmt, baseline=runs[0].name)
            out[fmt] = {"render_s": round(time.perf_counter() - t0, 2), "bytes": path.stat().st_size}
        html = tmp / "report.html"
        text = html.read_text(encoding="utf-8")
        start = text.find('id="examples-data">')
        embedded = text.find("</script>", start) - start if start >= 0 else 0
        result = {
            **info,
            "load_runs_s": round(t_load, 2),
            "formats": out,
            "html_mib": round(out["html"]["bytes"] / 2**20, 2),
            "embedded_example_json_mib": round(embedded / 2**20, 2),
            **chromium_load(html, tmp / "profile"),
            "accuracy": {r.name: round(float(r.records["exec_match"].dropna().astype(bool).mean()), 3) for r in runs},
            "machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count(),
                        "platform": platform.platform()},
        }
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
