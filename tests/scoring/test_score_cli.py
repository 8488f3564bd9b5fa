"""`t2s-bench score` in both input forms, on a small real SQLite database."""

from __future__ import annotations

import json
import sqlite3

import pytest

from t2s_bench.cli import main


@pytest.fixture()
def files(tmp_path):
    db_dir = tmp_path / "database"
    (db_dir / "zoo").mkdir(parents=True)
    con = sqlite3.connect(db_dir / "zoo" / "zoo.sqlite")
    con.executescript(
        """
        CREATE TABLE animal (id INTEGER PRIMARY KEY, name TEXT, legs INTEGER);
        INSERT INTO animal VALUES (1, 'cat', 4), (2, 'bird', 2), (3, 'dog', 4);
        """
    )
    con.commit()
    con.close()
    gold = tmp_path / "gold.sql"
    gold.write_text(
        "SELECT count(*) FROM animal\tzoo\n"
        "SELECT name FROM animal WHERE legs = 4\tzoo\n"
        "SELECT name FROM animal ORDER BY legs DESC, id\tzoo\n"
        "SELECT count(*) FROM t\tmissing_db\n"
    )
    pred = tmp_path / "pred.sql"
    pred.write_text(
        "SELECT count(id) FROM animal\n"
        "SELECT name FROM animal WHERE legs > 3\n"
        "SELECT name FROM animal ORDER BY legs\n"
        "SELECT count(*) FROM t\n"
    )
    return tmp_path, db_dir, gold, pred


def test_official_format(files, capsys, monkeypatch):
    tmp_path, db_dir, gold, pred = files
    monkeypatch.setenv("T2S_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "per_example.jsonl"
    rc = main(["score", "--gold", str(gold), "--pred", str(pred), "--db-dir", str(db_dir),
               "--out", str(out), "--workers", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "EXECUTION ACCURACY" in text and "EXACT MATCHING ACCURACY" in text
    assert "skipped (not in execution accuracy): 1 (missing database: 1)" in text
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["exec_match"] for r in recs] == [True, True, False, None]
    assert [r["exact_match"] for r in recs] == [False, False, False, None]  # no schema for the missing db
    assert recs[3]["skipped"] == "missing database"
    # execution accuracy over the 3 executed examples: 2/3
    count_line = next(line for line in text.splitlines() if line.startswith("execution"))
    assert count_line.split()[-1] == "0.667"


def test_dataset_form_with_jsonl_predictions(files, tmp_path, capsys):
    _, db_dir, _, _ = files
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps([
        {"db_id": "zoo", "question": "How many animals?", "query": "SELECT count(*) FROM animal"},
        {"db_id": "zoo", "question": "Four-legged?", "query": "SELECT name FROM animal WHERE legs = 4"},
    ]))
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"index": 0, "pred_sql": "SELECT count(*) FROM animal"}) + "\n"
                     + json.dumps({"index": 1, "sql": "SELECT name FROM animal WHERE legs = 2"}) + "\n")
    out = tmp_path / "scores.jsonl"
    summary = tmp_path / "summary.json"
    rc = main(["score", "--dataset", str(questions), "--db-dir", str(db_dir), "--predictions", str(preds),
               "--out", str(out), "--summary-out", str(summary), "--workers", "1", "--no-gold-cache"])
    assert rc == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["exec_match"], r["exact_match"]) for r in recs] == [(True, True), (False, True)]
    s = json.loads(summary.read_text())
    assert s["levels"]["all"]["exec"] == 0.5 and s["levels"]["all"]["exact"] == 1.0


def test_bad_arguments_exit_2(files, capsys):
    _, db_dir, gold, _ = files
    assert main(["score", "--gold", str(gold), "--db-dir", str(db_dir)]) == 2
    assert "go together" in capsys.readouterr().err
    assert main(["score"]) == 2
