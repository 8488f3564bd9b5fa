"""Spider-format datasets: loading, schema model, demo data, fetch, checks and statistics."""

from t2s_bench.datasets.registry import DATASETS, DEFAULT_DATASET, load_dataset, register_dataset
from t2s_bench.datasets.schema import Column, ForeignKey, Schema, Table
from t2s_bench.datasets.spider import (
    Dataset,
    Example,
    dataset_from_gold_file,
    load_gold_file,
    load_pred_file,
    load_questions,
    load_spider_format,
    load_tables,
)

__all__ = [
    "DATASETS", "DEFAULT_DATASET", "load_dataset", "register_dataset", "Column", "ForeignKey", "Schema", "Table",
    "Dataset", "Example", "dataset_from_gold_file", "load_gold_file", "load_pred_file",
    "load_questions", "load_spider_format", "load_tables",
    "check_dataset", "dataset_stats", "fetch_spider", "load_demo",
]

# heavier helpers (pandas, requests, the execution pool) load on first use
_LAZY = {
    "check_dataset": "t2s_bench.datasets.check",
    "dataset_stats": "t2s_bench.datasets.stats",
    "fetch_spider": "t2s_bench.datasets.fetch",
    "load_demo": "t2s_bench.datasets.demo",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
