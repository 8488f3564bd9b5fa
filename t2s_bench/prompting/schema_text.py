"""Schema serialisers: CREATE TABLE DDL or compact `table(col, col)` text, optional sample rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from t2s_bench.datasets.schema import Schema

FORMATS = ("ddl", "compact")
_TYPES = {"number": "NUMBER", "text": "TEXT", "time": "TEXT", "boolean": "BOOLEAN", "others": "TEXT"}


def _quote(name: str) -> str:
    return f'"{name}"' if not name.replace("_", "").isalnum() else name


def _ddl(schema: Schema, tables) -> str:
    fks_by_table: dict[str, list] = {}
    for fk in schema.foreign_keys:
        fks_by_table.setdefault(fk.table.lower(), []).append(fk)
    blocks = []
    for t in tables:
        lines = [f"  {_quote(c.name)} {_TYPES.get(c.type, 'TEXT')}" for c in t.columns]
        if t.primary_keys:
            lines.append(f"  PRIMARY KEY ({', '.join(_quote(k) for k in t.primary_keys)})")
        for fk in fks_by_table.get(t.name.lower(), []):
            lines.append(
                f"  FOREIGN KEY ({_quote(fk.column)}) REFERENCES {_quote(fk.ref_table)}({_quote(fk.ref_column)})"
            )
        blocks.append(f"CREATE TABLE {_quote(t.name)} (\n" + ",\n".join(lines) + "\n);")
    return "\n\n".join(blocks)


def _compact(schema: Schema, tables) -> str:
    lines = [f"{t.name}({', '.join(c.name for c in t.columns)})" for t in tables]
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
) -> str:
    """Schema text for a prompt. `tables` restricts to a subset (schema pruning)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown schema format {fmt!r}; choose from {FORMATS}")
    keep = schema.tables
    if tables is not None:
        wanted = {t.lower() for t in tables}
        keep = [t for t in schema.tables if t.name.lower() in wanted]
    text = _ddl(schema, keep) if fmt == "ddl" else _compact(schema, keep)
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
