"""Run many queries over worker processes, in order, with a hard per-job backstop.

Workers are fresh interpreters (``python -m t2s_bench.execution._worker``), not forks: they
inherit no threads or model state from the caller, and the caller's script needs no
``if __name__ == "__main__"`` guard. Each worker keeps its read-only connections open (the
executor's per-process cache), so a database is opened once per worker, not once per query.

The executor's own timeout stops a query inside SQLite; the pool adds a backstop for anything
that escapes it: a worker that has not answered ``timeout + grace`` seconds after taking a job is
killed and replaced, and the job gets a ``timed_out`` record. Workers run under an address-space cap (``memory_limit``). A worker that dies (e.g. killed for
memory) gives its job an error record and the other jobs go on. Official evaluators have
neither: one stuck query stalls the whole run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path

from . import executor
from .executor import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT, ExecResult

DEFAULT_GRACE = 5.0
# Address-space cap per worker (RLIMIT_AS): a memory bomb becomes an error record, not an OOM kill.
DEFAULT_MEMORY_LIMIT = 4 * 1024**3
# Below this many jobs, starting processes costs more than it saves.
MIN_JOBS_FOR_POOL = 16
WORKER_START_TIMEOUT = 60.0
# Jobs sent ahead to each worker, so it never waits for the parent between two short queries.
PIPELINE_DEPTH = 2
# The pipe-based workers need POSIX file descriptors; elsewhere execute_many runs in-process.
POOL_SUPPORTED = os.name == "posix"

Job = tuple["str | os.PathLike", str]
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class WorkerStartError(RuntimeError):
    """A worker process could not start (broken environment, not a bad query)."""


class _Worker:
    def __init__(self, memory_limit: int | None) -> None:
        env = dict(os.environ)
        # -S skips site.py (faster start); the caller's sys.path gives the same importable packages
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([_PACKAGE_PARENT, *(p for p in sys.path if p)]))
        self.process = subprocess.Popen(
            [sys.executable, "-S", "-m", "t2s_bench.execution._worker", str(memory_limit or 0)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
        )
        self.outbox = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.inbox = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self.queue: deque[int] = deque()  # job ids sent, oldest (the one running) first
        self.started = 0.0  # when the oldest job began

    def wait_ready(self, deadline: float) -> None:
        try:
            if self.inbox.poll(max(0.0, deadline - time.monotonic())) and self.inbox.recv() == "ready":
                return
        except (EOFError, OSError):
            pass
        self.kill()
        raise WorkerStartError(f"execution worker did not start (exit code {self.process.poll()}); see its stderr")

    def assign(self, job_id: int, message: tuple) -> None:
        if not self.queue:
            self.started = time.monotonic()
        self.queue.append(job_id)
        self.outbox.send(message)

    def done(self) -> None:
        """The oldest job answered; the next one (if any) starts now."""
        self.queue.popleft()
        self.started = time.monotonic()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.inbox.close()
        self.outbox.close()

    def stop(self) -> None:
        try:
            self.outbox.send(None)
            self.process.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


def _start_workers(n: int, memory_limit: int | None) -> list[_Worker]:
    workers = [_Worker(memory_limit) for _ in range(n)]
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    try:
        for worker in workers:
            worker.wait_ready(deadline)
    except WorkerStartError:
        for worker in workers:
            worker.kill()
        raise
    return workers


class ExecutionPool:
    """Worker processes for :func:`execute_many`; reuse one across calls to pay start-up once.

    >>> with ExecutionPool(workers=2) as pool:
    ...     results = pool.run([(db, "SELECT 1")])
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        grace: float = DEFAULT_GRACE,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    ):
        if not POOL_SUPPORTED:
            raise RuntimeError("ExecutionPool needs a POSIX system; use execute_many (runs in-process here)")
        self.workers = workers or default_workers()
        self.grace = grace
        self.memory_limit = memory_limit
        self._pool: list[_Worker] = []

    def __enter__(self) -> ExecutionPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (started on the first :meth:`run`)."""
        return [w.process.pid for w in self._pool]

    def close(self) -> None:
        while self._pool:
            self._pool.pop().stop()

    def run(
        self,
        jobs: list[Job],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> list[ExecResult]:
        """Execute ``(db_path, sql)`` jobs; ``results[i]`` answers ``jobs[i]``."""
        try:
            return self._run(jobs, timeout, max_rows)
        except BaseException:  # interrupted mid-run: in-flight answers must not leak into a later run
            for worker in self._pool:
                worker.kill()
            self._pool.clear()
            raise

    def _run(self, jobs: list[Job], timeout: float, max_rows: int) -> list[ExecResult]:
        results: list[ExecResult | None] = [None] * len(jobs)
        pending = deque(range(len(jobs)))
        hard_limit = timeout + self.grace
        self._pool += _start_workers(min(self.workers, len(jobs)) - len(self._pool), self.memory_limit)

        def feed(worker: _Worker) -> None:
            while pending and len(worker.queue) < PIPELINE_DEPTH:
                job_id = pending.popleft()
                db_path, sql = jobs[job_id]
                try:
                    worker.assign(job_id, (job_id, str(db_path), sql, timeout, max_rows))
                except (OSError, ValueError):  # the worker died while idle: nothing of this job ran
                    retire(worker, None)
                    return

        def retire(worker: _Worker, result: ExecResult | None) -> None:
            """Record the running job's failure (if it had started), requeue the rest, replace the worker."""
            if result is not None:
                results[worker.queue.popleft()] = result
            pending.extendleft(reversed(worker.queue))
            worker.kill()
            self._pool.remove(worker)
            (fresh,) = _start_workers(1, self.memory_limit)
            self._pool.append(fresh)

        while pending or any(w.queue for w in self._pool):
            for worker in list(self._pool):
                feed(worker)
            busy = {w.inbox: w for w in self._pool if w.queue}
            if not busy:
                continue
            next_deadline = min(w.started for w in busy.values()) + hard_limit
            for inbox in wait(list(busy), timeout=max(0.0, next_deadline - time.monotonic())):
                worker = busy[inbox]
                try:
                    job_id, result = inbox.recv()
                except (EOFError, OSError):
                    worker.process.wait(timeout=10)
                    crashed = f"worker crashed (exit code {worker.process.returncode})"
                    retire(worker, ExecResult(None, [], crashed, False, False, time.monotonic() - worker.started))
                    continue
                results[job_id] = result
                worker.done()
            now = time.monotonic()
            for worker in list(busy.values()):
                if worker in self._pool and worker.queue and now >= worker.started + hard_limit:
                    killed = f"timed out after {timeout:g}s (worker killed after {hard_limit:g}s)"
                    retire(worker, ExecResult(None, [], killed, True, False, now - worker.started))
        return results  # type: ignore[return-value]


