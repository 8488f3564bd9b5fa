"""Reporting: statistics against known values, analysis of fixture runs, HTML/MD/JSON rendering."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import sqlglot

from t2s_bench.cli import main as cli_main
from t2s_bench.datasets.schema import Schema
from t2s_bench.reporting import analysis as an
from t2s_bench.reporting import statistics as st
from t2s_bench.reporting.render import highlight_sql, render_dataset_report, render_report

HOSTILE = "SELECT name FROM singer WHERE name = '</script><script>alert(1)</script>'"

DDL = """
CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, concert_name TEXT, year INTEGER);
CREATE TABLE singer_in_concert (concert_id INTEGER, singer_id INTEGER);
INSERT INTO singer VALUES (1,'Joe','France',52),(2,'Timbaland','United States',32),(3,'Rose','France',41),
    (4,'Justin','United States',29),(5,'Tribal','Netherlands',25);
INSERT INTO concert VALUES (1,'Auditions',2014),(2,'Super bootcamp',2014),(3,'Home Visits',2015);
INSERT INTO singer_in_concert VALUES (1,2),(1,3),(2,3),(3,5),(3,1);
"""

# (question, gold, hardness, prediction of system A, prediction of system B)
QUESTIONS = [
    ("How many singers are there?", "SELECT count(*) FROM singer", "easy",
     "SELECT count(*) FROM singer", "SELECT count(*) FROM singer"),
    ("Names of singers from France?", "SELECT name FROM singer WHERE country = 'France'", "easy",
     "SELECT name FROM singer WHERE country = 'france'", "SELECT name FROM singer WHERE country = 'France'"),
    ("Average age of singers?", "SELECT avg(age) FROM singer", "easy",
     "SELECT sum(age) FROM singer", "SELECT avg(age) FROM singer"),
    ("Oldest singer's name?", "SELECT name FROM singer ORDER BY age DESC LIMIT 1", "medium",
     "SELECT name FROM singer ORDER BY age ASC LIMIT 1", "SELECT name FROM singer ORDER BY age DESC LIMIT 1"),
    ("Singers per country?", "SELECT country, count(*) FROM singer GROUP BY country", "medium",
     "SELECT country, count(*) FROM singers GROUP BY country", "SELECT country, count(*) FROM singer GROUP BY country"),
    ("Concerts in 2014?", "SELECT concert_name FROM concert WHERE year = 2014", "easy",
     "SELECT concert_name FROM concert WHERE year = 2014", "", ),
    ("Names of singers in a concert in 2015?",
     "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id "
     "JOIN concert AS T3 ON T2.concert_id = T3.concert_id WHERE T3.year = 2015", "hard",
     "SELECT name FROM singer WHERE age > 40",
     "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id "
     "JOIN concert AS T3 ON T2.concert_id = T3.concert_id WHERE T3.year = 2015"),
    ("Singers older than average?", "SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer)", "extra",
     "SELECT name FROM singer WHERE age > (SELECT avg(age) FROM", "SELECT name, age FROM singer WHERE age > (SELECT avg(age) FROM singer)"),
    ("Countries with singers older than 30 and singers younger than 30?",
     "SELECT country FROM singer WHERE age > 30 INTERSECT SELECT country FROM singer WHERE age < 30", "extra",
     "SELECT country FROM singer WHERE age > 40", HOSTILE),
    ("Names of singers not in any concert?",
     "SELECT name FROM singer WHERE singer_id NOT IN (SELECT singer_id FROM singer_in_concert)", "hard",
     "SELECT name FROM singer WHERE singer_id NOT IN (SELECT singer_id FROM singer_in_concert)",
     "SELECT full_name FROM singer"),
]


def _exec(db: Path, sql: str):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cur = con.execute(sql)
        return [d[0] for d in cur.description or []], cur.fetchall(), None
    except sqlite3.Error as e:
        return [], None, str(e)
    finally:
        con.close()


def _norm(sql: str) -> str:
    try:
        return sqlglot.parse_one(sql, read="sqlite").sql().lower()
    except Exception:
        return ""


def _record(i, db, db_id, question, gold, hardness, pred) -> dict:
    from t2s_bench.scoring.errors import classify_error

    gcols, grows, _ = _exec(db, gold)
    pcols, prows, perr = _exec(db, pred) if pred.strip() else ([], None, None)
    order = "order by" in gold.lower()
    match = prows is not None and (prows == grows if order else Counter(prows) == Counter(grows))
    rec = {
        "index": i, "db_id": db_id, "question": question, "gold": gold, "pred": pred, "hardness": hardness,
        "exec_match": match, "exact_match": bool(pred.strip()) and _norm(pred) == _norm(gold),
        "pred_error": perr, "timed_out": False, "skipped": None, "error_class": None, "error_reason": "",
        "gold_result": {"columns": gcols, "rows": [list(r) for r in grows[:10]], "n_rows": len(grows)},
        "pred_result": None if prows is None else {"columns": pcols, "rows": [list(r) for r in prows[:10]],
                                                    "n_rows": len(prows)},
    }
    schema = Schema.from_sqlite(db, db_id)
    rec["error_class"], rec["error_reason"] = classify_error(rec, schema)
    return rec


def write_run_dir(path: Path, system: str, records: list[dict], curves: list[dict] | None = None) -> Path:
    """A run directory shaped as in docs/ARCHITECTURE.md."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({
        "config_hash": f"{abs(hash(system)):016x}", "run": {"system": system, "dataset": "fixture"},
        "dataset": {"name": "fixture-not-registered", "n_selected": len(records)}, "system": {"name": system},
    }))
    (path / "metrics.json").write_text(json.dumps({"system": system, "throughput": {"latency_p50_s": 0.5,
                                                                                   "latency_p95_s": 1.2}}))
    with open(path / "predictions.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps({"index": r["index"], "sql": r["pred"], "raw_output": r["pred"]}) + "\n")
    with open(path / "scores.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    if curves:
        (path / "curves.json").write_text(json.dumps(curves))
    return path


def make_fixture_runs(root: Path, *, extra_skipped: bool = True) -> list[Path]:
    """Two systems over the same 10 questions (+1 skipped), records from real SQLite execution."""
    db = root / "db" / "concert_singer" / "concert_singer.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    if not db.exists():
        con = sqlite3.connect(db)
        con.executescript(DDL)
        con.commit()
        con.close()
    runs = []
    for name, col in (("zero-shot", 3), ("few-shot", 4)):
        recs = [_record(i, db, "concert_singer", q[0], q[1], q[2], q[col]) for i, q in enumerate(QUESTIONS)]
        if extra_skipped:
            recs.append({
                "index": len(QUESTIONS), "db_id": "absent_db", "question": "Skipped?", "gold": "SELECT 1",
                "pred": None, "hardness": "easy", "exec_match": None, "exact_match": None, "pred_error": None,
                "timed_out": False, "skipped": "missing database", "error_class": "skipped",
                "error_reason": "missing database", "gold_result": None, "pred_result": None,
            })
        curves = None
        if name == "few-shot":
            curves = [{"step": s, "train_loss": 2.0 / (1 + s / 20), "val_loss": (2.2 / (1 + s / 25)) if s % 20 == 0 else None,
                       "val_exec_acc": (0.3 + s / 400) if s % 20 == 0 else None, "lr": 2e-4} for s in range(0, 101, 5)]
        runs.append(write_run_dir(root / name, name, recs, curves))
    return runs


@pytest.fixture
def run_dirs(tmp_path):
    return make_fixture_runs(tmp_path)


# ---------------------------------------------------------------- statistics


def test_mcnemar_exact_known_values():
    # b=10, c=2: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert st.mcnemar_exact(10, 2) == pytest.approx(2 * 79 / 4096)
    assert st.mcnemar_exact(2, 10) == pytest.approx(0.03857421875)
    assert st.mcnemar_exact(0, 0) == 1.0
    assert st.mcnemar_exact(5, 5) == 1.0
    # b=0, c=6: 2 * 0.5**6
    assert st.mcnemar_exact(0, 6) == pytest.approx(0.03125)
    with pytest.raises(ValueError):
        st.mcnemar_exact(-1, 2)


def test_bootstrap_ci_matches_normal_approximation_and_is_seeded():
    values = np.array([1] * 600 + [0] * 400)
    low, high = st.bootstrap_ci(values, n_resamples=4000, seed=1)
    se = math.sqrt(0.6 * 0.4 / 1000)
    assert low == pytest.approx(0.6 - 1.96 * se, abs=0.006)
    assert high == pytest.approx(0.6 + 1.96 * se, abs=0.006)
    assert st.bootstrap_ci(values, seed=3) == st.bootstrap_ci(values, seed=3)
    assert all(math.isnan(v) for v in st.bootstrap_ci([], seed=3))
    acc = st.accuracy(values)
    assert (acc.correct, acc.n, acc.accuracy) == (600, 1000, 0.6)


def test_paired_comparison():
    rng = np.random.default_rng(0)
    base = rng.random(500) < 0.5
    system = base.copy()
    flip = rng.choice(500, 60, replace=False)
    system[flip[:45]] = True  # mostly improvements
    system[flip[45:]] = False
    cmp = st.compare_paired(base, system, seed=0)
    assert cmp.only_system == int(np.sum(system & ~base))
    assert cmp.only_baseline == int(np.sum(base & ~system))
    assert cmp.difference == pytest.approx(system.mean() - base.mean())
    assert cmp.low < cmp.difference < cmp.high
    assert cmp.relative == pytest.approx(cmp.difference / base.mean())
    assert cmp.p_value == pytest.approx(st.mcnemar_exact(cmp.only_system, cmp.only_baseline))
    same = st.compare_paired(base, base)
    assert (same.difference, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        st.paired_bootstrap_diff([1, 0], [1])


# ---------------------------------------------------------------- analysis


def test_load_run_and_summary(run_dirs):
    runs = an.load_runs(run_dirs)
    zs, fs = runs
    assert zs.name == "zero-shot" and len(zs.records) == 11
    assert zs.records.loc[10, "skipped"] == "missing database"
    s = {r["system"]: r for r in an.summary(runs, n_resamples=200)}
    # zero-shot: correct on questions 0, 5, 9 of 10 scored
    assert s["zero-shot"]["cells"]["overall"]["exec"]["correct"] == 3
    assert s["zero-shot"]["cells"]["overall"]["exec"]["n"] == 10
    assert s["zero-shot"]["skipped"] == 1
    assert s["few-shot"]["cells"]["overall"]["exec"]["correct"] == 6
    assert s["few-shot"]["cells"]["easy"]["exec"]["n"] == 4
    assert "schemas unavailable" in " ".join(zs.notes)


def test_gold_features_and_breakdowns(run_dirs):
    runs = an.load_runs(run_dirs)
    df = runs[0].records
    assert df.loc[6, "n_gold_tables"] == 3
    assert bool(df.loc[2, "has_aggregation"]) and not bool(df.loc[1, "has_aggregation"])
    assert bool(df.loc[7, "has_nesting"]) and bool(df.loc[8, "has_nesting"]) and not bool(df.loc[0, "has_nesting"])
    bd = an.breakdown(runs, "n_gold_tables")
    three = bd[(bd["group"] == "3") & (bd["system"] == "few-shot")].iloc[0]
    assert three["n"] == 1 and three["exec"] == 1.0
    nest = an.breakdown(runs, "nesting")
    yes = nest[(nest["group"] == "yes") & (nest["system"] == "zero-shot")].iloc[0]
    assert yes["n"] == 3 and yes["exec"] == pytest.approx(1 / 3)
    assert "db_questions" in an.available_breakdowns(runs)


def test_schema_sizes_when_schemas_given(run_dirs, tmp_path):
    schema = Schema.from_sqlite(tmp_path / "db" / "concert_singer" / "concert_singer.sqlite", "concert_singer")
    runs = an.load_runs(run_dirs, schemas={"concert_singer": schema, "absent_db": schema})
    assert runs[0].records["schema_tables"].iloc[0] == 3
    assert "schema_tables" in an.available_breakdowns(runs)


def test_error_distribution_and_case_studies(run_dirs):
    runs = an.load_runs(run_dirs)
    dist = an.error_distribution(runs)
    zs = dist.loc["zero-shot"]
    assert zs["hallucinated_schema"] == 1 and zs["syntax_error"] == 1 and zs["wrong_aggregation"] == 1
    assert zs["wrong_value"] == 1 and zs["wrong_ordering"] == 1 and zs["skipped"] == 1
    assert dist.loc["few-shot", "empty_output"] == 1
    assert int(dist.loc["zero-shot"].sum()) == 11 - 3
    cases = an.case_studies(runs, per_class=2)
    assert cases == an.case_studies(runs, per_class=2)  # deterministic
    assert {c["error_class"] for c in cases if c["system"] == "zero-shot"} >= {"syntax_error", "wrong_value"}
    assert all(c["error_class"] != "skipped" for c in cases)


def test_missing_error_classes_are_computed(tmp_path):
    (path,) = make_fixture_runs(tmp_path / "a", extra_skipped=False)[:1]
    lines = [json.loads(x) for x in (path / "scores.jsonl").read_text().splitlines()]
    for r in lines:
        r.pop("error_class"), r.pop("error_reason")
    (path / "scores.jsonl").write_text("\n".join(json.dumps(r) for r in lines))
    run = an.load_run(path)
    assert run.records.loc[2, "error_class"] == "wrong_aggregation"
    assert pd_isna(run.records.loc[0, "error_class"])


def pd_isna(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def test_bad_run_dirs(tmp_path):
    with pytest.raises(FileNotFoundError):
        an.load_run(tmp_path)
    (tmp_path / "scores.jsonl").write_text('{"index": 0}\nnot json\n')
    with pytest.raises(ValueError, match=":2:"):
        an.load_run(tmp_path)


def test_baseline_comparison(run_dirs):
    runs = an.load_runs(run_dirs)
    (cmp,) = an.compare_to_baseline(runs, "zero-shot", n_resamples=300)
    ex = cmp["exec"]
    assert ex["n"] == 10
    # zero-shot right on {0,5,9}; few-shot right on {0,1,2,3,4,6}
    assert (ex["only_system"], ex["only_baseline"]) == (5, 2)
    assert ex["difference"] == pytest.approx(0.3)
    assert ex["p_value"] == pytest.approx(st.mcnemar_exact(5, 2))
    with pytest.raises(ValueError, match="baseline"):
        an.compare_to_baseline(runs, "nope")


# ---------------------------------------------------------------- rendering


def test_highlight_escapes_and_marks_keywords():
    html = str(highlight_sql(HOSTILE))
    assert "<script>" not in html and "&lt;/script&gt;" in html
    assert '<span class="k">SELECT</span>' in html and '<span class="s">' in html
    assert re.sub(r"<[^>]+>", "", html).replace("&lt;", "<").replace("&gt;", ">").replace("&#x27;", "'") == HOSTILE
    assert str(highlight_sql("SELECT 'unterminated")) .startswith("SELECT")


def test_html_report_sections_and_escaping(run_dirs, tmp_path):
    runs = an.load_runs(run_dirs)
    out = render_report(runs, tmp_path / "r.html", baseline="zero-shot", n_resamples=200)
    html = out.read_text()
    for anchor in ("summary", "baseline", "difficulty", "errors", "breakdowns", "curves", "cases", "browser", "runs"):
        assert f'id="{anchor}"' in html, anchor
    assert html.count("data:image/svg+xml;base64,") >= 4  # exec, exact, errors, curves
    # hostile SQL never appears raw: one <script> for the JSON data and one for the browser code
    assert "<script>alert(1)" not in html
    assert html.count("<script") == 2
    data = json.loads(re.search(r'id="examples-data">(.*?)</script>', html, re.S).group(1))
    assert len(data["examples"]) == 11 and data["systems"] == ["zero-shot", "few-shot"]
    hostile_pred = next(p for x in data["examples"] for p in x["p"] if "alert" in p[1])
    assert "&lt;/script&gt;" in hostile_pred[1]
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no CDN


def test_markdown_and_json_formats(run_dirs, tmp_path):
    runs = an.load_runs(run_dirs)
    md = render_report(runs, tmp_path / "r.md", fmt="md", baseline="zero-shot", n_resamples=200).read_text()
    assert md.splitlines()[0].startswith("| System | Easy")
    assert "| few-shot |" in md and "McNemar" in md
    data = json.loads(render_report(runs, tmp_path / "r.json", fmt="json", n_resamples=200).read_text())
    assert data["summary"][1]["cells"]["overall"]["exec"]["accuracy"] == pytest.approx(0.6)
    assert data["comparisons"][0]["exec"]["only_system"] == 5
    assert set(data["breakdowns"]) >= {"hardness", "n_gold_tables", "aggregation", "nesting", "db_id"}
    with pytest.raises(ValueError):
        render_report(runs, tmp_path / "r.x", fmt="pdf")


def test_cli_report(run_dirs, tmp_path, capsys):
    out = tmp_path / "reports" / "cmp.html"
    rc = cli_main(["report", *map(str, run_dirs), "--out", str(out), "--baseline", "few-shot", "--resamples", "100"])
    assert rc == 0 and out.is_file()
    assert "wrote" in capsys.readouterr().out
    assert cli_main(["report", str(run_dirs[0]), "--out", str(tmp_path / "x.json")]) == 0
    assert json.loads((tmp_path / "x.json").read_text())["systems"] == ["zero-shot"]
    assert cli_main(["report", str(tmp_path / "missing")]) == 2


def test_dataset_report(tmp_path):
    stats = {
        "name": "spider-dev", "n_examples": 1034, "n_databases": 20, "missing_databases": ["wta_1"],
        "hardness": {"easy": 248, "medium": 446, "hard": 174, "extra": 166},
        "per_database": {"concert_singer": {"questions": 45, "tables": 4, "columns": 21},
                         "pets_1": {"questions": 42, "tables": 3, "columns": 15}},
        "question_length": {"mean": 12.3, "p95": 22},
        "hostile": "<img src=x onerror=alert(1)>",
    }
    html = render_dataset_report(stats, tmp_path / "d.html").read_text()
    assert "concert_singer" in html and "1,034" in html and "446" in html
    assert "<img src=x" not in html and "&lt;img" in html
    with pytest.raises(ValueError):
        render_dataset_report(["not a dict"], tmp_path / "e.html")
    both = render_dataset_report([stats, dict(stats, name="spider-train", n_examples=7000)],
                                 tmp_path / "two.html").read_text()
    assert "spider-train" in both and "7,000" in both and both.count("concert_singer") == 2
