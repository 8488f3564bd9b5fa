"""Worker process for the execution pool: ``python -m t2s_bench.execution._worker LIMIT PARENT_PID WATCHDOG_FD``.

``LIMIT``: the worker's memory limit in bytes (``0``: none): the address space is capped at it
(``RLIMIT_AS``) and SQLite's heap at half of it (``PRAGMA hard_heap_limit``). ``PARENT_PID`` and
``WATCHDOG_FD`` (the read end of a pipe only the parent writes to; ``-1``: none) make the worker
die with its parent, even in the middle of a query: on Linux through ``PR_SET_PDEATHSIG``, and
everywhere through a thread that exits the process when that pipe reaches end of file.

Protocol over stdin/stdout (pickled messages through ``multiprocessing.connection``): the worker
first sends ``"ready"``, then answers each ``(job_id, db_path, sql, timeout, max_rows,
max_result_bytes)`` with ``(job_id, ExecResult)``; ``None`` (or end of input) stops it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
from multiprocessing.connection import Connection

from .executor import ExecResult, execute_in_process

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, watchdog_fd: int) -> None:
    """Exit as soon as the parent process is gone, whatever this process is doing."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watchdog below still works
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above ran
        os._exit(1)
    if watchdog_fd >= 0:

        def watch() -> None:
            try:
                os.read(watchdog_fd, 1)  # returns b"" when the parent's end closes (it never writes)
            finally:
                os._exit(1)

        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def limit_memory(limit_bytes: int) -> None:
    """Cap the address space and SQLite's heap, so a memory bomb fails inside SQLite, not the machine."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit_bytes = min(limit_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or not allowed: the heap limit still applies
        pass
    con = sqlite3.connect(":memory:")  # the heap limit is process-wide; any connection sets it
    try:
        con.execute(f"PRAGMA hard_heap_limit = {int(limit_bytes // 2)}")
    finally:
        con.close()


def main() -> None:
    memory_limit, parent_pid, watchdog_fd = (int(a) for a in sys.argv[1:4])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    if parent_pid > 0:
        die_with_parent(parent_pid, watchdog_fd)
    if memory_limit > 0:
        limit_memory(memory_limit)
    inbox = Connection(os.dup(0), writable=False)
    outbox = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # stray prints go to stderr, never into the protocol stream
    outbox.send("ready")
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job_id, db_path, sql, timeout, max_rows, max_result_bytes = message
        try:
            result = execute_in_process(db_path, sql, timeout=timeout, max_rows=max_rows,
                                        max_result_bytes=max_result_bytes)
        except Exception as exc:  # execute_in_process does not raise; this keeps the worker alive regardless
            result = ExecResult(None, [], f"internal error: {type(exc).__name__}: {exc}", False, False, 0.0)
        try:
            outbox.send((job_id, result))
        except (OSError, ValueError):
            return
        except MemoryError:
            outbox.send((job_id, ExecResult(None, [], "out of memory", False, False, result.elapsed)))


if __name__ == "__main__":
    main()
