"""sql.normalize: canonical text, Spider-style aliases, and results unchanged on real databases."""

import sqlite3

import pytest

from t2s_bench import paths
from t2s_bench.datasets import Schema, load_dataset
from t2s_bench.sql.normalize import SQLParseError, normalize_sql, pretty_sql


def test_formatting_keywords_spaces_semicolon():
    assert normalize_sql("select  name\n from   singer where age>20 ;") == "SELECT name FROM singer WHERE age > 20"
    assert normalize_sql("select count(*) from singer") == "SELECT COUNT(*) FROM singer"


def test_aliases_renamed_in_order_of_appearance():
    sql = "select b.name, a.title from concert as a join singer b on a.sid = b.id where b.age > 3"
    assert normalize_sql(sql) == (
        "SELECT T2.name, T1.title FROM concert AS T1 JOIN singer AS T2 ON T1.sid = T2.id WHERE T2.age > 3"
    )


def test_unaliased_join_gets_aliases_and_qualifiers_follow():
    sql = "SELECT singer.name FROM singer JOIN concert ON singer.id = concert.sid"
    assert normalize_sql(sql) == "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.sid"


def test_set_operation_parts_restart_and_subqueries_continue_numbering():
    sql = (
        "SELECT x.name FROM a AS x JOIN b AS y ON x.id = y.id WHERE x.v > (SELECT avg(z.v) FROM a AS z WHERE z.k = x.k) "
        "INTERSECT SELECT p.name FROM a AS p JOIN b AS q ON p.id = q.id"
    )
    assert normalize_sql(sql) == (
        "SELECT T1.name FROM a AS T1 JOIN b AS T2 ON T1.id = T2.id "
        "WHERE T1.v > (SELECT AVG(T3.v) FROM a AS T3 WHERE T3.k = T1.k) "
        "INTERSECT SELECT T1.name FROM a AS T1 JOIN b AS T2 ON T1.id = T2.id"
    )


def test_equivalent_spellings_normalise_to_the_same_text():
    a = "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.sid;"
    b = 'select s.name from "singer" s join concert c on s.id=c.sid'
    assert normalize_sql(a) == normalize_sql(b)


def test_quoting_kept_where_needed():
    assert normalize_sql('SELECT count(*) FROM `my table`') == 'SELECT COUNT(*) FROM "my table"'


def test_double_quoted_strings_become_literals_with_a_schema():
    schema = Schema.from_tables_json({
        "db_id": "x", "table_names_original": ["singer"], "table_names": ["singer"],
        "column_names_original": [[-1, "*"], [0, "name"], [0, "country"]],
        "column_names": [[-1, "*"], [0, "name"], [0, "country"]],
        "column_types": ["text", "text", "text"], "primary_keys": [], "foreign_keys": [],
    })
    sql = 'SELECT name FROM singer WHERE country = "France"'
    assert normalize_sql(sql, schema) == "SELECT name FROM singer WHERE country = 'France'"
    # without a schema the word may be a column: it keeps its quotes
    assert normalize_sql(sql) == 'SELECT name FROM singer WHERE country = "France"'


def test_idempotent_and_pretty():
    sql = "select a.x, count(*) from t as a join u as b on a.id = b.id group by a.x order by count(*) desc limit 3"
    once = normalize_sql(sql)
    assert normalize_sql(once) == once
    pretty = pretty_sql(sql)
    assert pretty.count("\n") >= 4 and pretty.startswith("SELECT")
    assert pretty_sql("not sql at all (((") == "not sql at all ((("


def test_parse_errors_are_clear():
    with pytest.raises(SQLParseError):
        normalize_sql("SELECT FROM WHERE (((")
    with pytest.raises(SQLParseError):
        normalize_sql("SELECT 1; SELECT 2")


def _rows(db, sql):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.text_factory = lambda b: b.decode(errors="replace")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_demo_gold_results_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("T2S_CACHE_DIR", str(tmp_path))
    ds = load_dataset("demo")
    for ex in ds.examples:
        db = ds.db_path(ex.db_id)
        assert _rows(db, normalize_sql(ex.query, ds.schema(ex.db_id))) == _rows(db, ex.query)


@pytest.mark.spider
def test_spider_dev_gold_results_unchanged():
    if paths.spider_dir() is None:
        pytest.skip("Spider not found (set T2S_SPIDER_DIR)")
    ds = load_dataset("spider-dev")
    parse_failures, different = [], []
    for ex in ds.examples:
        db = ds.db_path(ex.db_id)
        if db is None:
            continue
        for schema in (ds.schema(ex.db_id), None):
            try:
                norm = normalize_sql(ex.query, schema)
            except SQLParseError:
                parse_failures.append(ex.index)
                break
            try:
                same = _rows(db, norm) == _rows(db, ex.query)  # ordered comparison: stricter than needed
            except sqlite3.Error as e:
                same = False
                norm = f"{norm}  -- {e}"
            if not same:
                different.append((ex.index, ex.query, norm))
    print(f"spider-dev: {len(parse_failures)} parse failures, {len(different)} result changes")
    assert not parse_failures, parse_failures
    assert not different, different[:5]
