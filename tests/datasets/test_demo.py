"""The shipped demo dataset: builds once, is complete Spider format, every gold query runs."""

import json
import sqlite3

import pytest

from t2s_bench.datasets import load_dataset
from t2s_bench.datasets.demo import DEMO_DBS, build_demo, load_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return load_demo(tmp_path_factory.mktemp("cache"))


def test_demo_is_complete_spider_format(demo):
    assert len(demo) >= 45
    assert {e.db_id for e in demo.examples} == set(DEMO_DBS)
    folder = demo.db_dir.parent
    tables = json.loads((folder / "tables.json").read_text())
    assert sorted(t["db_id"] for t in tables) == sorted(DEMO_DBS)
    for db in DEMO_DBS:
        assert demo.db_path(db) is not None
        schema = demo.schema(db)
        assert schema.foreign_keys, f"{db} declares foreign keys"
        assert all(t.primary_keys for t in schema.tables), f"{db}: every table has a primary key"
        # a few dozen rows per table, so queries return distinguishable results
        con = sqlite3.connect(demo.db_path(db))
        for t in schema.tables:
            (n,) = con.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()
            assert n >= 5, f"{db}.{t.name} has only {n} rows"
        con.close()


def test_every_gold_query_executes_and_returns_rows(demo):
    for ex in demo.examples:
        con = sqlite3.connect(f"file:{demo.db_path(ex.db_id)}?mode=ro", uri=True)
        try:
            rows = con.execute(ex.query).fetchall()
        finally:
            con.close()
        assert rows, f"demo #{ex.index} returns no rows: {ex.query}"


def test_superlative_questions_have_a_unique_answer(demo):
    # "the most ..." questions must not hinge on a tie broken arbitrarily by LIMIT 1
    import sqlglot
    from sqlglot import exp

    checked = 0
    for ex in demo.examples:
        tree = sqlglot.parse_one(ex.query, read="sqlite")
        limit, order = tree.args.get("limit"), tree.args.get("order")
        if not isinstance(tree, exp.Select) or limit is None or order is None or limit.expression.name != "1":
            continue
        # the ranking value of the top two rows must differ
        probe = tree.copy()
        probe.set("expressions", [order.expressions[0].this.copy()])
        probe.set("limit", exp.Limit(expression=exp.Literal.number(2)))
        con = sqlite3.connect(f"file:{demo.db_path(ex.db_id)}?mode=ro", uri=True)
        top = con.execute(probe.sql(dialect="sqlite")).fetchall()
        con.close()
        checked += 1
        assert len(top) < 2 or top[0] != top[1], f"tie in demo #{ex.index}: {top}"
    assert checked >= 6


def test_build_is_cached_and_keyed_by_content(tmp_path):
    first = build_demo(tmp_path)
    mtime = (first / "database" / "school" / "school.sqlite").stat().st_mtime_ns
    assert build_demo(tmp_path) == first
    assert (first / "database" / "school" / "school.sqlite").stat().st_mtime_ns == mtime
    # no leftover temporary build folders
    assert [p.name for p in (tmp_path / "demo").iterdir()] == [first.name]


def test_registry_default_is_demo(monkeypatch, tmp_path):
    monkeypatch.setenv("T2S_CACHE_DIR", str(tmp_path))
    ds = load_dataset("demo")
    assert ds.name == "demo" and len(ds) >= 45
    assert str(ds.db_dir).startswith(str(tmp_path))


def test_difficulty_coverage(demo):
    try:
        from t2s_bench.scoring.hardness import hardness
    except ImportError:
        pytest.skip("t2s_bench.scoring.hardness not available yet")
    counts = {}
    for ex in demo.examples:
        level = hardness(ex.query, demo.schema(ex.db_id))
        counts[level] = counts.get(level, 0) + 1
    for level in ("easy", "medium", "hard", "extra"):
        assert counts.get(level, 0) >= 8, counts