def execute_many(
    jobs: list[Job],
    *,
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_rows: int = DEFAULT_MAX_ROWS,
    grace: float = DEFAULT_GRACE,
) -> list[ExecResult]:
    """Execute ``(db_path, sql)`` jobs over worker processes; ``results[i]`` answers ``jobs[i]``.

    ``workers=None`` uses every available core. With one worker, fewer than
    ``MIN_JOBS_FOR_POOL`` jobs, or no POSIX, the jobs run in this process (the SQLite-level
    timeout still applies; only the kill-the-worker backstop is absent).
    """
    jobs = list(jobs)
    results: list[ExecResult | None] = [None] * len(jobs)
    # Jobs that fail before reaching SQLite (no file, no SQL) are answered here, without a worker.
    to_run = [i for i, (db, sql) in enumerate(jobs) if isinstance(sql, str) and sql.strip() and Path(db).is_file()]
    for i in set(range(len(jobs))) - set(to_run):
        results[i] = executor.execute(*jobs[i], timeout=timeout, max_rows=max_rows)
    n_workers = min(workers or default_workers(), len(to_run))
    if n_workers <= 1 or len(to_run) < MIN_JOBS_FOR_POOL or not POOL_SUPPORTED:
        for i in to_run:
            results[i] = executor.execute(*jobs[i], timeout=timeout, max_rows=max_rows)
    else:
        with ExecutionPool(n_workers, grace=grace) as pool:
            for i, result in zip(to_run, pool.run([jobs[i] for i in to_run], timeout=timeout, max_rows=max_rows)):
                results[i] = result
    return results  # type: ignore[return-value]
