"""Schema serialisers: CREATE TABLE DDL or compact `table(col, col)` text, optional sample rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from t2s_bench.datasets.schema import Schema

FORMATS = ("ddl", "compact")
_TYPES = {"number": "NUMBER", "text": "TEXT", "time": "TEXT", "boolean": "BOOLEAN", "others": "TEXT"}


def _quote(name: str) -> str:
    return f'"{name}"' if not name.replace("_", "").isalnum() else name


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _values_note(values: list[str]) -> str:
    return "-- values: " + ", ".join(_sql_string(v) for v in values)


def _ddl(schema: Schema, tables, columns=None, values=None) -> str:
    pruned = len(tables) < len(schema.tables)
    kept = {t.name.lower() for t in tables}
    fks_by_table: dict[str, list] = {}
    for fk in schema.foreign_keys:
        if not pruned or fk.ref_table.lower() in kept:  # a pruned schema: foreign keys among its tables
            fks_by_table.setdefault(fk.table.lower(), []).append(fk)
    blocks = []
    for t in tables:
        cols = _kept_columns(t, columns)
        lines = [f"  {_quote(c.name)} {_TYPES.get(c.type, 'TEXT')}" for c in cols]
        notes = [(values or {}).get((t.name.lower(), c.name.lower())) for c in cols]
        if t.primary_keys:
            lines.append(f"  PRIMARY KEY ({', '.join(_quote(k) for k in t.primary_keys)})")
        for fk in fks_by_table.get(t.name.lower(), []):
            lines.append(
                f"  FOREIGN KEY ({_quote(fk.column)}) REFERENCES {_quote(fk.ref_table)}({_quote(fk.ref_column)})"
            )
        notes += [None] * (len(lines) - len(notes))
        body = [line + ("," if i < len(lines) - 1 else "") + (f" {_values_note(n)}" if n else "")
                for i, (line, n) in enumerate(zip(lines, notes))]
        blocks.append(f"CREATE TABLE {_quote(t.name)} (\n" + "\n".join(body) + "\n);")
    return "\n\n".join(blocks)


def _kept_columns(table, columns) -> list:
    """The table's columns, or those `columns` (table -> names) keeps; primary keys always."""
    if columns is None:
        return table.columns
    wanted = {c.lower() for t, cs in columns.items() if t.lower() == table.name.lower() for c in cs}
    wanted |= {k.lower() for k in table.primary_keys}
    return [c for c in table.columns if c.name.lower() in wanted]


def _compact(schema: Schema, tables, columns=None, values=None) -> str:
    lines = []
    for t in tables:
        cols = _kept_columns(t, columns)
        lines.append(f"{t.name}({', '.join(c.name for c in cols)})")
        lines += [f"  {_values_note(v)} ({t.name}.{c.name})" for c in cols
                  if (v := (values or {}).get((t.name.lower(), c.name.lower())))]
    names = {t.name.lower() for t in tables}
    fks = [
        f"{fk.table}.{fk.column} = {fk.ref_table}.{fk.ref_column}"
        for fk in schema.foreign_keys
        if fk.table.lower() in names and fk.ref_table.lower() in names
    ]
    if fks:
        lines.append("Foreign keys: " + "; ".join(fks))
    return "\n".join(lines)


def _sample_rows(db_path: Path, table: str, n: int) -> list[tuple]:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    con.text_factory = lambda b: b.decode("utf-8", errors="replace")
    try:
        return con.execute(f'SELECT * FROM "{table}" LIMIT {int(n)}').fetchall()
    except sqlite3.Error:
        return []
    finally:
        con.close()


def serialize_schema(
    schema: Schema,
    fmt: str = "ddl",
    *,
    db_path: Path | None = None,
    sample_rows: int = 0,
    tables: list[str] | None = None,
    columns: dict[str, list[str]] | None = None,
    values: dict[tuple[str, str], list[str]] | None = None,
) -> str:
    """Schema text for a prompt. `tables` restricts to a subset and `columns` (table -> column names)
    to some columns of each (schema pruning); `values` ((table, column) lower case -> stored values)
    are shown beside their column (`-- values: 'France', 'Germany'`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown schema format {fmt!r}; choose from {FORMATS}")
    keep = schema.tables
    if tables is not None:
        wanted = {t.lower() for t in tables}
        keep = [t for t in schema.tables if t.name.lower() in wanted]
    values = {(t.lower(), c.lower()): v for (t, c), v in (values or {}).items()}
    text = (_ddl if fmt == "ddl" else _compact)(schema, keep, columns, values)
    if sample_rows and db_path is not None:
        parts = []
        for t in keep:
            rows = _sample_rows(db_path, t.name, sample_rows)
            if rows:
                body = "\n".join(" | ".join(str(v)[:40] for v in r) for r in rows)
                parts.append(f"/* {len(rows)} rows of {t.name}: */\n{body}")
        if parts:
            text += "\n\n" + "\n\n".join(parts)
    return text
