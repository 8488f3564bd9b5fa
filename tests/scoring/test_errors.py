"""Error taxonomy on hand-made failures, executed against a real SQLite database."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from t2s_bench.datasets.schema import Schema
from t2s_bench.scoring.errors import ERROR_CLASSES, classify_error

DDL = """
CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, concert_name TEXT, year INTEGER, stadium_id INTEGER);
CREATE TABLE singer_in_concert (concert_id INTEGER, singer_id INTEGER,
    FOREIGN KEY (singer_id) REFERENCES singer(singer_id), FOREIGN KEY (concert_id) REFERENCES concert(concert_id));
INSERT INTO singer VALUES (1,'Joe','France',52),(2,'Timbaland','United States',32),(3,'Rose','France',41),
    (4,'Justin','United States',29),(5,'Tribal','Netherlands',25);
INSERT INTO concert VALUES (1,'Auditions',2014,1),(2,'Super bootcamp',2014,2),(3,'Home Visits',2015,2);
INSERT INTO singer_in_concert VALUES (1,2),(1,3),(2,3),(3,5),(3,1);
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("errdb") / "concert.sqlite"
    con = sqlite3.connect(path)
    con.executescript(DDL)
    con.commit()
    con.close()
    return path


@pytest.fixture(scope="module")
def schema(db):
    return Schema.from_sqlite(db, "concert")


