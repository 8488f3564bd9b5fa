"""Schemas given with a request: CREATE TABLE text or a tables.json-style object -> `Schema`.

CREATE TABLE text is checked with sqlglot (only CREATE TABLE statements), then loaded into a
throw-away SQLite file and read back with `Schema.from_sqlite`, so SQLite itself decides what the
tables, keys and columns are. Any failure is a `SchemaInputError` (a ValueError) that says why.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from t2s_bench.datasets.schema import Schema

MAX_TABLES = 500


class SchemaInputError(ValueError):
    """The schema given with a request cannot be used."""


def schema_from_ddl(text: str, db_id: str = "custom") -> Schema:
    """A Schema from CREATE TABLE statements (SQLite dialect)."""
    try:
        statements = [s for s in sqlglot.parse(text, read="sqlite") if s is not None]
    except (ParseError, TokenError) as e:
        raise SchemaInputError(f"schema text does not parse: {str(e).splitlines()[0]}") from e
    if not statements:
        raise SchemaInputError("schema text holds no CREATE TABLE statement")
    for s in statements:
        if not (isinstance(s, exp.Create) and str(s.args.get("kind", "")).upper() == "TABLE"):
            kind = s.key.upper() if not isinstance(s, exp.Create) else f"CREATE {s.args.get('kind')}"
            raise SchemaInputError(f"schema text may hold only CREATE TABLE statements, found {kind}")
    if len(statements) > MAX_TABLES:
        raise SchemaInputError(f"schema text holds {len(statements)} tables; at most {MAX_TABLES}")
    with tempfile.TemporaryDirectory(prefix="t2s-schema-") as tmp:
        path = Path(tmp) / "schema.sqlite"
        con = sqlite3.connect(path)
        try:
            con.executescript(text)
        except sqlite3.Error as e:
            raise SchemaInputError(f"SQLite rejects the schema text: {e}") from e
        finally:
            con.close()
        schema = Schema.from_sqlite(path, db_id)
    if not schema.tables:
        raise SchemaInputError("schema text defines no table")
    return schema


def schema_from_object(data: dict, db_id: str = "custom") -> Schema:
    """A Schema from a tables.json entry, or the short form {"tables": {"name": ["col", ...]}}."""
    if not isinstance(data, dict):
        raise SchemaInputError("schema object must be a JSON object")
    try:
        if "table_names_original" in data:
            return Schema.from_tables_json({"db_id": db_id, **data})
        tables = data.get("tables")
        if isinstance(tables, dict) and tables and all(
            isinstance(cols, list) and cols and all(isinstance(c, str) and c for c in cols) for cols in tables.values()
        ):
            entry = {
                "db_id": data.get("db_id", db_id),
                "table_names_original": list(tables),
                "column_names_original": [[-1, "*"]] + [[i, c] for i, cols in enumerate(tables.values()) for c in cols],
            }
            return Schema.from_tables_json(entry)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise SchemaInputError(f"schema object is not a valid tables.json entry: {type(e).__name__}: {e}") from e
    raise SchemaInputError('schema object: give a tables.json entry, or {"tables": {"table": ["column", ...]}}')
