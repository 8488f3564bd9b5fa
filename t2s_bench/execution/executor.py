"""Read-only, time- and memory-bounded execution of one SQL query on a SQLite file.

:func:`execute` runs the query in an execution worker process (see :mod:`.pool`) that is killed
when it overruns its deadline; :func:`execute_in_process` is the SQLite part that the worker runs.

Differences from the official Spider / test-suite evaluators, on purpose:

- **The timeout stops the query.** A SQLite progress handler checks a deadline every few
  thousand virtual-machine steps and interrupts the statement, so a runaway recursive CTE or a
  huge cross join ends inside SQLite. One long SQLite function call (``instr`` on two strings of
  millions of characters) never reaches the progress handler: that is why queries run in a worker
  process, which the pool kills ``grace`` seconds (default 1) after the timeout, recording
  ``timed_out=True``. (The test-suite evaluator wraps a blocking call in ``func_timeout`` /
  ``asyncio.wait_for``, which gives up waiting but leaves the query running.)
- **Read-only is enforced,** not assumed: the file is opened with ``mode=ro``,
  ``PRAGMA query_only`` is on, extension loading is off, ``ATTACH`` is capped at zero, and an
  authorizer allows only reads (no writes, DDL, ATTACH, PRAGMA, transactions, ``load_extension``).
  A refused statement is reported by its kind (``DROP TABLE statement refused``).
  The official evaluators open the database read-write, so a predicted ``DROP TABLE`` sticks.
- **Bad SQL never raises:** every failure (syntax error, denied statement, several statements,
  missing file, timeout, out of memory) comes back as an :class:`ExecResult` with ``error`` set.
- Text that is not valid UTF-8 is decoded with replacement characters (the test-suite evaluator
  drops the bad bytes).

**Memory limits** (defaults; each can be changed with an environment variable, read when this
module is imported, in bytes or with a K/M/G suffix, or per call):

- *per value*: ``SQLITE_LIMIT_LENGTH`` = 64 MiB on every connection (``T2S_EXEC_MAX_VALUE_BYTES``):
  a longer string or blob fails with "string or blob too big";
- *per result*: 32 MiB, counted row by row while fetching, before the result is complete
  (``T2S_EXEC_MAX_RESULT_BYTES``, or ``max_result_bytes=``): text and blob lengths plus 16 bytes
  per value; over it the query fails with "result too large";
- *per worker*: an address-space cap (``RLIMIT_AS``) of 2 GiB, of which SQLite's own heap may use
  half (``PRAGMA hard_heap_limit``) (``T2S_EXEC_MEMORY_LIMIT``, or ``ExecutionPool(memory_limit=)``;
  0 turns both off): a memory bomb becomes an "out of memory" record, not an OOM kill;
- *SQLite temp files*: none; ``PRAGMA temp_store=MEMORY`` keeps sorts and temporary tables in
  memory, under the heap limit above, so a query cannot fill the disk.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

_SIZE_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def env_bytes(name: str, default: int) -> int:
    """A byte count from the environment variable ``name`` ("2G", "512M", "1048576"), else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:I?B)?", raw.upper())
    if match is None:
        raise ValueError(f"{name}={raw!r}: expected a number of bytes such as 536870912, 512M or 2G")
    return int(match.group(1)) * _SIZE_SUFFIXES[match.group(2)]


DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ROWS = 100_000

# VM steps between two deadline checks: small enough for sub-millisecond reaction,
# large enough that the Python callback costs little.
PROGRESS_STEPS = 2_000
# Largest string or blob a query may build (stops randomblob(1e9)-style memory bombs).
MAX_VALUE_BYTES = env_bytes("T2S_EXEC_MAX_VALUE_BYTES", 64 * 2**20)
# Estimated bytes a result may hold (text and blob lengths plus VALUE_OVERHEAD per value).
MAX_RESULT_BYTES = env_bytes("T2S_EXEC_MAX_RESULT_BYTES", 32 * 2**20)
VALUE_OVERHEAD = 16
# Connections kept open per thread (Spider dev has 20 databases, train 140).
MAX_OPEN_CONNECTIONS = 64