def make_record(db, gold: str, pred: str, *, timed_out: bool = False) -> dict:
    """A score record built by really executing both queries (bag-of-rows comparison)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    gold_rows = con.execute(gold).fetchall()
    pred_rows, pred_error = None, None
    if pred.strip() and not timed_out:
        try:
            pred_rows = con.execute(pred).fetchall()
        except sqlite3.Error as e:
            pred_error = str(e)
    con.close()
    match = pred_rows is not None and Counter(pred_rows) == Counter(gold_rows)
    return {
        "index": 0, "db_id": "concert", "question": "q", "gold": gold, "pred": pred, "hardness": "easy",
        "exec_match": match, "exact_match": None, "pred_error": pred_error, "timed_out": timed_out,
        "skipped": None, "error_class": None, "error_reason": "",
        "gold_result": None, "pred_result": None,
    }


CASES = [
    # (expected class, gold, pred, reason fragment)
    ("empty_output", "SELECT count(*) FROM singer", "   ", "empty"),
    ("empty_output", "SELECT count(*) FROM singer", "I am sorry, I cannot answer that.", "not a SQL"),
    ("syntax_error", "SELECT name FROM singer", "SELECT name FROM singer WHERE", "sqlglot"),
    ("syntax_error", "SELECT name FROM singer", "SELECT name FROM singer WHERE age >> ", "sqlglot"),
    ("hallucinated_schema", "SELECT name FROM singer", "SELECT name FROM singers", "no such table"),
    ("hallucinated_schema", "SELECT name FROM singer", "SELECT full_name FROM singer", "no such column"),
    # SQLite reads an unknown double-quoted identifier as a string: only the schema check sees it
    ("hallucinated_schema", "SELECT name FROM singer", 'SELECT "nme" FROM singer', "'nme'"),
    ("runtime_error", "SELECT name FROM singer", "SELECT name FROM singer WHERE age > (SELECT 1, 2)",
     "SQLite"),
    ("wrong_tables", "SELECT count(*) FROM singer WHERE age > 30",
     "SELECT count(*) FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id WHERE age > 30",
     "'singer_in_concert'"),
    ("wrong_aggregation", "SELECT avg(age) FROM singer WHERE country = 'France'",
     "SELECT sum(age) FROM singer WHERE country = 'France'", "AVG vs SUM"),
    ("wrong_aggregation", "SELECT country, count(*) FROM singer GROUP BY country",
     "SELECT country, count(*) FROM singer GROUP BY name", "GROUP BY"),
    ("wrong_projection", "SELECT name, age FROM singer WHERE country = 'France'",
     "SELECT name FROM singer WHERE country = 'France'", "gold selects"),
    ("wrong_filter", "SELECT name FROM singer WHERE age > 30", "SELECT name FROM singer WHERE age < 30",
     "WHERE"),
    ("wrong_filter", "SELECT name FROM singer WHERE age > 30 AND country = 'France'",
     "SELECT name FROM singer WHERE age > 30", "pred lacks"),
    ("wrong_ordering", "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
     "SELECT name FROM singer ORDER BY age ASC LIMIT 1", "ORDER BY"),
    ("wrong_ordering", "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
     "SELECT name FROM singer ORDER BY age DESC LIMIT 3", "LIMIT"),
    ("wrong_value", "SELECT name FROM singer WHERE country = 'France'",
     "SELECT name FROM singer WHERE country = 'france'", "'France'"),
    ("wrong_value", "SELECT name FROM singer WHERE age > 30", "SELECT name FROM singer WHERE age > 40", "30"),
    # same tables, columns, filters and values; only the join condition differs: not identified
    ("other", "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id",
     "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.concert_id",
     "results differ"),
]


@pytest.mark.parametrize("expected,gold,pred,fragment", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_error_classes(db, schema, expected, gold, pred, fragment):
    record = make_record(db, gold, pred)
    assert record["exec_match"] is False, "fixture case must really fail"
    cls, reason = classify_error(record, schema)
    assert cls == expected, (cls, reason)
    assert fragment in reason
    assert cls in ERROR_CLASSES


def test_every_failure_class_is_exercised():
    covered = {c[0] for c in CASES} | {"timeout", "skipped"}
    assert covered == set(ERROR_CLASSES)


def test_correct_prediction_has_no_class(db, schema):
    # alias-insensitive: same result, different spelling
    record = make_record(db, "SELECT count(*) FROM singer", "SELECT COUNT(*) FROM singer AS s")
    assert record["exec_match"] is True
    assert classify_error(record, schema) == (None, "")


def test_timeout_and_skipped(db, schema):
    record = make_record(db, "SELECT name FROM singer", "SELECT a.name FROM singer a, singer b, singer c",
                         timed_out=True)
    assert classify_error(record, schema)[0] == "timeout"
    skipped = dict(record, skipped="missing database", exec_match=None)
    assert classify_error(skipped, schema) == ("skipped", "missing database")


def test_alias_resolution_keeps_table_sets_equal(db, schema):
    # T1/T2 aliases vs bare names: same tables, the difference is the filter value
    gold = ("SELECT T2.concert_name FROM singer_in_concert AS T1 JOIN concert AS T2 "
            "ON T1.concert_id = T2.concert_id WHERE T2.year = 2014")
    pred = ("SELECT concert.concert_name FROM singer_in_concert JOIN concert "
            "ON singer_in_concert.concert_id = concert.concert_id WHERE concert.year = 2015")
    record = make_record(db, gold, pred)
    cls, reason = classify_error(record, schema)
    assert cls == "wrong_value", reason


def test_without_schema_still_classifies_structure(db):
    record = make_record(db, "SELECT avg(age) FROM singer", "SELECT max(age) FROM singer")
    assert classify_error(record, None)[0] == "wrong_aggregation"
    # no schema: the quoted-identifier hallucination is not detectable, so it's a projection difference
    record = make_record(db, "SELECT name FROM singer", 'SELECT "nme" FROM singer')
    assert classify_error(record, None)[0] == "wrong_projection"


def test_subquery_and_correlated_columns_not_flagged(db, schema):
    pred = ("SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer) AND singer_id IN "
            "(SELECT singer_id FROM singer_in_concert WHERE singer_in_concert.singer_id = singer.singer_id)")
    record = make_record(db, "SELECT name FROM singer WHERE age < 30", pred)
    cls, reason = classify_error(record, schema)
    assert cls != "hallucinated_schema", reason


@pytest.mark.parametrize("pred", [
    "WITH x AS (SELECT name FROM singer) SELECT * FROM x",
    "SELECT name FROM singer; DROP TABLE singer",
    "SELECT * FROM (SELECT name, age FROM singer) AS t WHERE t.age > 30",
    "SELECT s.name FROM singer s WHERE EXISTS (SELECT 1 FROM singer_in_concert c WHERE c.singer_id = s.singer_id)",
    "SELECT name AS n FROM singer ORDER BY n",
    "SELECT 'é' || name FROM singer",
    "```sql\nSELECT name FROM singer\n```",
    "SELECT",
    "select name from singer where name = 'unterminated",
])
def test_odd_predictions_never_raise(db, schema, pred):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        con.execute(pred).fetchall()
        error = None
    except (sqlite3.Error, sqlite3.Warning) as e:
        error = str(e)
    con.close()
    record = {"gold": "SELECT count(*) FROM singer", "pred": pred, "exec_match": False, "pred_error": error,
              "timed_out": False, "skipped": None}
    cls, reason = classify_error(record, schema)
    assert cls in ERROR_CLASSES and isinstance(reason, str) and reason
    # CTE names and select aliases are not hallucinations
    if pred.startswith("WITH") or " AS n " in pred or "EXISTS" in pred or "AS t " in pred:
        assert cls != "hallucinated_schema", reason
