"""Execution: read-only enforcement, real timeouts, row caps, the pool and the gold cache.

Hostile queries run against real SQLite files: one built here (runs everywhere) and, when Spider
is present, a copy of a Spider database. After each hostile batch the file's bytes are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from t2s_bench.execution import ExecResult, ExecutionPool, GoldCache, execute, execute_many
from t2s_bench.execution import cache as cache_module
from t2s_bench.execution.executor import EMPTY_QUERY, MULTIPLE_STATEMENTS, NO_RESULT_SET
from t2s_bench.paths import spider_dir

BIG_ROWS = 100_000
RUNAWAY_CTE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
CROSS_JOIN = "SELECT count(*) FROM big a, big b, big c"

HOSTILE = [
    "DROP TABLE people",
    "DELETE FROM people",
    "INSERT INTO people(id, name) VALUES (99, 'mallory')",
    "UPDATE people SET name = 'mallory'",
    "ATTACH DATABASE 'evil.sqlite' AS evil",
    "ATTACH DATABASE ':memory:' AS evil",
    "DETACH DATABASE main",
    "PRAGMA writable_schema=1",
    "PRAGMA journal_mode=WAL",
    "PRAGMA user_version=7",
    "VACUUM",
    "CREATE TABLE evil(x)",
    "CREATE TEMP TABLE evil(x)",
    "CREATE INDEX evil ON people(name)",
    "CREATE VIEW evil AS SELECT 1",
    "ALTER TABLE people ADD COLUMN evil TEXT",
    "REINDEX",
    "ANALYZE",
    "BEGIN",
    "SAVEPOINT s",
    "SELECT load_extension('libevil')",
    "WITH x AS (SELECT 1) DELETE FROM people",
    "REPLACE INTO people(id, name) VALUES (1, 'mallory')",
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, score REAL, photo BLOB);
        INSERT INTO people VALUES (1, 'ada', 9.5, X'00ff10'), (2, 'bob', 7.0, NULL), (3, 'cy', NULL, NULL);
        CREATE INDEX people_name ON people(name);
        CREATE TABLE weird (label TEXT);
        INSERT INTO weird VALUES (CAST(X'6361666ae9' AS TEXT)), (CAST(X'ff41fe' AS TEXT)), ('plain');
        CREATE TABLE big (x INTEGER);
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) INSERT INTO big SELECT x FROM c;
        """
    )
    con.commit()
    con.close()
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_db(tmp_path_factory.mktemp("exec") / "toy.sqlite")


@pytest.fixture()
def fresh_db(tmp_path) -> Path:
    return build_db(tmp_path / "fresh.sqlite")


@pytest.fixture()
def spider_copy(tmp_path) -> Path:
    root = spider_dir()
    source = root / "database" / "concert_singer" / "concert_singer.sqlite" if root else None
    if source is None or not source.is_file():
        pytest.skip("Spider data absent (set T2S_SPIDER_DIR): concert_singer.sqlite not found")
    target = tmp_path / "concert_singer.sqlite"
    shutil.copyfile(source, target)
    return target


# ---------------------------------------------------------------- executor


def test_select_returns_rows_columns_and_timing(db):
    r = execute(db, "SELECT id, name FROM people ORDER BY id;")
    assert r.ok and r.error is None and not r.timed_out and not r.truncated
    assert r.columns == ["id", "name"]
    assert r.rows == [(1, "ada"), (2, "bob"), (3, "cy")]
    assert all(isinstance(row, tuple) for row in r.rows)
    assert r.elapsed > 0


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_statement_is_refused_and_file_untouched(fresh_db, sql):
    before, listing = sha256(fresh_db), sorted(os.listdir(fresh_db.parent))
    r = execute(fresh_db, sql)
    assert r.rows is None and not r.ok
    assert "not authorized" in r.error
    assert sha256(fresh_db) == before
    assert sorted(os.listdir(fresh_db.parent)) == listing  # no -wal, -journal or attached file left
    assert execute(fresh_db, "SELECT count(*) FROM people").rows == [(3,)]


def test_all_hostile_input_leaves_a_spider_database_unchanged(spider_copy):
    before = sha256(spider_copy)
    hostile = [s.replace("people", "singer") for s in HOSTILE] + [
        "SELECT 1; DROP TABLE singer",
        "SELECT count(*) FROM singer; DELETE FROM singer",
        "",
        None,
    ]
    results = [execute(spider_copy, sql, timeout=2.0) for sql in hostile]
    assert all(r.rows is None and r.error for r in results)
    runaway = execute(spider_copy, RUNAWAY_CTE, timeout=0.3)
    assert runaway.timed_out
    assert sha256(spider_copy) == before
    assert execute(spider_copy, "SELECT count(*) FROM singer").rows == [(6,)]


