"""Build a test suite of databases for a dataset, in the official distilled layout.

    OUT/<db_id>/<db_id>.sqlite      the original database (copied)
    OUT/<db_id>/<db_id>_<k>.sqlite  distilled neighbours, k = 1, 2, ...
    OUT/suite.json                  manifest: dataset, size, seed, settings, versions, per-database statistics

Databases are built independently (one process each, ``workers`` at a time) and deterministically:
the candidates of a database depend only on (seed, db_id, candidate number), so the same command
writes the same suite whatever the number of workers.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import sqlite3
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from importlib import metadata
from pathlib import Path

from t2s_bench.datasets import Dataset
from t2s_bench.files import atomic_write_text

log = logging.getLogger(__name__)

MANIFEST = "suite.json"
FORMAT = "t2s-bench suite 1"


def build_suite(dataset: Dataset, out: str | Path, *, size: int = 40, seed: int = 0, candidates: int = 400,
                workers: int = 2, timeout: float = 5.0, keep_distinct: bool = False, keep_unique: bool = False,
                db_ids: list[str] | None = None) -> dict:
    """Build (or rebuild) the suite of every database of `dataset` that has its file; returns the manifest."""
    if size < 1 or candidates < 1 or workers < 1:
        raise ValueError("size, candidates and workers must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    queries: dict[str, list[str]] = {}
    for ex in dataset.examples:
        if db_ids is None or ex.db_id in db_ids:
            queries.setdefault(ex.db_id, []).append(ex.query)
    jobs, missing = [], []
    for db_id in sorted(queries):
        path = dataset.db_path(db_id)
        if path is None:
            missing.append(db_id)
            continue
        jobs.append((db_id, str(path), queries[db_id], str(out), size, seed, candidates, timeout, keep_distinct,
                     keep_unique))
    if missing:
        log.warning("no database file for %d database(s), left out of the suite: %s", len(missing), ", ".join(missing))
    if not jobs:
        raise ValueError(f"none of the databases of {dataset.name} has its file: nothing to build")
    start = time.perf_counter()
    if workers == 1 or len(jobs) == 1:
        results = [_build_database(*job) for job in jobs]
    else:  # fresh interpreters: nothing of the caller (threads, models) is inherited
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                                     mp_context=multiprocessing.get_context("spawn")) as pool:
                results = list(pool.map(_build_database, *zip(*jobs)))
        except BrokenProcessPool as e:  # usually a script that starts building at import time
            raise RuntimeError("a suite-building worker process died; when calling build_suite from a script, "
                               "put the call under `if __name__ == \"__main__\":` (worker processes re-import "
                               "the script), or pass workers=1") from e
    databases = dict(results)
    totals = {k: sum(d[k] for d in databases.values())
              for k in ("n_queries", "n_gold_errors", "n_mutants", "n_killed_by_original", "n_survivors",
                        "n_killed_by_suite", "n_candidates", "n_variants")}
    totals["kill_rate"] = totals["n_killed_by_suite"] / totals["n_survivors"] if totals["n_survivors"] else None
    manifest = {
        "format": FORMAT,
        "dataset": dataset.name,
        "size": size,
        "seed": seed,
        "settings": {"candidates": candidates, "timeout": timeout, "keep_distinct": keep_distinct,
                     "keep_unique": keep_unique},
        "versions": _versions(),
        "seconds": round(time.perf_counter() - start, 1),
        "workers": workers,
        "missing_databases": missing,
        "totals": totals,
        "databases": databases,
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(suite_dir: str | Path) -> dict:
    path = Path(suite_dir) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _build_database(db_id: str, db_path: str, gold_queries: list[str], out: str, size: int, seed: int,
                    candidates: int, timeout: float, keep_distinct: bool, keep_unique: bool) -> tuple[str, dict]:
    from t2s_bench.suites.distill import distill  # in the worker: sqlglot and sqlite work start here

    target = Path(out) / db_id
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copyfile(db_path, target / f"{db_id}.sqlite")
    with tempfile.TemporaryDirectory(prefix=f"t2s-suite-{db_id}-") as work:
        chosen, stats = distill(Path(db_path), gold_queries, Path(work), size=size, seed=seed, db_id=db_id,
                                candidates=candidates, timeout=timeout, keep_distinct=keep_distinct,
                                keep_unique=keep_unique)
        names = []
        for k, path in enumerate(chosen, 1):
            name = f"{db_id}_{k}.sqlite"
            shutil.move(str(path), target / name)
            names.append(name)
    entry = stats.to_json()
    entry.update(n_variants=len(names), variants=names)
    log.info("%s: %d variants kill %d of %d survivors (%.1fs)", db_id, len(names), stats.n_killed_by_suite,
             stats.n_survivors, stats.seconds)
    return db_id, entry


def _versions() -> dict:
    out = {"sqlite": sqlite3.sqlite_version}
    for pkg in ("t2s-bench", "sqlglot"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out
