"""Execute every Spider dev gold query several ways and compare wall time in one run.

    python benchmarks/bench_execution.py [--repeats 3] [--workers 2] [--out runs/bench/execution.json]

Ways, each timed end to end (median of the repeats):
- ``official_style``: what the official evaluators do per query (open a read-write connection,
  execute, fetchall, close), no timeout, no read-only guard. Context only.
- ``in_process``: ``execute_in_process`` (what a worker does, in this process: no kill at the
  deadline, no memory bound), connection cache emptied before each repeat. The reference.
- ``workers_1``: ``execute_many(workers=1)``, one worker process (the runner's per-batch scoring);
  its ratio to ``in_process`` is the price of the timeout/memory guarantees.
- ``execute_each``: ``execute`` per query (one job per call, the repair/vote checks' pattern).
- ``pool``: ``execute_many(workers=N)``, including starting the worker processes.
- ``cache_cold``: ``GoldCache.execute_cached`` on an empty cache file (executes and stores).
- ``cache_warm``: the same jobs through a new ``GoldCache`` on the filled file (as a later run).

Questions whose database is absent (``wta_1`` here) are skipped and counted. Ratios are against
``in_process`` from the same run. Exits 0 with a message when Spider is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from t2s_bench.execution import GoldCache, close_connections, close_workers, execute, execute_in_process, execute_many
from t2s_bench.paths import REPO_ROOT, spider_dir


def load_jobs(root: Path) -> tuple[list[tuple[Path, str]], int]:
    jobs, missing = [], 0
    for line in (root / "dev_gold.sql").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        sql, db_id = line.rsplit("\t", 1)
        path = root / "database" / db_id / f"{db_id}.sqlite"
        if path.is_file():
            jobs.append((path, sql))
        else:
            missing += 1
    return jobs, missing


def official_style(jobs):
    out = []
    for path, sql in jobs:
        con = sqlite3.connect(path)
        con.text_factory = lambda b: b.decode(errors="ignore")
        try:
            out.append(con.execute(sql).fetchall())
        except sqlite3.Error as exc:
            out.append(exc)
        finally:
            con.close()
    return out


def timed(fn, repeats: int, before=None) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        if before:
            before()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "bench" / "execution.json")
    args = parser.parse_args(argv)

    root = spider_dir()
    if root is None or not (root / "dev_gold.sql").is_file():
        print("Spider not found (set T2S_SPIDER_DIR to a copy with dev_gold.sql and database/): skipping.")
        return 0
    jobs, missing = load_jobs(root)
    print(f"{len(jobs)} dev gold queries ({missing} skipped: missing database), {args.repeats} repeats")

    timings: dict[str, dict] = {}

    def record(name, median, times):
        timings[name] = {"median_s": round(median, 4), "runs_s": [round(t, 4) for t in times]}
        print(f"  {name:<15} {median * 1000:9.1f} ms")

    m, t, _ = timed(lambda: official_style(jobs), args.repeats)
    record("official_style", m, t)
    m, t, reference = timed(lambda: [execute_in_process(p, s) for p, s in jobs], args.repeats, before=close_connections)
    record("in_process", m, t)
    m, t, one_worker = timed(lambda: execute_many(jobs, workers=1), args.repeats, before=close_workers)
    record("workers_1", m, t)
    m, t, each = timed(lambda: [execute(p, s) for p, s in jobs], args.repeats, before=close_workers)
    record("execute_each", m, t)
    m, t, pooled = timed(lambda: execute_many(jobs, workers=args.workers), args.repeats, before=close_workers)
    record("pool", m, t)

    with tempfile.TemporaryDirectory() as tmp:
        cache_file = Path(tmp) / "gold.sqlite"

        def cold():
            cache_file.unlink(missing_ok=True)
            for suffix in ("-wal", "-shm"):
                Path(str(cache_file) + suffix).unlink(missing_ok=True)
            with GoldCache(cache_file) as cache:
                return cache.execute_cached(jobs, workers=args.workers)

        def warm():
            with GoldCache(cache_file) as cache:
                return cache.execute_cached(jobs, workers=args.workers)

        m, t, cached_cold = timed(cold, args.repeats)
        record("cache_cold", m, t)
        m, t, cached_warm = timed(warm, args.repeats)
        record("cache_warm", m, t)

    def same(a, b):
        return [(r.rows, r.columns, r.error) for r in a] == [(r.rows, r.columns, r.error) for r in b]

    consistent = all(same(reference, other) for other in (one_worker, each, pooled, cached_cold, cached_warm))
    errors = sum(r.error is not None for r in reference)
    base = timings["in_process"]["median_s"]
    ratios = {name: round(v["median_s"] / base, 3) for name, v in timings.items() if base > 0}
    print(f"  identical results across ways: {consistent}; gold errors: {errors}")
    print("  time relative to in_process: " + ", ".join(f"{k} {v}x" for k, v in ratios.items()))

    report = {
        "benchmark": "execution of Spider dev gold queries",
        "queries": len(jobs),
        "skipped_missing_database": missing,
        "gold_errors": errors,
        "identical_results": consistent,
        "repeats": args.repeats,
        "workers": args.workers,
        "timings": timings,
        "ratio_to_in_process": ratios,
        "machine": {
            "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if consistent else 1


if __name__ == "__main__":
    sys.exit(main())