def test_multiple_statements_are_refused_without_running_the_second(fresh_db):
    before = sha256(fresh_db)
    r = execute(fresh_db, "SELECT 1; DROP TABLE people")
    assert r.error == MULTIPLE_STATEMENTS and r.rows is None
    assert execute(fresh_db, "SELECT 1;; ").error == MULTIPLE_STATEMENTS
    assert sha256(fresh_db) == before


@pytest.mark.parametrize("sql", ["SELECT 1;", "SELECT 1 ;  \n", "SELECT 1; -- trailing comment", "  SELECT 1"])
def test_trailing_semicolon_and_comment_are_fine(db, sql):
    r = execute(db, sql)
    assert r.error is None and r.rows == [(1,)]


@pytest.mark.parametrize("sql", ["", "   \n\t", None, "-- only a comment", ";"])
def test_empty_query_is_an_error_record(db, sql):
    r = execute(db, sql)
    assert r.error == EMPTY_QUERY and r.rows is None and not r.timed_out


def test_statement_without_result_set_is_an_error_record(tmp_path):
    bare = tmp_path / "bare.sqlite"
    sqlite3.connect(bare).execute("CREATE TABLE t(x)").connection.close()
    r = execute(bare, "REINDEX")  # nothing to reindex: SQLite runs it without asking the authorizer
    assert r.rows is None and r.error == f"REINDEX {NO_RESULT_SET}"


def test_non_string_query_is_an_error_record(db):
    r = execute(db, 42)  # type: ignore[arg-type]
    assert r.rows is None and "string" in r.error


def test_syntax_and_schema_errors_do_not_raise(db):
    assert "syntax error" in execute(db, "SELEC name FROM people").error
    assert "no such table" in execute(db, "SELECT * FROM nobody").error
    assert "no such column" in execute(db, "SELECT nope FROM people").error


def test_missing_database_is_an_error_record(tmp_path):
    r = execute(tmp_path / "absent.sqlite", "SELECT 1")
    assert r.rows is None and r.error.startswith("database not found")
    assert not (tmp_path / "absent.sqlite").exists()  # read-only open never creates the file


