import pytest

from t2s_bench.systems.extract import extract_sql


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("SELECT count(*) FROM singer", "SELECT count(*) FROM singer"),
        ("```sql\nSELECT name\nFROM singer;\n```", "SELECT name FROM singer"),
        ("Here is the query:\n```\nSELECT 1\n```\nIt returns one.", "SELECT 1"),
        ("SELECT a FROM t; DROP TABLE t;", "SELECT a FROM t"),
        ("SELECT a FROM t WHERE b = 'x;y'; SELECT 2", "SELECT a FROM t WHERE b = 'x;y'"),
        ("To answer, use: SELECT name FROM people WHERE age > 30", "SELECT name FROM people WHERE age > 30"),
        ("SELECT name FROM people\nThis query lists the names.", "SELECT name FROM people"),
        ("WITH x AS (SELECT 1 AS a) SELECT a FROM x", "WITH x AS (SELECT 1 AS a) SELECT a FROM x"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_extract_sql(raw, expected):
    assert extract_sql(raw) == expected


def test_extract_prefers_sql_fence_over_other_fences():
    raw = "```text\nnot sql\n```\n```sql\nSELECT 2\n```"
    assert extract_sql(raw) == "SELECT 2"


def test_non_sql_output_is_returned_for_the_scorer_to_flag():
    # no SQL in the text: the scorer records a syntax error rather than us inventing SQL
    assert extract_sql("I cannot answer that.") == "I cannot answer that."
