"""Execution-guided repair: run a predicted query read-only on its database; when SQLite rejects it,
ask the model once more with the error message (the conversation continues with one follow-up turn).

Only the target database is used, never the gold query: this is inference, not scoring.
"""

from __future__ import annotations

from pathlib import Path

REPAIR_TEMPLATE = "repair-v1.0"  # repair-v1.1 adds the used tables' columns
CHECK_TIMEOUT_S = 5.0


def execution_error(sql: str, db_path: Path | None, timeout: float = CHECK_TIMEOUT_S) -> str | None:
    """Why `sql` fails on the database, or None when it runs (a slow query is not an error)."""
    from t2s_bench.execution import execute

    if not sql.strip():
        return "the answer contains no SQL query"
    if db_path is None:
        return None
    result = execute(db_path, sql, timeout=timeout, max_rows=1)
    if result.timed_out:
        return None
    return result.error


def tables_hint(sql: str, schema) -> str:
    """Compact schema of the tables `sql` reads that exist in `schema` (all tables when none do)."""
    from t2s_bench.prompting import serialize_schema
    from t2s_bench.sql.parse import tables_used

    known = {t.name.lower() for t in schema.tables}
    used = [t for t in tables_used(sql) if t.lower() in known]
    return serialize_schema(schema, "compact", tables=used or None)


def repair_messages(messages: list[dict], answer: str, error: str, follow_up, schema=None) -> list[dict]:
    """The prompt for one repair round: the conversation so far, the failed answer, the error."""
    hint = tables_hint(answer, schema) if schema is not None else ""
    return [*messages, {"role": "assistant", "content": answer}, follow_up.render(error=error, sql=answer, tables=hint)]
