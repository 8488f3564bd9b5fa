"""Read-only, time-limited execution of one SQL query on a SQLite file.

Differences from the official Spider / test-suite evaluators, on purpose:

- **The timeout stops the query.** A SQLite progress handler checks a deadline every few
  thousand virtual-machine steps and interrupts the statement, so a runaway recursive CTE or a
  huge cross join ends inside SQLite. (The test-suite evaluator wraps a blocking call in
  ``func_timeout`` / ``asyncio.wait_for``, which gives up waiting but leaves the query running.)
- **Read-only is enforced,** not assumed: the file is opened with ``mode=ro``,
  ``PRAGMA query_only`` is on, extension loading is off, ``ATTACH`` is capped at zero, and an
  authorizer allows only reads (no writes, DDL, ATTACH, PRAGMA, transactions, ``load_extension``).
  The official evaluators open the database read-write, so a predicted ``DROP TABLE`` sticks.
- **Bad SQL never raises:** every failure (syntax error, denied statement, several statements,
  missing file, timeout) comes back as an :class:`ExecResult` with ``error`` set.
- **Memory is bounded:** a value may not exceed 64 MiB and a result 256 MiB of text and blobs
  (pool workers also run under an address-space cap), so ``zeroblob`` bombs become error records.
- Text that is not valid UTF-8 is decoded with replacement characters (the test-suite evaluator
  drops the bad bytes).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ROWS = 100_000

# VM steps between two deadline checks: small enough for sub-millisecond reaction,
# large enough that the Python callback costs little.
PROGRESS_STEPS = 2_000
# Largest string or blob a query may build (stops randomblob(1e9)-style memory bombs).
MAX_VALUE_BYTES = 64 * 1024 * 1024
# Text and blob bytes a result may hold in total (zeroblob(6e7) on each of 100k rows would not fit in RAM).
MAX_RESULT_BYTES = 256 * 1024 * 1024
# Connections kept open per thread (Spider dev has 20 databases, train 140).
MAX_OPEN_CONNECTIONS = 64

EMPTY_QUERY = "empty query"
MULTIPLE_STATEMENTS = "multiple statements are not allowed"
NO_RESULT_SET = "statement returns no result set (only queries are run)"

_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_DENIED_FUNCTIONS = {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"}
_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name
    for name in (
        "CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER CREATE_TEMP_VIEW "
        "CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX DROP_TABLE DROP_TEMP_INDEX DROP_TEMP_TABLE "
        "DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW INSERT PRAGMA TRANSACTION UPDATE ATTACH "
        "DETACH ALTER_TABLE REINDEX ANALYZE CREATE_VTABLE DROP_VTABLE SAVEPOINT"
    ).split()
}


@dataclass
class ExecResult:
    """Outcome of one execution. ``rows`` is ``None`` exactly when the query failed."""

    rows: list[tuple] | None
    columns: list[str] = field(default_factory=list)
    error: str | None = None
    timed_out: bool = False
    truncated: bool = False
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out and self.rows is not None

    def to_json(self, max_rows: int = 10) -> dict | None:
        """Preview for score records: ``{"columns", "rows", "n_rows"}``; ``None`` for a failed query.

        ``rows`` holds the first ``max_rows`` rows with JSON-safe values (bytes decoded tolerantly,
        non-finite floats as strings); ``n_rows`` counts all rows fetched (capped by ``max_rows`` of
        the execution, see ``truncated``).
        """
        if self.rows is None:
            return None
        preview = [[_json_safe(v) for v in row] for row in self.rows[:max_rows]]
        return {"columns": list(self.columns), "rows": preview, "n_rows": len(self.rows)}

    def to_dict(self) -> dict:
        """Lossless JSON-compatible form (bytes tagged as ``{"b64": ...}``); see :meth:`from_dict`."""
        return {
            "rows": None if self.rows is None else [[_encode_value(v) for v in row] for row in self.rows],
            "columns": list(self.columns),
            "error": self.error,
            "timed_out": self.timed_out,
            "truncated": self.truncated,
            "elapsed": self.elapsed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ExecResult:
        rows = data.get("rows")
        return cls(
            rows=None if rows is None else [tuple(_decode_value(v) for v in row) for row in rows],
            columns=list(data.get("columns") or []),
            error=data.get("error"),
            timed_out=bool(data.get("timed_out")),
            truncated=bool(data.get("truncated")),
            elapsed=float(data.get("elapsed") or 0.0),
        )


def _json_safe(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _encode_value(value):
    if isinstance(value, bytes):
        import base64

        return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _decode_value(value):
    if isinstance(value, dict):
        import base64

        return base64.b64decode(value["b64"])
    return value


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


class _Guard:
    """Per-connection authorizer that remembers the last denied action for the error message."""

    def __init__(self) -> None:
        self.denied: str | None = None

    def __call__(self, action, arg1, arg2, db_name, trigger):
        if action in _ALLOWED_ACTIONS:
            if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
                self.denied = self.denied or f"function {arg2}()"
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if self.denied is None:  # keep the first denial: it names the statement's own action
            name = _ACTION_NAMES.get(action, f"action {action}")
            self.denied = f"{name} on {arg1}" if arg1 else name
        return sqlite3.SQLITE_DENY


class _Connection:
    def __init__(self, path: str) -> None:
        uri = f"file:{quote(path)}?mode=ro"
        con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            con.text_factory = _decode_text
            if hasattr(con, "enable_load_extension"):
                con.enable_load_extension(False)
            con.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
            con.execute("PRAGMA query_only = ON")
            self.guard = _Guard()
            con.set_authorizer(self.guard)
        except BaseException:
            con.close()
            raise
        self.con = con


class _ConnectionCache(threading.local):
    """Open read-only connections, per thread and per process, keyed by file identity."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.entries: OrderedDict[tuple, _Connection] = OrderedDict()

    def get(self, path: str) -> _Connection:
        if self.pid != os.getpid():  # inherited through fork: never reuse the parent's handles
            self.pid, self.entries = os.getpid(), OrderedDict()
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns, st.st_ino)
        conn = self.entries.get(key)
        if conn is not None:
            self.entries.move_to_end(key)
            return conn
        for old in [k for k in self.entries if k[0] == key[0]]:  # the file changed on disk
            self.entries.pop(old).con.close()
        conn = _Connection(path)
        self.entries[key] = conn
        while len(self.entries) > MAX_OPEN_CONNECTIONS:
            self.entries.popitem(last=False)[1].con.close()
        return conn

    def clear(self) -> None:
        while self.entries:
            self.entries.popitem()[1].con.close()


