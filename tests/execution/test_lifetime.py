"""Execution workers die with their parent, survive the thread that started them, and write no
temp files; a query that never reaches SQLite's progress handler is stopped at its deadline.

Real processes and signals: a scorer is killed with SIGKILL in the middle of an uninterruptible
query, and its workers must be gone within a few seconds.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from t2s_bench.execution import ExecutionPool, execute, execute_many

INSTR = "SELECT instr(printf('%.6000000c','a'), printf('%.3000000c','a')||'b')"  # minutes, in one SQLite call
BIG_SORT = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 1000000) "
            "SELECT printf('%.200c', 'a') || x AS s FROM c ORDER BY s DESC")
REPO = str(Path(__file__).resolve().parents[2])

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("life") / "toy" / "toy.sqlite"
    path.parent.mkdir()
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO people VALUES (1, 'ada');")
    con.commit()
    con.close()
    return path


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a PID 1 that does not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SCORER = """
import sys
from pathlib import Path
from t2s_bench.datasets import Dataset, Example
from t2s_bench.execution import execute
from t2s_bench.scoring import score_predictions

mode, db, sql = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if mode == "execute":  # from the main thread
    execute(db, sql, timeout=600)
else:  # the scorer executes from a background thread
    examples = [Example(i, "toy", "q", "SELECT count(*) FROM people") for i in range(2)]
    score_predictions(Dataset("x", examples, {}, db.parent.parent), {0: sql, 1: sql}, workers=2, timeout=600,
                      gold_cache=None)
"""


@linux_only
@pytest.mark.parametrize("mode,n_workers", [("execute", 1), ("score_predictions", 2)])
def test_sigkill_of_the_scorer_leaves_no_worker(db, mode, n_workers):
    scorer = subprocess.Popen([sys.executable, "-c", SCORER, mode, str(db), INSTR], cwd=REPO)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the workers are busy on the query
            workers = [p for p in children_of(scorer.pid) if running(p)]
            if len(workers) == n_workers and any(cpu_seconds(p) > 0.3 for p in workers):
                break
            time.sleep(0.1)
        assert len(workers) == n_workers, f"workers did not start: {workers}"
        scorer.send_signal(signal.SIGKILL)
        scorer.wait(10)
        gone_by = time.monotonic() + 5
        while any(running(p) for p in workers) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not any(running(p) for p in workers), "a worker outlived the killed scorer"
    finally:
        scorer.kill()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


@linux_only
def test_watchdog_pipe_alone_stops_a_busy_worker(db):
    """The portable fallback: the worker exits when the pipe's writer dies, though its parent lives."""
    read_end, write_end = os.pipe()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], pass_fds=(write_end,))
    os.close(write_end)
    env = dict(os.environ, PYTHONPATH=REPO)
    worker = subprocess.Popen(
        [sys.executable, "-m", "t2s_bench.execution._worker", "0", str(os.getpid()), str(read_end)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(read_end,), env=env,
    )
    os.close(read_end)
    try:
        inbox = Connection(os.dup(worker.stdout.fileno()), writable=False)
        outbox = Connection(os.dup(worker.stdin.fileno()), readable=False)
        assert inbox.poll(30) and inbox.recv() == "ready"
        outbox.send((0, str(db), INSTR, 600.0, 10, 2**25))
        time.sleep(0.5)
        assert worker.poll() is None  # busy on the query, parent (this process) alive
        holder.kill()
        assert worker.wait(5) == 1
        inbox.close()
        outbox.close()
    finally:
        holder.kill()
        worker.kill()
        worker.wait()


@linux_only
def test_workers_started_from_a_short_lived_thread_outlive_it(db):
    """PR_SET_PDEATHSIG follows the thread that started a process: workers come from one long-lived thread."""
    pids: list[int] = []

    def in_thread():
        with ExecutionPool(workers=1) as pool:
            assert pool.run([(db, "SELECT 1")])[0].rows == [(1,)]
            pids.extend(pool.pids)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    time.sleep(0.3)
    assert pids and running(pids[0])
    with ExecutionPool(workers=1) as pool:  # the idle worker is reused, not restarted
        assert pool.run([(db, "SELECT 2")])[0].rows == [(2,)]
        assert pool.pids == pids


@pytest.mark.parametrize("runner", ["execute", "execute_many_1", "execute_many_2"])
def test_uninterruptible_function_call_is_stopped_at_the_deadline(db, runner):
    start = time.monotonic()
    if runner == "execute":
        results = [execute(db, INSTR, timeout=1.0)]
    else:
        jobs = [(db, INSTR), (db, "SELECT name FROM people")]
        results = execute_many(jobs, workers=int(runner[-1]), timeout=1.0)
        assert results[1].rows == [("ada",)]
    wall = time.monotonic() - start
    assert results[0].timed_out and results[0].rows is None and "timed out after 1s" in results[0].error
    assert wall < 1.0 + 5.0, wall
    assert execute(db, "SELECT count(*) FROM people").rows == [(1,)]  # a fresh worker took over


@linux_only
def test_big_sort_writes_no_temp_file_and_is_capped_by_the_heap_limit(db):
    """temp_store=MEMORY: SQLite's sorter stays in memory (by default it spills to unlinked files in
    /var/tmp), and that memory counts against the worker's heap limit."""
    for limit, expect_error in ((1024 * 2**20, None), (192 * 2**20, "out of memory")):
        with ExecutionPool(workers=1, memory_limit=limit) as pool:
            pool.run([(db, "SELECT 1")])
            (pid,) = pool.pids
            seen: set[str] = set()
            done = threading.Event()

            def watch():
                while not done.is_set():
                    for fd in os.listdir(f"/proc/{pid}/fd"):
                        try:
                            seen.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
                        except OSError:
                            pass
                    time.sleep(0.005)

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                result = pool.run([(db, BIG_SORT)], timeout=30, max_rows=2)[0]
            finally:
                done.set()
                watcher.join()
        assert result.error == expect_error, result.error
        assert not [f for f in seen if "etilqs" in f], seen  # SQLite names its temp files etilqs_*
