"""The Linker protocol, its registry and the scores a linker gives a question's schema elements."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from t2s_bench.datasets.schema import Schema
from t2s_bench.registry import Registry

DEFAULT_LINKER = "combined"


@dataclass
class LinkScores:
    """Relevance of each table and column to a question, in [0, 1]; keys are lower-case names,
    columns as "table.column"."""

    tables: dict[str, float] = field(default_factory=dict)
    columns: dict[str, float] = field(default_factory=dict)

    def ranked_tables(self) -> list[str]:
        return sorted(self.tables, key=lambda t: -self.tables[t])

    def ranked_columns(self, table: str) -> list[str]:
        """Columns of `table` (bare lower-case names), best first."""
        prefix = table.lower() + "."
        cols = [c for c in self.columns if c.startswith(prefix)]
        return [c[len(prefix):] for c in sorted(cols, key=lambda c: -self.columns[c])]


class Linker(Protocol):
    name: str

    def link(self, question: str, schema: Schema, db_path: Path | None = None) -> LinkScores: ...

    def config(self) -> dict: ...


LINKERS: Registry[Callable[..., Linker]] = Registry("linker", entry_point_group="t2s_bench.linkers")
LINKERS.register("lexical", "t2s_bench.linking.lexical:LexicalLinker")
LINKERS.register("embedding", "t2s_bench.linking.embedding:EmbeddingLinker")
LINKERS.register("combined", "t2s_bench.linking.combined:CombinedLinker")


def register_linker(name: str, *, replace: bool = False) -> Any:
    return LINKERS.register(name, replace=replace)


@lru_cache(maxsize=8)
def _cached_linker(name: str, options: str) -> Linker:
    return LINKERS.create(name, **json.loads(options))


def get_linker(name: str | None = None, **options: Any) -> Linker:
    """A linker by name, built once per process and options (the embedding model loads once)."""
    return _cached_linker(name or DEFAULT_LINKER, json.dumps(options, sort_keys=True))


def schema_hash(schema: Schema) -> str:
    """Content hash of a schema (names, natural names, types, keys): the key of on-disk indexes."""
    body = {
        "db": schema.db_id,
        "tables": [[t.name, t.natural_name, t.primary_keys, [[c.name, c.natural_name, c.type] for c in t.columns]]
                   for t in schema.tables],
        "fks": [[f.table, f.column, f.ref_table, f.ref_column] for f in schema.foreign_keys],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
