"""Spider-format datasets: loading, schema model, demo data, fetch, checks and statistics."""

from t2s_bench.datasets.registry import DEFAULT_DATASET, NAMED, load_dataset
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
    "DEFAULT_DATASET", "NAMED", "load_dataset", "Column", "ForeignKey", "Schema", "Table",
    "Dataset", "Example", "dataset_from_gold_file", "load_gold_file", "load_pred_file",
    "load_questions", "load_spider_format", "load_tables",
]
