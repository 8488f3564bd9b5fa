"""Schema linking and value retrieval: which tables, columns and stored values a question needs.

    question + Schema ──linker──► LinkScores ──prune──► PrunedSchema (tables, join path, columns)
    question + SQLite ──ValueIndex──► values per text column, shown beside the column in the prompt

Linkers are registered in LINKERS (lexical, embedding, combined); `t2s_bench.prompting.schema_for`
is the one entry point the prompted systems and training data preparation use.
"""

from t2s_bench.linking.base import DEFAULT_LINKER, LINKERS, Linker, LinkScores, get_linker, register_linker
from t2s_bench.linking.prune import PrunedSchema, prune_schema
from t2s_bench.linking.values import ValueIndex, value_index

__all__ = [
    "DEFAULT_LINKER", "LINKERS", "Linker", "LinkScores", "get_linker", "register_linker",
    "PrunedSchema", "prune_schema", "ValueIndex", "value_index",
]
