"""On-disk cache of gold-query results, keyed by (database content hash, SQL).

Gold results depend only on the database's bytes and the query text, so they are computed once
and reused across runs and systems. The key is the file's SHA-256, not its path: a changed or
replaced database never serves stale rows, and two copies of one database share entries. A
file's hash is computed once and remembered by (path, size, mtime, inode), in memory and in the
cache file. The store is one SQLite file (WAL mode), safe to share between processes.

Cached: successful results and deterministic SQL errors. Never cached: timeouts, worker
crashes and errors from the memory limits, which depend on the machine and the limits set.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from t2s_bench.files import file_sha256

from .executor import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT, LIMIT_ERRORS, ExecResult
from .pool import Job, execute_many

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    db_hash TEXT NOT NULL,
    sql TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (db_hash, sql)
);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns, inode)
);
"""
_HASH_CHUNK = 1 << 20


def default_cache_path() -> Path:
    from t2s_bench.paths import cache_dir

    return cache_dir() / "gold_results.sqlite"


def _file_identity(path: str) -> tuple[str, int, int, int]:
    st = os.stat(path)
    return (path, st.st_size, st.st_mtime_ns, st.st_ino)


def _sha256(path: Path) -> str:
    return file_sha256(path, _HASH_CHUNK)


def is_cacheable(result: ExecResult) -> bool:
    """Whether a result is a property of (database, SQL) alone, not of this machine, run or limits."""
    if result.timed_out:
        return False
    if result.error is None:
        return True
    return not result.error.startswith(("worker crashed", "internal error")) and not any(
        fragment in result.error for fragment in LIMIT_ERRORS
    )


class GoldCache:
    """Gold results on disk. ``GoldCache()`` uses ``paths.cache_dir()/gold_results.sqlite``."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._hashes: dict[tuple, str] = {}
        self._con = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.executescript(_SCHEMA)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> GoldCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def db_hash(self, db_path: str | os.PathLike) -> str:
        """SHA-256 of the database file, computed once per (path, size, mtime, inode)."""
        key = _file_identity(os.path.abspath(db_path))
        cached = self._hashes.get(key)
        if cached is not None:
            return cached
        with self._lock:
            row = self._con.execute(
                "SELECT sha256 FROM file_hashes WHERE path=? AND size=? AND mtime_ns=? AND inode=?", key
            ).fetchone()
            if row is None:
                digest = _sha256(Path(key[0]))
                self._con.execute("INSERT OR REPLACE INTO file_hashes VALUES (?,?,?,?,?)", (*key, digest))
            else:
                digest = row[0]
        self._hashes[key] = digest
        return digest

    def get(self, db_path: str | os.PathLike, sql: str) -> ExecResult | None:
        """The cached result, or ``None`` (a miss, or the database file is missing)."""
        try:
            db_hash = self.db_hash(db_path)
        except OSError:
            return None
        with self._lock:
            row = self._con.execute("SELECT result FROM results WHERE db_hash=? AND sql=?", (db_hash, sql)).fetchone()
        return None if row is None else ExecResult.from_dict(json.loads(row[0]))

    def put(self, db_path: str | os.PathLike, sql: str, result: ExecResult) -> None:
        """Store a result; timeouts and crashes are silently not stored (see :func:`is_cacheable`)."""
        self.put_many([(db_path, sql, result)])

    def put_many(self, entries: list[tuple[str | os.PathLike, str, ExecResult]]) -> None:
        rows = []
        for db_path, sql, result in entries:
            if is_cacheable(result):
                try:
                    rows.append((self.db_hash(db_path), sql, json.dumps(result.to_dict())))
                except OSError:
                    continue
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                self._con.executemany("INSERT OR REPLACE INTO results VALUES (?,?,?)", rows)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    def execute_cached(
        self,
        jobs: list[Job],
        *,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> list[ExecResult]:
        """Like :func:`execute_many`, executing only the misses and storing their results.

        A cached result truncated below ``max_rows`` counts as a miss; one with more rows than
        ``max_rows`` is cut down (and marked truncated) for this call.
        """
        jobs = list(jobs)
        results: list[ExecResult | None] = []
        misses: list[int] = []
        for i, (db_path, sql) in enumerate(jobs):
            hit = self.get(db_path, sql)
            if hit is not None and hit.truncated and hit.rows is not None and len(hit.rows) < max_rows:
                hit = None  # cached under a smaller row cap
            if hit is not None and hit.rows is not None and len(hit.rows) > max_rows:
                hit.rows, hit.truncated = hit.rows[:max_rows], True
            results.append(hit)
            if hit is None:
                misses.append(i)
        if misses:
            fresh = execute_many([jobs[i] for i in misses], workers=workers, timeout=timeout, max_rows=max_rows)
            for i, result in zip(misses, fresh):
                results[i] = result
            self.put_many([(jobs[i][0], jobs[i][1], results[i]) for i in misses])
        return results  # type: ignore[return-value]
