"""Which table a column reference belongs to: the one column resolver of t2s-bench.

Spider's component extraction (`sql/components.py`), the error classes (`scoring/errors.py`) and the
service's SQL validation (`serving/validation.py`) all ask the same question: does ``T1.name`` or
``name`` name a column of a table the query reads, and which? Each walks its own kind of scope (the
extractor its own scopes, the error classes the enclosing SELECTs, the validator sqlglot's
optimizer scopes) and turns it into `Frame`s, innermost first; `resolve_column` answers.

A frame lists its FROM sources by the name the query uses for them (alias, or table name), each a
real table or a derived table (FROM subquery, CTE) whose output columns may be unknown. Outcomes:
`Resolution.found(table)`, `MISSING` (no such column where it must be) or `UNCHECKABLE` (a derived
table or a table the schema lacks could hold it; or no schema to check against).

Two policies: ``spider=True`` (Spider's grammar, for its components: only real tables of the
schema count, a qualifier may also name a table that is not in FROM), and lenient (the default:
anything that could hold the column makes it uncheckable rather than unknown).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlglot import exp

from t2s_bench.datasets.schema import Schema

_VALUE_PARENTS = (exp.Binary, exp.In, exp.Between, exp.Like)


class SchemaIndex:
    """Lower-cased table -> columns lookup, in schema order."""

    def __init__(self, schema: Schema | None):
        self.schema = schema
        self.columns: dict[str, list[str]] = {}
        if schema is not None:
            for t in schema.tables:
                self.columns[t.name.lower()] = [c.name.lower() for c in t.columns]
        self._sets = {t: set(cols) for t, cols in self.columns.items()}

    def has_table(self, table: str) -> bool:
        return table in self.columns

    def has_column(self, table: str, column: str) -> bool:
        return column in self._sets.get(table, ())


_INDEX_CACHE: dict[int, tuple[Schema, SchemaIndex]] = {}


def schema_index(schema: Schema | None) -> SchemaIndex:
    """The (cached) index of a schema object."""
    if schema is None:
        return SchemaIndex(None)
    hit = _INDEX_CACHE.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    index = SchemaIndex(schema)
    if len(_INDEX_CACHE) > 512:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[id(schema)] = (schema, index)
    return index


@dataclass(frozen=True)
class Source:
    """A FROM item: a real table (lower-case name) or a derived table (table None) whose output
    column names are `columns` (None: not known, e.g. it selects *)."""

    table: str | None
    columns: frozenset[str] | None = None


@dataclass
class Frame:
    """One query level: its sources by the name the query uses (lower case, FROM order) and the
    names that are not columns but stand for SELECT expressions (aliases)."""

    sources: dict[str, Source] = field(default_factory=dict)
    select_aliases: set[str] = field(default_factory=set)

    def add(self, name: str, source: Source) -> None:
        self.sources[name.lower()] = source


@dataclass(frozen=True)
class Resolution:
    status: str  # "found" | "missing" | "uncheckable"
    table: str | None = None  # for "found": the table (lower case); None for a derived table's column

    @staticmethod
    def found(table: str | None) -> Resolution:
        return Resolution("found", table)

    @property
    def is_found(self) -> bool:
        return self.status == "found"


MISSING = Resolution("missing")
UNCHECKABLE = Resolution("uncheckable")


def lookup(source: Source, name: str, index: SchemaIndex) -> Resolution:
    """Does `source` have the column `name` (lower case)?"""
    if source.table is None:
        if source.columns is None:
            return UNCHECKABLE
        return Resolution.found(None) if name in source.columns else MISSING
    if index.schema is None:
        return Resolution.found(source.table)  # nothing to check against: take the query's word
    if not index.has_table(source.table):
        return UNCHECKABLE  # a CTE name or a table the schema lacks (reported elsewhere)
    return Resolution.found(source.table) if index.has_column(source.table, name) else MISSING


def find_source(qualifier: str, frames: Iterable[Frame]) -> Source | None:
    """The source a qualifier names in the innermost frame that has it."""
    return next((f.sources[qualifier] for f in frames if qualifier in f.sources), None)


def resolve_column(qualifier: str, name: str, frames: Iterable[Frame], index: SchemaIndex, *,
                   spider: bool = False) -> Resolution:
    """The table of the column `qualifier.name` (`qualifier` "" when unqualified; both lower case),
    looked up in `frames`, innermost first (outer frames: correlated references)."""
    frames = list(frames)
    if qualifier:
        for frame in frames:
            source = frame.sources.get(qualifier)
            if source is not None:
                found = lookup(source, name, index)
                return found if found.is_found or not spider else MISSING
        if spider and index.has_table(qualifier):  # `singer.name` with singer not in FROM
            return Resolution.found(qualifier) if index.has_column(qualifier, name) else MISSING
        return MISSING if index.schema is not None or spider else UNCHECKABLE
    for frame in frames:
        if spider:  # only the real tables of the schema, in FROM order
            for source in frame.sources.values():
                if source.table is not None and index.has_column(source.table, name):
                    return Resolution.found(source.table)
            continue
        lookups = [lookup(source, name, index) for source in frame.sources.values()]
        if any(s.table is None and s.columns is None for s in frame.sources.values()):
            return UNCHECKABLE  # a derived table of unknown columns could hold it
        if name in frame.select_aliases:
            return UNCHECKABLE  # a SELECT alias (ORDER BY total), not a table column
        hit = next((f for f in lookups if f is not MISSING), None)
        if hit is not None:
            return hit
        if index.schema is None:
            return UNCHECKABLE
    return MISSING if index.schema is not None or spider else UNCHECKABLE


def in_value_position(column: exp.Column) -> bool:
    """A name on the right of a comparison, in an IN list or a BETWEEN bound: where Spider writes
    values in double quotes (WHERE name = "Joe"), which SQLite reads as strings when no column has
    that name."""
    parent = column.parent
    return isinstance(parent, _VALUE_PARENTS) and parent.this is not column