def test_not_a_database_is_an_error_record(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    r = execute(junk, "SELECT 1 FROM sqlite_master")
    assert r.rows is None and r.error


@pytest.mark.parametrize("sql", [RUNAWAY_CTE, CROSS_JOIN])
def test_timeout_really_stops_the_query(db, sql):
    start = time.monotonic()
    r = execute(db, sql, timeout=0.5)
    wall = time.monotonic() - start
    assert r.timed_out and r.rows is None and "timed out" in r.error
    assert 0.4 < wall < 3.0
    # the connection is free again: the next query is not stuck behind the runaway one
    start = time.monotonic()
    assert execute(db, "SELECT count(*) FROM people").rows == [(3,)]
    assert time.monotonic() - start < 1.0


def test_timeout_covers_fetching_rows(db):
    r = execute(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c",
                timeout=0.5, max_rows=10**9)
    assert r.timed_out


def test_row_cap_sets_truncated(db):
    r = execute(db, "SELECT x FROM big ORDER BY x", max_rows=10)
    assert r.truncated and r.rows == [(i,) for i in range(1, 11)]
    exact = execute(db, "SELECT x FROM big", max_rows=BIG_ROWS)
    assert not exact.truncated and len(exact.rows) == BIG_ROWS
    endless = execute(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c", max_rows=5)
    assert endless.truncated and not endless.timed_out and len(endless.rows) == 5


def test_oversized_values_are_refused(db):
    r = execute(db, "SELECT length(randomblob(1000000000))")
    assert r.rows is None and "too big" in r.error


def test_huge_results_are_refused_before_memory_runs_out(db):
    start = time.monotonic()
    r = execute(db, "SELECT zeroblob(50000000) FROM big", timeout=20)
    assert r.rows is None and "result too large" in r.error
    assert time.monotonic() - start < 10


def test_non_utf8_text_is_decoded_tolerantly(db):
    r = execute(db, "SELECT label FROM weird ORDER BY rowid")
    assert r.error is None
    labels = [row[0] for row in r.rows]
    assert labels[0] == "cafj\ufffd" and "\ufffd" in labels[1] and labels[2] == "plain"
    assert all(isinstance(v, str) for v in labels)


def test_to_json_preview_is_json_safe(db):
    r = execute(db, "SELECT id, photo, score, 1e999 AS inf FROM people ORDER BY id")
    preview = r.to_json(max_rows=2)
    assert preview["columns"] == ["id", "photo", "score", "inf"]
    assert preview["n_rows"] == 3 and len(preview["rows"]) == 2
    assert preview["rows"][0][1] == b"\x00\xff\x10".decode("utf-8", errors="replace")
    assert preview["rows"][0][3] == "inf"
    json.dumps(preview, allow_nan=False)  # raises on bytes, NaN or inf
    assert execute(db, "SELECT nope").to_json() is None


def test_to_dict_round_trip_keeps_types(db):
    r = execute(db, "SELECT id, name, score, photo, 1e999 FROM people ORDER BY id")
    back = ExecResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert isinstance(back.rows[0], tuple) and isinstance(back.rows[0][3], bytes)
    assert math.isinf(back.rows[0][4])


def test_changed_file_is_reopened_not_served_stale(fresh_db):
    assert execute(fresh_db, "SELECT count(*) FROM people").rows == [(3,)]
    time.sleep(0.01)
    con = sqlite3.connect(fresh_db)
    con.execute("INSERT INTO people(id, name) VALUES (4, 'dee')")
    con.commit()
    con.close()
    assert execute(fresh_db, "SELECT count(*) FROM people").rows == [(4,)]


def test_threads_do_not_share_a_connection_deadline(db):
    results = {}

    def run(name, sql, timeout):
        results[name] = execute(db, sql, timeout=timeout)

    threads = [threading.Thread(target=run, args=("slow", RUNAWAY_CTE, 0.5)),
               threading.Thread(target=run, args=("fast", "SELECT count(*) FROM big", 30))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results["slow"].timed_out
    assert results["fast"].rows == [(BIG_ROWS,)] and not results["fast"].timed_out


# ---------------------------------------------------------------- pool


def mixed_jobs(db: Path, other: Path, n: int = 40) -> list[tuple[Path, str]]:
    queries = [
        "SELECT name FROM people WHERE id = {i} % 3 + 1",
        "SELECT count(*) + {i} FROM big WHERE x < 500",
        "SELECT {i}, label FROM weird",
        "SELECT nope{i} FROM people",
        "DELETE FROM people WHERE id = {i}",
    ]
    return [((db if i % 2 else other), queries[i % len(queries)].format(i=i)) for i in range(n)]


def comparable(results):
    return [(r.rows, r.columns, r.error, r.truncated) for r in results]


def test_pool_preserves_order_and_matches_in_process(db, fresh_db):
    jobs = mixed_jobs(db, fresh_db)
    expected = [execute(path, sql) for path, sql in jobs]
    assert comparable(execute_many(jobs, workers=2)) == comparable(expected)
    assert comparable(execute_many(jobs, workers=1)) == comparable(expected)
    assert [r.rows[0][0] for r in expected[1::5]] == [499 + i for i in range(1, 40, 5)]


def test_pool_runaway_job_does_not_block_the_others(db):
    jobs = [(db, RUNAWAY_CTE)] + [(db, f"SELECT {i}") for i in range(30)]
    start = time.monotonic()
    results = execute_many(jobs, workers=2, timeout=1.0)
    assert time.monotonic() - start < 8.0
    assert results[0].timed_out
    assert [r.rows for r in results[1:]] == [[(i,)] for i in range(30)]


def test_pool_answers_missing_files_and_empty_sql_without_workers(db, tmp_path):
    jobs = [(tmp_path / "absent.sqlite", "SELECT 1"), (db, ""), (db, None), (db, "SELECT 2")]
    jobs += [(db, "-- just a comment"), (db, "SELECT 3")] * 10  # comment-only text does reach the workers
    results = execute_many(jobs, workers=2)
    assert results[0].error.startswith("database not found")
    assert results[1].error == EMPTY_QUERY and results[2].error == EMPTY_QUERY
    assert results[3].rows == [(2,)]
    assert all(r.error == EMPTY_QUERY for r in results[4::2]) and all(r.rows == [(3,)] for r in results[5::2])


@pytest.mark.skipif(os.name != "posix", reason="pool workers need POSIX")
def test_pool_kills_a_frozen_worker_and_carries_on(db):
    with ExecutionPool(workers=1, grace=0.5) as pool:
        assert pool.run([(db, "SELECT 1")])[0].rows == [(1,)]
        (pid,) = pool.pids
        os.kill(pid, signal.SIGSTOP)  # a hang the SQLite progress handler cannot see
        start = time.monotonic()
        results = pool.run([(db, "SELECT 2"), (db, "SELECT 3"), (db, "SELECT 4")], timeout=0.5)
        assert time.monotonic() - start < 6.0
        assert results[0].timed_out and "worker killed" in results[0].error
        assert [r.rows for r in results[1:]] == [[(3,)], [(4,)]]
        assert pool.pids != [pid]


@pytest.mark.skipif(os.name != "posix", reason="pool workers need POSIX")
def test_pool_survives_a_worker_crash(db):
    with ExecutionPool(workers=2) as pool:
        pool.run([(db, "SELECT 0")] * 2)
        victim = pool.pids[0]
        threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
        jobs = [(db, RUNAWAY_CTE), (db, RUNAWAY_CTE)] + [(db, f"SELECT {i}") for i in range(10)]
        results = pool.run(jobs, timeout=2.0)
        crashed = [r for r in results[:2] if r.error and r.error.startswith("worker crashed")]
        assert len(crashed) == 1 and not crashed[0].timed_out
        assert [r.rows for r in results[2:]] == [[(i,)] for i in range(10)]
        # a worker killed while idle is replaced on the next run, and no job is lost
        os.kill(pool.pids[0], signal.SIGKILL)
        time.sleep(0.2)
        assert [r.rows for r in pool.run([(db, f"SELECT {i}") for i in range(6)])] == [[(i,)] for i in range(6)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux")
def test_pool_worker_memory_cap_turns_a_memory_bomb_into_an_error(db):
    wide = ", ".join(["zeroblob(60000000)"] * 12)  # one row of ~720 MB
    with ExecutionPool(workers=1, memory_limit=512 * 1024**2) as pool:
        bomb, after = pool.run([(db, f"SELECT {wide}"), (db, "SELECT 5")], timeout=10)
    assert bomb.rows is None and bomb.error == "out of memory" and not bomb.timed_out
    assert after.rows == [(5,)]


# ---------------------------------------------------------------- gold cache


def test_cache_round_trip_and_content_keying(db, tmp_path):
    cache = GoldCache(tmp_path / "gold.sqlite")
    sql = "SELECT id, name, score, photo FROM people ORDER BY id"
    result = execute(db, sql)
    assert cache.get(db, sql) is None
    cache.put(db, sql, result)
    assert cache.get(db, sql) == result
    twin = tmp_path / "twin.sqlite"
    shutil.copyfile(db, twin)
    assert cache.get(twin, sql) == result  # same bytes, other path: a hit
    con = sqlite3.connect(twin)
    con.execute("UPDATE people SET name = 'zed' WHERE id = 1")
    con.commit()
    con.close()
    assert cache.get(twin, sql) is None  # changed bytes: a miss
    other = GoldCache(tmp_path / "gold.sqlite")  # another handle (as another process would) sees it
    assert other.get(db, sql) == result
    cache.close()
    other.close()


def test_cache_never_stores_timeouts(db, tmp_path):
    cache = GoldCache(tmp_path / "gold.sqlite")
    cache.put(db, RUNAWAY_CTE, execute(db, RUNAWAY_CTE, timeout=0.2))
    assert cache.get(db, RUNAWAY_CTE) is None
    cache.put(db, "SELECT nope", execute(db, "SELECT nope"))
    assert "no such column" in cache.get(db, "SELECT nope").error


def test_execute_cached_runs_only_misses(db, fresh_db, tmp_path, monkeypatch):
    executed: list[int] = []
    real = cache_module.execute_many

    def counting(jobs, **kwargs):
        executed.append(len(jobs))
        return real(jobs, **kwargs)

    monkeypatch.setattr(cache_module, "execute_many", counting)
    cache = GoldCache(tmp_path / "gold.sqlite")
    jobs = mixed_jobs(db, fresh_db, n=20)
    cold = cache.execute_cached(jobs, workers=2)
    warm = cache.execute_cached(jobs, workers=2)
    assert executed == [20]
    assert comparable(warm) == comparable(cold) == comparable([execute(p, s) for p, s in jobs])
    cache.execute_cached(jobs + [(db, "SELECT 'new'")], workers=2)
    assert executed == [20, 1]


def test_execute_cached_respects_row_caps(db, tmp_path):
    cache = GoldCache(tmp_path / "gold.sqlite")
    sql = "SELECT x FROM big ORDER BY x"
    small = cache.execute_cached([(db, sql)], max_rows=5)[0]
    assert small.truncated and len(small.rows) == 5
    full = cache.execute_cached([(db, sql)], max_rows=BIG_ROWS)[0]  # cached under a smaller cap: a miss
    assert not full.truncated and len(full.rows) == BIG_ROWS
    cut = cache.execute_cached([(db, sql)], max_rows=3)[0]
    assert cut.truncated and cut.rows == [(1,), (2,), (3,)]


# ---------------------------------------------------------------- Spider


@pytest.mark.spider
def test_spider_gold_queries_match_between_pool_and_in_process():
    root = spider_dir()
    if root is None:
        pytest.skip("Spider data absent (set T2S_SPIDER_DIR)")
    jobs = []
    for line in (root / "dev_gold.sql").read_text().splitlines()[::10]:
        sql, db_id = line.split("\t")
        jobs.append((root / "database" / db_id / f"{db_id}.sqlite", sql))
    pooled = execute_many(jobs, workers=2)
    assert comparable(pooled) == comparable([execute(p, s) for p, s in jobs])
    for (path, _), r in zip(jobs, pooled):
        assert r.error is None if path.is_file() else r.error.startswith("database not found")
