"""Spider's partial-match table (scoring/partial_match.py): per-example component scores, the
official aggregation, the metric seam (records, summarize, text table, JSON/HTML report), and, when
a folder with the official evaluator is given ($T2S_OFFICIAL_DIR), agreement with it on Spider dev."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from t2s_bench.datasets import load_dataset
from t2s_bench.scoring import format_table, score_predictions, summarize
from t2s_bench.scoring.metrics import TABLE_METRICS, table_metrics
from t2s_bench.scoring.partial_match import COMPONENTS, format_partial, partial_match, summarize_partial

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


def scores(demo, gold: str, pred: str, db: str = "school") -> dict[str, tuple]:
    out = partial_match(gold, pred, demo.schema(db))
    return {c: (s["f1"], s["label_total"], s["pred_total"]) for c, s in out.items()}


def test_identical_query_scores_one_everywhere(demo):
    gold = demo.examples[15].query  # join, nested WHERE, GROUP BY ... HAVING
    out = partial_match(gold, gold, demo.schema("school"))
    assert list(out) == list(COMPONENTS)
    assert all(s["acc"] == s["rec"] == s["f1"] == 1 for s in out.values())
    assert out["group"]["label_total"] == 1 and out["where"]["label_total"] == 1


def test_components_on_a_wrong_prediction(demo):
    gold = "SELECT name , budget FROM department WHERE building = 'Old Library' AND budget > 10"
    pred = "SELECT name , max(budget) FROM department WHERE building = 'x' OR budget < 10 ORDER BY name"
    s = scores(demo, gold, pred)
    assert s["select"] == (0, 2, 2)  # budget vs max(budget): one of two units matches
    assert s["select(no AGG)"] == (1, 2, 2)  # without the aggregate both columns match
    assert s["where"] == (0, 2, 2)  # `budget < 10` is another operator
    assert s["where(no OP)"] == (1, 2, 2)  # same value units
    assert s["order"] == (0, 0, 1)  # only the prediction orders
    assert s["and/or"] == (0, 1, 1)  # {and} vs {or}: the official swapped totals (1, 1)
    assert s["group"] == (1, 0, 0) and s["IUEN"] == (1, 0, 0)
    assert s["keywords"] == (0, 1, 4)  # {where} vs {where, or, order, asc}


def test_group_by_compares_column_names_without_table(demo):
    gold = "SELECT T1.name FROM department AS T1 JOIN teacher AS T2 ON T1.dept_id = T2.dept_id GROUP BY T1.name"
    pred = "SELECT T1.name FROM department AS T1 JOIN teacher AS T2 ON T1.dept_id = T2.dept_id GROUP BY T2.name"
    s = scores(demo, gold, pred)
    assert s["group(no Having)"] == (1, 1, 1)  # `name` either way
    assert s["group"] == (0, 1, 1)  # but not the same column


def test_set_operation_operands_use_exact_match(demo):
    gold = demo.examples[45].query  # ... INTERSECT ...
    same_shape = gold.replace("'FRA'", "'CDG'")  # values are ignored
    assert scores(demo, gold, same_shape, "flights")["IUEN"] == (1, 1, 1)
    union = gold.replace("INTERSECT", "UNION")
    assert scores(demo, gold, union, "flights")["IUEN"] == (0, 1, 1)


def test_unreadable_prediction_is_the_empty_query(demo):
    s = scores(demo, demo.examples[3].query, "SELEC name FROM nowhere")
    assert s["select"] == (0, 1, 0) and s["where"] == (0, 1, 0)
    assert s["order"] == (1, 0, 0)  # neither side: a match, as officially


def test_official_aggregation_rules():
    one = {c: {"acc": 1, "rec": 1, "f1": 1, "label_total": 1, "pred_total": 1} for c in COMPONENTS}
    miss = {c: {"acc": 0, "rec": 0, "f1": 0, "label_total": 1, "pred_total": 0} for c in COMPONENTS}
    extra = {c: {"acc": 0, "rec": 0, "f1": 0, "label_total": 0, "pred_total": 2} for c in COMPONENTS}
    records = [{"hardness": "easy", "exact_match": True, "partial_match": one},
               {"hardness": "easy", "exact_match": False, "partial_match": miss},
               {"hardness": "hard", "exact_match": False, "partial_match": extra},
               {"hardness": "hard", "exact_match": None, "partial_match": one}]  # gold not decomposable: left out
    summary = summarize_partial(records)
    easy = summary["easy"]["select"]
    assert (easy["acc"], easy["n_acc"], easy["rec"], easy["n_rec"]) == (1.0, 1, 0.5, 2)  # acc over pred_total > 0
    assert easy["f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    hard = summary["hard"]["select"]
    assert (hard["acc"], hard["n_acc"], hard["n_rec"], hard["f1"]) == (0.0, 1, 0, 1.0)  # both 0: F1 is 1 (official)
    assert summary["medium"] is None and summary["n"] == 3
    text = format_partial(summary)
    assert text.splitlines()[0].startswith("---------------------PARTIAL MATCHING ACCURACY")
    row = next(line for line in text.splitlines() if line.startswith("select   "))
    assert row.split()[1:] == ["1.000", "-", "0.000", "-", "0.500"]


def test_metric_seam_records_summary_table_and_report(demo, tmp_path):
    assert "partial" in TABLE_METRICS and [t.name for t in table_metrics()][0] == "partial"
    preds = {ex.index: ex.query for ex in demo.examples[:6]}
    preds[1] = "SELECT age FROM student"  # a readable, wrong prediction
    records = score_predictions(demo.filter(limit=8), preds, workers=1, gold_cache=None)
    assert records[0]["partial_match"]["select"]["f1"] == 1
    summary = summarize(records)
    part = summary["partial"]
    assert part["n"] == 8 and 0 < part["all"]["select"]["acc"] < 1
    assert "PARTIAL MATCHING F1" in format_table(summary, tables=True)
    assert "PARTIAL MATCHING" not in format_table(summary)

    import t2s_bench as t

    run = t.evaluate("oracle", demo, limit=4, out=tmp_path / "run")
    assert run.metrics["partial"]["all"]["keywords"]["f1"] == 1.0
    report = json.loads(t.report([run], out=tmp_path / "r.json", fmt="json").read_text())
    assert report["tables"][0]["name"] == "partial" and run.name in report["tables"][0]["runs"]
    html = t.report([run], out=tmp_path / "r.html").read_text()
    assert 'id="partial"' in html and "where(no OP)" in html


def test_score_cli_prints_partial_table(demo, tmp_path, capsys):
    from t2s_bench.cli import main

    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"index": ex.index, "sql": ex.query}) + "\n" for ex in demo.examples[:5]))
    summary_out = tmp_path / "s.json"
    assert main(["score", "--dataset", "demo", "--predictions", str(preds), "--partial",
                 "--summary-out", str(summary_out), "--no-gold-cache"]) == 0
    out = capsys.readouterr().out
    assert "PARTIAL MATCHING RECALL" in out and "select(no AGG)" in out
    assert set(json.loads(summary_out.read_text())["partial"]["all"]) == set(COMPONENTS)


@pytest.mark.slow
def test_spider_dev_gold_scores_one():
    if not os.environ.get("T2S_SPIDER_DIR") or not Path(os.environ["T2S_SPIDER_DIR"], "dev.json").is_file():
        pytest.skip("Spider data not found (set T2S_SPIDER_DIR)")
    ds = load_dataset("spider-dev")
    records = [{"hardness": "all", "exact_match": True,
                "partial_match": partial_match(ex.query, ex.query, ds.schema(ex.db_id))} for ex in ds.examples]
    summary = summarize_partial(records)["all"]
    assert all(summary[c]["f1"] == 1.0 for c in COMPONENTS)


@pytest.mark.slow
def test_agrees_with_the_official_evaluator(tmp_path):
    """Runs benchmarks/official_partial_match.py on gold predictions when $T2S_OFFICIAL_DIR holds the
    official evaluator (see that script); the printed tables must be identical."""
    official = os.environ.get("T2S_OFFICIAL_DIR")
    if not official or not (Path(official) / "evaluation.py").is_file():
        pytest.skip("set T2S_OFFICIAL_DIR to a folder with the official evaluation.py/process_sql.py to compare")
    if not os.environ.get("T2S_SPIDER_DIR"):
        pytest.skip("Spider not found (T2S_SPIDER_DIR)")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import official_partial_match

    out = tmp_path / "agreement.json"
    assert official_partial_match.main(["--official-dir", official, "--sets", "gold", "--out", str(out)]) == 0
    result = json.loads(out.read_text())["sets"]["gold"]["table"]
    assert result["identical"], result["differing_rows"]


def test_the_official_compatible_table_scores_sql_the_official_parser_cannot_read_as_empty():
    from t2s_bench.datasets import load_dataset
    from t2s_bench.scoring.partial_match import partial_match_official

    demo = load_dataset("demo")
    ex = next(e for e in demo.examples if " JOIN " in e.query and " AS " in e.query)
    schema = demo.schema(ex.db_id)
    inner = ex.query.replace(" JOIN ", " INNER JOIN ")  # valid SQL; the official parser stops at INNER
    assert partial_match(ex.query, inner, schema)["select"]["acc"] == 1  # corrected: read and matched
    official = partial_match_official(ex.query, inner, schema)
    assert official["select"]["pred_total"] == 0 and official["select"]["rec"] == 0  # official: the empty query
    assert all(v["acc"] == 1 for v in partial_match_official(ex.query, ex.query, schema).values()
               if v["pred_total"])


def test_both_partial_tables_reach_the_summary(tmp_path):
    from t2s_bench.datasets import load_dataset
    from t2s_bench.scoring import score_predictions, summarize

    demo = load_dataset("demo")
    preds = {e.index: e.query for e in demo.examples[:6]}
    s = summarize(score_predictions(demo, preds, workers=1, timeout=5.0, gold_cache=None))
    assert s["partial"]["all"]["select"]["acc"] == 1.0
    assert s["partial_official"]["all"]["select"]["acc"] == 1.0
