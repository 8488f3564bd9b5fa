"""Run queries in worker processes, in order, each killed when it overruns its deadline.

Every query reaches SQLite in a worker process (``python -m t2s_bench.execution._worker``), never
in the caller's: :func:`execute`, :func:`execute_many` with any number of jobs or workers, and so
the scorer, repair checks and votes. Only where ``POOL_SUPPORTED`` is false (no POSIX) do queries
run in-process, bounded by the SQLite-level timeout alone.

Workers are fresh interpreters, not forks: they inherit no threads or model state from the
caller, and the caller's script needs no ``if __name__ == "__main__"`` guard. Idle workers are
kept (up to ``MAX_IDLE_WORKERS``) and reused by later calls, so start-up (about 0.1 s) is paid
once; each keeps its read-only connections open, so a database is opened once per worker.

Bounds, per job and per worker:

- *time*: the executor's timeout stops a query inside SQLite; a worker that has not answered
  ``timeout + grace`` seconds (grace: 1 s by default) after taking a job is killed and replaced,
  and the job gets a ``timed_out`` record. This is what stops one long SQLite function call.
- *memory*: workers run under ``memory_limit`` (address space; SQLite's heap gets half), see
  the executor's docstring. A worker that dies gives its job an error record; the others go on.
- *lifetime*: workers die with the caller, even when it is killed with SIGKILL mid-query
  (``PR_SET_PDEATHSIG`` on Linux, and a pipe whose end of file a watchdog thread in the worker
  waits for). Workers are started from one long-lived thread, because the death signal follows
  the *thread* that started a process.

Official evaluators have none of this: one stuck query stalls the whole run.
"""

from __future__ import annotations

import atexit
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from pathlib import Path

from . import executor
from .executor import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT, MAX_RESULT_BYTES, ExecResult, env_bytes

# Seconds a worker may overrun a job's timeout before it is killed (covers sending the result).
DEFAULT_GRACE = 1.0
# Memory per worker (RLIMIT_AS; SQLite's heap limit is half of it): a memory bomb becomes an error record.
DEFAULT_MEMORY_LIMIT = env_bytes("T2S_EXEC_MEMORY_LIMIT", 2 * 2**30)
WORKER_START_TIMEOUT = 60.0
# Jobs sent ahead to each worker, so it never waits for the parent between two short queries.
PIPELINE_DEPTH = 2
# The pipe-based workers need POSIX file descriptors; elsewhere queries run in-process.
POOL_SUPPORTED = os.name == "posix"

Job = tuple["str | os.PathLike", str]
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# Idle workers kept for reuse between calls.
MAX_IDLE_WORKERS = max(2, default_workers())


class WorkerStartError(RuntimeError):
    """A worker process could not start (broken environment, not a bad query)."""


class _Spawner:
    """Starts processes from one daemon thread that lives as long as this process.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that started a child exits; the scorer executes
    from a short-lived thread, whose workers would otherwise die with it while still in use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self._requests: queue.SimpleQueue = queue.SimpleQueue()

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child (the thread did not follow)
                self._pid, self._requests = os.getpid(), queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(self._requests,), name="t2s-exec-spawner",
                                 daemon=True).start()
            done: Future = Future()
            self._requests.put((argv, kwargs, done))
        return done.result()

    @staticmethod
    def _serve(requests: queue.SimpleQueue) -> None:
        while True:
            argv, kwargs, done = requests.get()
            try:
                done.set_result(subprocess.Popen(argv, **kwargs))
            except BaseException as exc:  # handed to the caller
                done.set_exception(exc)


_spawner = _Spawner()


class _Worker:
    def __init__(self, memory_limit: int | None) -> None:
        self.memory_limit = memory_limit or 0
        env = dict(os.environ)
        # -S skips site.py (faster start); the caller's sys.path gives the same importable packages
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([_PACKAGE_PARENT, *(p for p in sys.path if p)]))
        watch_read, self._watch_write = os.pipe()  # never written: its end of file tells the worker we died
        try:
            argv = [sys.executable, "-S", "-m", "t2s_bench.execution._worker",
                    str(self.memory_limit), str(os.getpid()), str(watch_read)]
            self.process = _spawner.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                          close_fds=True, pass_fds=(watch_read,))
        except BaseException:
            os.close(self._watch_write)
            raise
        finally:
            os.close(watch_read)
        self.outbox = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.inbox = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self.queue: deque[int] = deque()  # job ids sent, oldest (the one running) first
        self.started = 0.0  # when the oldest job began

    @property
    def reusable(self) -> bool:
        """Running, with no job in flight."""
        return self.process.poll() is None and not self.queue

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
        self._close()

    def stop(self) -> None:
        try:
            self.outbox.send(None)
            self.process.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def _close(self) -> None:
        self.inbox.close()
        self.outbox.close()
        if self._watch_write >= 0:
            os.close(self._watch_write)
            self._watch_write = -1


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


class _IdleWorkers:
    """Started workers waiting for the next call, shared by every pool of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._workers: list[_Worker] = []

    def take(self, n: int, memory_limit: int | None) -> list[_Worker]:
        """``n`` ready workers with this memory limit: idle ones first, then new ones."""
        taken: list[_Worker] = []
        dead: list[_Worker] = []
        with self._lock:
            self._forget_if_forked()
            for worker in reversed(self._workers[:]):  # most recently used first
                if len(taken) == n:
                    break
                if worker.memory_limit == (memory_limit or 0):
                    self._workers.remove(worker)
                    (taken if worker.reusable else dead).append(worker)
        for worker in dead:
            worker.kill()
        return taken + (_start_workers(n - len(taken), memory_limit) if n > len(taken) else [])

    def give(self, workers: list[_Worker]) -> None:
        """Keep healthy idle workers for later calls (the most recently used ones); stop the rest."""
        surplus = []
        with self._lock:
            self._forget_if_forked()
            for worker in workers:
                (self._workers if worker.reusable else surplus).append(worker)
            while len(self._workers) > MAX_IDLE_WORKERS:
                surplus.append(self._workers.pop(0))
        for worker in surplus:
            if worker.queue:
                worker.kill()
            else:
                worker.stop()

    def close(self) -> None:
        with self._lock:
            self._forget_if_forked()
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def _forget_if_forked(self) -> None:
        if self._pid != os.getpid():  # a forked child: those workers belong to the parent
            self._pid, self._workers = os.getpid(), []


