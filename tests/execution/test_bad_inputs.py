"""Bad inputs give a per-example record or one clear message naming the file and line (issue 11,
item 6), through the real CLI (`python -m t2s_bench score`) and `load_dataset(path)`; and the
error classes of misspelled SQL, prose and write statements (items 8 and 15)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from t2s_bench.datasets import load_dataset, load_pred_file
from t2s_bench.scoring.errors import classify_error

REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture()
def folder(tmp_path) -> Path:
    """A Spider-format folder: database/concert (real SQLite) and database/junk (not SQLite)."""
    (tmp_path / "database" / "concert").mkdir(parents=True)
    (tmp_path / "database" / "junk").mkdir(parents=True)
    con = sqlite3.connect(tmp_path / "database" / "concert" / "concert.sqlite")
    con.executescript("CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, age INTEGER);"
                      "INSERT INTO singer VALUES (1, 'Joe', 52), (2, 'Rose', 41);")
    con.commit()
    con.close()
    (tmp_path / "database" / "junk" / "junk.sqlite").write_bytes(b"this is not a SQLite file\n" * 50)
    (tmp_path / "gold.sql").write_text(
        "SELECT count(*) FROM singer\tconcert\nSELECT name FROM singer WHERE age > 45\tconcert\n"
        "SELECT count(*) FROM t\tjunk\n", encoding="utf-8")
    return tmp_path


def score_cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO, T2S_CACHE_DIR=str(folder / "cache"))
    return subprocess.run([sys.executable, "-m", "t2s_bench", "score", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_trailing_blank_line_in_prediction_file_is_fine(folder):
    (folder / "pred.sql").write_text("SELECT count(*) FROM singer\nSELECT name FROM singer WHERE age > 45\n"
                                     "SELECT 1\n\n", encoding="utf-8")
    proc = score_cli(folder, "--gold", "gold.sql", "--pred", "pred.sql", "--db-dir", "database", "--out", "out.jsonl")
    assert proc.returncode == 0, proc.stderr
    records = read_records(folder / "out.jsonl")
    assert [r["exec_match"] for r in records[:2]] == [True, True]


def test_non_utf8_byte_in_prediction_file_is_a_record_and_a_warning_naming_the_line(folder):
    (folder / "pred.sql").write_bytes(b"SELECT count(*) FROM singer\nSELECT name FROM singer WHERE name = '\xff'\n"
                                      b"SELECT 1\n")
    proc = score_cli(folder, "--gold", "gold.sql", "--pred", "pred.sql", "--db-dir", "database", "--out", "out.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "pred.sql:2: not UTF-8 text (byte 0xff" in proc.stderr
    records = read_records(folder / "out.jsonl")
    assert len(records) == 3 and records[0]["exec_match"] is True
    assert records[1]["exec_match"] is False and "\ufffd" in records[1]["pred"]
    assert load_pred_file(folder / "pred.sql")[1].endswith("'\ufffd'")


def test_database_that_is_not_sqlite_without_tables_json_is_a_skipped_record(folder):
    (folder / "pred.sql").write_text("SELECT count(*) FROM singer\nSELECT 1\nSELECT 1\n", encoding="utf-8")
    proc = score_cli(folder, "--gold", "gold.sql", "--pred", "pred.sql", "--db-dir", "database", "--out", "out.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    junk = read_records(folder / "out.jsonl")[2]
    assert junk["skipped"].startswith("gold error: cannot open database") and "not a database" in junk["skipped"]


def test_database_that_is_not_sqlite_in_a_dataset_json(folder):
    (folder / "dev.json").write_text(json.dumps([
        {"db_id": "junk", "question": "q", "query": "SELECT 1"},
        {"db_id": "concert", "question": "how many?", "query": "SELECT count(*) FROM singer"},
    ]), encoding="utf-8")
    (folder / "preds.jsonl").write_text('{"index": 0, "sql": "SELECT 1"}\n{"index": 1, "sql": "SELECT count(*) FROM singer"}\n',
                                        encoding="utf-8")
    dataset = load_dataset(str(folder / "dev.json"))
    with pytest.raises(KeyError, match="junk.sqlite: file is not a database"):
        dataset.schema("junk")
    proc = score_cli(folder, "--dataset", "dev.json", "--predictions", "preds.jsonl", "--out", "out.jsonl")
    assert proc.returncode == 0, proc.stderr
    junk, concert = read_records(folder / "out.jsonl")
    assert "not a database" in junk["skipped"]
    assert concert["exec_match"] is True


@pytest.mark.parametrize("name,content,message", [
    ("dev.json", b'[{"db_id": "concert", "question": "q", "query": "SELECT 1"},\n', "dev.json:2: not valid JSON"),
    ("dev.json", b'[{"db_id": "concert", "question": "caf\xe9", "query": "SELECT 1"}]', "dev.json:1: not UTF-8 text"),
    ("dev.json", b'{"db_id": "concert"}', "dev.json: expected a JSON list"),
    ("dev.json", b'["SELECT 1"]', "dev.json: example 0 is a JSON str"),
    ("tables.json", b'[{"db_id": "concert"}]', "tables.json: schema 0 (db_id 'concert') is malformed"),
    ("tables.json", b'[\n{"db_id": "concert",\n', "tables.json:3: not valid JSON"),
])
def test_malformed_dataset_json_names_the_file(folder, name, content, message):
    if name == "tables.json":
        (folder / "dev.json").write_text('[{"db_id": "concert", "question": "q", "query": "SELECT 1"}]', encoding="utf-8")
    (folder / name).write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_dataset(str(folder / "dev.json"))
    assert str(info.value).startswith(str(folder / name)) and message in str(info.value)
    (folder / "preds.jsonl").write_text('{"index": 0, "sql": "SELECT 1"}\n', encoding="utf-8")
    proc = score_cli(folder, "--dataset", "dev.json", "--predictions", "preds.jsonl")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert message in proc.stderr


@pytest.mark.parametrize("content,message", [
    (b'{"index": 0, "sql": "SELECT 1"}\n{"index": 1, "sql": "SELECT \xff"}\n', "preds.jsonl:2: not UTF-8 text"),
    (b'{"index": 0, "sql": "SELECT 1"}\n\n["SELECT 1"]\n', "preds.jsonl:3: expected an object with 'index'"),
    (b'{"index": "first", "sql": "SELECT 1"}\n', "preds.jsonl:1: 'index' must be an integer"),
])
def test_bad_prediction_jsonl_names_the_line(folder, content, message):
    (folder / "dev.json").write_text('[{"db_id": "concert", "question": "q", "query": "SELECT 1"}]', encoding="utf-8")
    (folder / "preds.jsonl").write_bytes(content)
    proc = score_cli(folder, "--dataset", "dev.json", "--predictions", "preds.jsonl")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert message in proc.stderr


def test_non_utf8_gold_file_names_the_line(folder):
    (folder / "gold.sql").write_bytes(b"SELECT 1\tconcert\nSELECT '\xe9'\tconcert\n")
    (folder / "pred.sql").write_text("SELECT 1\nSELECT 1\n", encoding="utf-8")
    proc = score_cli(folder, "--gold", "gold.sql", "--pred", "pred.sql", "--db-dir", "database")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "gold.sql:2: not UTF-8 text (byte 0xe9" in proc.stderr


# ---------------------------------------------------------------- error classes (items 8 and 15)


def record(pred: str, pred_error: str | None = None) -> dict:
    return {"pred": pred, "pred_error": pred_error, "exec_match": False, "gold": "SELECT avg(age) FROM singer"}


@pytest.mark.parametrize("pred,pred_error,expected,reason", [
    ("SELEC avg(age) FROM singer", 'near "SELEC": syntax error', "syntax_error", 'SQLite: near "SELEC": syntax error'),
    ("SLECT avg(age) FROM singer", None, "syntax_error", "'SLECT' is not a SQL keyword (misspelled SELECT)"),
    ("I am sorry, I cannot answer that.", 'near "I": syntax error', "empty_output", "output is not a SQL query"),
    ("Selected columns: age", None, "empty_output", "output is not a SQL query"),
    ("DROP TABLE singer", "not authorized (read-only execution): DROP TABLE statement refused, only queries are run",
     "runtime_error", "DROP TABLE statement: only queries are run"),
    ("DELETE FROM singer", None, "runtime_error", "DELETE statement"),
    ("  VACUUM INTO 'x.db'", None, "runtime_error", "VACUUM statement"),
    ("INSERT INTO singer SELECT * FROM singer", None, "runtime_error", "INSERT statement"),
    ("", None, "empty_output", "empty prediction"),
])
def test_error_class_of_misspelled_sql_prose_and_write_statements(pred, pred_error, expected, reason):
    cls, why = classify_error(record(pred, pred_error))
    assert cls == expected and reason in why, (cls, why)
