"""What a gold query needs from the schema: its tables, its columns and its string literals compared
with a column (parsed with sqlglot through t2s_bench.sql)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from t2s_bench.datasets.schema import Schema
from t2s_bench.sql.parse import SQLParseError, parse_shared


@dataclass(frozen=True)
class GoldNeeds:
    tables: frozenset[str]  # lower-case table names
    columns: frozenset[str]  # lower-case "table.column"
    comparisons: tuple[tuple[str, str, str], ...]  # (table, column, literal) of `col = 'x'`, `col IN ('x')`


def gold_needs(sql: str, schema: Schema) -> GoldNeeds | None:
    """None when the query does not parse. Columns are resolved through aliases and, unqualified,
    to the query's first table (in order of appearance) that has them; unknown names are dropped."""
    try:
        tree = parse_shared(sql)
    except SQLParseError:
        return None
    known = {t.name.lower(): t for t in schema.tables}
    aliases: dict[str, str] = {}
    order: list[str] = []
    for t in tree.find_all(exp.Table):
        name = t.name.lower()
        if name in known:
            aliases[(t.alias or t.name).lower()] = name
            aliases[name] = name
            if name not in order:
                order.append(name)

    def resolve(col: exp.Column) -> str | None:
        name = col.name.lower()
        if not name or name == "*":
            return None
        if col.table:
            table = aliases.get(col.table.lower())
            return f"{table}.{name}" if table and known[table].column(name) else None
        for table in order:
            if known[table].column(name):
                return f"{table}.{name}"
        return None

    columns = {c for c in (resolve(col) for col in tree.find_all(exp.Column)) if c}
    comparisons = []
    for node in tree.find_all(exp.EQ, exp.NEQ, exp.In):
        col = node.this if isinstance(node.this, exp.Column) else None
        others = node.expressions if isinstance(node, exp.In) else [node.expression]
        if col is None and isinstance(node, (exp.EQ, exp.NEQ)) and isinstance(node.expression, exp.Column):
            col, others = node.expression, [node.this]
        target = resolve(col) if col is not None else None
        if target is None:
            continue
        table, column = target.split(".", 1)
        for lit in others:
            if isinstance(lit, exp.Literal) and lit.is_string and lit.this.strip():
                comparisons.append((table, column, lit.this))
            elif _double_quoted_string(lit) and resolve(lit) is None:  # SQLite reads "AKO" as a string here
                comparisons.append((table, column, lit.name))
    return GoldNeeds(frozenset(order), frozenset(columns), tuple(dict.fromkeys(comparisons)))


def _double_quoted_string(node: exp.Expression) -> bool:
    return isinstance(node, exp.Column) and not node.table and isinstance(node.this, exp.Identifier) \
        and bool(node.this.args.get("quoted")) and bool(node.name.strip())