_idle = _IdleWorkers()
atexit.register(_idle.close)


def close_workers() -> None:
    """Stop the idle execution workers of this process (they are also stopped at exit)."""
    _idle.close()


class ExecutionPool:
    """Worker processes for :func:`execute_many`; reuse one across calls to keep its workers.

    >>> with ExecutionPool(workers=2) as pool:
    ...     results = pool.run([(db, "SELECT 1")])

    Workers come from (and on :meth:`close` go back to) the process's idle workers.
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
        """Process ids of this pool's workers (taken on the first :meth:`run`)."""
        return [w.process.pid for w in self._pool]

    def close(self) -> None:
        workers, self._pool = self._pool, []
        _idle.give(workers)

    def run(
        self,
        jobs: list[Job],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_result_bytes: int = MAX_RESULT_BYTES,
    ) -> list[ExecResult]:
        """Execute ``(db_path, sql)`` jobs; ``results[i]`` answers ``jobs[i]``."""
        try:
            return self._run(jobs, (timeout, max_rows, max_result_bytes))
        except BaseException:  # interrupted mid-run: in-flight answers must not leak into a later run
            for worker in self._pool:
                worker.kill()
            self._pool.clear()
            raise

    def _run(self, jobs: list[Job], limits: tuple[float, int, int]) -> list[ExecResult]:
        results: list[ExecResult | None] = [None] * len(jobs)
        pending = deque(range(len(jobs)))
        timeout = limits[0]
        hard_limit = timeout + self.grace
        wanted = min(self.workers, len(jobs)) - len(self._pool)
        if wanted > 0:
            self._pool += _idle.take(wanted, self.memory_limit)

        def feed(worker: _Worker) -> None:
            while pending and len(worker.queue) < PIPELINE_DEPTH:
                job_id = pending.popleft()
                db_path, sql = jobs[job_id]
                try:
                    worker.assign(job_id, (job_id, str(db_path), sql, *limits))
                except (OSError, ValueError):  # the worker died while idle: its jobs go back to pending
                    retire(worker, None)
                    return

        def retire(worker: _Worker, result: ExecResult | None) -> None:
            """Record the running job's failure (if it had started), requeue the rest, replace the worker."""
            if result is not None:
                results[worker.queue.popleft()] = result
            pending.extendleft(reversed(worker.queue))
            worker.queue.clear()
            worker.kill()
            self._pool.remove(worker)
            self._pool += _start_workers(1, self.memory_limit)

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
                overdue = worker in self._pool and worker.queue and now >= worker.started + hard_limit
                if overdue and not worker.inbox.poll(0):  # an answer that just arrived is read next round
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
    max_result_bytes: int = MAX_RESULT_BYTES,
) -> list[ExecResult]:
    """Execute ``(db_path, sql)`` jobs in worker processes; ``results[i]`` answers ``jobs[i]``.

    ``workers=None`` uses every available core (never more workers than jobs). Jobs that fail
    before reaching SQLite (no file, no SQL) are answered here; without POSIX every job runs in
    this process (the SQLite-level timeout still applies; the kill at the deadline does not).
    """
    jobs = list(jobs)
    limits = {"timeout": timeout, "max_rows": max_rows, "max_result_bytes": max_result_bytes}
    results: list[ExecResult | None] = [None] * len(jobs)
    to_run = []
    for i, (db, sql) in enumerate(jobs):
        if POOL_SUPPORTED and isinstance(sql, str) and sql.strip() and Path(db).is_file():
            to_run.append(i)
        else:  # answered without running SQL (or, without POSIX, run here)
            results[i] = executor.execute_in_process(db, sql, **limits)
    if to_run:
        with ExecutionPool(min(workers or default_workers(), len(to_run)), grace=grace) as pool:
            for i, result in zip(to_run, pool.run([jobs[i] for i in to_run], **limits)):
                results[i] = result
    return results  # type: ignore[return-value]
