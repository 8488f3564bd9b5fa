"""Value plugging (--plug-value): the gold query's values put into the prediction before execution
(sql/values.py), on the demo's real SQLite databases, through the scorer, the API, the CLI and a run."""

from __future__ import annotations

import json

import pytest

from t2s_bench.datasets import load_dataset
from t2s_bench.scoring import format_table, score_predictions, summarize
from t2s_bench.sql.values import plug_values, sql_values


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


def test_values_in_textual_order():
    sql = "SELECT name FROM t WHERE a = 'x' AND b BETWEEN 1 AND 2.5 OR c IN (\"y\", 3) LIMIT 4"
    assert [v.text for v in sql_values(sql)] == ["'x'", "1", "2.5", '"y"', "3", "4"]


def test_plug_replaces_in_order_and_keeps_the_rest_of_the_text():
    gold = "SELECT name FROM department WHERE building = 'Old Library' AND budget > 100"
    pred = "select name  from department where building='Library' and budget >   5"
    assert plug_values(gold, pred) == "select name  from department where building='Old Library' and budget >   100"


def test_a_slot_that_already_holds_a_gold_value_keeps_it():
    gold = "SELECT * FROM t WHERE a = 1 AND b = 'x'"
    assert plug_values(gold, "SELECT * FROM t WHERE b = 'x' AND a = 5") == "SELECT * FROM t WHERE b = 'x' AND a = 1"
    assert plug_values(gold, 'SELECT * FROM t WHERE b = "x" AND a = 1.0') == 'SELECT * FROM t WHERE b = "x" AND a = 1.0'


def test_more_slots_than_gold_values_keep_their_own():
    assert plug_values("SELECT * FROM t WHERE a = 7", "SELECT * FROM t WHERE a = 1 AND b = 2 LIMIT 3") == \
        "SELECT * FROM t WHERE a = 7 AND b = 2 LIMIT 3"


def test_double_quoted_value_but_not_a_quoted_column(demo):
    gold = 'SELECT name FROM department WHERE building = "Old Library"'
    assert plug_values(gold, "SELECT name FROM department WHERE building = 'x'") == \
        'SELECT name FROM department WHERE building = "Old Library"'
    quoted_column = 'SELECT name FROM department WHERE building = "name"'
    assert plug_values(gold, quoted_column, demo.schema("school")) == quoted_column  # a column of the schema
    assert plug_values(gold, quoted_column) == gold  # without a schema it reads as a value


def test_unparsable_or_valueless_prediction_is_unchanged():
    assert plug_values("SELECT * FROM t WHERE a = 1", "SELEC * FRM t WHERE a = 2") == "SELEC * FRM t WHERE a = 2"
    assert plug_values("SELECT * FROM t WHERE a = 1", "SELECT count(*) FROM t") == "SELECT count(*) FROM t"


def test_scorer_executes_the_plugged_prediction(demo):
    data = demo.filter(indices=[3, 5, 9])  # WHERE building = 'Old Library'; age > 23; nested avg
    preds = {3: "SELECT name FROM department WHERE building = 'Library'",  # right skeleton, wrong value
             5: "SELECT first_name, last_name FROM student WHERE age > 99",
             9: demo.examples[9].query}
    plain = score_predictions(data, preds, workers=1, gold_cache=None)
    plugged = score_predictions(data, preds, workers=1, gold_cache=None, plug_value=True)
    assert [r["exec_match"] for r in plain] == [False, False, True]
    assert [r["exec_match"] for r in plugged] == [True, True, True]
    assert plugged[0]["plugged_pred"] == "SELECT name FROM department WHERE building = 'Old Library'"
    assert plugged[0]["pred"] == preds[3] and "plugged_pred" not in plugged[2]  # unchanged: not recorded
    assert [r["exact_match"] for r in plain] == [r["exact_match"] for r in plugged]  # values never matter there


def test_api_cli_and_run_record_the_option(demo, tmp_path, capsys):
    import t2s_bench as t
    from t2s_bench.cli import main

    result = t.score({3: "SELECT name FROM department WHERE building = 'Library'"}, demo.filter(indices=[3]),
                     plug_value=True)
    assert result.metrics["plug_value"] is True and result.metrics["levels"]["all"]["exec"] == 1.0
    assert "values plugged" in format_table(result.metrics)
    assert "values plugged" not in format_table(summarize(result.records))

    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"index": 3, "sql": "SELECT name FROM department WHERE building = 'x'"}) + "\n")
    out = tmp_path / "s.json"
    assert main(["score", "--dataset", "demo", "--predictions", str(preds), "--plug-value", "--summary-out", str(out),
                 "--no-gold-cache"]) == 0
    assert "values plugged" in capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert summary["plug_value"] is True and summary["levels"]["all"]["n_exec_correct"] == 1

    run = t.evaluate("oracle", demo, limit=3, out=tmp_path / "run", plug_value=True)
    assert run.config["run"]["plug_value"] is True and run.metrics["plug_value"] is True
    rescored = t.score(run.path)  # the recorded setting is kept when re-scoring
    assert rescored.metrics["plug_value"] is True
