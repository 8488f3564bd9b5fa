"""Named datasets: `demo`, `spider-dev`, `spider-train`, `spider-syn-dev`, or a path to a questions JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from t2s_bench import paths
from t2s_bench.datasets.spider import Dataset, load_spider_format
from t2s_bench.registry import Registry

DEFAULT_DATASET = "demo"
log = logging.getLogger(__name__)


def _spider(split_file: str, name: str) -> Dataset:
    root = paths.spider_dir()
    if root is None:
        raise FileNotFoundError(
            f"{name}: no Spider copy found. Set T2S_SPIDER_DIR, or run `t2s-bench data fetch spider`."
        )
    return load_spider_format(root / split_file, root / "tables.json", root / "database", name)


def _spider_syn() -> Dataset:
    syn, root = paths.spider_syn_dir(), paths.spider_dir()
    if syn is None or root is None:
        raise FileNotFoundError("spider-syn-dev: needs Spider-Syn (T2S_SPIDER_SYN_DIR) and Spider (T2S_SPIDER_DIR)")
    return load_spider_format(syn / "dev.json", root / "tables.json", root / "database", "spider-syn-dev")


def _demo() -> Dataset:
    from t2s_bench.datasets.demo import load_demo

    return load_demo()


def _spider_dev() -> Dataset:
    return _spider("dev.json", "spider-dev")


def _spider_train() -> Dataset:
    return _spider("train_spider.json", "spider-train")


# name -> loader taking no arguments; plugins add theirs with `register_dataset("name")`
# (entry point group `t2s_bench.datasets`)
DATASETS: Registry[Callable[[], Dataset]] = Registry("dataset", entry_point_group="t2s_bench.datasets")
DATASETS.register("demo", _demo)
DATASETS.register("spider-dev", _spider_dev)
DATASETS.register("spider-train", _spider_train)
DATASETS.register("spider-syn-dev", _spider_syn)


def register_dataset(name: str, *, replace: bool = False):
    return DATASETS.register(name, replace=replace)


def load_dataset(name: str, *, tables: str | None = None, db_dir: str | None = None) -> Dataset:
    """Resolve a dataset name, or load a questions JSON path (tables/db_dir default to its folder)."""
    path = Path(name)
    if not path.is_file() and name in DATASETS:
        if tables or db_dir:
            raise ValueError(f"{name}: --tables/--db-dir go with a questions JSON path, not a named dataset")
        return DATASETS.get(name)()
    if not path.is_file():
        raise ValueError(f"unknown dataset {name!r}: use one of {DATASETS.names()} or a path to a questions JSON")
    folder = path.parent
    tables_path = Path(tables) if tables else folder / "tables.json"
    databases = Path(db_dir) if db_dir else folder / "database"
    if tables and not tables_path.is_file():
        raise FileNotFoundError(f"tables file not found: {tables_path}")
    if db_dir and not databases.is_dir():
        raise FileNotFoundError(f"database folder not found: {databases}")
    log.info("%s: schemas from %s, databases from %s", path, tables_path if tables_path.is_file() else
             "the SQLite files (no tables.json)", databases)
    return load_spider_format(path, tables_path if tables_path.is_file() else None, databases, path.stem)