EMPTY_QUERY = "empty query"
MULTIPLE_STATEMENTS = "multiple statements are not allowed"
NO_RESULT_SET = "statement returns no result set (only queries are run)"
NOT_AUTHORIZED = "not authorized (read-only execution)"
# Errors that come from the memory limits (configurable), not from the query alone.
LIMIT_ERRORS = ("out of memory", "result too large", "string or blob too big")

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
            con.execute("PRAGMA temp_store = MEMORY")  # no temp files: sorts count against the heap limit
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails now on a file that is not SQLite
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
    max_result_bytes: int = MAX_RESULT_BYTES,
) -> ExecResult:
    """Run one query read-only in an execution worker process; never raises for bad input.

    ``timeout`` (seconds) bounds preparation, execution and fetching together; a worker that has
    not answered ``timeout`` + 1 s after taking the query is killed (``timed_out=True``).
    ``max_rows`` caps the rows kept (``truncated`` tells when more existed); ``max_result_bytes``
    caps the result's size (see the module docstring). Without POSIX the query runs in this process.
    """
    from .pool import execute_many

    return execute_many([(db_path, sql)], workers=1, timeout=timeout, max_rows=max_rows,
                        max_result_bytes=max_result_bytes)[0]


def execute_in_process(
    db_path: str | os.PathLike,
    sql: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_result_bytes: int = MAX_RESULT_BYTES,
) -> ExecResult:
    """Run one query read-only in this process (what a worker does); never raises for bad input.

    Bounded by the progress-handler timeout and the value and result limits, but not against one
    long SQLite function call or SQLite's heap use: run untrusted SQL through :func:`execute`.
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
            if _is_blank(sql):
                return failed(EMPTY_QUERY)
            kind = statement_kind(sql)
            return failed(f"{kind} {NO_RESULT_SET}" if kind else NO_RESULT_SET)
        columns = [d[0] for d in cursor.description]
        rows: list[tuple] = []
        truncated = False
        size = 0
        for row in cursor:  # row by row: the budget stops a huge result before it is complete
            if len(rows) == max_rows:
                truncated = True
                break
            size += VALUE_OVERHEAD * len(row) + sum(len(v) for v in row if isinstance(v, (str, bytes)))
            if size > max_result_bytes:
                return failed(f"result too large (over {_format_bytes(max_result_bytes)} after {len(rows)} rows; "
                              "limit: T2S_EXEC_MAX_RESULT_BYTES)")
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
            kind = statement_kind(sql)
            what = f"{kind} statement refused, only queries are run" if kind else guard.denied
            return failed(f"{NOT_AUTHORIZED}: {what}")
        return failed(str(exc))
    except MemoryError:
        return failed("out of memory")
    except (OverflowError, ValueError) as exc:  # e.g. an out-of-range integer
        return failed(f"{type(exc).__name__}: {exc}")
    finally:
        if cursor is not None:
            cursor.close()
        con.set_progress_handler(None, 0)


# Leading whitespace, comments and parentheses before a statement's first keyword.
_LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?(?:\*/|\Z)|\()*", re.S)
_KIND = re.compile(
    r"(?:(CREATE|DROP)\s+(?:(?:TEMP|TEMPORARY|UNIQUE|VIRTUAL)\s+)?(TABLE|INDEX|VIEW|TRIGGER)\b)|([A-Z]+)", re.I
)
_QUERY_KEYWORDS = {"SELECT", "WITH", "VALUES"}
# SQLite statements that are not queries (read-only execution refuses or skips them all).
NON_QUERY_STATEMENTS = frozenset(
    "ALTER ANALYZE ATTACH BEGIN COMMIT CREATE DELETE DETACH DROP END INSERT PRAGMA REINDEX RELEASE REPLACE "
    "ROLLBACK SAVEPOINT UPDATE UPSERT VACUUM".split()
)


def statement_kind(sql: str) -> str | None:
    """The kind of a statement that is not a query ("DROP TABLE", "VACUUM", "PRAGMA"), from its first
    keyword; ``None`` for a query (SELECT, WITH, VALUES) or text that starts with no keyword."""
    match = _KIND.match(sql, _LEADING.match(sql).end())
    if match is None:
        return None
    if match.group(1):
        return f"{match.group(1)} {match.group(2)}".upper()
    word = match.group(3).upper()
    return None if word in _QUERY_KEYWORDS else word


def _format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def _is_blank(sql: str) -> bool:
    """Whether ``sql`` holds only comments and semicolons (rare path, so sqlglot loads lazily)."""
    from sqlglot.errors import TokenError
    from sqlglot.tokens import Tokenizer, TokenType

    try:
        return all(t.token_type == TokenType.SEMICOLON for t in Tokenizer().tokenize(sql))
    except TokenError:
        return False