_connections = _ConnectionCache()


def close_connections() -> None:
    """Close this thread's cached connections (e.g. before deleting database files on Windows)."""
    _connections.clear()


def execute(
    db_path: str | os.PathLike,
    sql: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ExecResult:
    """Run one query read-only; never raises for bad input (the error is in the result).

    ``timeout`` (seconds) bounds preparation, execution and fetching together; ``max_rows`` caps the
    rows kept (``truncated`` tells when more existed).
    """
    start = time.perf_counter()

    def failed(message: str, timed_out: bool = False) -> ExecResult:
        return ExecResult(None, [], message, timed_out, False, time.perf_counter() - start)

    if sql is None or not isinstance(sql, str):
        return failed(EMPTY_QUERY if sql is None else f"query must be a string, not {type(sql).__name__}")
    if not sql.strip():
        return failed(EMPTY_QUERY)
    path = Path(db_path)
    if not path.is_file():
        return failed(f"database not found: {path}")
    try:
        conn = _connections.get(os.path.abspath(path))
    except (sqlite3.Error, OSError) as exc:
        return failed(f"cannot open database {path}: {exc}")

    deadline = time.monotonic() + timeout
    con, guard = conn.con, conn.guard
    guard.denied = None
    con.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
    cursor = None
    try:
        cursor = con.execute(sql)
        if cursor.description is None:
            return failed(EMPTY_QUERY if _is_blank(sql) else NO_RESULT_SET)
        columns = [d[0] for d in cursor.description]
        rows: list[tuple] = []
        truncated = False
        size = 0
        for row in cursor:  # row by row: a budget check per row stops memory bombs early
            if len(rows) == max_rows:
                truncated = True
                break
            size += sum(len(v) for v in row if isinstance(v, (str, bytes)))
            if size > MAX_RESULT_BYTES:
                return failed(f"result too large (over {MAX_RESULT_BYTES // 2**20} MiB of text and blobs)")
            rows.append(row)
        return ExecResult(rows, columns, None, False, truncated, time.perf_counter() - start)
    except sqlite3.ProgrammingError as exc:
        if "one statement at a time" in str(exc):
            return failed(MULTIPLE_STATEMENTS)
        return failed(str(exc))
    except sqlite3.Error as exc:
        if time.monotonic() > deadline and "interrupted" in str(exc):
            return failed(f"timed out after {timeout:g}s", timed_out=True)
        if guard.denied is not None and (
            getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_AUTH or "not authorized" in str(exc)
        ):
            return failed(f"not authorized (read-only execution): {guard.denied}")
        return failed(str(exc))
    except MemoryError:
        return failed("out of memory")
    except (OverflowError, ValueError) as exc:  # e.g. an out-of-range integer
        return failed(f"{type(exc).__name__}: {exc}")
    finally:
        if cursor is not None:
            cursor.close()
        con.set_progress_handler(None, 0)



def _is_blank(sql: str) -> bool:
    """Whether ``sql`` holds only comments and semicolons (rare path, so sqlglot loads lazily)."""
    from sqlglot.errors import TokenError
    from sqlglot.tokens import Tokenizer, TokenType

    try:
        return all(t.token_type == TokenType.SEMICOLON for t in Tokenizer().tokenize(sql))
    except TokenError:
        return False
