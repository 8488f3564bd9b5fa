"""Worker process for the execution pool: ``python -m t2s_bench.execution._worker``.

Optional argument: an address-space limit in bytes (``0``: none). Protocol over stdin/stdout (pickled messages through ``multiprocessing.connection``): the worker
first sends ``"ready"``, then answers each ``(job_id, db_path, sql, timeout, max_rows)`` with
``(job_id, ExecResult)``; ``None`` (or end of input) stops it.
"""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Connection

from .executor import ExecResult, execute


def limit_memory(limit_bytes: int) -> None:
    """Cap this process's address space, so a memory bomb fails inside SQLite, not the machine."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit_bytes = min(limit_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or not allowed: best effort
        pass


def main() -> None:
    if len(sys.argv) > 1 and int(sys.argv[1]) > 0:
        limit_memory(int(sys.argv[1]))
    inbox = Connection(os.dup(0), writable=False)
    outbox = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # stray prints go to stderr, never into the protocol stream
    outbox.send("ready")
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        job_id, db_path, sql, timeout, max_rows = message
        try:
            result = execute(db_path, sql, timeout=timeout, max_rows=max_rows)
        except Exception as exc:  # execute() does not raise; this keeps the worker alive regardless
            result = ExecResult(None, [], f"internal error: {type(exc).__name__}: {exc}", False, False, 0.0)
        try:
            outbox.send((job_id, result))
        except (OSError, ValueError):
            return


if __name__ == "__main__":
    main()
